"""Images a few pixels wide or tall cost no run: every detector answers them (dlib's CNN, which
corrupts memory or raises on them, with no face), and a folder holding them is landmarked
through. Each detector runs in a process of its own, since a crash would take pytest with it."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import CPU, ROOT, SHARED, run_tool

CNN_MODEL = os.path.join(SHARED, "data", "models", "mmod_human_face_detector.dat")
EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")
# (height, width): the 1x1, 2x2, 640x1, 640x2 and 20000x20 (width x height), and the
# tall ones (dlib's CNN crashed on 640 tall by 9 wide where 9 tall by 640 wide ran).
SIZES = ((1, 1), (2, 2), (1, 640), (2, 640), (20, 20000), (640, 1), (640, 2))
# SFD and RetinaFace take every size whole (no shrinking to a limit): 20000x20 costs their graphs
# a minute and proves nothing the thin 640-px strips do not.
GRAPH_SIZES = tuple(size for size in SIZES if max(size) <= 640)

# Detects on a grey image of each size in SIZES; prints {"HxW": number of boxes}.
_DETECT_EACH_SIZE = """
import json, sys
import numpy as np
from face_alignment.detection import load_detector
name, weights, options, sizes = json.loads(sys.argv[1])
detector = load_detector(name, weights, **options)
found = {}
for height, width in sizes:
    boxes = detector.detect(np.full((height, width, 3), 128, np.uint8))
    assert boxes.dtype == np.float64 and boxes.shape[1:] == (5,) and np.isfinite(boxes).all(), boxes
    found[f"{height}x{width}"] = len(boxes)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def random_detector_weights(module_folder):
    """face-alignment's SFD and RetinaFace checkpoints with random weights (as their tests make them)."""
    import test_retinaface
    import test_sfd

    folder = module_folder("tiny_detectors")
    torch.save(test_sfd.random_state_dict(), folder / "s3fd-random.pth")
    torch.save(test_retinaface.random_state_dict(), folder / "retinaface-random.pth")
    return folder


def _detector_cases():
    # name, weights (None: the default; a callable: from the fixture), options.
    return [("hog", None, {}), ("cnn", CNN_MODEL, {}), ("cnn", CNN_MODEL, {"upsample": 0}),
            ("blazeface", None, {}), ("blazeface-short", None, {}),
            # SFD on ONNX Runtime (NNabla takes a minute over 20000x20), RetinaFace on NNabla (ONNX
            # Runtime's exports one model per frame size, seconds each).
            ("sfd", "s3fd-random.pth", {}),
            ("retinaface", "retinaface-random.pth", {"backend": "nnabla"})]


@pytest.mark.parametrize("name, weights, options", _detector_cases(),
                         ids=[f"{n}-{'-'.join(map(str, o.values())) or 'default'}" for n, _, o in _detector_cases()])
def test_every_detector_takes_images_a_few_pixels_wide(name, weights, options, random_detector_weights):
    if weights is not None and not os.path.isabs(weights):
        weights = str(random_detector_weights / weights)
    sizes = GRAPH_SIZES if name in ("sfd", "retinaface") else SIZES
    result = subprocess.run([sys.executable, "-c", _DETECT_EACH_SIZE, json.dumps([name, weights, options, sizes])],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(found) == sorted(f"{h}x{w}" for h, w in sizes)
    if name not in ("sfd", "retinaface"):  # trained models: no face in a flat grey image
        assert set(found.values()) == {0}, found


def test_the_cnn_guard_keeps_faces_in_thin_strips():
    """A strip 60 px tall through a face dlib's CNN finds at 60 px wide, without upsampling:
    dlib finds the face in it (partly outside, as on the uncut image), so the guard, which
    keeps dlib from images under 40 px a side, loses no face dlib could find."""
    from face_alignment.detection.dlib_detectors import CnnDetector

    image = cv2.cvtColor(cv2.imread(os.path.join(SHARED, "data", "faces", "breakingbad.jpg")), cv2.COLOR_BGR2RGB)
    small = cv2.resize(image, None, fx=60 / 236, fy=60 / 236, interpolation=cv2.INTER_AREA)
    detector = CnnDetector(CNN_MODEL, upsample=0)
    whole = detector.detect(small)
    best = whole[np.argmax(whole[:, 2] - whole[:, 0])]  # the larger face, on the right
    top = int((best[1] + best[3]) / 2) - 30
    strip = np.ascontiguousarray(small[top:top + 60])
    found = detector.detect(strip)
    assert len(found) == 1, found
    np.testing.assert_allclose(found[0, [0, 2]], best[[0, 2]], atol=2)  # the same columns


def test_a_folder_with_tiny_images_is_landmarked_through(tmp_path, fan1_h5):
    """dlib's CNN from the command line, as the issue ran it: each tiny image is named as
    having no face, and the photo beside them gets its landmarks."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for height, width in SIZES:
        cv2.imwrite(str(folder / f"grey_{width}x{height}.png"), np.full((height, width, 3), 128, np.uint8))
    shutil.copy(EINSTEIN, folder / "einstein.jpg")
    saved = tmp_path / "pred.json"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", folder, "--detector", "cnn",
                      "--detector-model", CNN_MODEL, "--save-json", saved, "--backend", "nnabla", "--no-progress",
                      *CPU)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    faces = {os.path.basename(r["path"]): len(r["faces"]) for r in json.loads(saved.read_text())["images"]}
    assert faces.pop("einstein.jpg") == 1
    assert faces == {f"grey_{w}x{h}.png": 0 for h, w in SIZES}
    for h, w in SIZES:
        named = [line for line in result.stderr.splitlines() if f"grey_{w}x{h}.png" in line]
        assert len(named) == 1 and "no face found" in named[0], result.stderr
