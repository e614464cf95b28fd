"""The faces the gate calibrates on and measures with: every face of the user's images, cropped
as inference crops it (the project's crop code, the model's convention), from given boxes or
found by the detector."""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..errors import FaceAlignmentError
from ..pipeline.crop import AUTHORS_REFERENCE_SCALE, FaceFrames, crop_faces
from ..pipeline.image import list_images, read_image
from ..registry import Architecture


@dataclass
class Faces:
    """Crops (N, 3, 256, 256) float32 of N faces, their boxes (N, 4), and per image its path and
    FaceFrames (which map heatmap points back to that image's pixels), in the order of the crops."""

    crops: np.ndarray
    boxes: np.ndarray
    images: List[str]
    frames: List[FaceFrames]

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def sizes(self) -> np.ndarray:
        """(N,) each face's size in pixels: sqrt(width * height) of its box, the evaluation's
        face-size normaliser, taken from the box so that it does not depend on the network."""
        extent = self.boxes[:, 2:] - self.boxes[:, :2]
        return np.sqrt(extent[:, 0] * extent[:, 1])

    def to_image(self, points_hm: np.ndarray) -> np.ndarray:
        """(N, L, 2) heatmap points of these faces to image pixels."""
        found, start = [], 0
        for frames in self.frames:
            found.append(frames.to_image(points_hm[start:start + len(frames)]))
            start += len(frames)
        return np.concatenate(found)


def gather_faces(arch: Architecture, folder: str, boxes: Optional[List[Optional[np.ndarray]]] = None,
                 max_faces: Optional[int] = None, reference_scale: float = AUTHORS_REFERENCE_SCALE) -> Faces:
    """The faces of the images in ``folder``. ``boxes``: one (N, 4) array (or None: detect) per
    image of ``image_paths(folder)``. At most ``max_faces``, taken in file order."""
    paths = image_paths(folder)
    detector = None
    crops, found, images, frames = [], [], [], []
    count = 0
    for index, path in enumerate(paths):
        if max_faces is not None and count >= max_faces:
            break
        image = read_image(path)
        given = None if boxes is None else boxes[index]
        if given is None:
            if detector is None:
                from ..detection.registry import DEFAULT_DETECTOR, crop_boxes, load_detector

                detector = load_detector(DEFAULT_DETECTOR)
            given = crop_boxes(detector, detector.detect(image))
        if max_faces is not None:
            given = given[:max_faces - count]
        if len(given) == 0:
            continue
        image_crops, image_frames = crop_faces(image, given, arch.crop, reference_scale)
        crops.append(image_crops)
        found.append(np.asarray(given, dtype=np.float64))
        images.append(path)
        frames.append(image_frames)
        count += len(given)
    if not crops:
        raise FaceAlignmentError(f"{folder}: no faces found in {len(paths)} images; give boxes (--boxes) or "
                                 "images with faces the detector finds")
    return Faces(np.concatenate(crops), np.concatenate(found), images, frames)


def image_paths(folder: str) -> List[str]:
    paths = list_images(folder)
    if not paths:
        raise FaceAlignmentError(f"{folder}: no images (expected .jpg, .png, ... files)")
    return paths
