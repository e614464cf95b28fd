"""Face detection on the shared annotated photos (boxes checked against the iBUG points),
the mapping of boxes back to original pixels, finding the CNN model file, and downloading
it from a local HTTP server."""
import bz2
import functools
import hashlib
import http.server
import os
import socket
import threading

import cv2
import numpy as np
import pytest

from face_alignment.errors import DownloadError, FaceAlignmentError, WeightsFileError
from face_alignment.detection import load_detector
from face_alignment.detection.dlib_detectors import (CNN_MODEL_NAME, DEFAULT_URL, CnnDetector, HogDetector,
                                               detection_scale, download_cnn_detector,
                                               find_cnn_model)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
CNN_MODEL = os.path.join(SHARED, "models", "mmod_human_face_detector.dat")
PHOTOS = ("breakingbad", "einstein")


def _read_pts(path: str) -> np.ndarray:
    """The 68 points of an iBUG .pts file, converted from 1-based to 0-based pixels."""
    with open(path) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    assert lines[0] == "version: 1" and lines[1].split() == ["n_points:", "68"]
    start, end = lines.index("{"), lines.index("}")
    points = np.array([[float(v) for v in line.split()] for line in lines[start + 1:end]])
    assert points.shape == (68, 2)
    return points - 1.0


def _iou(box: np.ndarray, other: np.ndarray) -> float:
    width = min(box[2], other[2]) - max(box[0], other[0])
    height = min(box[3], other[3]) - max(box[1], other[1])
    inter = max(width, 0.0) * max(height, 0.0)
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    return inter / (area(box) + area(other) - inter)


@pytest.fixture(scope="module")
def photos():
    """name -> (RGB image, annotated points' bounding box [l, t, r, b])."""
    found = {}
    for name in PHOTOS:
        bgr = cv2.imread(os.path.join(SHARED, "faces", name + ".jpg"), cv2.IMREAD_COLOR)
        points = _read_pts(os.path.join(SHARED, "faces", name + ".pts"))
        found[name] = (np.ascontiguousarray(bgr[..., ::-1]),
                       np.concatenate([points.min(axis=0), points.max(axis=0)]))
    return found


@pytest.fixture(scope="module")
def detections(photos):
    """(kind, name) -> boxes from each detector with its default max_side. The CNN runs
    on 640-pixel copies (~7 s a photo here), the HOG on 1024-pixel ones."""
    detectors = {"hog": load_detector("hog"), "cnn": load_detector("cnn", CNN_MODEL)}
    return {(kind, name): detector.detect(photos[name][0])
            for kind, detector in detectors.items() for name in PHOTOS}


def _best_match(boxes: np.ndarray, target: np.ndarray):
    """(IoU, box) of the detection that overlaps ``target`` most; (0, None) if none."""
    if len(boxes) == 0:
        return 0.0, None
    ious = [_iou(box, target) for box in boxes]
    best = int(np.argmax(ious))
    return ious[best], boxes[best]


def _covers(box: np.ndarray, target: np.ndarray) -> bool:
    centre = (box[:2] + box[2:4]) / 2
    return bool(np.all(centre >= target[:2]) and np.all(centre <= target[2:]))


@pytest.mark.parametrize("name", PHOTOS)
def test_annotated_face_is_found(photos, detections, name):
    target = photos[name][1]
    matches = [_best_match(detections[kind, name], target) for kind in ("hog", "cnn")]
    iou, box = max(matches, key=lambda match: match[0])
    assert iou > 0.3, (name, matches)
    assert _covers(box, target), (name, box, target)


def test_cnn_finds_einstein_face(photos, detections):
    target = photos["einstein"][1]
    iou, box = _best_match(detections["cnn", "einstein"], target)
    assert iou > 0.5 and _covers(box, target), (iou, box, target)


def test_cnn_finds_annotated_breakingbad_face(photos, detections):
    target = photos["breakingbad"][1]
    iou, box = _best_match(detections["cnn", "breakingbad"], target)
    assert iou > 0.5 and _covers(box, target), (iou, box, target)


def test_output_format(detections):
    assert len(detections["hog", "breakingbad"]) >= 1
    for boxes in detections.values():
        assert boxes.dtype == np.float64 and boxes.ndim == 2 and boxes.shape[1] == 5
        assert np.all(np.diff(boxes[:, 4]) <= 0)  # best first
        assert np.all(boxes[:, 4] >= 0)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    # Photos are 1920 and 1024 px wide: boxes must be in those pixels, not the copies'.
    assert detections["cnn", "breakingbad"][:, 2].max() > 1000


def test_boxes_map_back_to_original_pixels(photos):
    """On a 2x nearest-neighbour enlargement, shrinking by 2 (area averaging of identical
    2x2 blocks) restores the small image exactly, so the detector sees the same pixels
    and the boxes must be the small ones mapped to the 2x grid: 2 * (x + 0.5) - 0.5."""
    small = cv2.resize(photos["breakingbad"][0], (480, 270), interpolation=cv2.INTER_AREA)
    large = cv2.resize(small, (960, 540), interpolation=cv2.INTER_NEAREST)
    detector = HogDetector(max_side=480)
    on_small, on_large = detector.detect(small), detector.detect(large)
    assert len(on_small) >= 1
    assert on_large.shape == on_small.shape
    np.testing.assert_allclose(on_large[:, :4], 2 * (on_small[:, :4] + 0.5) - 0.5, atol=1e-9)
    np.testing.assert_allclose(on_large[:, 4], on_small[:, 4])


