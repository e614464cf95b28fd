"""Videos made from the shared annotated photos moved by known amounts, for the tracking
tests: every frame's true landmarks are the iBUG annotations moved by the same affine map
as the pixels, and two landmark sources stand in for a trained FAN.

A clip is rendered in memory (no video file) at 480 x 270. breakingbad.jpg's annotated face
is shrunk to about 110 px across, so dlib's HOG costs ~0.04 s a frame. The canvas is cut into
vertical strips, one face each, every strip drawn from its own warp of the photo (the same
face twice, moving differently, makes two annotated faces). The faces are rolled by about
-8 degrees: dlib's HOG scores this half-turned face near its threshold when it is upright
and well above it when rolled that way (measured on 60 random poses).
"""
import importlib.util
import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import dlib
import numpy as np

from face_alignment.matching import points_box
from face_alignment.evaluation.pts import read_pts
from face_alignment.shapes import NUM_LANDMARKS

FACES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "faces")
SIZE = (480, 270)  # width, height
BASE_SCALE = 0.3  # the photo is shrunk once by this (area averaging), then warped near 1:1
ROLL = -8.0  # degrees, cv2's sense (counter-clockwise on screen)


@dataclass(frozen=True)
class Photo:
    image: np.ndarray  # RGB, already shrunk by BASE_SCALE
    points: np.ndarray  # (68, 2) annotations in its pixels


def load_photo(name: str = "breakingbad") -> Photo:
    bgr = cv2.imread(os.path.join(FACES, name + ".jpg"), cv2.IMREAD_COLOR)
    height, width = bgr.shape[:2]
    size = (round(width * BASE_SCALE), round(height * BASE_SCALE))
    small = cv2.resize(bgr[..., ::-1], size, interpolation=cv2.INTER_AREA)
    # Pixel centres: pixel i of the shrunk copy is centred on (i + 0.5) / s - 0.5.
    scale = np.array([size[0] / width, size[1] / height])
    points = (read_pts(os.path.join(FACES, name + ".pts")) + 0.5) * scale - 0.5
    return Photo(np.ascontiguousarray(small), points)


@dataclass(frozen=True)
class Motion:
    """A face's path: its landmarks' centroid sways about ``centre`` by up to ``shift``
    pixels, its size by a factor within 1 +- ``zoom``, its roll by ``turn`` degrees about
    ROLL, all with period ``period`` frames (x and scale in phase, y a quarter behind)."""

    centre: Tuple[float, float]
    shift: Tuple[float, float] = (25.0, 15.0)
    zoom: float = 0.12
    turn: float = 4.0
    period: float = 40.0
    phase: float = 0.0

    def affine(self, frame: int, photo: Photo) -> np.ndarray:
        """The 2 x 3 map from the photo's pixels to frame ``frame``'s."""
        angle = 2 * np.pi * (frame / self.period + self.phase)
        origin = photo.points.mean(axis=0)
        matrix = cv2.getRotationMatrix2D((float(origin[0]), float(origin[1])), ROLL + self.turn * np.sin(angle),
                                         1.0 + self.zoom * np.sin(angle))
        target = np.array(self.centre) + np.array(self.shift) * (np.sin(angle), np.cos(angle))
        matrix[:, 2] += target - origin
        return matrix


@dataclass
class Clip:
    frames: List[np.ndarray]  # RGB uint8 (H, W, 3)
    points: List[np.ndarray]  # per frame, (F, 68, 2) true landmarks, one row per face
    faces: List[Tuple[str, ...]]  # per frame, a name per face (which path it follows)

    def __add__(self, other: "Clip") -> "Clip":
        return Clip(self.frames + other.frames, self.points + other.points, self.faces + other.faces)

    def __len__(self) -> int:
        return len(self.frames)


def render(photo: Photo, motions: Sequence[Motion], frames: range, names: Sequence[str],
           size: Tuple[int, int] = SIZE) -> Clip:
    """The frames ``frames`` of ``photo``'s face following ``motions``, one per vertical strip
    of the canvas, left to right."""
    width, height = size
    edges = np.linspace(0, width, len(motions) + 1).round().astype(int)
    clip = Clip([], [], [])
    for frame in frames:
        canvas = np.zeros((height, width, 3), np.uint8)
        points = []
        for motion, left, right in zip(motions, edges[:-1], edges[1:]):
            matrix = motion.affine(frame, photo)
            warped = cv2.warpAffine(photo.image, matrix, size, flags=cv2.INTER_LINEAR)
            canvas[:, left:right] = warped[:, left:right]
            points.append(photo.points @ matrix[:, :2].T + matrix[:, 2])
        clip.frames.append(canvas)
        clip.points.append(np.array(points).reshape(-1, NUM_LANDMARKS, 2))
        clip.faces.append(tuple(names))
    return clip


