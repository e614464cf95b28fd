"""The photos of a benchmark job: a few annotated photos made into many, each with its face box.

Each source photo has iBUG 68 points beside it (``name.pts``, 1-based); its box is the points'
box widened a little, as a detector's would be. Variants (a crop around the face, a mirror
image, a rescale) move the box with the pixels, so every job image has one known face.
"""
import itertools
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Variant:
    crop: Optional[float] = None  # window of this many face sizes around the face
    flip: bool = False
    scale: float = 1.0

    @property
    def name(self) -> str:
        parts = ([f"crop{self.crop:g}"] if self.crop else []) + (["flip"] if self.flip else []) \
            + ([f"x{self.scale:g}"] if self.scale != 1.0 else [])
        return "-".join(parts) or "original"


# The first ones are the most varied, so that a job over two photos gets a mix of everything.
_FIRST = [Variant(), Variant(flip=True), Variant(scale=0.7), Variant(crop=2.0), Variant(flip=True, scale=0.45),
          Variant(crop=3.0, scale=1.25), Variant(crop=1.4, flip=True), Variant(scale=0.45),
          Variant(crop=1.4, scale=0.7), Variant(crop=3.0, flip=True), Variant(crop=2.0, scale=0.45),
          Variant(crop=2.0, flip=True, scale=1.25)]
VARIANTS: List[Variant] = _FIRST + [
    Variant(c, f, s) for c, f, s in itertools.product((None, 3.0, 2.0, 1.4), (False, True), (1.0, 1.25, 0.7, 0.45))
    if Variant(c, f, s) not in _FIRST]


def read_pts(path: str) -> np.ndarray:
    """(68, 2) points of an iBUG .pts file, in 0-based pixel coordinates."""
    with open(path) as f:
        body = f.read().split("{", 1)[1].split("}", 1)[0]
    return np.array(body.split(), dtype=np.float64).reshape(-1, 2) - 1.0


def box_of_points(points: np.ndarray) -> np.ndarray:
    """[left, top, right, bottom] around the points, widened by 5 % of the width on each side."""
    (left, top), (right, bottom) = points.min(0), points.max(0)
    pad = 0.05 * (right - left)
    return np.array([left - pad, top - pad, right + pad, bottom + pad])


def annotated_photos(folder: str) -> List[Tuple[str, np.ndarray]]:
    """(photo path, face box) for each photo of ``folder`` that has a .pts file beside it."""
    found = []
    for name in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(name)
        pts = os.path.join(folder, stem + ".pts")
        if suffix.lower() in PHOTO_SUFFIXES and os.path.isfile(pts):
            found.append((os.path.join(folder, name), box_of_points(read_pts(pts))))
    if not found:
        raise SystemExit(f"error: {folder}: no photo with an iBUG .pts file beside it")
    return found


def apply_variant(image: np.ndarray, box: np.ndarray, variant: Variant) -> Tuple[np.ndarray, np.ndarray]:
    """The varied image and where the face box lands in it (pixel centres at integers)."""
    box = box.astype(np.float64).copy()
    if variant.crop:
        size = variant.crop * max(box[2] - box[0], box[3] - box[1])
        centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = max(0, int(centre_x - size / 2)), max(0, int(centre_y - size / 2))
        x1 = min(image.shape[1], int(centre_x + size / 2))
        y1 = min(image.shape[0], int(centre_y + size / 2))
        image = image[y0:y1, x0:x1]
        box -= [x0, y0, x0, y0]
    if variant.flip:
        image = image[:, ::-1]
        width = image.shape[1]
        box = np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]])
    if variant.scale != 1.0:
        size = (round(image.shape[1] * variant.scale), round(image.shape[0] * variant.scale))
        shrink = variant.scale < 1.0
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        box = (box + 0.5) * variant.scale - 0.5
    return np.ascontiguousarray(image), box


def make_job(source_folder: str, count: int, destination: str) -> Dict[str, List[List[float]]]:
    """Write ``count`` images to ``destination`` (image k: a variant of photo k mod P); returns
    their face boxes by file name, as ``model_inference.py --boxes`` reads them."""
    photos = annotated_photos(source_folder)
    os.makedirs(destination, exist_ok=True)
    boxes = {}
    for k in range(count):
        path, box = photos[k % len(photos)]
        variant = VARIANTS[(k // len(photos)) % len(VARIANTS)]
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        varied, varied_box = apply_variant(image, box, variant)
        stem = os.path.splitext(os.path.basename(path))[0]
        name = f"{k:02d}_{stem}_{variant.name}.jpg"
        cv2.imwrite(os.path.join(destination, name), varied, [cv2.IMWRITE_JPEG_QUALITY, 95])
        boxes[name] = [[round(float(v), 2) for v in varied_box]]
    return boxes
