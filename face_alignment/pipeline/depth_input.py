"""The input of ResNetDepth: the face crop plus one Gaussian heatmap per 2D landmark.

The authors' 3D step draws, on the 256 x 256 crop grid, a 13 x 13 Gaussian (sigma 3.25 px,
peak 1) for every landmark whose crop coordinates (heatmap points x 4) are both positive,
with its peak on pixel index ``floor(p) - 1`` per axis, cut at the crop's border. Their
clipping also shifts the kernel by one or two pixels when its left (top) edge falls at or
before column (row) 0. The network was trained on such maps, so ``exact_authors=True``
repeats all of this bit for bit (for argmax points, which are what the authors feed it).
``exact_authors=False`` draws the same Gaussian centred on the sub-pixel position ``p - 1``
(for sub-pixel decodings such as the centroid), cut where it is more than 6 px from its
centre and at the crop's border, without the edge shift: for integer points away from the
top and left edges the two maps are identical.
"""
import numpy as np

from ..errors import FaceAlignmentError
from .crop import CROP_SIZE

KERNEL_SIZE = 13
KERNEL_SIGMA = 0.25 * KERNEL_SIZE  # the authors' sigma is relative to the kernel size
HALF_WIDTH = (KERNEL_SIZE - 1) // 2  # 6 px: their "3 * sigma" with sigma = 2


def _gaussian_values(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    # The authors' kernel expression, in float64 then stored as float32.
    return np.exp(-((dx / KERNEL_SIGMA) ** 2 / 2.0 + (dy / KERNEL_SIGMA) ** 2 / 2.0)).astype(
        np.float32)


_OFFSETS = np.arange(KERNEL_SIZE) - HALF_WIDTH  # taps relative to the kernel's centre
KERNEL = _gaussian_values(_OFFSETS[None, :].astype(np.float64),
                          _OFFSETS[:, None].astype(np.float64))


def render_landmark_heatmaps(points_crop: np.ndarray, exact_authors: bool) -> np.ndarray:
    """(N, L, 2) crop coordinates (x, y) to float32 (N, L, 256, 256) landmark heatmaps.
    Points with a coordinate <= 0 get an empty map, as in the authors' code."""
    points = np.asarray(points_crop)
    if points.ndim != 3 or points.shape[2] != 2 or points.dtype.kind != "f":
        raise FaceAlignmentError(
            f"points of shape {points.shape} and dtype {points.dtype}; expected float "
            "(faces, landmarks, 2) crop coordinates")
    drawn = np.all(points > 0, axis=2)[..., None]  # (N, L, 1)
    if exact_authors:
        # Their points are float32 tensors; floor(p -+ 6) is taken in float32.
        points = points.astype(np.float32)
        cols, col_ok = _authors_axis(points[..., 0])
        rows, row_ok = _authors_axis(points[..., 1])
        values = np.broadcast_to(KERNEL, points.shape[:2] + KERNEL.shape)
    else:
        centres = points.astype(np.float64) - 1.0
        cols, col_ok, dx = _subpixel_axis(centres[..., 0])
        rows, row_ok, dy = _subpixel_axis(centres[..., 1])
        values = _gaussian_values(dx[..., None, :], dy[..., :, None])
    return _scatter(rows, row_ok & drawn, cols, col_ok & drawn, values)


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


def _subpixel_axis(centre: np.ndarray):
    """Crop pixel index, validity and offset from the centre of 13 taps along one axis,
    covering every pixel within HALF_WIDTH of the centre."""
    index = np.floor(centre).astype(np.int64)[..., None] + _OFFSETS
    offset = index - centre[..., None]
    ok = (np.abs(offset) <= HALF_WIDTH) & (index >= 0) & (index < CROP_SIZE)
    return index, ok, offset


def _scatter(rows, row_ok, cols, col_ok, values) -> np.ndarray:
    """Write values (N, L, R, C) at pixels (rows[.., r], cols[.., c]) of zero maps where
    both are valid; a landmark's taps never collide, so plain assignment suffices."""
    n, landmarks = rows.shape[:2]
    maps = np.zeros((n, landmarks, CROP_SIZE, CROP_SIZE), dtype=np.float32)
    face, landmark, r, c = np.nonzero(row_ok[..., :, None] & col_ok[..., None, :])
    maps[face, landmark, rows[face, landmark, r], cols[face, landmark, c]] = \
        values[face, landmark, r, c]
    return maps
