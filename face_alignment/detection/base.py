"""What every face detector is to the rest of the package: an RGB image in, boxes with
scores out, and how those boxes sit on a face.

A detector's boxes are ``[left, top, right, bottom, score]`` rows (float64, best score first)
in the image's own pixel coordinates, whose pixel centres are the integers. Where on the face
a box lies is the detector's own convention: :class:`BoxRelation` states it relative to the
68 landmarks, which is what tracking needs to place a box where the detector would.
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..errors import FaceAlignmentError
from ..registry import AUTHORS_REFERENCE_SCALE


@dataclass(frozen=True)
class BoxRelation:
    """A box relative to its face's landmarks, in units of their radius: the box centre is
    the landmarks' centroid plus (dx, dy) radii, its sides ``width`` and ``height`` radii."""

    dx: float
    dy: float
    width: float
    height: float

    def as_array(self) -> np.ndarray:
        return np.array([self.dx, self.dy, self.width, self.height])


NO_BOXES = np.zeros((0, 5), dtype=np.float64)


def reframe(boxes: np.ndarray, source: BoxRelation, target: BoxRelation) -> np.ndarray:
    """(N, 4) boxes placed on the same faces by ``target`` as ``boxes`` were by ``source``:
    each box gives its face's landmark centroid and radius through ``source`` (the radius
    from width and height, averaged), and ``target`` places a box on those. Scores, a fifth
    column, are dropped."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, np.shape(boxes)[-1] if np.size(boxes) else 4)[:, :4]
    radii = ((boxes[:, 2:] - boxes[:, :2]) / [source.width, source.height]).mean(axis=1, keepdims=True)
    centroids = (boxes[:, :2] + boxes[:, 2:]) / 2 - np.array([source.dx, source.dy]) * radii
    middle = centroids + np.array([target.dx, target.dy]) * radii
    half = np.array([target.width, target.height]) * radii / 2
    return np.concatenate((middle - half, middle + half), axis=1)


def check_rgb(image) -> np.ndarray:
    """``image`` if it is what detectors take, an RGB uint8 (H, W, 3) array; else a one-line error."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise FaceAlignmentError(f"image: expected an RGB uint8 array of shape (H, W, 3), got {dtype} {shape}")
    return image


def best_first(boxes: np.ndarray) -> np.ndarray:
    """(N, 5) rows sorted by score, highest first; ties keep their order."""
    return boxes[np.argsort(-boxes[:, 4], kind="stable")]


class Detector:
    """Base of the package's face detectors. A subclass implements :meth:`detect`; one that
    can run several frames in one pass overrides :meth:`detect_batch`.

    ``box_relation``: where its boxes sit on the 68 landmarks (None: not measured; tracking
    then measures it on each face's first detection). ``reference_scale``: face-alignment's
    divisor of the box size in its crop for this detector's boxes (195 for its SFD, BlazeFace
    and dlib, 165 for RetinaFace), used when reproducing that package. ``thread_safe``: False
    when one instance must not run from two threads at once (dlib's)."""

    name = "detector"
    box_relation: Optional[BoxRelation] = None
    reference_scale: float = AUTHORS_REFERENCE_SCALE
    thread_safe = False

    @classmethod
    def check_threshold(cls, threshold: float, given_as: str = "threshold") -> None:
        """Refuse a score threshold this detector cannot use, in one line that names it as
        ``given_as`` (the keyword, or the command line's flag). Any value by default."""

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(N, 5) float64 ``[left, top, right, bottom, score]`` of the faces in an RGB uint8
        (H, W, 3) image, in its pixels, best score first."""
        raise NotImplementedError

    def detect_batch(self, frames: Sequence[np.ndarray]) -> List[np.ndarray]:
        """:meth:`detect` of each frame (frames of one size), in order."""
        return [self.detect(frame) for frame in frames]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.detect(image)


class CallableDetector(Detector):
    """Any callable ``image -> boxes`` ((N, 4), or (N, 5) with scores) as a Detector. Boxes
    without scores all score 1 and keep their order."""

    def __init__(self, function: Callable[[np.ndarray], np.ndarray], name: Optional[str] = None):
        if not callable(function):
            raise FaceAlignmentError(f"detector: got {function!r}; expected a callable image -> (N, 4) boxes")
        self.function = function
        self.name = name or getattr(function, "__name__", type(function).__name__)
        self.box_relation = getattr(function, "box_relation", None)

    def detect(self, image: np.ndarray) -> np.ndarray:
        boxes = np.asarray(self.function(image), dtype=np.float64)
        if boxes.size == 0:
            return NO_BOXES.copy()
        if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
            raise FaceAlignmentError(f"detector {self.name}: returned an array of shape {boxes.shape}; "
                                     "expected (N, 4) or (N, 5) boxes")
        if boxes.shape[1] == 4:
            return np.concatenate([boxes, np.ones((len(boxes), 1))], axis=1)
        return best_first(boxes)
