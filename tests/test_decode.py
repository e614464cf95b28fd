"""Heatmap decoding: argmax against the authors' get_preds_fromhm, centroid against a plain
transcription of ibug's rule and against Gaussians at known sub-pixel positions."""
import numpy as np
import pytest

import authors_reference
from face_alignment.errors import FaceAlignmentError
from face_alignment.pipeline.decode import decode, decode_argmax, decode_centroid

U = authors_reference.utils_module()


@pytest.fixture
def authors_preds(monkeypatch):
    """The authors' get_preds_fromhm with its heatmap loop run as plain Python (its
    ``py_func``), which numba would take ~20 s to compile; the code is theirs either way."""
    monkeypatch.setattr(U, "_get_preds_fromhm", U._get_preds_fromhm.py_func)
    return U.get_preds_fromhm


def peaky_heatmaps(rng):
    """Flat maps with one peak each: on every border and corner, next to borders, with tied
    maxima (the first wins), with equal neighbours (no quarter-pixel step) and negative."""
    maps = rng.uniform(-0.1, 0.1, (2, 68, 64, 64)).astype(np.float32)
    peaks = rng.integers(0, 64, (2, 68, 2))
    peaks[0, :12] = [[0, 0], [63, 0], [0, 63], [63, 63], [0, 17], [63, 40], [22, 0], [9, 63],
                     [1, 1], [62, 62], [1, 62], [62, 1]]
    faces, landmarks = np.indices((2, 68))
    maps[faces, landmarks, peaks[..., 1], peaks[..., 0]] = 1.0
    maps[1, 0, 30, 20] = maps[1, 0, 10, 50] = 5.0  # tie: the first in row-major order wins
    maps[1, 1, 20, 20] = 3.0
    maps[1, 1, 20, 19] = maps[1, 1, 20, 21] = 2.0  # equal neighbours along x
    maps[1, 2] = -maps[1, 2] - 1.0  # all negative
    maps[1, 3] = 0.0  # constant: peak at index 0
    return maps


def test_argmax_equals_authors_on_random_heatmaps(authors_preds):
    heatmaps = np.random.default_rng(0).random((3, 68, 64, 64)).astype(np.float32)
    points, scores = decode_argmax(heatmaps)
    theirs, _, their_scores = authors_preds(heatmaps.copy())
    assert points.dtype == np.float32 and points.shape == (3, 68, 2)
    np.testing.assert_array_equal(points, theirs)
    np.testing.assert_array_equal(scores, their_scores)


def test_argmax_equals_authors_on_peaks_borders_and_ties(authors_preds):
    heatmaps = peaky_heatmaps(np.random.default_rng(1))
    points, scores = decode_argmax(heatmaps)
    theirs, _, their_scores = authors_preds(heatmaps.copy())
    np.testing.assert_array_equal(points, theirs)
    np.testing.assert_array_equal(scores, their_scores)
    # Spot checks of the rule itself: corners get no step, the tie takes the first peak.
    np.testing.assert_array_equal(points[0, :4], [[0.5, 0.5], [63.5, 0.5], [0.5, 63.5],
                                                  [63.5, 63.5]])
    np.testing.assert_array_equal(np.floor(points[1, 0]), [50, 10])  # row 10 comes first
    assert points[1, 1, 0] == 20.5 and points[1, 1, 1] in (20.25, 20.75)


def argmax_transcription(heatmaps):
    """The authors' rule for any H x W, one landmark at a time (row = index // W)."""
    n, count, height, width = heatmaps.shape
    points = np.zeros((n, count, 2), np.float32)
    for i in range(n):
        for j in range(count):
            hm = heatmaps[i, j]
            y, x = divmod(int(np.argmax(hm)), width)
            px, py = x + 1.0, y + 1.0
            if 0 < x < width - 1 and 0 < y < height - 1:
                px += np.sign(hm[y, x + 1] - hm[y, x - 1]) * 0.25
                py += np.sign(hm[y + 1, x] - hm[y - 1, x]) * 0.25
            points[i, j] = px - 0.5, py - 0.5
    return points


def test_argmax_generalises_to_other_sizes():
    rng = np.random.default_rng(2)
    for height, width in [(32, 48), (48, 32), (3, 3), (1, 5)]:
        heatmaps = rng.random((2, 5, height, width)).astype(np.float32)
        heatmaps[0, 0, -1, -2] = 2.0  # last row: no step on y, none on x either
        points, scores = decode_argmax(heatmaps)
        np.testing.assert_array_equal(points, argmax_transcription(heatmaps))
        np.testing.assert_array_equal(scores, heatmaps.reshape(2, 5, -1).max(-1))


