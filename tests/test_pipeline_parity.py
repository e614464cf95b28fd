"""End to end on real photos: our landmarks equal the authors' pipeline on identical weights,
on both backends.

The authors' pipeline is composed from their own functions (``crop``, ``get_preds_fromhm``,
``draw_gaussian`` from face-alignment 1.5.0's utils.py, with their FAN and ResNetDepth), the
same way their ``FaceAlignment.get_landmarks_from_image`` composes them, on the same boxes.
What is compared is the pipeline around the networks (crop, flip, decoding, the depth input),
so the FAN is the authors' FAN with one hourglass (STAND_IN_2DFAN4) recorded as a 3D-FAN:
FAN-4 only made it slower (tests/test_parity.py compares FAN-4 itself).

With torch's default initialisation ResNetDepth barely looks at its 68 landmark channels, so
a wrong depth input would hardly move z. The depth model here has the weights of ``conv1``
for those channels scaled up until it does (checked below), and the exact tensor our pipeline
feeds ResNetDepth is compared with the authors' ``torch.cat((inp, heatmaps), 1)``.
"""
import os

import numpy as np
import pytest
import torch

import authors_reference
from conftest import SHARED, annotated_box
from face_alignment.api import FaceAlignment
from face_alignment.pipeline.image import read_image
from weight_files import SEEING_DEPTH, STAND_IN_2DFAN4

PHOTOS = ("breakingbad", "einstein")
BACKENDS = ("nnabla", "onnxruntime")
Z_TOLERANCE = 1e-5  # of max |z|


def authors_pipeline(image, box, fan, depth=None, flip=False):
    """Their get_landmarks_from_image for one face, with their constants: (landmarks, scores,
    the tensor given to ResNetDepth or None)."""
    U = authors_reference.utils_module()
    d = box
    center = np.array([d[2] - (d[2] - d[0]) / 2.0, d[3] - (d[3] - d[1]) / 2.0])
    center[1] = center[1] - (d[3] - d[1]) * U.CENTER_Y_OFFSET
    scale = (d[2] - d[0] + d[3] - d[1]) / U.REFERENCE_SCALE
    crop = U.crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0
    inp = torch.from_numpy(crop[None])
    depth_inp = None
    with torch.no_grad():
        out = fan(inp)[-1]
        if flip:
            out += U.flip(fan(U.flip(inp))[-1], is_label=True)
        out = out.numpy()
        pts, pts_img, scores = U.get_preds_fromhm(out, center, scale)
        pts, pts_img = torch.from_numpy(pts).view(68, 2) * 4, torch.from_numpy(pts_img).view(68, 2)
        if depth is not None:
            heatmaps = np.zeros((68, 256, 256), dtype=np.float32)
            for j in range(68):
                if pts[j, 0] > 0 and pts[j, 1] > 0:
                    heatmaps[j] = U.draw_gaussian(heatmaps[j], pts[j], 2)
            depth_inp = torch.cat((inp, torch.from_numpy(heatmaps)[None]), 1)
            depth_pred = depth(depth_inp).view(68, 1)
            pts_img = torch.cat((pts_img.float(), depth_pred * (1.0 / (256 / (200.0 * scale)))), 1)
            depth_inp = depth_inp.numpy()
    return pts_img.numpy(), scores[0], depth_inp


@pytest.fixture(scope="module")
def seeing_depth(weight_files):
    """The random ResNetDepth, made to look at its landmark channels (conv1's weights for
    them scaled up, SEEING_DEPTH in tests/weight_files.py)."""
    return weight_files.model(SEEING_DEPTH)


@pytest.fixture(scope="module")
def fan(weight_files):
    """The authors' FAN with one hourglass, random weights."""
    return weight_files.model(STAND_IN_2DFAN4)


@pytest.fixture(scope="module")
def models(weight_files, fan1_3d_h5):
    """Our .h5 of ``fan``, recorded as a one-hourglass 3D-FAN, and of ResNetDepth."""
    return fan1_3d_h5, weight_files.converted(SEEING_DEPTH, "depth-2a464da4ea.pth.tar", "depth")


def _image(name):
    return read_image(os.path.join(SHARED, "data", "faces", name + ".jpg"))


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "flip"])
def reference(request, fan, seeing_depth):
    """The authors' 3D landmarks (x, y from 3D-FAN, z from ResNetDepth), scores and depth
    input for each photo, without and with flip augmentation."""
    flip = request.param
    return flip, {name: authors_pipeline(_image(name), annotated_box(name), fan, seeing_depth, flip)
                  for name in PHOTOS}


