"""Face tracking for videos: faces are detected now and then, and followed in between by
their own landmarks.

:class:`FaceTracker` detects on the first frame, then whenever ``detect_every`` frames have
passed since its last detection, and on the frame after a track is lost. On the other frames
each face's box is the box the detector would give for the landmarks found on the previous
frame, so crops stay consistent with detected ones.

From landmarks to a detector's box. A box is described relative to its face's landmarks by a
:class:`BoxRelation`: the offset of the box centre from the landmarks' centroid and the box
width and height, all in units of the landmarks' radius (root-mean-square distance from the
centroid). The radius, unlike the box around the points, does not change when a face rolls:
on the shared photos rolled by -15, 0 and 15 degrees, dlib's CNN box side over the radius
was the same to three digits (2.783 on breakingbad, 2.668 on Einstein), over the points'
box side it moved by 8-9 %.

Each track measures its own relation on every frame the detector found it, and uses the
mean of those measured (see ANCHOR_WEIGHT) until the next. A single relation for all faces
cannot reproduce a detector's boxes within a few per cent: dlib's boxes come in sizes a
factor 1.2 apart (one step of its image pyramid), and where they sit depends on the face
(the CNN's box centre sits 0.2 radii right of the centroid on breakingbad's half-turned
face, 0.29 left of it on Einstein's). The track's own relation carries the detector's answer
for this face forward, whatever the detector, so a user's detector needs no calibration. The
detector's stated relation (:attr:`face_alignment.detection.Detector.box_relation`, e.g.
:data:`~face_alignment.detection.dlib_detectors.DLIB_BOXES`) is the fallback for a track not yet measured.
"""
import itertools
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..boxes import as_boxes
from ..errors import FaceAlignmentError
from ..detection.base import BoxRelation
from ..detection.dlib_detectors import DLIB_BOXES
from ..matching import MISSED, box_iou, match_faces
from ..validation import is_whole_number
from .box_sources import DETECTOR, TRACKING, Detect, FrameFaces, check_landmarks


# Boxes for a track whose own relation is not measured yet, from a detector that states none.
FALLBACK_RELATION = DLIB_BOXES["hog"]

# A track's relation is the running mean of those measured on its detections, over the
# last ~1 / ANCHOR_WEIGHT of them once it has had that many: one detection's box is off its
# face's usual place by up to 15 % (see above); the mean is steadier, and still follows a
# face that turns. On tests/moving_faces.py's clips the 10th percentile IoU of tracked boxes
# with the detections of the same frames rose from 0.69 (latest detection only) to 0.77.
ANCHOR_WEIGHT = 0.25

# Tracked boxes barely drift as detection gets rarer, so detect_every trades time against how
# soon a new face is found; 15 frames (half a second at 30 frames/s) keeps a detector like
# dlib's HOG near a tenth of the time. The measurements: docs/video.md, "How often to detect".
DEFAULT_DETECT_EVERY = 15
# A track whose landmarks' mean score falls below this is lost. FAN's scores are heatmap
# peaks (a trained model gives ~0.5-1 on faces); 0.2 is the score below which ibug's FAN demo
# stops drawing a landmark as unreliable.
DEFAULT_MIN_SCORE = 0.2
DEFAULT_MIN_IOU = 0.3  # a detection joins a track whose box it overlaps at least this much
# Detection frames on which a live track may go unseen before it ends: dlib's HOG misses
# faces near its threshold on single frames, and ending the track would blank the face.
DEFAULT_MAX_MISSES = 1
# Lost when the box from the landmarks is smaller than this (in pixels), far below the
# smallest face dlib finds (~40 px with one upsampling)...
DEFAULT_MIN_SIZE = 10.0
# ...or has less than this fraction of its area inside the frame.
DEFAULT_MIN_INSIDE = 0.5


