"""The input of ResNetDepth: the face crop plus one Gaussian heatmap per 2D landmark.

The authors' 3D step draws, on the 256 x 256 crop grid, a 13 x 13 Gaussian (sigma 3.25 px,
peak 1) for every landmark whose crop coordinates (argmax heatmap points x 4) are both
positive, with its peak on pixel index ``floor(p) - 1`` per axis, cut at the crop's border.
Their clipping also shifts the kernel by one or two pixels when its left (top) edge falls at
or before column (row) 0. ResNetDepth was trained on exactly such maps, so all of this is
repeated bit for bit, and the points drawn are always the authors' argmax points, whichever
decoding gives the landmarks' x and y.
"""
from typing import Optional

import numpy as np

from ..errors import FaceAlignmentError
from ..shapes import CROP_SIZE

KERNEL_SIZE = 13
KERNEL_SIGMA = 0.25 * KERNEL_SIZE  # the authors' sigma is relative to the kernel size
HALF_WIDTH = (KERNEL_SIZE - 1) // 2  # 6 px: their "3 * sigma" with sigma = 2
_OFFSETS = np.arange(KERNEL_SIZE) - HALF_WIDTH  # taps relative to the kernel's centre
# The authors' kernel expression, in float64 then stored as float32.
KERNEL = np.exp(-((_OFFSETS[None, :] / KERNEL_SIGMA) ** 2 / 2.0
                  + (_OFFSETS[:, None] / KERNEL_SIGMA) ** 2 / 2.0)).astype(np.float32)


def render_landmark_heatmaps(points_crop: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """(N, L, 2) crop coordinates (x, y) to float32 (N, L, 256, 256) landmark heatmaps, as
    the authors' draw_gaussian makes them. Points with a coordinate <= 0 get an empty map,
    as in the authors' code. ``out``: zeros of that shape to draw into (a view is fine)."""
    points = np.asarray(points_crop)
    if points.ndim != 3 or points.shape[2] != 2 or points.dtype.kind != "f":
        raise FaceAlignmentError(
            f"points of shape {points.shape} and dtype {points.dtype}; expected float "
            "(faces, landmarks, 2) crop coordinates")
    if out is None:
        out = np.zeros(points.shape[:2] + (CROP_SIZE, CROP_SIZE), dtype=np.float32)
    drawn = np.all(points > 0, axis=2)[..., None]  # (N, L, 1)
    # Their points are float32 tensors; floor(p -+ 6) is taken in float32.
    points = points.astype(np.float32)
    cols, col_ok = _authors_axis(points[..., 0])
    rows, row_ok = _authors_axis(points[..., 1])
    values = np.broadcast_to(KERNEL, points.shape[:2] + KERNEL.shape)
    return _scatter(rows, row_ok & drawn, cols, col_ok & drawn, values, out)


def depth_input_from_points(crops: np.ndarray, points_crop: np.ndarray) -> np.ndarray:
    """``depth_network_input(crops, render_landmark_heatmaps(points_crop))``, made in one
    buffer: the Gaussians are drawn straight into its landmark channels. Of a face's 71
    channels of 256 x 256 (18.6 MB), only the crop's and the kernels' pages are ever written:
    the rest stay the zero pages a fresh allocation maps, where drawing into maps of their own
    and then concatenating writes all of them, most of this step's time."""
    crops = np.asarray(crops)
    points = np.asarray(points_crop)
    if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2:] != (CROP_SIZE, CROP_SIZE) \
            or points.ndim != 3 or points.shape[0] != crops.shape[0]:
        raise FaceAlignmentError(
            f"crops of shape {crops.shape} and points of shape {points.shape}; expected (N, 3, "
            f"{CROP_SIZE}, {CROP_SIZE}) and (N, landmarks, 2)")
    channels = crops.shape[1]
    inputs = np.zeros((crops.shape[0], channels + points.shape[1], CROP_SIZE, CROP_SIZE), dtype=np.float32)
    inputs[:, :channels] = crops
    render_landmark_heatmaps(points, out=inputs[:, channels:])
    return inputs


def depth_network_input(crops: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Crops (N, 3, S, S) and landmark heatmaps (N, L, S, S) stacked on the channel axis
    to ResNetDepth's float32 (N, 3 + L, S, S) input."""
    crops, heatmaps = np.asarray(crops), np.asarray(heatmaps)
    if (crops.ndim != 4 or heatmaps.ndim != 4 or crops.shape[1] != 3
            or crops.shape[0] != heatmaps.shape[0] or crops.shape[2:] != heatmaps.shape[2:]):
        raise FaceAlignmentError(
            f"crops of shape {crops.shape} and heatmaps of shape {heatmaps.shape}; expected "
            "(N, 3, S, S) and (N, landmarks, S, S)")
    return np.concatenate([crops, heatmaps], axis=1).astype(np.float32, copy=False)


def _authors_axis(p: np.ndarray):
    """Crop pixel index and validity of each of the 13 kernel taps along one axis, by the
    clipping arithmetic of the authors' draw_gaussian (1-based corners)."""
    first_tap = np.floor(p - np.float32(HALF_WIDTH)).astype(np.int64)  # their ul
    last_tap = np.floor(p + np.float32(HALF_WIDTH)).astype(np.int64)  # their br
    # Image pixels max(1, ul)-1 .. min(br, S)-1 receive kernel taps from max(1, -ul)-1 on.
    first = np.maximum(1, first_tap) - 1
    last = np.minimum(last_tap, CROP_SIZE) - 1
    shift = np.maximum(1, -first_tap) - np.maximum(1, first_tap)
    index = _OFFSETS + HALF_WIDTH - shift[..., None]  # pixel of tap k: k - shift
    # A kernel wholly outside (their early return) leaves first > last: nothing is drawn.
    ok = (index >= first[..., None]) & (index <= last[..., None])
    return index, ok


def _scatter(rows, row_ok, cols, col_ok, values, maps) -> np.ndarray:
    """Write values (N, L, R, C) at pixels (rows[.., r], cols[.., c]) of the zero maps
    ``maps`` where both are valid; a landmark's taps never collide, so plain assignment
    suffices."""
    face, landmark, r, c = np.nonzero(row_ok[..., :, None] & col_ok[..., None, :])
    maps[face, landmark, rows[face, landmark, r], cols[face, landmark, c]] = \
        values[face, landmark, r, c]
    return maps
