"""ResNetDepth's landmark heatmaps against the authors' draw_gaussian loop (api.py, 3D step)."""
import numpy as np
import pytest
import torch

import authors_reference
from face_alignment.errors import FaceAlignmentError
from face_alignment.pipeline.decode import decode_argmax
from face_alignment.pipeline.depth_input import depth_input_from_points, depth_network_input, render_landmark_heatmaps

U = authors_reference.utils_module()
EDGES = [1.0, 2.0, 4.75, 5.0, 6.0, 6.5, 7.0, 8.0, 128.0, 249.0, 250.0, 255.0, 256.0, 257.0,
         261.9, 262.0, 263.0, 300.0]


def authors_heatmaps(points_crop):
    """face-alignment 1.5.0 get_landmarks_from_image, 3D branch, for each face."""
    maps = []
    for face in points_crop:
        pts = torch.from_numpy(face.astype(np.float32))
        heatmaps = np.zeros((68, 256, 256), dtype=np.float32)
        for j in range(68):
            if pts[j, 0] > 0 and pts[j, 1] > 0:
                heatmaps[j] = U.draw_gaussian(heatmaps[j], pts[j], 2)
        maps.append(heatmaps)
    return np.stack(maps)


def edge_points(rng):
    """Points on and around every border of the crop, at 0 and below, and in between."""
    points = rng.uniform(8, 248, (2, 68, 2)).astype(np.float32)
    pairs = np.array(np.meshgrid(EDGES, [3.0, 100.0, 255.5])).T.reshape(-1, 2)
    points[0, :len(pairs)] = pairs
    points[1, :len(pairs)] = pairs[:, ::-1]
    points[1, 60:] = [[0, 50], [50, 0], [-3, 40], [40, -0.5], [0, 0], [-7, -7], [1e-3, 9],
                      [9, 1e-3]]
    return points


def test_exact_equals_authors_for_argmax_points():
    rng = np.random.default_rng(0)
    heatmaps = rng.random((2, 68, 64, 64)).astype(np.float32)
    # Peaks on and next to the borders, where the authors' clipping is irregular.
    heatmaps[0, np.arange(6), [0, 1, 2, 63, 62, 1], [1, 0, 63, 63, 61, 1]] = 2.0
    points = decode_argmax(heatmaps)[0] * 4
    ours = render_landmark_heatmaps(points)
    assert ours.dtype == np.float32 and ours.shape == (2, 68, 256, 256)
    np.testing.assert_array_equal(ours, authors_heatmaps(points))


def test_exact_equals_authors_on_edges_and_sub_pixel_points():
    rng = np.random.default_rng(1)
    points = edge_points(rng)
    np.testing.assert_array_equal(render_landmark_heatmaps(points),
                                  authors_heatmaps(points))
    fractional = rng.uniform(-3, 262, (1, 68, 2)).astype(np.float32)
    np.testing.assert_array_equal(render_landmark_heatmaps(fractional),
                                  authors_heatmaps(fractional))


def test_top_left_edge_shift_is_the_authors():
    # Their clipping moves the kernel when its first tap is at or left of column 0.
    xs = np.array([2.0, 5.0, 6.0, 7.0, 20.0])
    points = np.stack([xs, np.full_like(xs, 100.0)], 1)[None].astype(np.float32)
    exact = render_landmark_heatmaps(points)[0, :, 99]
    np.testing.assert_array_equal(exact.argmax(1), [3, 6, 6, 6, 19])
    np.testing.assert_array_equal(authors_heatmaps(np.pad(points, ((0, 0), (0, 63), (0, 0)),
                                                          constant_values=-1))[0, :5, 99], exact)


def test_missing_points_give_empty_maps():
    points = np.full((1, 68, 2), 50.0, np.float32)
    points[0, :4] = [[0, 50], [50, 0], [-1, -1], [np.float32(-1e-6), 50]]
    maps = render_landmark_heatmaps(points)
    assert not maps[0, :4].any() and maps[0, 4:].max() == 1.0


def test_depth_network_input():
    rng = np.random.default_rng(4)
    crops = rng.random((2, 3, 256, 256)).astype(np.float32)
    maps = render_landmark_heatmaps(rng.uniform(1, 255, (2, 68, 2)))
    stacked = depth_network_input(crops, maps)
    assert stacked.shape == (2, 71, 256, 256) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[:, :3], crops)
    np.testing.assert_array_equal(stacked[:, 3:], maps)
    with pytest.raises(FaceAlignmentError, match=r"crops of shape \(2, 3, 256, 256\)") as caught:
        depth_network_input(crops, maps[:1])
    assert "\n" not in str(caught.value)
    with pytest.raises(FaceAlignmentError, match=r"points of shape \(68, 2\)"):
        render_landmark_heatmaps(np.zeros((68, 2)))


def test_depth_input_drawn_in_place_is_the_authors_crop_and_maps():
    """The one-buffer input ResNetDepth gets: the crop, then the authors' own Gaussians, on
    edge, missing and sub-pixel points."""
    rng = np.random.default_rng(5)
    crops = rng.random((2, 3, 256, 256)).astype(np.float32)
    points = edge_points(rng)
    made = depth_input_from_points(crops, points)
    assert made.shape == (2, 71, 256, 256) and made.dtype == np.float32
    np.testing.assert_array_equal(made[:, :3], crops)
    np.testing.assert_array_equal(made[:, 3:], authors_heatmaps(points))
    with pytest.raises(FaceAlignmentError, match=r"points of shape \(1, 68, 2\)") as caught:
        depth_input_from_points(crops, points[:1])
    assert "\n" not in str(caught.value)