def centroid_transcription(heatmaps, radius=0.1, gamma=1.0):
    """ibug's FANPredictor._decode, one landmark at a time with explicit pixel loops."""
    n, count, height, width = heatmaps.shape
    points = np.zeros((n, count, 2))
    scores = np.zeros((n, count))
    eps = np.finfo(heatmaps.dtype).eps
    for i in range(n):
        for j in range(count):
            hm = heatmaps[i, j].astype(np.float64)
            scores[i, j] = hm.max()
            peak_y, peak_x = divmod(int(np.argmax(hm)), width)
            masking = radius ** 2 * height * width < height ** 2 + width ** 2
            total = sx = sy = 0.0
            for y in range(height):
                for x in range(width):
                    distance = ((y - peak_y) ** 2 + (x - peak_x) ** 2) ** 0.5
                    if masking and distance > radius * (height * width) ** 0.5:
                        continue
                    value = max(hm[y, x], 0.0) ** gamma
                    total += value
                    sx += value * (x + 0.5)
                    sy += value * (y + 0.5)
            total = max(total, eps)
            points[i, j] = sx / total, sy / total
    return points, scores


@pytest.mark.parametrize("radius, gamma", [(0.1, 1.0), (0.05, 2.0), (0.3, 0.5), (1.5, 1.0)])
def test_centroid_equals_transcription(radius, gamma):
    rng = np.random.default_rng(3)
    heatmaps = rng.normal(0, 0.3, (2, 3, 24, 20)).astype(np.float32)
    heatmaps[1, 1] = -1.0  # nothing positive: sums clamp to eps, the point is (0, 0)
    points, scores = decode_centroid(heatmaps, radius=radius, gamma=gamma)
    expected, expected_scores = centroid_transcription(heatmaps, radius, gamma)
    np.testing.assert_allclose(points, expected, rtol=0, atol=2e-5)
    np.testing.assert_array_equal(scores, expected_scores.astype(np.float32))
    np.testing.assert_array_equal(points[1, 1], [0.0, 0.0])


def test_centroid_mask_changes_the_result():
    # Two blobs: the mask keeps only the one around the peak; without it they average.
    heatmaps = np.zeros((1, 1, 64, 64), np.float32)
    heatmaps[0, 0, 10, 10] = 1.0
    heatmaps[0, 0, 50, 50] = 0.5
    masked, _ = decode_centroid(heatmaps)
    unmasked, _ = decode_centroid(heatmaps, radius=2.0)
    np.testing.assert_allclose(masked[0, 0], [10.5, 10.5], atol=1e-6)
    np.testing.assert_allclose(unmasked[0, 0], [(10.5 + 0.5 * 50.5) / 1.5] * 2, atol=1e-5)


def gaussian_heatmaps(centres, sigma, size=64):
    """Gaussians at sub-pixel (x, y) in the pixel-centre frame: pixel (i, j) at (j + .5, i + .5)."""
    grid = np.arange(size) + 0.5
    dx = grid - centres[..., 0, None, None]
    dy = grid[:, None] - centres[..., 1, None, None]
    return np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2)).astype(np.float32)


@pytest.mark.parametrize("sigma", [1.5, 1.75, 2.0])
def test_centroid_finds_sub_pixel_positions(sigma):
    rng = np.random.default_rng(int(sigma * 100))
    centres = rng.uniform(10, 54, (3, 68, 2))
    heatmaps = gaussian_heatmaps(centres, sigma)
    centroid_error = np.abs(decode_centroid(heatmaps)[0] - centres).max()
    argmax_error = np.abs(decode_argmax(heatmaps)[0] - centres).max()
    print(f"sigma {sigma}: max error centroid {centroid_error:.4f} px, "
          f"argmax {argmax_error:.4f} px")
    assert centroid_error < 0.02
    assert argmax_error > 0.2  # a quarter-pixel grid cannot do better
    assert centroid_error < argmax_error / 10


def test_decode_dispatches_and_rejects_bad_input():
    heatmaps = peaky_heatmaps(np.random.default_rng(4))
    for method, function in [("argmax", decode_argmax), ("centroid", decode_centroid)]:
        for ours, direct in zip(decode(heatmaps, method), function(heatmaps)):
            np.testing.assert_array_equal(ours, direct)
    with pytest.raises(FaceAlignmentError, match="unknown decoding 'soft-argmax'") as caught:
        decode(heatmaps, "soft-argmax")
    assert "\n" not in str(caught.value)
    with pytest.raises(FaceAlignmentError, match=r"heatmaps of shape \(68, 64, 64\)"):
        decode_argmax(heatmaps[0])
    with pytest.raises(FaceAlignmentError, match="dtype int64"):
        decode_centroid(np.zeros((1, 68, 64, 64), np.int64))
