"""MediaPipe's BlazeFace face detector, run by NNabla.

The image is letterboxed into the model's square input (scaled to fit, the rest filled with
black, as MediaPipe's ImageToTensorCalculator does with ``keep_aspect_ratio`` and
BORDER_ZERO), so every face in the frame is seen, up to its edges. The outputs are decoded as
MediaPipe's TensorsToDetectionsCalculator does: a sigmoid of each anchor's score logit, box
centre and size (and six keypoints) as offsets in input pixels from the anchor's centre,
anchors from its SsdAnchorsCalculator (fixed size 1, so only their centres count). Boxes
scoring at least ``threshold`` are merged by its NonMaxSuppressionCalculator's WEIGHTED
algorithm: each group of boxes overlapping the best remaining one by IoU > 0.3 becomes their
score-weighted mean, with the best one's score.

``crop="center"`` reproduces face-alignment 1.5.0's BlazeFace front end instead: the image is
resized so that its shorter side fits the input and the middle square is cut out (a face near
the sides of a wide frame is never seen), and the merged boxes take the mean score of their
group (hollance's variant of the blending). Its boxes are exactly face-alignment's.

Boxes are ``[left, top, right, bottom, score]`` rows, best first. With the default crop,
left/top/right/bottom are the box's edges in the image's pixel-centre coordinates (pixel
(0, 0) is centred on (0, 0), so the image spans -0.5 .. W - 0.5); with ``crop="center"``
they are what face-alignment reports (its pixel-edge coordinates, without the half-pixel shift).
"""
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import FaceAlignmentError, WeightsFileError
from ..home import home_dir
from ..nets.blazeface import INPUT_SIZES, NUM_COORDS
from ..registry import AUTHORS_REFERENCE_SCALE
from .blazeface_backends import blazeface_description
from .base import BoxRelation, Detector, check_rgb
from .blazeface_convert import read_blazeface_weights
from .registry import DETECTORS
from .runtime import GraphRuntime

DEFAULT_VARIANT = "full_range"
DEFAULT_THRESHOLD = 0.5
# MediaPipe's face detection graphs: min_suppression_threshold, and the logit clipping
# (score_clipping_thresh) before the sigmoid.
SUPPRESSION_IOU = 0.3
SCORE_CLIP = 100.0
CROPS = ("letterbox", "center")
NUM_KEYPOINTS = 6


# SsdAnchorsCalculator options of MediaPipe's graphs per model: strides of the layers, and
# interpolated_scale_aspect_ratio (> 0 adds a second anchor per layer and cell).
ANCHOR_LAYERS = {"short_range": ((8, 16, 16, 16), 1.0), "back": ((16, 32, 32, 32), 1.0), "full_range": ((4,), 0.0)}


# Where each model's boxes sit on the 68 landmarks: medians measured by
# scripts/calibrate_tracking_boxes.py --detector blazeface --detector blazeface-short (the shared
# photos and their mirror images, faces 90-108 px wide, rolled by -8, 0 and 8 degrees). Full
# range: 72 detections (24 of 96 views missed), 10th-90th percentiles dx -0.18..0.09, dy
# -0.36..-0.01, sides 2.89..3.22; the median's box has IoU 0.87 with the median detection,
# 0.77 with the worst. Short range: 96 detections, dx -0.54..0.52, dy -0.22..0.24, sides
# 2.56..2.90; IoU 0.66 median, 0.56 worst. The back model is not measured.
BOX_RELATIONS = {
    "full_range": BoxRelation(dx=-0.03, dy=-0.2, width=3.072, height=3.072),
    "short_range": BoxRelation(dx=-0.01, dy=-0.005, width=2.683, height=2.683),
}


def published_model(variant: str):
    """The registry's record of MediaPipe's ``.tflite`` of a variant (file, URL, sha256)."""
    return next(spec.weights for spec in DETECTORS.values()
                if spec.factory.endswith(":BlazeFaceDetector") and spec.options.get("variant") == variant)


def default_weights(variant: str = DEFAULT_VARIANT) -> str:
    """Where the converted model of ``variant`` is kept (made on first use, or by scripts/setup.sh)."""
    return os.path.join(home_dir(), f"blazeface_{variant}.h5")


def ssd_anchors(input_size: int, strides: Sequence[int], interpolated_scale_aspect_ratio: float,
                offset: float = 0.5) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in [0, 1], in the model's output order: per run of layers
    with one stride, cell by cell (rows, then columns), that run's anchors of each cell."""
    per_layer = 1 + (interpolated_scale_aspect_ratio > 0)  # one aspect ratio (1.0), maybe interpolated
    centres = []
    first = 0
    while first < len(strides):
        last = first
        while last < len(strides) and strides[last] == strides[first]:
            last += 1
        cells = math.ceil(input_size / strides[first])
        grid = (np.arange(cells) + offset) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, (last - first) * per_layer, axis=0))
        first = last
    return np.concatenate(centres).astype(np.float64)


