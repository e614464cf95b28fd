"""Left-right flipping against the authors' shuffle_lr and flip."""
import numpy as np
import pytest
import torch

import authors_reference
from face_alignment.errors import FaceAlignmentError
from face_alignment.pipeline.flip import MIRRORED_LANDMARKS, flip_crops, unflip_heatmaps

U = authors_reference.utils_module()


def test_permutation_equals_authors_pairs():
    theirs = U.shuffle_lr(torch.arange(68).reshape(68, 1, 1)).flatten().numpy()
    np.testing.assert_array_equal(MIRRORED_LANDMARKS, theirs)
    # Mirroring twice is the identity; the points on the symmetry axis stay.
    np.testing.assert_array_equal(MIRRORED_LANDMARKS[MIRRORED_LANDMARKS], np.arange(68))
    on_axis = np.flatnonzero(MIRRORED_LANDMARKS == np.arange(68))
    np.testing.assert_array_equal(on_axis, [8, 27, 28, 29, 30, 33, 51, 57, 62, 66])


def test_flip_crops_equals_authors():
    crops = np.random.default_rng(0).random((2, 3, 256, 256)).astype(np.float32)
    flipped = flip_crops(crops)
    np.testing.assert_array_equal(flipped, U.flip(crops.copy()).numpy())
    assert flipped.flags.c_contiguous and flipped[0, 1, 7, 0] == crops[0, 1, 7, 255]


def test_unflip_heatmaps_equals_authors():
    heatmaps = np.random.default_rng(1).random((3, 68, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(unflip_heatmaps(heatmaps),
                                  U.flip(heatmaps.copy(), is_label=True).numpy())


def test_heatmaps_of_a_mirrored_face_unflip_to_the_face():
    """A face with landmarks p seen in a mirror has landmark i at the mirror image of
    p[partner(i)]; its heatmaps, unflipped, must be the face's own heatmaps."""
    size = 64
    points = np.random.default_rng(2).uniform(5, 59, (1, 68, 2))
    mirrored = points[:, MIRRORED_LANDMARKS] * [-1, 1] + [size, 0]  # pixel-centre frame

    def render(p):
        grid = np.arange(size) + 0.5
        return np.exp(-((grid - p[..., 0, None, None]) ** 2
                        + (grid[:, None] - p[..., 1, None, None]) ** 2) / 8.0)

    np.testing.assert_allclose(unflip_heatmaps(render(mirrored)), render(points), atol=1e-12)


def test_bad_shapes():
    with pytest.raises(FaceAlignmentError, match=r"crops of shape \(3, 256, 256\)") as caught:
        flip_crops(np.zeros((3, 256, 256)))
    assert "\n" not in str(caught.value)
    with pytest.raises(FaceAlignmentError, match="with 98 channels; expected 68"):
        unflip_heatmaps(np.zeros((1, 98, 64, 64)))
