"""RetinaFace against face-alignment 1.5.0's own RetinaFaceDetector, on random weights saved
in its format. BatchNorm statistics and scales are drawn at random too (PyTorch's are 0 and 1
at creation), so that a mix-up between them cannot pass; the convolutions are scaled so that
the image still shapes the last layers (see CONV_GAIN), the class heads so that scores spread
over (0, 1) and favour faces on the two finer levels, whose small boxes survive suppression:
tens of boxes per frame."""
import cv2
import numpy as np
import pytest
import torch

import authors_reference
from face_alignment.backends import NNABLA, ONNXRUNTIME
from face_alignment.detection import retinaface
from face_alignment.detection.torch_weights import load_detector_h5
from face_alignment.nets.retinaface import ANCHORS_PER_CELL, STEPS

BACKENDS = (NNABLA, ONNXRUNTIME)
SIZES = ((120, 160), (241, 321))  # (height, width); odd sizes crop the pyramid's upsampling
# PyTorch's default initialisation shrinks activations by about this much per convolution: over
# RetinaFace's 30 layers the image would vanish behind the BatchNorm offsets, every cell would
# score alike and near-equal scores would make suppression's choices a matter of rounding.
CONV_GAIN = 6 ** 0.5
PIXEL_RANGE = 64.0  # the first convolution sees pixels minus means, tens to a hundred


def random_state_dict(seed=2, class_gain=10.0, face_bias=1.0):
    torch.manual_seed(seed)
    state = authors_reference.retinaface_module("net_retinaface").RetinaFace().state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            value.uniform_(0.5, 2.0)
        elif key.endswith(("running_mean", "bias")) and value.dtype.is_floating_point:
            value.normal_(0.0, 0.1)
        elif key.endswith("weight") and value.ndim == 1:
            value.uniform_(0.5, 1.5)
        elif value.ndim == 4 and "Head" not in key:
            value *= CONV_GAIN
        if key.startswith("ClassHead"):
            value *= class_gain
    state["body.stage1.0.0.weight"] /= PIXEL_RANGE
    for level in (0, 1):  # faces on the finer levels too, whose small boxes survive suppression
        state[f"ClassHead.{level}.conv1x1.bias"][1::2] += face_bias
    return state


def frame(height, width, seed=0):
    noise = np.random.RandomState(seed).rand(height, width, 3) * 255
    return cv2.GaussianBlur(noise.astype(np.uint8), (0, 0), 1)


@pytest.fixture(scope="module")
def pth(tmp_path_factory):
    path = tmp_path_factory.mktemp("retinaface") / "retinaface-random.pth"
    torch.save(random_state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def theirs(pth):
    return authors_reference.retinaface_module("retinaface_detector").RetinaFaceDetector(
        device="cpu", path_to_detector=pth)


@pytest.fixture(scope="module")
def ours(pth):
    return {backend: retinaface.RetinaFaceDetector(pth, backend=backend) for backend in BACKENDS}


def their_run(theirs, image):
    """(their boxes, their network's regressors and probabilities) for one image."""
    captured = []
    network = theirs.face_detector
    original = network.forward
    network.forward = lambda x: captured.append(original(x)) or captured[-1]
    try:
        boxes = np.array(theirs.detect_from_image(image.copy()), dtype=np.float64).reshape(-1, 5)
    finally:
        del network.forward
    loc, conf, _ = captured[0]
    return boxes, loc.numpy(), conf.numpy()


def assert_same_boxes(ours, theirs):
    assert ours.shape == theirs.shape
    assert len(ours) > 3
    assert np.all(np.diff(ours[:, 4]) <= 0)  # best first
    # Scores a few 1e-7 apart may come in either order: compare the boxes in one order.
    ours, theirs = (b[np.lexsort(np.round(b[:, 3::-1], 1).T)] for b in (ours, theirs))
    np.testing.assert_allclose(ours[:, :4], theirs[:, :4], rtol=0, atol=0.01)
    np.testing.assert_allclose(ours[:, 4], theirs[:, 4], rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("height, width", SIZES)
def test_single_image_matches_authors(ours, theirs, backend, height, width):
    image = frame(height, width)
    expected, loc, conf = their_run(theirs, image)
    got_loc, got_conf = retinaface.flatten(ours[backend].raw_outputs(image[None]))
    np.testing.assert_allclose(got_loc, loc, rtol=0, atol=1e-5 * np.abs(loc).max())
    np.testing.assert_allclose(got_conf, conf, rtol=0, atol=1e-5)
    assert_same_boxes(ours[backend].detect(image), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_matches_authors_image_by_image(ours, theirs, backend):
    frames = [frame(*SIZES[0], seed) for seed in range(3)]
    theirs.confidence_threshold = 0.5
    expected = theirs.detect_from_batch(torch.from_numpy(np.stack(frames).transpose(0, 3, 1, 2).copy()))
    got = ours[backend].detect_batch(frames)
    assert len(got) == len(expected) == 3
    for ours_boxes, their_boxes in zip(got, expected):
        assert_same_boxes(ours_boxes, np.array(their_boxes, dtype=np.float64).reshape(-1, 5))


@pytest.mark.parametrize("threshold", (0.5, 0.2))
def test_decoding_equals_theirs_on_the_same_outputs(theirs, threshold):
    # Their decoding, suppression and filter on their own network's outputs, ours on the same
    # outputs (probabilities back to logits, which softmax turns into them again within an ulp).
    image = frame(*SIZES[1])
    theirs.confidence_threshold = threshold
    try:
        expected, loc, conf = their_run(theirs, image)
    finally:
        theirs.confidence_threshold = 0.5
    # Their outputs back into maps of our layout, level by level (anchor-major channels).
    maps, start = [], 0
    for step in STEPS:
        h, w = -(-SIZES[1][0] // step), -(-SIZES[1][1] // step)
        n = h * w * ANCHORS_PER_CELL
        logits = np.log(conf[:, start:start + n])  # softmax again gives these probabilities
        for values, k in ((logits, 2), (loc[:, start:start + n], 4)):
            maps.append(values.reshape(1, h, w, -1).transpose(0, 3, 1, 2))
        start += n
    got = retinaface.faces(maps, 0, SIZES[1], threshold)
    assert_same_boxes(got, expected)


def test_converter_keeps_batch_norm_statistics_apart(pth, tmp_path):
    out = retinaface.convert_retinaface(pth, str(tmp_path / "retinaface.h5"))
    params = load_detector_h5(retinaface.RETINAFACE_WEIGHTS, out)
    state = random_state_dict()
    for ours_name, their_key in (("body/stage1/0/1/bn/var", "body.stage1.0.1.running_var"),
                                 ("body/stage1/0/1/bn/mean", "body.stage1.0.1.running_mean"),
                                 ("ssh3/conv7x7_3/1/bn/gamma", "ssh3.conv7x7_3.1.weight"),
                                 ("ssh3/conv7x7_3/1/bn/beta", "ssh3.conv7x7_3.1.bias"),
                                 ("ClassHead/2/conv1x1/conv/b", "ClassHead.2.conv1x1.bias")):
        np.testing.assert_array_equal(params[ours_name].ravel(), state[their_key].numpy().ravel())
