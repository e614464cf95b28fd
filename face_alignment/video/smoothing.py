"""Landmark smoothing for videos (off by default): the One Euro filter of Casiez, Roussel and
Vogel (CHI 2012), one per track, applied to every coordinate of every landmark.

The filter is a first-order low-pass whose cutoff rises with the speed of the signal:
``cutoff = min_cutoff + beta * |speed|``, with the speed itself low-passed at ``d_cutoff``.
A still face is smoothed at ``min_cutoff`` (jitter removed); a fast one at a high cutoff
(little lag). Each output is a weighted mean of the previous output and the new input
(weights ``1 - alpha`` and ``alpha``, ``0 < alpha < 1``), so it never overshoots a step.
Time is real time, in seconds: frames of a variable frame rate, or after a gap, are
weighted by the time that passed.
"""
import math
from typing import Dict, Optional

import numpy as np

from ..errors import FaceAlignmentError

# Defaults, for landmarks in pixels at 30 frames/s. A landmark jumping 100 px and staying
# is within 1 px of its new place 3 frames later (test_smoothing derives this from the
# equations), where a plain 1 Hz low-pass is still 22 px away after 8; the standard
# deviation of still, white 1 px jitter drops to 0.39 px (0.31 px with beta 0).
DEFAULT_MIN_CUTOFF = 1.0  # Hz
DEFAULT_BETA = 0.05  # Hz per (pixel / second)
DEFAULT_D_CUTOFF = 1.0  # Hz, the paper's choice for the speed's own low-pass


def smoothing_factor(cutoff, dt: float):
    """alpha of a first-order low-pass of cutoff frequency ``cutoff`` (Hz) sampled after
    ``dt`` seconds: 1 / (1 + tau / dt) with tau = 1 / (2 pi cutoff)."""
    r = 2 * math.pi * np.asarray(cutoff, dtype=np.float64) * dt
    return r / (r + 1)


def _check_parameters(min_cutoff: float, beta: float, d_cutoff: float) -> None:
    for name, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise FaceAlignmentError(f"{name}={value!r}: expected a frequency in Hz above 0")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise FaceAlignmentError(f"beta={beta!r}: expected a speed coefficient of 0 or more")


class OneEuroFilter:
    """One Euro filter of arrays of any (fixed) shape, every element filtered on its own."""

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
                 d_cutoff: float = DEFAULT_D_CUTOFF):
        _check_parameters(min_cutoff, beta, d_cutoff)
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self._x: Optional[np.ndarray] = None
        self._speed: Optional[np.ndarray] = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """The filtered value of ``x`` observed at time ``t`` (seconds, increasing)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._speed, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if x.shape != self._x.shape:
            raise FaceAlignmentError(f"filter input: shape {x.shape}; expected {self._x.shape} as before")
        dt = float(t) - self._t
        if not dt > 0:
            raise FaceAlignmentError(f"t={t!r}: expected a time after the previous one ({self._t!r})")
        speed = (x - self._x) / dt
        self._speed = self._speed + smoothing_factor(self.d_cutoff, dt) * (speed - self._speed)
        alpha = smoothing_factor(self.min_cutoff + self.beta * np.abs(self._speed), dt)
        self._x = self._x + alpha * (x - self._x)
        self._t = float(t)
        return self._x.copy()


class TrackSmoother:
    """One :class:`OneEuroFilter` per track: ``smoother(tracks, landmarks, t)`` smooths one
    frame's landmarks. A track missing from a frame has ended, and its filter is dropped;
    faces of no track (id < 0) pass unchanged."""

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA,
                 d_cutoff: float = DEFAULT_D_CUTOFF):
        _check_parameters(min_cutoff, beta, d_cutoff)
        self.parameters = (min_cutoff, beta, d_cutoff)
        self._filters: Dict[int, OneEuroFilter] = {}

    def __call__(self, tracks: np.ndarray, landmarks: np.ndarray, t: float) -> np.ndarray:
        tracks = np.asarray(tracks, dtype=np.int64).reshape(-1)
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if len(landmarks) != len(tracks):
            raise FaceAlignmentError(f"landmarks: {len(landmarks)} faces; expected {len(tracks)}, one per track id")
        ids = tracks[tracks >= 0].tolist()
        if len(set(ids)) != len(ids):
            raise FaceAlignmentError(f"tracks {tracks.tolist()}: expected each track id once in a frame")
        self._filters = {i: self._filters.get(i) or OneEuroFilter(*self.parameters) for i in ids}
        smoothed = landmarks.copy()
        for row, track in enumerate(tracks):
            if track >= 0:
                smoothed[row] = self._filters[int(track)](landmarks[row], t)
        return smoothed
