"""Where a frame's face boxes come from: one small interface behind which the detector,
the tracker (:class:`face_alignment.video.tracking.FaceTracker`) and user-given boxes are
interchangeable, so a video loop asks ``boxes`` for each frame, runs the network on them and
hands the landmarks back with ``observe``, whatever the source. Boxes follow
:func:`face_alignment.boxes.as_boxes`; a user's detector plugs in as a callable."""
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Protocol, Tuple, Union

import numpy as np

from ..boxes import as_boxes
from ..errors import FaceAlignmentError
from ..shapes import NUM_LANDMARKS

DETECTOR = "detector"  # the box is a detection on this very frame
TRACKING = "tracking"  # the box comes from the track's landmarks on an earlier frame
GIVEN = "given"  # the box was given by the user
SOURCES = (DETECTOR, TRACKING, GIVEN)
UNTRACKED = -1  # track id of a face that belongs to no track

# A face detector as the sources take it: an RGB image in, (N, 4) or (N, 5) boxes out
# (a face_alignment.detection.Detector, or a user's own).
Detect = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FrameFaces:
    """The faces of one frame: ``boxes`` (N, 4) float64 [left, top, right, bottom],
    ``tracks`` (N,) int64 track ids (:data:`UNTRACKED` for none) and ``sources``, one of
    :data:`SOURCES` per face."""

    boxes: np.ndarray
    tracks: np.ndarray
    sources: Tuple[str, ...]

    def __post_init__(self):
        boxes = as_boxes(self.boxes, "frame boxes")
        tracks = np.asarray(self.tracks)
        if tracks.shape != (len(boxes),) or not np.issubdtype(tracks.dtype, np.integer):
            raise FaceAlignmentError(f"tracks: {tracks.dtype} array of shape {tracks.shape}; "
                                     f"expected {len(boxes)} integer track ids, one per box")
        sources = tuple(self.sources)
        unknown = [s for s in sources if s not in SOURCES]
        if len(sources) != len(boxes) or unknown:
            raise FaceAlignmentError(f"sources: {sources!r}; expected one of {', '.join(SOURCES)} "
                                     f"for each of the {len(boxes)} boxes")
        # Frozen: the normalised arrays are set once, here.
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "tracks", tracks.astype(np.int64))
        object.__setattr__(self, "sources", sources)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def untracked(cls, boxes: np.ndarray, source: str) -> "FrameFaces":
        """Faces that belong to no track, all from ``source``."""
        return cls(boxes, np.full(len(boxes), UNTRACKED, dtype=np.int64), (source,) * len(boxes))


class BoxSource(Protocol):
    """Gives each frame's face boxes, and may learn from the landmarks found in them."""

    def boxes(self, index: int, image: np.ndarray) -> FrameFaces:
        """The faces of frame ``index`` (an RGB uint8 (H, W, 3) image)."""

    def observe(self, index: int, faces: FrameFaces, landmarks: np.ndarray, scores: np.ndarray) -> None:
        """The landmarks (N, 68, 2 or 3) and their scores (N, 68) found in ``faces``, the
        answer of ``boxes`` for frame ``index``. Stateless sources ignore it."""


def check_landmarks(faces: FrameFaces, landmarks: np.ndarray, scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``landmarks`` and ``scores`` as float64 arrays, checked to hold one face per box."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    n = len(faces)
    if landmarks.ndim != 3 or landmarks.shape[:2] != (n, NUM_LANDMARKS) or landmarks.shape[2] not in (2, 3):
        raise FaceAlignmentError(f"landmarks: shape {landmarks.shape}; expected ({n}, {NUM_LANDMARKS}, 2 or 3), "
                                 "one face per box")
    if scores.shape != (n, NUM_LANDMARKS):
        raise FaceAlignmentError(f"scores: shape {scores.shape}; expected ({n}, {NUM_LANDMARKS}), one face per box")
    return landmarks, scores


class DetectorSource:
    """Every frame's faces detected afresh by ``detect``; nothing is tracked."""

    def __init__(self, detect: Detect):
        if not callable(detect):
            raise FaceAlignmentError(f"detect: got {detect!r}; expected a callable image -> (N, 4) boxes")
        self.detect = detect

    def boxes(self, index: int, image: np.ndarray) -> FrameFaces:
        return FrameFaces.untracked(as_boxes(self.detect(image), f"detections of frame {index}"), DETECTOR)

    def observe(self, index: int, faces: FrameFaces, landmarks: np.ndarray, scores: np.ndarray) -> None:
        check_landmarks(faces, landmarks, scores)


class GivenBoxes:
    """Boxes the user gives: a mapping from frame index to that frame's boxes, or a callable
    index -> boxes (or None). A frame the mapping lacks, or for which the callable returns
    None, has no faces: sparse box files need not list empty frames."""

    def __init__(self, per_frame: Union[Mapping[int, np.ndarray], Callable[[int], Optional[np.ndarray]]]):
        if isinstance(per_frame, Mapping):
            self._lookup = per_frame.get
        elif callable(per_frame):
            self._lookup = per_frame
        else:
            raise FaceAlignmentError(f"given boxes: got {type(per_frame).__name__}; expected a mapping "
                                     "frame index -> boxes, or a callable index -> boxes")

    def boxes(self, index: int, image: np.ndarray) -> FrameFaces:
        found = self._lookup(index)
        boxes = np.zeros((0, 4)) if found is None else as_boxes(found, f"boxes of frame {index}")
        return FrameFaces.untracked(boxes, GIVEN)

    def observe(self, index: int, faces: FrameFaces, landmarks: np.ndarray, scores: np.ndarray) -> None:
        check_landmarks(faces, landmarks, scores)
