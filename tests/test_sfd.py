"""SFD against face-alignment 1.5.0's own SFDDetector, on random weights saved in its format.

Random weights give hundreds of boxes: the confidence heads are scaled so that scores spread
over (0, 1), some cells falling under the 0.05 candidate cut and many over 0.5, and
suppression has plenty to do.
"""
import os

import cv2
import numpy as np
import pytest
import torch

import authors_reference
from face_alignment.backends import NNABLA, ONNXRUNTIME
from face_alignment.detection import sfd
from face_alignment.detection.torch_weights import load_detector_h5
from face_alignment.errors import CheckpointMismatchError, FaceAlignmentError

BACKENDS = (NNABLA, ONNXRUNTIME)
SIZES = ((120, 160), (240, 320))  # (height, width)


def authors(module):
    return authors_reference.package_module(f"detection.sfd.{module}")


def random_state_dict(seed=1, confidence_gain=5.0):
    torch.manual_seed(seed)
    state = authors("net_s3fd").s3fd().state_dict()
    for key in state:
        if "mbox_conf" in key:
            state[key] *= confidence_gain
    return state


def frame(height, width, seed=0):
    noise = np.random.RandomState(seed).rand(height, width, 3) * 255
    return cv2.GaussianBlur(noise.astype(np.uint8), (0, 0), 3)


