"""Face crops for FAN and the geometry that maps heatmap points back to the image.

Two conventions, named as in :mod:`face_alignment.registry`. The authors' ("authors") is
face-alignment's: the box centre moved up by 0.12 of the box height, a square of side
``200 * scale`` with ``scale = (w + h) / reference_scale``, its corners found through a
float32 affine and truncated to integers (as int32: windows must lie within ±2**31 pixels,
boxes beyond that are refused). ibug's ("ibug") is hhj1897/face_alignment's
FANPredictor: a square of side ``mean(w, h) / 0.55`` about the box centre with rounded
corners. Either way the integer window is cut out with zero padding outside the image and
resized (bilinear) to 256 x 256, so networks see exactly the pixels their weights were
trained on. The rounding of each convention is repeated operation for operation, because a
one-pixel shift of the window moves every landmark.

Cropping costs memory in proportion to the crop, not to the window. A window of up to
``OPENCV_WINDOW_MAX_PIXELS`` is cut out whole, zero-padded, and given to ``cv2.resize``, as
the authors do. A larger one (from a stray box of 100000 pixels, or a decimal slip in an
annotation) would need gigabytes to terabytes that way; bilinear resizing reads only two source rows and two source columns per
crop pixel, so those (at most 512 x 512) are gathered, zero outside the image, and OpenCV's
fixed-point INTER_LINEAR arithmetic is applied to them in numpy. That replica is bit-identical
to ``cv2.resize`` (tests compare them on windows of every shape); whole windows are still
given to OpenCV itself below the bound so the authors' crop stays exact even if a future
OpenCV changed its arithmetic. :class:`FaceFrames` keeps, per face, what
is needed to map 64 x 64 heatmap coordinates back to image pixels.
"""
from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from ..boxes import as_boxes
from ..errors import FaceAlignmentError
from ..registry import AUTHORS_REFERENCE_SCALE, CROP_AUTHORS, CROP_CONVENTIONS, CROP_IBUG
from ..shapes import CROP_SIZE, HEATMAP_SIZE

AUTHORS_CENTER_SHIFT = 0.12  # of the box height, upwards
AUTHORS_SCALE_UNIT = 200.0  # a face of scale 1 is 200 pixels across
IBUG_CROP_RATIO = 0.55  # face size over crop size
# Crop windows must fit the authors' int32 corners; the ``to_image`` back-projection of
# integer landmarks truncates to int32 too.
WINDOW_COORDINATE_LIMIT = 2 ** 31
# Windows of up to this many pixels (48 MiB as uint8 RGB) are cut out whole and resized by
# OpenCV; above it, only the pixels its bilinear taps read are gathered (see the docstring).
# Real faces stay below it: a 4096-pixel window is a face ~2000 pixels wide.
OPENCV_WINDOW_MAX_PIXELS = 4096 * 4096
# OpenCV's INTER_LINEAR fixed point for uint8: weights are multiples of 1/2048.
_RESIZE_COEF_SCALE = 2048