def landmark_frames(points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Centroids (N, 2) and radii (N,) of (N, 68, 2+) landmarks: the radius is the root mean
    square distance of the points from their centroid."""
    xy = np.asarray(points, dtype=np.float64)[..., :2]
    centres = xy.mean(axis=-2)
    radii = np.sqrt(np.mean(np.sum((xy - centres[..., None, :]) ** 2, axis=-1), axis=-1))
    return centres, radii


def box_from_landmarks(points: np.ndarray, relation: Union[BoxRelation, np.ndarray]) -> np.ndarray:
    """(N, 4) boxes [left, top, right, bottom] for (N, 68, 2+) landmarks, placed by
    ``relation``: one :class:`BoxRelation` for all faces, or an (N, 4) array of them."""
    rel = relation.as_array() if isinstance(relation, BoxRelation) else np.asarray(relation, dtype=np.float64)
    centres, radii = landmark_frames(points)
    middle = centres + rel[..., :2] * radii[:, None]
    half = rel[..., 2:] * radii[:, None] / 2
    return np.concatenate((middle - half, middle + half), axis=-1)


def relation_of(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 4) [dx, dy, width, height]: how each box sits on its (N, 68, 2+) landmarks, the
    inverse of :func:`box_from_landmarks`. Landmarks must not all coincide."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres, radii = landmark_frames(points)
    middle = (boxes[:, :2] + boxes[:, 2:]) / 2
    return np.concatenate(((middle - centres), boxes[:, 2:] - boxes[:, :2]), axis=-1) / radii[:, None]


def inside_fraction(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """The fraction of each box's area that lies in a ``height`` x ``width`` image, whose
    pixels (centred on integers) cover [-0.5, width - 0.5] x [-0.5, height - 0.5]."""
    frame = np.array([-0.5, -0.5, width - 0.5, height - 0.5])
    overlap = np.clip(np.minimum(boxes[:, 2:], frame[2:]) - np.maximum(boxes[:, :2], frame[:2]), 0, None)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    return np.divide(np.prod(overlap, axis=-1), area, out=np.zeros(len(boxes)), where=area > 0)


@dataclass
class _Track:
    id: int
    box: np.ndarray  # where the face is expected on the next frame
    relation: np.ndarray  # (4,) how the detector's box sits on this face's landmarks
    anchors: int = 0  # detections its relation was measured on
    misses: int = 0  # detection frames in a row that did not see it
    observed: int = -1  # last frame whose landmarks moved the box
    lost_in: Optional[np.ndarray] = field(default=None)  # the box it was lost in


class FaceTracker:
    """A :class:`~face_alignment.video.box_sources.BoxSource` that detects faces with
    ``detect`` every ``detect_every`` frames and follows them in between by their landmarks.

    Detection runs on the first frame asked for, when ``detect_every`` frames have passed
    since the last detection (a detection after a loss restarts that count: it refreshed
    every track), and on the next frame asked for after a track was lost. A video without
    faces thus costs one detection every ``detect_every`` frames, and a face entering the
    picture is found within ``detect_every`` frames whether or not others are tracked.

    On a detection frame, detections are paired with the tracks whose expected boxes they
    overlap most (greedily, IoU at least ``min_iou``) and keep those tracks' ids; the tracks
    lost on the frame before take part too, by the box they were lost in, so a face whose
    scores dipped for one frame keeps its id. An unpaired detection starts a new track (ids
    increase and are never reused). A live track the detector did not see is kept, by its
    landmarks, for up to ``max_misses`` detection frames in a row: the detector is the check
    that a track still follows a face when its scores cannot tell.

    A track is lost when its landmarks stop looking like a face: their mean score is below
    ``min_score``, or the box they give is smaller than ``min_size`` pixels or has less than
    ``min_inside`` of its area in the frame. A lost track gets no box until a detection
    pairs with it; otherwise it ends.

    The caller may ask for several frames' boxes before observing any (to put consecutive
    frames in one network batch): boxes then come from the latest landmarks observed, and a
    loss triggers detection on the next frame asked for after it is observed.
    ``relation`` places boxes for tracks whose own relation is not measured yet (see the module
    docstring); default: ``detect``'s own ``box_relation`` if it states one, else
    :data:`FALLBACK_RELATION`.
    """

    def __init__(self, detect: Detect, detect_every: int = DEFAULT_DETECT_EVERY, *,
                 relation: Optional[BoxRelation] = None, min_score: float = DEFAULT_MIN_SCORE,
                 min_iou: float = DEFAULT_MIN_IOU, max_misses: int = DEFAULT_MAX_MISSES,
                 min_size: float = DEFAULT_MIN_SIZE, min_inside: float = DEFAULT_MIN_INSIDE):
        if not callable(detect):
            raise FaceAlignmentError(f"detect: got {detect!r}; expected a callable image -> (N, 4) boxes")
        if not is_whole_number(detect_every, 1):
            raise FaceAlignmentError(f"detect_every={detect_every!r}: expected a whole number of frames, 1 or more")
        if not is_whole_number(max_misses, 0):
            raise FaceAlignmentError(f"max_misses={max_misses!r}: expected a whole number, 0 or more")
        if not 0 < min_iou <= 1:
            raise FaceAlignmentError(f"min_iou={min_iou!r}: expected an overlap in (0, 1]")
        if not min_size > 0:
            # A box from landmarks must keep some area: a zero-sized one is no box.
            raise FaceAlignmentError(f"min_size={min_size!r}: expected a side in pixels above 0")
        if not 0 <= min_inside <= 1:
            raise FaceAlignmentError(f"min_inside={min_inside!r}: expected a fraction in [0, 1]")
        self.detect = detect
        self.detect_every = int(detect_every)
        if relation is None:
            relation = getattr(detect, "box_relation", None) or getattr(
                getattr(detect, "__self__", None), "box_relation", None) or FALLBACK_RELATION
        self.relation = relation
        self.min_score = float(min_score)
        self.min_iou = float(min_iou)
        self.max_misses = int(max_misses)
        self.min_size = float(min_size)
        self.min_inside = float(min_inside)
        self._tracks: Dict[int, _Track] = {}
        self._ids = itertools.count()
        self._last_index: Optional[int] = None
        self._last_detection: Optional[int] = None
        self._lost_since_detection = False
        self._frame_size = (0, 0)

    def boxes(self, index: int, image: np.ndarray) -> FrameFaces:
        if self._last_index is not None and index <= self._last_index:
            raise FaceAlignmentError(f"frame {index}: frames must come in increasing order, "
                                     f"expected one after frame {self._last_index}")
        if not (isinstance(image, np.ndarray) and image.ndim == 3):
            raise FaceAlignmentError(f"frame {index}: got {type(image).__name__} "
                                     f"{getattr(image, 'shape', '')}; expected an (H, W, 3) image")
        self._last_index = index
        self._frame_size = image.shape[:2]
        if (self._last_detection is None or self._lost_since_detection
                or index - self._last_detection >= self.detect_every):
            return self._detect(index, image)
        live = [t for t in self._tracks.values() if t.lost_in is None]
        return self._faces(live, [TRACKING] * len(live))

    def _detect(self, index: int, image: np.ndarray) -> FrameFaces:
        detections = as_boxes(self.detect(image), f"detections of frame {index}")
        self._last_detection = index
        self._lost_since_detection = False
        tracks = list(self._tracks.values())
        expected = np.array([t.box if t.lost_in is None else t.lost_in for t in tracks]).reshape(-1, 4)
        pairs = match_faces(expected, detections)  # greedy by decreasing IoU
        iou = box_iou(expected, detections)
        kept, sources, seen = [], [], set()
        for row, (track, pair) in enumerate(zip(tracks, pairs)):
            if pair != MISSED and iou[row, pair] >= self.min_iou:
                track.box, track.misses, track.lost_in = detections[pair], 0, None
                seen.add(int(pair))
                kept.append(track)
                sources.append(DETECTOR)
            elif track.lost_in is None and track.misses < self.max_misses:
                track.misses += 1
                kept.append(track)
                sources.append(TRACKING)
            else:
                del self._tracks[track.id]
        for pair in range(len(detections)):
            if pair not in seen:
                track = _Track(next(self._ids), detections[pair], self.relation.as_array())
                self._tracks[track.id] = track
                kept.append(track)
                sources.append(DETECTOR)
        return self._faces(kept, sources)

    @staticmethod
    def _faces(tracks: List[_Track], sources: List[str]) -> FrameFaces:
        order = np.argsort([t.id for t in tracks], kind="stable")
        return FrameFaces(np.array([tracks[i].box for i in order]).reshape(-1, 4),
                          np.array([tracks[i].id for i in order], dtype=np.int64),
                          tuple(sources[i] for i in order))

    def observe(self, index: int, faces: FrameFaces, landmarks: np.ndarray, scores: np.ndarray) -> None:
        landmarks, scores = check_landmarks(faces, landmarks, scores)
        height, width = self._frame_size
        for row, track_id in enumerate(faces.tracks):
            track = self._tracks.get(int(track_id))
            # Ended, lost meanwhile, or already moved by a later frame's landmarks.
            if track is None or track.lost_in is not None or track.observed >= index:
                continue
            points = landmarks[row:row + 1]
            box = box_from_landmarks(points, track.relation)
            side = float(np.min(box[0, 2:] - box[0, :2]))
            if (scores[row].mean() < self.min_score or side < self.min_size
                    or inside_fraction(box, height, width)[0] < self.min_inside):
                track.lost_in = faces.boxes[row]
                self._lost_since_detection = True
                continue
            if faces.sources[row] == DETECTOR:
                track.anchors += 1
                weight = max(1.0 / track.anchors, ANCHOR_WEIGHT)
                track.relation = track.relation + weight * (relation_of(faces.boxes[row], points)[0] - track.relation)
                box = box_from_landmarks(points, track.relation)
            track.box, track.observed = box[0], index