@pytest.fixture(scope="module")
def pth(module_folder):
    path = module_folder("sfd") / "s3fd-random.pth"
    torch.save(random_state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def theirs(pth):
    return authors("sfd_detector").SFDDetector(device="cpu", path_to_detector=pth)


@pytest.fixture(scope="module")
def ours(pth):
    # Given the .pth itself: converted on first use, then each backend loads the same .h5.
    return {backend: sfd.SFDDetector(pth, backend=backend) for backend in BACKENDS}


def _captured_maps(call):
    """(what ``call()`` returns, the maps their batch_detect handed to its decoding loop:
    probabilities after softmax, and regressors)."""
    detect = authors("detect")
    captured = []
    original = detect.get_predictions
    detect.get_predictions = lambda olist, batch_size: captured.append(olist) or original(olist, batch_size)
    try:
        return call(), captured[0]
    finally:
        detect.get_predictions = original


def their_faces(theirs, olist, threshold):
    """Their decoding loop, suppression and filter, image by image, on given maps."""
    theirs.filter_threshold = threshold
    lists = authors("detect").get_predictions(olist, len(olist[0]))
    return [np.array(theirs._filter_bboxes(boxes)).reshape(-1, 5) for boxes in lists]


@pytest.fixture(scope="module")
def their_runs(theirs):
    """Their detector's boxes (threshold 0.5) and maps, each input run once for all tests."""
    runs = {}

    def run(kind, key):
        if (kind, key) not in runs:
            theirs.filter_threshold = 0.5
            if kind == "image":
                image = frame(*key)
                runs[kind, key] = _captured_maps(lambda: [theirs.detect_from_image(image.copy())])
            else:
                batch = torch.from_numpy(np.stack(batch_frames()).transpose(0, 3, 1, 2).copy())
                runs[kind, key] = _captured_maps(lambda: theirs.detect_from_batch(batch))
        boxes, maps = runs[kind, key]
        return [np.array(b).reshape(-1, 5) for b in boxes], maps
    return run


def batch_frames():
    return [frame(*SIZES[0], seed) for seed in range(3)]


def assert_same_maps(ours, theirs):
    assert len(ours) == len(theirs) == 12
    for ours_map, their_map in zip(ours, theirs):
        assert ours_map.shape == their_map.shape
        np.testing.assert_allclose(ours_map, their_map, rtol=0, atol=1e-5 * np.abs(their_map).max())


def assert_same_boxes(ours, theirs):
    assert ours.shape == theirs.shape
    assert len(ours) > 3
    np.testing.assert_allclose(ours[:, :4], theirs[:, :4], rtol=0, atol=0.01)
    np.testing.assert_allclose(ours[:, 4], theirs[:, 4], rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("height, width", SIZES)
def test_single_image_matches_authors(ours, their_runs, backend, height, width):
    (expected,), their_maps = their_runs("image", (height, width))
    image = frame(height, width)
    assert_same_maps(ours[backend].raw_outputs(image[None]), their_maps)
    assert_same_boxes(ours[backend].detect(image), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_matches_authors(ours, theirs, their_runs, backend):
    expected, their_maps = their_runs("batch", SIZES[0])
    frames = batch_frames()
    detector = ours[backend]
    got = detector.detect_batch(frames)
    assert len(got) == len(expected) == 3
    for ours_boxes, their_boxes in zip(got, expected):
        assert_same_boxes(ours_boxes, their_boxes)
    np.testing.assert_allclose(detector.detect(frames[1]), got[1], rtol=0, atol=1e-4)  # alone as in the batch
    # A lower threshold, through the same decoding, on both sides' maps of the batch.
    maps = detector.raw_outputs(np.stack(frames))
    assert_same_maps(maps, their_maps)
    for i, their_boxes in enumerate(their_faces(theirs, their_maps, 0.1)):
        assert_same_boxes(sfd.faces(maps, i, 0.1), their_boxes)


@pytest.fixture(scope="module")
def saturated(module_folder):
    """(their detector, its maps of one image) on weights whose confidences are scaled so far
    that many scores are exactly 1.0 in float32: which of two equal boxes wins must match too."""
    path = module_folder("sfd-saturated") / "s3fd-saturated.pth"
    torch.save(random_state_dict(confidence_gain=50.0), path)
    theirs = authors("sfd_detector").SFDDetector(device="cpu", path_to_detector=str(path))
    return theirs, _captured_maps(lambda: theirs.detect_from_image(frame(*SIZES[1])))[1]


@pytest.mark.parametrize("saturate", (False, True))
@pytest.mark.parametrize("threshold", (0.5, 0.06))
def test_vectorised_decoding_equals_their_loop_on_the_same_maps(theirs, their_runs, saturated, saturate, threshold,
                                                                monkeypatch):
    # Their loop suppresses every candidate; ours the best MAX_CANDIDATES (tests/test_face_limits.py),
    # which random weights at a low threshold exceed: the decoding is compared uncapped.
    monkeypatch.setattr(sfd, "MAX_CANDIDATES", 10 ** 9)
    theirs, maps = saturated if saturate else (theirs, their_runs("image", SIZES[1])[1])
    expected = their_faces(theirs, maps, threshold)[0]
    if saturate:
        assert np.sum(expected[:, 4] == 1.0) > 3
    np.testing.assert_array_equal(sfd.faces(maps, 0, threshold), expected)


def test_pth_is_converted_once_beside_it(ours, pth, tmp_path):
    converted = ours[NNABLA].weights_path
    assert converted.endswith(".h5") and os.path.dirname(converted) == os.path.dirname(pth)
    assert sfd.SFDDetector(pth, backend=NNABLA).weights_path == converted
    again = sfd.convert_sfd(pth, str(tmp_path / "s3fd.h5"))
    first, second = (load_detector_h5(sfd.SFD_WEIGHTS, p) for p in (converted, again))
    assert list(first) == list(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_converter_refuses_a_state_dict_that_does_not_fit(tmp_path):
    state = random_state_dict()
    state["extra.weight"] = torch.zeros(3, 3, 3, 3)
    del state["fc7.bias"]
    state["conv1_1.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "s3fd-broken.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as caught:
        sfd.convert_sfd(str(path), str(tmp_path / "out.h5"))
    message = str(caught.value)
    assert "missing: fc7/conv/b" in message and "extra/conv/W" in message and "conv1_1/conv/W" in message
    assert not (tmp_path / "out.h5").exists()


def test_frames_of_different_sizes_are_refused(ours):
    with pytest.raises(FaceAlignmentError, match="one size"):
        ours[NNABLA].detect_batch([frame(*SIZES[0]), frame(*SIZES[1])])
    with pytest.raises(FaceAlignmentError, match="uint8"):
        ours[NNABLA].detect(frame(*SIZES[0]).astype(np.float32))


def test_converter_command_line(pth, tmp_path):
    from conftest import assert_one_line_error, run_tool

    out = tmp_path / "s3fd.h5"
    args = ("converters/convert_detector_weights.py", "--detector", "sfd", "--pretrained-model", pth,
            "--save-path", out)
    result = run_tool(*args)
    assert result.returncode == 0, result.stderr
    params = load_detector_h5(sfd.SFD_WEIGHTS, str(out))
    state = random_state_dict()
    np.testing.assert_array_equal(params["conv3_3_norm/scale"].ravel(), state["conv3_3_norm.weight"].numpy())
    np.testing.assert_array_equal(params["fc7_mbox_loc/conv/W"], state["fc7_mbox_loc.weight"].numpy())
    before = out.stat().st_mtime_ns
    assert_one_line_error(run_tool(*args), str(out), "--force")
    assert out.stat().st_mtime_ns == before
    assert_one_line_error(run_tool(*args[:2], "yunet", *args[3:]), "--detector")


def test_without_weights_the_published_file_is_looked_for_in_the_home_folder(tmp_path, monkeypatch):
    from face_alignment.errors import WeightsFileError

    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(tmp_path))
    with pytest.raises(WeightsFileError) as caught:
        sfd.SFDDetector()
    message = str(caught.value)
    assert str(tmp_path / sfd.WEIGHTS_FILE) in message and sfd.WEIGHTS_URL in message
    assert list(tmp_path.iterdir()) == []