@dataclass(frozen=True)
class FaceFrames:
    """Per-face crop geometry. ``windows`` (N, 4) int64: the image pixels
    [left, right) x [top, bottom) that were resized to the 256 x 256 crop. ``centers`` (N, 2)
    and ``scales`` (N,): the authors' centre and scale (for ibug's convention, the window's
    centre and width / 200, so that ``200 * scale`` is always the crop side in pixels)."""

    convention: str
    windows: np.ndarray
    centers: np.ndarray
    scales: np.ndarray

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def depth_scale(self) -> np.ndarray:
        """(N,) image pixels per crop pixel: turns ResNetDepth's output into image units,
        as the authors do (``depth * (1 / (256 / (200 * scale)))``)."""
        return 1.0 / (CROP_SIZE / (AUTHORS_SCALE_UNIT * self.scales))

    @staticmethod
    def to_crop(points_hm: np.ndarray, heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
        """Heatmap coordinates to 256 x 256 crop coordinates (the same for every face);
        float32 points stay float32, as in the authors' 3D step."""
        return np.asarray(points_hm) * (CROP_SIZE / heatmap_size)

    def to_image(self, points_hm: np.ndarray, integer: bool = False,
                 heatmap_size: int = HEATMAP_SIZE) -> np.ndarray:
        """(N, L, 2) heatmap coordinates to (N, L, 2) float64 image coordinates.

        ``integer=True`` (authors' convention only) gives the authors' ``preds_orig``
        bit for bit: their inverse affine, taken by pseudo-inverse, truncated toward zero."""
        points = np.asarray(points_hm, dtype=np.float64)
        if points.ndim != 3 or points.shape[0] != len(self) or points.shape[2] != 2:
            raise FaceAlignmentError(
                f"points of shape {points.shape}; expected ({len(self)}, landmarks, 2)")
        if self.convention == CROP_IBUG:
            if integer:
                raise FaceAlignmentError(
                    "integer=True with the 'ibug' convention; integer back-projection is "
                    "the authors' rounding and exists only for 'authors'")
            left_top = self.windows[:, None, :2].astype(np.float64)
            sides = (self.windows[:, None, 2:] - self.windows[:, None, :2]).astype(np.float64)
            return points * sides / heatmap_size + left_top
        if integer:
            return _authors_inverse_truncated(points, self.centers, self.scales, heatmap_size)
        side = AUTHORS_SCALE_UNIT * self.scales
        return (points * (side / heatmap_size)[:, None, None]
                + (self.centers - side[:, None] / 2.0)[:, None, :])


def face_frames(boxes: np.ndarray, convention: str = CROP_AUTHORS,
                reference_scale: float = AUTHORS_REFERENCE_SCALE) -> FaceFrames:
    """The crop geometry of (N, 4) boxes [left, top, right, bottom], without cropping."""
    boxes = as_boxes(boxes)
    if convention == CROP_AUTHORS:
        return _authors_frames(boxes, float(reference_scale))
    if convention == CROP_IBUG:
        return _ibug_frames(boxes)
    raise FaceAlignmentError(
        f"unknown crop convention {convention!r}; expected one of {', '.join(CROP_CONVENTIONS)}")


def crop_faces(image: np.ndarray, boxes: np.ndarray, convention: str = CROP_AUTHORS,
               reference_scale: float = AUTHORS_REFERENCE_SCALE) -> Tuple[np.ndarray, FaceFrames]:
    """Crop every box of an RGB uint8 (H, W, 3) image. Returns the network input, float32
    (N, 3, 256, 256) in [0, 1], and the :class:`FaceFrames` to map results back."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FaceAlignmentError(
            f"image of shape {image.shape} and dtype {image.dtype}; expected RGB uint8 (H, W, 3)")
    frames = face_frames(boxes, convention, reference_scale)
    return _cut_windows(image, frames.windows), frames


def _authors_frames(boxes: np.ndarray, reference_scale: float) -> FaceFrames:
    # The same float64 operations, in the same order, as face-alignment's api.py.
    left, top, right, bottom = boxes.T
    centers = np.stack([right - (right - left) / 2.0, bottom - (bottom - top) / 2.0], axis=1)
    centers[:, 1] = centers[:, 1] - (bottom - top) * AUTHORS_CENTER_SHIFT
    scales = (right - left + bottom - top) / reference_scale
    # Their crop corners come from torch.inverse of a float32 matrix [[a, 0, b], [0, a, c],
    # [0, 0, 1]]: LU solving multiplies by the reciprocal of the diagonal, so the inverse
    # holds 1/a and -(b * (1/a)), each rounded to float32. Corners are pixels (1, 1) and
    # (256, 256) mapped back, truncated toward zero.
    side = AUTHORS_SCALE_UNIT * scales
    # Boxes too small or too large for float32 give infinite or NaN corners: refused below.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = (CROP_SIZE / side).astype(np.float32)
        b = (CROP_SIZE * (-centers / side[:, None] + 0.5)).astype(np.float32)
        inv_a = (np.float32(1.0) / a)[:, None]
        offset = -(b * inv_a)
        corners = np.concatenate([inv_a * np.float32(1.0) + offset,
                                  inv_a * np.float32(CROP_SIZE) + offset], axis=1)
    windows = _integer_windows(corners, side, boxes)
    return FaceFrames(CROP_AUTHORS, windows, centers, scales)


def _ibug_frames(boxes: np.ndarray) -> FaceFrames:
    # FANPredictor's arithmetic; np.round rounds halves to even, as theirs does.
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    sizes = (boxes[:, [3, 2]] - boxes[:, [1, 0]]).mean(axis=1) / IBUG_CROP_RATIO
    left_top = np.round(centres - sizes[:, None] / 2.0)
    right_bottom = np.round(left_top + sizes[:, None]) + 1
    windows = _integer_windows(np.concatenate([left_top, right_bottom], axis=1), sizes, boxes)
    window_centres = (windows[:, :2] + windows[:, 2:]) / 2.0
    scales = (windows[:, 2] - windows[:, 0]) / AUTHORS_SCALE_UNIT
    return FaceFrames(CROP_IBUG, windows, window_centres, scales)


def _integer_windows(corners: np.ndarray, sides: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 4) float window corners, truncated toward zero, as int64; a box whose window is
    empty, or whose corners are not finite numbers within ±WINDOW_COORDINATE_LIMIT (from a box
    far too large, too far away, or so small that its float32 scale overflows), is refused."""
    with np.errstate(invalid="ignore"):  # NaN corners are refused below
        unusable = ~np.all(np.abs(corners) < WINDOW_COORDINATE_LIMIT, axis=1)
    if np.any(unusable):
        index = int(np.argmax(unusable))
        if sides[index] >= 1.0:
            raise FaceAlignmentError(
                f"box {boxes[index].tolist()} is too large or too far away to crop: its crop "
                f"window would reach beyond ±{WINDOW_COORDINATE_LIMIT} pixels; expected a face "
                "box in image pixels")
        corners = np.where(unusable[:, None], 0.0, corners)  # reported as empty below
    windows = np.trunc(corners).astype(np.int64)
    empty = unusable | (windows[:, 2] <= windows[:, 0]) | (windows[:, 3] <= windows[:, 1])
    if np.any(empty):
        raise FaceAlignmentError(
            f"box {boxes[np.argmax(empty)].tolist()} is too small to crop; expected a face "
            "of at least a pixel")
    return windows


def _cut_windows(image: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Each window of the image, zero outside it, resized to CROP_SIZE; float32 / 255."""
    crops = np.empty((len(windows), 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)
    for i, window in enumerate(windows.tolist()):
        left, top, right, bottom = window
        if (right - left) * (bottom - top) <= OPENCV_WINDOW_MAX_PIXELS:
            resized = _resize_whole_window(image, window)
        else:
            resized = _resize_sampled_window(image, window)
        crops[i] = resized.transpose(2, 0, 1)
    # Division, not multiplication by 1/255, to give the authors' float32 values exactly.
    return crops / np.float32(255.0)


def _resize_whole_window(image: np.ndarray, window) -> np.ndarray:
    """The authors' way: the window as a zero-padded patch, resized by OpenCV."""
    left, top, right, bottom = window
    height, width = image.shape[:2]
    patch = np.zeros((bottom - top, right - left, 3), dtype=np.uint8)
    x0, x1 = max(left, 0), min(right, width)
    y0, y1 = max(top, 0), min(bottom, height)
    if x0 < x1 and y0 < y1:
        patch[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return cv2.resize(patch, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


def _resize_sampled_window(image: np.ndarray, window) -> np.ndarray:
    """``_resize_whole_window``'s result, bit for bit, from only the pixels it reads: OpenCV's
    uint8 INTER_LINEAR (its row pass, then its SIMD column pass) on the gathered taps."""
    left, top, right, bottom = window
    x_first, x_second, x_weight0, x_weight1 = _linear_taps(right - left, clamp_weights=True)
    y_first, y_second, y_weight0, y_weight1 = _linear_taps(bottom - top, clamp_weights=False)
    columns, column_of = np.unique(np.concatenate([x_first, x_second]), return_inverse=True)
    rows, row_of = np.unique(np.concatenate([y_first, y_second]), return_inverse=True)
    # The window's pixels at those rows and columns: the image's where it lies, else zero.
    image_rows, image_columns = rows + top, columns + left
    row_inside = (image_rows >= 0) & (image_rows < image.shape[0])
    column_inside = (image_columns >= 0) & (image_columns < image.shape[1])
    samples = np.zeros((len(rows), len(columns), 3), dtype=np.uint8)
    samples[np.ix_(row_inside, column_inside)] = image[
        np.ix_(image_rows[row_inside], image_columns[column_inside])]
    # Row pass, exact in int32 (the weights' type): values up to 255 * 2048.
    horizontal = (samples[:, column_of[:CROP_SIZE]] * x_weight0[:, None]
                  + samples[:, column_of[CROP_SIZE:]] * x_weight1[:, None])
    # Column pass as OpenCV's VResizeLinearVec_32s8u: each row >> 4 (to int16, which it always
    # fits), times the weight keeping the high 16 bits, summed, then (v + 2) >> 2, saturated.
    upper = ((horizontal[row_of[:CROP_SIZE]] >> 4) * y_weight0[:, None, None]) >> 16
    lower = ((horizontal[row_of[CROP_SIZE:]] >> 4) * y_weight1[:, None, None]) >> 16
    return np.clip((upper + lower + 2) >> 2, 0, 255).astype(np.uint8)


def _linear_taps(size: int, clamp_weights: bool):
    """For ``cv2.resize`` INTER_LINEAR of a ``size``-pixel axis to CROP_SIZE: each crop pixel's
    two source indices and their 11-bit weights, computed as OpenCV does: the source
    coordinate in double, rounded to float32 (which matters past 2**15 pixels), split into
    floor and fraction, the weights rounded to integers (which they already are: positions
    are multiples of 1/512). Columns past either edge take the edge pixel with weight one;
    rows keep their fractional weights on the clamped row (``clamp_weights=False``)."""
    scale = 1.0 / (CROP_SIZE / size)
    position = ((np.arange(CROP_SIZE) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    fraction = position - first.astype(np.float32)
    if clamp_weights:
        fraction[(first < 0) | (first >= size - 1)] = 0.0
    weight0 = np.rint((np.float32(1.0) - fraction) * np.float32(_RESIZE_COEF_SCALE))
    weight1 = np.rint(fraction * np.float32(_RESIZE_COEF_SCALE))
    return (np.clip(first, 0, size - 1), np.clip(first + 1, 0, size - 1),
            weight0.astype(np.int32), weight1.astype(np.int32))


def _authors_inverse_truncated(points: np.ndarray, centers: np.ndarray, scales: np.ndarray,
                               resolution: int) -> np.ndarray:
    """The authors' ``transform_np(point, center, scale, resolution, invert=True)`` for all
    faces and points at once. Their matrix inverse is a pseudo-inverse by SVD and its
    rounding errors (~1e-10) decide the truncation of values that are integers in exact
    arithmetic, which tidy boxes produce often; so the SVD, the scaling of V^T by 1/s and
    the two matrix products are repeated rather than replaced by the exact inverse."""
    side = AUTHORS_SCALE_UNIT * scales
    forward = np.zeros((len(scales), 3, 3))
    forward[:, 0, 0] = forward[:, 1, 1] = resolution / side
    forward[:, :2, 2] = resolution * (-centers / side[:, None] + 0.5)
    forward[:, 2, 2] = 1.0
    u, s, vt = np.linalg.svd(forward)
    inverse = np.swapaxes(vt * (1.0 / s)[:, :, None], 1, 2) @ np.swapaxes(u, 1, 2)
    inverse = np.ascontiguousarray(inverse)
    homogeneous = np.concatenate([points, np.ones(points.shape[:2] + (1,))], axis=2)
    mapped = inverse[:, None] @ homogeneous[..., None]
    return mapped[..., :2, 0].astype(np.int32).astype(np.float64)
