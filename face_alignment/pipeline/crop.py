"""Face crops for FAN and the geometry that maps heatmap points back to the image.

Two conventions, named as in :mod:`face_alignment.registry`. The authors' ("authors") is
face-alignment's: the box centre moved up by 0.12 of the box height, a square of side
``200 * scale`` with ``scale = (w + h) / reference_scale``, its corners found through a
float32 affine and truncated to integers. ibug's ("ibug") is hhj1897/face_alignment's
FANPredictor: a square of side ``mean(w, h) / 0.55`` about the box centre with rounded
corners. Either way the integer window is cut out with zero padding outside the image and
resized (bilinear) to 256 x 256, so networks see exactly the pixels their weights were
trained on. The rounding of each convention is repeated operation for operation, because a
one-pixel shift of the window moves every landmark. :class:`FaceFrames` keeps, per face, what
is needed to map 64 x 64 heatmap coordinates back to image pixels.
"""
from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from ..boxes import as_boxes
from ..errors import FaceAlignmentError
from ..registry import CROP_AUTHORS, CROP_IBUG
from ..shapes import CROP_SIZE, HEATMAP_SIZE

AUTHORS_REFERENCE_SCALE = 195.0
AUTHORS_CENTER_SHIFT = 0.12  # of the box height, upwards
AUTHORS_SCALE_UNIT = 200.0  # a face of scale 1 is 200 pixels across
IBUG_CROP_RATIO = 0.55  # face size over crop size
CONVENTIONS = (CROP_AUTHORS, CROP_IBUG)


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
        f"unknown crop convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")


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
    a = (CROP_SIZE / side).astype(np.float32)
    b = (CROP_SIZE * (-centers / side[:, None] + 0.5)).astype(np.float32)
    inv_a = (np.float32(1.0) / a)[:, None]
    offset = -(b * inv_a)
    upper_left = (inv_a * np.float32(1.0) + offset).astype(np.int32)
    lower_right = (inv_a * np.float32(CROP_SIZE) + offset).astype(np.int32)
    windows = np.concatenate([upper_left, lower_right], axis=1).astype(np.int64)
    _check_windows(windows, boxes)
    return FaceFrames(CROP_AUTHORS, windows, centers, scales)


def _ibug_frames(boxes: np.ndarray) -> FaceFrames:
    # FANPredictor's arithmetic; np.round rounds halves to even, as theirs does.
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    sizes = (boxes[:, [3, 2]] - boxes[:, [1, 0]]).mean(axis=1) / IBUG_CROP_RATIO
    left_top = np.round(centres - sizes[:, None] / 2.0)
    right_bottom = np.round(left_top + sizes[:, None]) + 1
    windows = np.concatenate([left_top, right_bottom], axis=1).astype(np.int64)
    _check_windows(windows, boxes)
    window_centres = (windows[:, :2] + windows[:, 2:]) / 2.0
    scales = (windows[:, 2] - windows[:, 0]) / AUTHORS_SCALE_UNIT
    return FaceFrames(CROP_IBUG, windows, window_centres, scales)


def _check_windows(windows: np.ndarray, boxes: np.ndarray) -> None:
    empty = (windows[:, 2] <= windows[:, 0]) | (windows[:, 3] <= windows[:, 1])
    if np.any(empty):
        raise FaceAlignmentError(
            f"box {boxes[np.argmax(empty)].tolist()} is too small to crop; expected a face "
            "of at least a pixel")


def _cut_windows(image: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Each window of the image, zero outside it, resized to CROP_SIZE; float32 / 255."""
    height, width = image.shape[:2]
    crops = np.empty((len(windows), 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)
    for i, (left, top, right, bottom) in enumerate(windows.tolist()):
        patch = np.zeros((bottom - top, right - left, 3), dtype=np.uint8)
        x0, x1 = max(left, 0), min(right, width)
        y0, y1 = max(top, 0), min(bottom, height)
        if x0 < x1 and y0 < y1:
            patch[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
        resized = cv2.resize(patch, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
        crops[i] = resized.transpose(2, 0, 1)
    # Division, not multiplication by 1/255, to give the authors' float32 values exactly.
    return crops / np.float32(255.0)


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
