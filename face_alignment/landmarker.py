"""From an image and face boxes to landmarks: crop, network, decode, flip, 3D depth (what
ibug's code calls the predictor). Boxes come from anywhere (a detector, a tracker, a file);
:class:`~face_alignment.api.FaceAlignment` adds the detector, the reading of image files and
the batching across images.

    landmarker = Landmarker.from_config(ModelConfig.build("weights/2DFAN4.h5"))
    [(_, _, prediction)] = landmarker.landmarks([(None, rgb_image, boxes)])
"""
import dataclasses
import os
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from .backends.registry import Network, Target, build_network, uncalibrated_precision
from .config import ModelConfig, open_config_weights
from .errors import FaceAlignmentError
from .pipeline.crop import AUTHORS_REFERENCE_SCALE, FaceFrames, crop_faces
from .pipeline.decode import decode, decode_argmax
from .pipeline.depth_input import depth_input_from_points
from .pipeline.flip import flip_crops, unflip_heatmaps
from .registry import Architecture
from .shapes import NUM_LANDMARKS


class Prediction(NamedTuple):
    """The faces of one image. Coordinates are in the image's pixels (the centre of the
    top-left pixel is (0, 0), as in face-alignment); z is in the same unit."""

    landmarks: np.ndarray  # (N, 68, 2) or (N, 68, 3) float64
    scores: np.ndarray  # (N, 68) heatmap peak values
    boxes: np.ndarray  # (N, 4) [left, top, right, bottom]


# One image of a group: what the caller gave (a path, or anything it wants back), the RGB
# image, and its (N, 4) face boxes.
GroupItem = Tuple[Any, np.ndarray, np.ndarray]


class Landmarker:
    """FAN (and ResNetDepth, for 3D) with the steps around them, run a batch of faces at a time."""

    def __init__(self, fan: Network, depth: Optional[Network], arch: Architecture, decode: str = "centroid",
                 flip: bool = False, integer_landmarks: bool = False, reference_scale: float = AUTHORS_REFERENCE_SCALE,
                 batch_size: int = 8):
        self.fan, self.depth, self.arch = fan, depth, arch
        self.decode, self.flip, self.integer_landmarks = decode, flip, integer_landmarks
        self.reference_scale, self.batch_size = reference_scale, batch_size

    @classmethod
    def from_config(cls, config: ModelConfig, cache_dir: Optional[str] = None, weights=None) -> "Landmarker":
        """The networks ``config`` names, on its backend. ``weights``: its (FAN, ResNetDepth)
        Weights if already opened (default: opened here, checked against the sha256s)."""
        fan_weights, depth_weights = weights if weights is not None else open_config_weights(config)
        target = Target(config.context, config.device_id, config.type_config, config.precision, cache_dir)
        fan = build_network(fan_weights, config.backend, target)
        depth_target = dataclasses.replace(target, precision=uncalibrated_precision(config.precision))
        depth = None if depth_weights is None else build_network(depth_weights, config.backend, depth_target)
        return cls(fan, depth, fan_weights.arch, config.decode, config.flip, config.integer_landmarks,
                   config.reference_scale, config.batch_size)

    @property
    def is_3d(self) -> bool:
        return self.depth is not None

    def landmarks(self, group: List[GroupItem], decodes: Optional[Sequence[str]] = None,
                  ) -> Iterator[Tuple[Any, np.ndarray, Union[Prediction, Dict[str, Prediction]]]]:
        """(item, image, Prediction) for each image of the group, in order, decoded as
        :attr:`decode`; or with ``decodes``, several methods on the same heatmaps, (item,
        image, {method: Prediction}). Faces go
        through the networks a batch at a time: crops, heatmaps and depth inputs exist for one
        batch only, so memory is bounded by the batch size, not by the faces in a photo."""
        counts = [len(faces) for _, _, faces in group]
        ends = np.cumsum(counts)
        starts = ends - counts
        methods = tuple(decodes) if decodes else (self.decode,)
        found: Dict[str, Tuple[list, list]] = {m: ([], []) for m in methods}
        # An image of more faces than a batch takes several network runs: a bar (on a terminal)
        # says it is not stuck.
        progress = tqdm(total=int(ends[-1]) if counts else 0, unit="face", leave=False,
                        disable=None if max(counts, default=0) > self.batch_size else True)
        for first in range(0, int(ends[-1]) if counts else 0, self.batch_size):
            last = first + self.batch_size
            crops, frames = [], []
            for (item, image, faces), start, end in zip(group, starts, ends):
                if start < last and end > first and end > start:  # this image has faces in the batch
                    part = faces[max(first - start, 0):min(last, end) - start]
                    try:
                        image_crops, image_frames = crop_faces(image, part, self.arch.crop, self.reference_scale)
                    except FaceAlignmentError as e:  # a box that cannot be cropped: say in which file
                        if not isinstance(item, (str, os.PathLike)):
                            raise
                        raise type(e)(f"{os.fspath(item)}: {e}") from None
                    crops.append(image_crops)
                    frames.append(image_frames)
            crops = np.concatenate(crops)
            heatmaps = self.heatmaps(crops)
            z = self.depths(crops, heatmaps, frames) if self.is_3d else None
            for method in methods:
                points, scores = self.points(heatmaps, frames, method, z)
                found[method][0].append(points)
                found[method][1].append(scores)
            progress.update(len(crops))
        progress.close()
        dims = 3 if self.is_3d else 2
        per_method = {m: (np.concatenate(p) if p else np.zeros((0, NUM_LANDMARKS, dims)),
                          np.concatenate(s) if s else np.zeros((0, NUM_LANDMARKS), np.float32))
                      for m, (p, s) in found.items()}
        for (item, image, faces), start, end in zip(group, starts, ends):
            predictions = {m: Prediction(points[start:end], scores[start:end], faces.copy())
                           for m, (points, scores) in per_method.items()}
            yield item, image, predictions if decodes else predictions[self.decode]

    def heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """FAN's heatmaps of one batch of crops (plus the mirrored crops', with flip)."""
        heatmaps = self.fan(crops)
        if self.flip:
            heatmaps = heatmaps + unflip_heatmaps(self.fan(flip_crops(crops)))
        return heatmaps

    def points(self, heatmaps: np.ndarray, frames: List[FaceFrames], method: str, z: Optional[np.ndarray]):
        """(landmarks in image pixels, scores) of one batch, decoded by ``method``."""
        points_hm, scores = decode(heatmaps, method)
        integer = self.integer_landmarks and method == "argmax"
        points, start = [], 0
        for image_frames in frames:
            end = start + len(image_frames)
            points.append(image_frames.to_image(points_hm[start:end], integer=integer))
            start = end
        points = np.concatenate(points)
        if z is not None:
            points = np.concatenate([points, z[..., None]], axis=2)
        return points, scores

    def depths(self, crops: np.ndarray, heatmaps: np.ndarray, frames: List[FaceFrames]) -> np.ndarray:
        """(N, 68) z of every landmark in image units. ResNetDepth sees what the authors feed
        it, and what it was trained on: the crop and Gaussians drawn at the authors' argmax
        points, whichever decoding gives x and y. So z is one answer per face."""
        points_crop = FaceFrames.to_crop(decode_argmax(heatmaps)[0])
        z = self.depth(depth_input_from_points(crops, points_crop))
        depth_scale = np.concatenate([f.depth_scale for f in frames])
        return z.astype(np.float64) * depth_scale[:, None]
