"""RetinaFace (MobileNet-0.25), one of face-alignment 1.5.0's detectors, on the model's backend.

Reproduces face-alignment's ``RetinaFaceDetector``: the whole frame, unresized, minus the
means (104, 117, 123) in the frame's own channel order (face-alignment hands it RGB, though
the means and biubug6's training are BGR's: kept, for parity); two anchors per cell of each
pyramid level (strides 8, 16, 32; squares of 16 and 32, 64 and 128, 256 and 512 px, centred
on the cell), regressors scaled by the variances 0.1 and 0.2, all in float32 as theirs; boxes
scoring above ``threshold`` (0.5), then greedy suppression at IoU 0.4 (sides counted as
``right - left``). face-alignment's crop divides these boxes' size by 165, not 195.

Boxes are in face-alignment's coordinates: anchor centres at ``(i + 0.5) * stride``, i.e.
pixel *edges* at the integers, 0.5 px off the pixel-centre frame of the landmarks.
"""
import functools
from typing import Sequence, Tuple

import numpy as np

from ..nets.retinaface import ANCHOR_SIZES, STEPS, retinaface
from .graph_detector import GraphDetector
from .nms import MAX_CANDIDATES, nms
from .registry import DETECTORS
from .torch_weights import TorchDetector

NAME = "retinaface"
WEIGHTS_FILE, WEIGHTS_URL = DETECTORS[NAME].weights.file_name, DETECTORS[NAME].weights.url
MEANS = np.array([104.0, 117.0, 123.0], dtype=np.float32)  # subtracted from channels 0, 1, 2 as they come
VARIANCES = (0.1, 0.2)
NMS_THRESHOLD = 0.4
DEFAULT_THRESHOLD = 0.5
REFERENCE_SCALE = 165.0  # face-alignment's crop divisor for RetinaFace boxes

_BATCH_NORM = {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "var"}


def _parameter(key: str, value: np.ndarray):
    """``body.stage1.0.0.weight`` (a convolution) -> ``body/stage1/0/0/conv/W``;
    ``body.stage1.0.1.running_var`` (a BatchNorm) -> ``body/stage1/0/1/bn/var``, (1, C, 1, 1).
    Only the heads' 1x1 convolutions have biases: any other 1-D tensor is a BatchNorm's."""
    module, _, leaf = key.rpartition(".")
    scope = module.replace(".", "/")
    if value.ndim == 4 or module.endswith("conv1x1"):
        return f"{scope}/conv/{'W' if leaf == 'weight' else 'b'}", value
    return f"{scope}/bn/{_BATCH_NORM.get(leaf, leaf)}", value.reshape(1, -1, 1, 1)


RETINAFACE_WEIGHTS = TorchDetector(NAME, retinaface, _parameter, WEIGHTS_FILE, WEIGHTS_URL)


def convert_retinaface(src: str, dst: str, force: bool = False, allow_pickle: bool = False) -> str:
    """Convert face-alignment's RetinaFace state dict (``retinaface_mobilenet0.25.pth``) to our ``.h5``."""
    from .torch_weights import convert_torch_detector

    return convert_torch_detector(RETINAFACE_WEIGHTS, src, dst, force=force, allow_pickle=allow_pickle)


def network_input(frames: np.ndarray) -> np.ndarray:
    batch = np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)
    batch -= MEANS[:, None, None]
    return batch


@functools.lru_cache(maxsize=8)
def anchors(height: int, width: int) -> np.ndarray:
    """(N, 4) float32 ``[cx, cy, w, h]`` of every anchor, as fractions of the frame, in the
    networks' order: level, row, column, anchor. Computed in float64 and rounded once, as
    face-alignment's PriorBox does."""
    rows = []
    for step, sizes in zip(STEPS, ANCHOR_SIZES):
        h, w = -(-height // step), -(-width // step)  # ceil: each stride-2 stage rounds up
        y, x, size = np.meshgrid(np.arange(h), np.arange(w), np.array(sizes, dtype=np.float64), indexing="ij")
        rows.append(np.stack([(x + 0.5) * step / width, (y + 0.5) * step / height,
                              size / width, size / height], axis=-1).reshape(-1, 4))
    return np.concatenate(rows).astype(np.float32)


def flatten(outputs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """(box regressors (B, N, 4), face/background probabilities (B, N, 2)) in the anchors'
    order, from the network's maps: what face-alignment's network returns (float32)."""
    def per_anchor(maps, k):
        return np.concatenate([m.transpose(0, 2, 3, 1).reshape(m.shape[0], -1, k) for m in maps], axis=1)

    logits = per_anchor(outputs[0::2], 2)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return per_anchor(outputs[1::2], 4), exp / exp.sum(axis=-1, keepdims=True)


def faces(outputs: Sequence[np.ndarray], index: int, frame_shape, threshold: float = DEFAULT_THRESHOLD):
    """(N, 5) float64 ``[left, top, right, bottom, score]`` of frame ``index``, best first."""
    height, width = frame_shape
    regressors, probabilities = flatten([m[index:index + 1] for m in outputs])
    scores = probabilities[0, :, 1]
    chosen = np.flatnonzero(scores > threshold)
    prior, loc = anchors(height, width)[chosen], regressors[0, chosen]
    # float32 throughout, in face-alignment's order of operations.
    centre = prior[:, :2] + loc[:, :2] * np.float32(VARIANCES[0]) * prior[:, 2:]
    size = prior[:, 2:] * np.exp(loc[:, 2:] * np.float32(VARIANCES[1]))
    corner = centre - size / np.float32(2)
    boxes = np.concatenate([corner, corner + size], axis=1) * np.array([width, height] * 2, dtype=np.float32)
    dets = np.concatenate([boxes, scores[chosen, None]], axis=1)
    keep = nms(dets, dets[:, 4].argsort()[::-1][:MAX_CANDIDATES], NMS_THRESHOLD)
    return dets[keep].astype(np.float64)


class RetinaFaceDetector(GraphDetector):
    """face-alignment's RetinaFace (see the module and :class:`.graph_detector.GraphDetector`).
    Its ONNX model is exported per frame size: its pyramid crops odd-sized upsamplings."""

    weights_spec = RETINAFACE_WEIGHTS
    default_threshold = DEFAULT_THRESHOLD
    reference_scale = REFERENCE_SCALE
    any_size_onnx = False

    def network_input(self, frames: np.ndarray) -> np.ndarray:
        return network_input(frames)

    def boxes(self, outputs: Sequence[np.ndarray], index: int, frame_shape) -> np.ndarray:
        return faces(outputs, index, frame_shape, self.threshold)
