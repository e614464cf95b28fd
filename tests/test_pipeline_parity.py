"""End to end on real photos: our landmarks equal the authors' pipeline on identical weights.

The authors' pipeline is composed from their own functions (``crop``, ``get_preds_fromhm``,
``draw_gaussian`` from face-alignment 1.5.0's utils.py, with their FAN and ResNetDepth), the
same way their ``FaceAlignment.get_landmarks_from_image`` composes them, on the same boxes.
"""
import os

import numpy as np
import pytest
import torch

import authors_reference
import checkpoints
from conftest import SHARED, annotated_box
from face_alignment.api import FaceAlignment
from face_alignment.pipeline.image import read_image
from face_alignment.weights.convert import convert_checkpoint

PHOTOS = ("breakingbad", "einstein")


def authors_pipeline(image, box, fan, depth=None, flip=False):
    """Their get_landmarks_from_image for one face, with their constants."""
    U = authors_reference.utils_module()
    d = box
    center = np.array([d[2] - (d[2] - d[0]) / 2.0, d[3] - (d[3] - d[1]) / 2.0])
    center[1] = center[1] - (d[3] - d[1]) * U.CENTER_Y_OFFSET
    scale = (d[2] - d[0] + d[3] - d[1]) / U.REFERENCE_SCALE
    crop = U.crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0
    inp = torch.from_numpy(crop[None])
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
    return pts_img.numpy(), scores[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory, fan4, depth_net):
    folder = tmp_path_factory.mktemp("models")
    checkpoints.save_legacy(fan4, folder / "3DFAN4-7835d9f11d.pth.tar")
    checkpoints.save_depth_checkpoint(depth_net, folder / "depth-2a464da4ea.pth.tar")
    convert_checkpoint(str(folder / "3DFAN4-7835d9f11d.pth.tar"), str(folder / "3DFAN4.h5"))
    convert_checkpoint(str(folder / "depth-2a464da4ea.pth.tar"), str(folder / "depth.h5"))
    return str(folder / "3DFAN4.h5"), str(folder / "depth.h5")


@pytest.fixture(scope="module")
def reference(fan4, depth_net):
    """The authors' 3D landmarks (x, y from 3D-FAN, z from ResNetDepth) for each photo."""
    return {name: authors_pipeline(read_image(os.path.join(SHARED, "data", "faces", name + ".jpg")),
                                   annotated_box(name), fan4, depth_net) for name in PHOTOS}


def _ours(fa, name):
    image = os.path.join(SHARED, "data", "faces", name + ".jpg")
    return fa.get_landmarks_from_image(image, boxes=annotated_box(name)[None])


def test_integer_argmax_reproduces_the_authors_exactly_in_3d(models, reference):
    fa = FaceAlignment(models[0], models[1], decode="argmax", integer_landmarks=True)
    for name in PHOTOS:
        ours = _ours(fa, name)
        expected, scores = reference[name]
        assert ours.landmarks.shape == (1, 68, 3)
        assert np.array_equal(ours.landmarks[0, :, :2], expected[:, :2]), name
        assert np.allclose(ours.landmarks[0, :, 2], expected[:, 2], rtol=1e-4,
                           atol=1e-4 * np.abs(expected[:, 2]).max()), name
        assert np.allclose(ours.scores[0], scores, rtol=1e-4, atol=1e-5)


def test_float_argmax_is_within_a_pixel_and_2d_matches_3d_xy(models, reference):
    fa2d = FaceAlignment(models[0], decode="argmax")
    fa3d = FaceAlignment(models[0], models[1], decode="argmax")
    for name in PHOTOS:
        ours2d, ours3d = _ours(fa2d, name), _ours(fa3d, name)
        expected = reference[name][0]
        assert ours2d.landmarks.shape == (1, 68, 2)
        assert np.abs(ours2d.landmarks[0] - expected[:, :2]).max() < 1.0, name
        assert np.array_equal(ours2d.landmarks[0], ours3d.landmarks[0, :, :2])


def test_flip_augmentation_matches_the_authors(models, fan4):
    fa = FaceAlignment(models[0], decode="argmax", integer_landmarks=True, flip=True)
    name = "einstein"
    image = read_image(os.path.join(SHARED, "data", "faces", name + ".jpg"))
    expected, scores = authors_pipeline(image, annotated_box(name), fan4, flip=True)
    ours = _ours(fa, name)
    assert np.array_equal(ours.landmarks[0], expected)
    assert np.allclose(ours.scores[0], scores, rtol=1e-4, atol=1e-5)
    unflipped = FaceAlignment(models[0], decode="argmax", integer_landmarks=True)
    assert not np.array_equal(_ours(unflipped, name).landmarks[0], expected)  # flip changed the result