def test_the_depth_model_sees_its_landmark_channels(seeing_depth, reference):
    """Without this, a wrong depth input (a missing x4, Gaussians in the wrong place) would pass."""
    _, expected = reference
    depth_input = torch.from_numpy(expected["einstein"][2])
    with torch.no_grad():
        z = seeing_depth(depth_input).numpy()
        blank = depth_input.clone()
        blank[:, 3:] = 0
        z_blank = seeing_depth(blank).numpy()
        shifted = depth_input.clone()
        shifted[:, 3:] = torch.roll(depth_input[:, 3:], 1, dims=3)  # every Gaussian 1 px right
        z_shifted = seeing_depth(shifted).numpy()
    # Measured: blanking moves z by about 6 % of max |z|, a 1 px shift by about 0.5 %,
    # hundreds of times the tolerance of the comparisons below.
    assert np.abs(z - z_blank).max() > 0.02 * np.abs(z).max()
    assert np.abs(z - z_shifted).max() > 200 * Z_TOLERANCE * np.abs(z).max()


class RecordingNetwork:
    """A backend network that keeps a copy of every batch it is given."""

    def __init__(self, network):
        self.network, self.inputs = network, []

    def __call__(self, batch):
        self.inputs.append(np.array(batch, copy=True))
        return self.network(batch)


@pytest.mark.parametrize("backend", BACKENDS)
def test_3d_equals_the_authors_for_argmax_and_centroid(models, reference, backend):
    flip, expected = reference
    fa = FaceAlignment(models[0], models[1], decode="argmax", integer_landmarks=True, flip=flip,
                       backend=backend, context="cpu")
    fa.depth = RecordingNetwork(fa.depth)
    for name in PHOTOS:
        landmarks, scores, depth_input = expected[name]
        fa.depth.inputs.clear()
        ours = next(fa.predict([_image(name)], [annotated_box(name)], decodes=("argmax", "centroid")))
        # One face, one run of ResNetDepth for both decodings, on exactly the authors' input.
        assert len(fa.depth.inputs) == 1
        np.testing.assert_array_equal(fa.depth.inputs[0], depth_input, err_msg=name)
        z_tolerance = Z_TOLERANCE * np.abs(landmarks[:, 2]).max()
        for method in ("argmax", "centroid"):
            got = ours[method]
            assert got.landmarks.shape == (1, 68, 3)
            np.testing.assert_allclose(got.landmarks[0, :, 2], landmarks[:, 2], rtol=0, atol=z_tolerance,
                                       err_msg=f"{name} {method}")
            # Scores are heatmap values: the networks' tolerance, relative to the largest.
            np.testing.assert_allclose(got.scores[0], scores, rtol=0, atol=1e-5 * np.abs(scores).max())
        # Integer argmax reproduces the authors' x and y exactly.
        np.testing.assert_array_equal(ours["argmax"].landmarks[0, :, :2], landmarks[:, :2], err_msg=name)


def test_float_argmax_is_within_a_pixel_and_2d_matches_3d_xy(models, reference):
    flip, expected = reference
    fa2d = FaceAlignment(models[0], decode="argmax", flip=flip, backend="onnxruntime")
    fa3d = FaceAlignment(models[0], models[1], decode="argmax", flip=flip, backend="onnxruntime")
    for name in PHOTOS:
        box = annotated_box(name)[None]
        ours2d = fa2d.get_landmarks_from_image(_image(name), boxes=box)
        ours3d = fa3d.get_landmarks_from_image(_image(name), boxes=box)
        assert ours2d.landmarks.shape == (1, 68, 2)
        assert np.abs(ours2d.landmarks[0] - expected[name][0][:, :2]).max() < 1.0, name
        assert np.array_equal(ours2d.landmarks[0], ours3d.landmarks[0, :, :2])


def test_flip_changes_the_result(models, reference):
    """The flip comparison above would prove little if flipping changed nothing."""
    flip, expected = reference
    if flip:
        plain = FaceAlignment(models[0], decode="argmax", integer_landmarks=True, backend="onnxruntime")
        ours = plain.get_landmarks_from_image(_image("einstein"), boxes=annotated_box("einstein")[None])
        assert not np.array_equal(ours.landmarks[0], expected["einstein"][0][:, :2])