def decode(raw_boxes: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_size: int
           ) -> Tuple[np.ndarray, np.ndarray]:
    """(boxes (..., N, 16): xmin, ymin, xmax, ymax, then 6 keypoints (x, y), all in [0, 1] of
    the input; scores (..., N)) from the model's regressors (x, y, w, h, keypoints: offsets in
    input pixels) and score logits."""
    raw = np.asarray(raw_boxes, dtype=np.float64) / input_size
    points = raw.reshape(raw.shape[:-1] + (NUM_COORDS // 2, 2)).copy()
    centre, size = points[..., 0, :] + anchors, points[..., 1, :]
    points[..., 2:, :] += anchors[:, None, :]
    points[..., 0, :] = centre - size / 2
    points[..., 1, :] = centre + size / 2
    clipped = np.clip(np.asarray(logits, dtype=np.float64)[..., 0], -SCORE_CLIP, SCORE_CLIP)
    return points.reshape(raw.shape), 1.0 / (1.0 + np.exp(-clipped))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    overlap = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - overlap
    return np.where(union > 0, overlap / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float = SUPPRESSION_IOU,
                 mean_score: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Blend overlapping detections: the best remaining one and every other overlapping it by
    IoU > ``iou`` become their score-weighted mean (all 16 coordinates), scored as the best
    one (MediaPipe) or, with ``mean_score``, as the group's mean score (face-alignment)."""
    order = np.argsort(-scores, kind="stable")
    kept_boxes, kept_scores = [], []
    while order.size:
        best = order[0]
        group = _iou(boxes[best], boxes[order]) > iou
        members = order[group]
        if members.size == 0:  # a box of no area overlaps nothing, not even itself
            kept_boxes.append(boxes[best])
            kept_scores.append(scores[best])
            break  # as MediaPipe's loop, which stops when nothing was taken
        weights = scores[members]
        kept_boxes.append(weights @ boxes[members] / weights.sum())
        kept_scores.append(weights.mean() if mean_score else scores[best])
        order = order[~group]
    return np.array(kept_boxes).reshape(-1, boxes.shape[-1]), np.array(kept_scores)


@dataclass(frozen=True)
class _Placement:
    """How the image sits in the model's input: input x = image x * scale_x + offset_x
    (pixel-edge coordinates, both), and likewise for y."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float


def letterbox(image: np.ndarray, size: int) -> Tuple[np.ndarray, _Placement]:
    """The image scaled to fit a size x size square, centred on black, and where it sits."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    # Area averaging when shrinking (no aliasing); bilinear when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    left, top = (size - new_width) // 2, (size - new_height) // 2
    square = np.zeros((size, size, 3), dtype=np.uint8)
    square[top:top + new_height, left:left + new_width] = resized
    return square, _Placement(new_width / width, new_height / height, left, top)


def center_crop(image: np.ndarray, size: int) -> Tuple[np.ndarray, Tuple[int, int]]:
    """face-alignment 1.5.0's resize_and_crop_image: the shorter side resized to ``size``
    (the other side truncated to an integer), the middle ``size`` columns or rows kept; and
    its shift (x, y) of the crop in the original image, which it computes in original pixels."""
    height, width = image.shape[:2]
    if height > width:
        resized = cv2.resize(image, (size, int(height * (size / float(width)))), interpolation=cv2.INTER_AREA)
        start = (resized.shape[0] - resized.shape[1]) // 2
        return resized[start:start + size], (0, (height - width) // 2)
    resized = cv2.resize(image, (int(width * (size / float(height))), size), interpolation=cv2.INTER_AREA)
    start = (resized.shape[1] - resized.shape[0]) // 2
    return resized[:, start:start + size], ((width - height) // 2, 0)


class BlazeFaceDetector(Detector):
    """MediaPipe's BlazeFace (NNabla), for the detector seam: ``detect(image)`` and
    ``detect_batch(frames)`` return (N, 5) ``[left, top, right, bottom, score]``, best first.

    ``weights``: our ``.h5``, MediaPipe's ``.tflite`` or face-alignment's ``blazeface.pth`` /
    ``blazefaceback.pth`` (converted in memory; the file tells the variant); None: the
    converted ``variant`` model in :func:`face_alignment.home.home_dir` that scripts/setup.sh
    makes. ``threshold``: the least score kept. ``crop``: "letterbox" (the whole image,
    MediaPipe's way) or "center" (face-alignment's centre crop, for parity with it).
    ``backend``: any backend with a runner: "nnabla", "onnxruntime" or "openvino" (the latter
    two export the graph to ONNX the first time and keep it in the export cache; much faster
    on a CPU); default: the fastest available. ``context``: "cpu", "cudnn" or an nnabla
    context (default: cpu). ``precision``: the model's (int8 runs the detector in fp32).
    ``cache_dir``: the export cache's folder, if not the default."""

    name = "blazeface"
    reference_scale = AUTHORS_REFERENCE_SCALE  # face-alignment's divisor for BlazeFace boxes
    thread_safe = False  # NNabla: one graph per batch size, reused

    @classmethod
    def check_threshold(cls, threshold: float, given_as: str = "threshold") -> None:
        if not 0.0 <= threshold <= 1.0:
            raise FaceAlignmentError(f"{given_as} {threshold}: expected a score between 0 and 1")

    def __init__(self, weights: Optional[str] = None, threshold: float = DEFAULT_THRESHOLD,
                 crop: str = "letterbox", variant: Optional[str] = None, backend: Optional[str] = None,
                 context=None, cache_dir: Optional[str] = None, precision: Optional[str] = None):
        if crop not in CROPS:
            raise FaceAlignmentError(f"crop={crop!r}: expected one of {', '.join(CROPS)}")
        if variant is not None and variant not in INPUT_SIZES:
            raise FaceAlignmentError(f"variant={variant!r}: expected one of {', '.join(INPUT_SIZES)}")
        self.check_threshold(threshold)
        self.runtime = GraphRuntime(self.name, backend, context, precision, cache_dir)
        self.backend = self.runtime.backend
        if weights is None:  # the home's conversion, made on first use (blazeface_models)
            from .blazeface_models import converted_default

            chosen = variant or DEFAULT_VARIANT
            weights = converted_default(chosen, default_weights(chosen), published_model(chosen))
        self.variant, params = read_blazeface_weights(weights)
        if variant is not None and variant != self.variant:
            raise WeightsFileError(f"{weights}: holds BlazeFace {self.variant}, not {variant}")
        self.weights = weights
        self.threshold = float(threshold)
        self.crop = crop
        self.box_relation = BOX_RELATIONS.get(self.variant)
        self.input_size = INPUT_SIZES[self.variant]
        self.anchors = ssd_anchors(self.input_size, *ANCHOR_LAYERS[self.variant])
        self.description = blazeface_description(self.variant, params, weights)
        self._runner = None

    @property
    def _network(self):
        """The graph's runner, built on first use (on ONNX engines, exported the first time)."""
        if self._runner is None:
            self._runner = self.runtime.runner(self.description)
        return self._runner

    def raw_outputs(self, squares: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The network's (regressors (B, N, 16), score logits (B, N, 1)) for RGB uint8 inputs
        (B, S, S, 3), scaled to [-1, 1] as MediaPipe's graphs do."""
        boxes, logits = self._network(np.asarray(squares, dtype=np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0)
        return boxes, logits

    def _prepare(self, frame: np.ndarray):
        if self.crop == "center":
            return center_crop(frame, self.input_size)
        return letterbox(frame, self.input_size)

    def _to_image(self, boxes: np.ndarray, frame_shape, placement) -> np.ndarray:
        """Input-normalised xmin, ymin, xmax, ymax -> the image's coordinates (see the module)."""
        size = self.input_size
        if self.crop == "center":  # face-alignment: normalised * the shorter side + its shift
            shift_x, shift_y = placement
            return boxes * min(frame_shape[:2]) + np.array([shift_x, shift_y, shift_x, shift_y])
        p = placement
        scale = np.array([p.scale_x, p.scale_y] * 2)
        offset = np.array([p.offset_x, p.offset_y] * 2)
        return (boxes * size - offset) / scale - 0.5

    def _detections(self, raw_boxes, logits, frame_shape, placement) -> np.ndarray:
        boxes, scores = decode(raw_boxes, logits, self.anchors, self.input_size)
        face_alignments = self.crop == "center"
        keep = scores >= self.threshold
        if not face_alignments:  # MediaPipe drops boxes of negative width or height before merging
            keep &= (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        merged, merged_scores = weighted_nms(boxes[keep], scores[keep], mean_score=face_alignments)
        rows = np.concatenate([self._to_image(merged[:, :4], frame_shape, placement), merged_scores[:, None]], axis=1)
        return rows[np.argsort(-rows[:, 4], kind="stable")]

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_batch([image])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> List[np.ndarray]:
        """:meth:`detect` of each frame, the network run once on all (frames of one size)."""
        frames = [check_rgb(frame) for frame in frames]
        if not frames:
            return []
        if any(frame.shape != frames[0].shape for frame in frames):
            raise FaceAlignmentError(f"detect_batch: frames of different sizes ({frames[0].shape} and others); "
                                     "expected frames of one size")
        prepared = [self._prepare(frame) for frame in frames]
        raw_boxes, logits = self.raw_outputs(np.stack([square for square, _ in prepared]))
        return [self._detections(raw_boxes[i], logits[i], frame.shape, placement)
                for i, (frame, (_, placement)) in enumerate(zip(frames, prepared))]