# Two faces, one per half of the canvas, out of step.
TWO_FACES = (Motion((120.0, 135.0)), Motion((360.0, 130.0), shift=(-20.0, 12.0), phase=0.35))


def two_faces(n_frames: int, photo: Photo) -> Clip:
    return render(photo, TWO_FACES, range(n_frames), ("left", "right"))


def cut_clip(before: int, after: int, photo: Photo) -> Clip:
    """One face in the right half, then a cut to the face in the left half. Each is drawn
    over the whole canvas, and the other half blanked, where the photo's other, unannotated
    person would show."""
    half = SIZE[0] // 2
    right = render(photo, (Motion((360.0, 135.0), shift=(15.0, 10.0), zoom=0.05),), range(before), ("right",))
    for frame in right.frames:
        frame[:, :half] = 0
    left = render(photo, (Motion((110.0, 140.0), shift=(15.0, 10.0), zoom=0.05),), range(before, before + after),
                  ("left",))
    for frame in left.frames:
        frame[:, half:] = 0
    return right + left


class TruePoints:
    """A landmark source that knows the truth, as a perfect FAN would: for a box that holds
    a face (the centroid of its true landmarks lies in the box and the box side is within a
    factor 2 of the face's), that face's true landmarks with scores 1; for any other box, an
    average-looking face fitted into the box with scores 0, as a trained FAN scores a crop
    without a face."""

    def __init__(self, clip: Clip):
        self.clip = clip
        reference = clip.points[0][0]
        corner = points_box(reference)
        self._unit = (reference - corner[:2]) / (corner[2:] - corner[:2])

    def __call__(self, index: int, image: np.ndarray, boxes: np.ndarray):
        truth = self.clip.points[index]
        centres = truth.mean(axis=1)
        sides = np.sqrt(np.prod(np.ptp(truth, axis=1), axis=1))
        landmarks = np.zeros((len(boxes), NUM_LANDMARKS, 2))
        scores = np.zeros((len(boxes), NUM_LANDMARKS))
        for row, box in enumerate(boxes):
            side = np.sqrt(np.prod(box[2:] - box[:2]))
            holds = (np.all((centres >= box[:2]) & (centres <= box[2:]), axis=1)
                     & (side > sides / 2) & (side < sides * 2))
            if holds.any():
                face = int(np.argmax(holds))
                landmarks[row], scores[row] = truth[face], 1.0
            else:
                landmarks[row] = box[:2] + self._unit * (box[2:] - box[:2])
        return landmarks, scores


def shape_predictor_path() -> str:
    # Not imported: face_recognition_models needs pkg_resources, which is not installed.
    package = importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]
    return os.path.join(package, "models", "shape_predictor_68_face_landmarks.dat")


class ShapePredictor:
    """dlib's trained 68-point shape predictor as a landmark source: real landmarks with real
    errors. It has no scores; every landmark scores 1."""

    def __init__(self):
        self.model = dlib.shape_predictor(shape_predictor_path())

    def __call__(self, index: int, image: np.ndarray, boxes: np.ndarray):
        landmarks = np.zeros((len(boxes), NUM_LANDMARKS, 2))
        for row, box in enumerate(np.round(boxes).astype(int)):
            shape = self.model(image, dlib.rectangle(*map(int, box)))
            landmarks[row] = [(p.x, p.y) for p in shape.parts()]
        return landmarks, np.ones((len(boxes), NUM_LANDMARKS))


def run(source, clip: Clip, landmarks_of) -> list:
    """Each frame's FrameFaces from ``source``, its landmarks fed back as a video loop does."""
    found = []
    for index, frame in enumerate(clip.frames):
        faces = source.boxes(index, frame)
        landmarks, scores = landmarks_of(index, frame, faces.boxes)
        source.observe(index, faces, landmarks, scores)
        found.append(faces)
    return found