def test_different_downscales_agree(photos):
    image, target = photos["breakingbad"]
    boxes_a = HogDetector(max_side=560).detect(image)
    boxes_b = HogDetector(max_side=1024).detect(image)
    # The face on the left (not annotated) is found at both sizes; dlib's boxes move by
    # a few of its own pixels between scales, i.e. up to ~4% of a 260 px face here.
    left_a, left_b = boxes_a[boxes_a[:, 0] < 900], boxes_b[boxes_b[:, 0] < 900]
    assert len(left_a) == 1 and len(left_b) == 1
    np.testing.assert_allclose(left_a[0, :4], left_b[0, :4], atol=30)


def test_never_enlarges():
    assert detection_scale(100, 50, 1024) == 1.0
    assert detection_scale(1080, 1920, 640) == pytest.approx(1 / 3)
    blank = np.full((60, 80, 3), 127, dtype=np.uint8)
    boxes = HogDetector(max_side=4000).detect(blank)
    assert boxes.shape == (0, 5) and boxes.dtype == np.float64


def test_detect_shrinks_what_dlib_sees_and_never_enlarges(monkeypatch):
    """The image dlib is given: a 1920 x 1080 frame shrunk to 640 x 360 for max_side 640; a
    60 x 80 one as it is, however large max_side."""
    detector = HogDetector()
    seen = []
    monkeypatch.setattr(detector, "_run", lambda image: seen.append(image.shape) or np.zeros((0, 5)))
    for shape, max_side in (((1080, 1920, 3), 640), ((60, 80, 3), 4000), ((60, 80, 3), 80)):
        detector.max_side = max_side
        detector.detect(np.zeros(shape, np.uint8))
    assert seen == [(360, 640, 3), (60, 80, 3), (60, 80, 3)]


def test_rejects_bad_arguments():
    with pytest.raises(FaceAlignmentError):
        load_detector("haar")
    with pytest.raises(FaceAlignmentError):
        HogDetector(max_side=0)
    with pytest.raises(FaceAlignmentError):
        HogDetector().detect(np.zeros((10, 10), dtype=np.uint8))


def test_model_search(tmp_path, monkeypatch):
    missing = str(tmp_path / "nope.dat")
    with pytest.raises(WeightsFileError, match="nope.dat"):
        find_cnn_model(missing)
    with pytest.raises(WeightsFileError) as caught:
        find_cnn_model(search_dirs=[str(tmp_path / "weights")])
    message = str(caught.value)
    assert DEFAULT_URL in message and "download_cnn_detector" in message
    assert "\n" not in message
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / CNN_MODEL_NAME).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert os.path.samefile(find_cnn_model(), tmp_path / "weights" / CNN_MODEL_NAME)
    assert find_cnn_model(CNN_MODEL) == CNN_MODEL


def test_unreadable_model_raises_weights_error(tmp_path):
    bogus = tmp_path / "bogus.dat"
    bogus.write_text("not a network\n")
    with pytest.raises(WeightsFileError) as caught:
        CnnDetector(str(bogus))
    assert str(bogus) in str(caught.value) and "\n" not in str(caught.value)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(base URL, served folder) of an HTTP server on 127.0.0.1 in a thread."""
    monkeypatch.setenv("no_proxy", "*")  # a proxy from the environment must not intercept
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _listing(folder) -> list:
    return sorted(os.listdir(folder))


def test_download_decompresses_and_checks_hash(server, tmp_path):
    base, served = server
    payload = np.random.default_rng(3).integers(0, 256, 150_000, dtype=np.uint8).tobytes()
    (served / "model.dat.bz2").write_bytes(bz2.compress(payload))
    dest_dir = tmp_path / "weights"  # not there yet: the download creates it
    dest = dest_dir / CNN_MODEL_NAME
    result = download_cnn_detector(str(dest), url=f"{base}/model.dat.bz2",
                                   sha256=hashlib.sha256(payload).hexdigest())
    assert result == str(dest)
    assert dest.read_bytes() == payload
    assert _listing(dest_dir) == [CNN_MODEL_NAME]  # no temporary file left


def test_download_hash_mismatch_leaves_nothing(server, tmp_path):
    base, served = server
    (served / "model.dat.bz2").write_bytes(bz2.compress(b"some other file"))
    with pytest.raises(DownloadError, match="SHA-256"):
        download_cnn_detector(str(tmp_path / "m.dat"), url=f"{base}/model.dat.bz2",
                              sha256="0" * 64)
    assert _listing(tmp_path) == ["served"]


@pytest.mark.parametrize("served_bytes", [b"<html>not bz2</html>",
                                          bz2.compress(bytes(range(256)) * 400)[:300]])
def test_download_rejects_corrupt_or_truncated(server, tmp_path, served_bytes):
    base, served = server
    (served / "model.dat.bz2").write_bytes(served_bytes)
    with pytest.raises(DownloadError):
        download_cnn_detector(str(tmp_path / "m.dat"), url=f"{base}/model.dat.bz2", sha256=None)
    assert _listing(tmp_path) == ["served"]


def test_download_http_404(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match="404") as caught:
        download_cnn_detector(str(tmp_path / "m.dat"), url=f"{base}/missing.bz2")
    assert "\n" not in str(caught.value)
    assert _listing(tmp_path) == ["served"]


def test_download_unreachable_host(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "*")
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError) as caught:
        download_cnn_detector(str(tmp_path / "m.dat"), url=f"http://127.0.0.1:{port}/m.bz2")
    message = str(caught.value)
    assert message.startswith(f"could not reach 127.0.0.1:{port}") and "no network?" in message
    assert os.listdir(tmp_path) == []
