"""Normalised mean error (NME), the cumulative error distribution (CED), its AUC and the
failure rate, for the 68-point iBUG markup.

A face the detector missed has error +inf: it never counts as a success, so it lowers the CED,
the AUC and raises the failure rate; callers leave it out of mean NMEs.
"""
from typing import Tuple

import numpy as np

from ..errors import FaceAlignmentError

INTEROCULAR = "interocular"  # outer eye corners, points 37 and 46 (1-based)
INTERPUPIL = "interpupil"  # centres of the two six-point eye contours
FACE_SIZE = "face-size"  # sqrt(width * height) of the box around the ground-truth points
NORMALIZATIONS = (INTEROCULAR, INTERPUPIL, FACE_SIZE)

# 0-based indices into the 68-point markup.
OUTER_EYE_CORNERS = (36, 45)
RIGHT_EYE = slice(36, 42)  # the subject's right eye, on the image's left
LEFT_EYE = slice(42, 48)


def normalizer(truth: np.ndarray, normalization: str = FACE_SIZE) -> np.ndarray:
    """The distance errors are divided by, for ground truth of shape ``(..., 68, 2)``; the
    result has shape ``(...)``."""
    checked_normalization(normalization)
    truth = np.asarray(truth, dtype=np.float64)[..., :2]
    if normalization == INTEROCULAR:
        corner_a, corner_b = OUTER_EYE_CORNERS
        return np.linalg.norm(truth[..., corner_a, :] - truth[..., corner_b, :], axis=-1)
    if normalization == INTERPUPIL:
        return np.linalg.norm(truth[..., RIGHT_EYE, :].mean(axis=-2)
                              - truth[..., LEFT_EYE, :].mean(axis=-2), axis=-1)
    extent = truth.max(axis=-2) - truth.min(axis=-2)  # FACE_SIZE
    return np.sqrt(extent[..., 0] * extent[..., 1])


def nme(predicted: np.ndarray, truth: np.ndarray, normalization: str = FACE_SIZE) -> np.ndarray:
    """Per face: the mean point-to-point distance in x, y (a z column is ignored), divided by
    the face's normaliser. Shapes ``(..., 68, 2 or 3)`` give ``(...)``."""
    predicted = np.asarray(predicted, dtype=np.float64)[..., :2]
    truth = np.asarray(truth, dtype=np.float64)[..., :2]
    distances = np.linalg.norm(predicted - truth, axis=-1)
    return distances.mean(axis=-1) / normalizer(truth, normalization)


def _errors(errors: np.ndarray) -> np.ndarray:
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        raise FaceAlignmentError("errors: expected at least one face's error, got none")
    if np.isnan(errors).any() or (errors < 0).any():
        raise FaceAlignmentError("errors: expected non-negative numbers or +inf, "
                                 "got NaN or a negative")
    return errors


def checked_normalization(normalization: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise FaceAlignmentError(f"normalization {normalization!r}: expected one of "
                                 f"{', '.join(NORMALIZATIONS)}")
    return normalization


def checked_threshold(threshold: float) -> float:
    if not (np.isfinite(threshold) and threshold > 0):
        raise FaceAlignmentError(f"threshold {threshold!r}: expected a positive number")
    return float(threshold)


def ced_curve(errors: np.ndarray, max_error: float = 0.07) -> Tuple[np.ndarray, np.ndarray]:
    """The CED, a step function, on ``[0, max_error]``: ``proportion[k]`` is the share of
    faces with error <= ``error[k]``, and it holds until ``error[k + 1]`` (draw it with
    ``drawstyle="steps-post"``). ``error`` starts at 0, lists every error in range and ends at
    ``max_error``."""
    errors = np.sort(_errors(errors))
    max_error = checked_threshold(max_error)
    corners = np.concatenate(([0.0], errors[errors <= max_error], [max_error]))
    return corners, np.searchsorted(errors, corners, side="right") / errors.size


def auc(errors: np.ndarray, threshold: float = 0.07) -> float:
    """Area under the CED from 0 to ``threshold``, divided by ``threshold`` (1 = every face
    exact, 0 = every face above the threshold or missed).

    Computed exactly: the CED is the mean of one step per face, 0 before its error and 1 from
    it on, so the area is the mean over faces of ``threshold - error`` (0 when the error is
    above the threshold)."""
    errors = _errors(errors)
    threshold = checked_threshold(threshold)
    return float(np.clip(1.0 - errors / threshold, 0.0, 1.0).mean())


def failure_rate(errors: np.ndarray, threshold: float = 0.07) -> float:
    """Share of faces whose error is above ``threshold`` (missed faces included)."""
    return float((_errors(errors) > checked_threshold(threshold)).mean())


def interpolated_auc(errors: np.ndarray, threshold: float = 0.07) -> float:
    """ibug's AUC (fan_training's ``compute_auc``), which their published numbers use: the area up
    to ``threshold``, divided by it, under the CED drawn with straight segments through (0, 0)
    and each (k-th smallest error, k / n), rather than as the steps :func:`auc` integrates."""
    errors = np.sort(_errors(errors))
    threshold = checked_threshold(threshold)
    x = np.concatenate(([0.0], errors))
    y = np.arange(errors.size + 1) / errors.size
    inside = int(np.count_nonzero(x <= threshold))
    x, y, beyond = x[:inside], y[:inside], x[inside:]
    if x[-1] < threshold:  # the segment that crosses the threshold, cut there
        rise = (threshold - x[-1]) / (beyond[0] - x[-1]) / errors.size if beyond.size and np.isfinite(beyond[0]) else 0.0
        x, y = np.append(x, threshold), np.append(y, y[-1] + rise)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / threshold)


def mean_accuracy(errors: np.ndarray, threshold: float = 0.07, ticks: int = 100) -> float:
    """ibug's mAcc: the mean, over ``ticks`` thresholds evenly spaced up to ``threshold``, of the
    share of ``errors`` at or below each."""
    errors = _errors(errors)
    thresholds = np.arange(1, ticks + 1) * checked_threshold(threshold) / ticks
    return float(np.mean(errors[None, :] <= thresholds[:, None], axis=1).mean())
