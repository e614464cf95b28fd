"""Heatmaps to landmark coordinates, for all faces and landmarks at once.

Both rules give points in the heatmap's pixel-centre frame: pixel (row i, column j) covers
[j, j + 1) x [i, i + 1), so its centre is (j + 0.5, i + 0.5). ``argmax`` is the authors'
rule (face-alignment's ``get_preds_fromhm``): the peak pixel's centre moved a quarter pixel
towards the higher neighbour on each axis, away from the border; it is reproduced exactly so
that the authors' 3D step and integer back-projection see the same points. ``centroid`` is
ibug's rule (FANPredictor._decode): the mean of pixel centres weighted by the heatmap near
its peak, which resolves positions far finer than a quarter pixel. The score of a landmark
is always its heatmap's peak value.
"""
from typing import Tuple

import numpy as np

from ..errors import FaceAlignmentError

DECODE_METHODS = ("argmax", "centroid")


def decode(heatmaps: np.ndarray, method: str) -> Tuple[np.ndarray, np.ndarray]:
    """Decode (N, L, H, W) heatmaps by ``method`` ("argmax" or "centroid", with defaults)."""
    if method == "argmax":
        return decode_argmax(heatmaps)
    if method == "centroid":
        return decode_centroid(heatmaps)
    raise FaceAlignmentError(
        f"unknown decoding {method!r}; expected one of {', '.join(DECODE_METHODS)}")


def decode_argmax(heatmaps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The authors' rule. Returns points (N, L, 2) float32 as (x, y), each a multiple of
    0.25 (the peak's centre, +-0.25 per axis), and scores (N, L), the peak values."""
    maps = _as_heatmaps(heatmaps)
    n, landmarks, height, width = maps.shape
    flat = maps.reshape(n, landmarks, height * width)
    peak = flat.argmax(axis=2)  # the first maximum on ties, like theirs
    scores = _values_at(flat, peak)
    row, col = np.divmod(peak, width)
    # Neighbours are read only where all four exist; clipping keeps the reads in range.
    interior = (col > 0) & (col < width - 1) & (row > 0) & (row < height - 1)
    last = height * width - 1

    def step(offset: int) -> np.ndarray:
        ahead = _values_at(flat, np.clip(peak + offset, 0, last))
        behind = _values_at(flat, np.clip(peak - offset, 0, last))
        return np.where(interior, np.sign(ahead - behind), 0).astype(np.float32)

    points = np.stack([col, row], axis=2).astype(np.float32) + np.float32(0.5)
    points += np.float32(0.25) * np.stack([step(1), step(width)], axis=2)
    return points, scores


def decode_centroid(heatmaps: np.ndarray, radius: float = 0.1,
                    gamma: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """ibug's rule: weighted mean of pixel centres over the pixels within
    ``radius * sqrt(H * W)`` of the peak (pixel-index distance, inclusive), negative values
    set to 0, weights raised to ``gamma``. Returns points (N, L, 2) float32 and scores."""
    maps = _as_heatmaps(heatmaps)
    n, landmarks, height, width = maps.shape
    flat = maps.reshape(n, landmarks, height * width)
    peak = flat.argmax(axis=2)
    scores = _values_at(flat, peak)
    weights = maps.astype(np.float64)
    # ibug masks only when the disc is smaller than the map's diagonal ...
    if radius ** 2 * height * width < height ** 2 + width ** 2:
        row, col = np.divmod(peak, width)
        rows = np.arange(height)[:, None] - row[..., None, None]
        cols = np.arange(width)[None, :] - col[..., None, None]
        near = np.sqrt(rows ** 2 + cols ** 2) <= radius * np.sqrt(height * width)
        weights = np.where(near, weights, 0.0)
    weights = np.maximum(weights, 0.0)
    if gamma != 1.0:
        weights = weights ** gamma
    # ... and keeps an all-zero map from dividing by zero (its point becomes (0, 0)).
    total = np.maximum(weights.sum(axis=(2, 3)), np.finfo(maps.dtype).eps)
    x = (weights.sum(axis=2) * (np.arange(width) + 0.5)).sum(axis=2) / total
    y = (weights.sum(axis=3) * (np.arange(height) + 0.5)).sum(axis=2) / total
    return np.stack([x, y], axis=2).astype(np.float32), scores


def _as_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    maps = np.asarray(heatmaps)
    if maps.ndim != 4 or min(maps.shape[2:], default=0) < 1:
        raise FaceAlignmentError(
            f"heatmaps of shape {maps.shape}; expected (faces, landmarks, height, width)")
    if maps.dtype.kind != "f":
        raise FaceAlignmentError(f"heatmaps of dtype {maps.dtype}; expected floating point")
    return maps


def _values_at(flat: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.take_along_axis(flat, index[..., None], axis=2)[..., 0]
