"""SFD (S3FD), face-alignment's default face detector, on the model's backend (:mod:`.runtime`).

Reproduces face-alignment 1.5.0's ``SFDDetector``: the whole frame, unresized, goes through
the network as BGR minus the means (104, 117, 123); every cell whose face probability is
above 0.05 is a candidate box, decoded from its anchor (a square 4 strides wide centred on
the cell, regressors scaled by the variances 0.1 and 0.2); greedy suppression at IoU 0.3
(sides counted as ``right - left + 1``) keeps the best of overlapping boxes, and those
scoring above ``threshold`` (0.5) are the faces.

face-alignment decodes candidates one by one in a Python loop (half the time of a VoxCeleb2
job in their issue #343) and suppresses among all of them. Here the candidates are decoded at
once with numpy, and only those above ``threshold`` are suppressed: the boxes are the same
(see :mod:`.nms`), including which of two equally scored boxes wins.

Boxes are face-alignment's own ``[left, top, right, bottom, score]``: anchor centres at
``stride / 2 + i * stride``, i.e. coordinates whose pixel *edges* are the integers, 0.5 px
right of and below the pixel-centre frame the landmarks use. Parity crops need them as they
are; the default crop's calibration absorbs the half pixel.
"""
from typing import Sequence

import numpy as np

from ..errors import FaceAlignmentError
from ..nets.sfd import STRIDES, s3fd
from ..registry import AUTHORS_REFERENCE_SCALE
from .graph_detector import GraphDetector
from .nms import MAX_CANDIDATES, nms
from .registry import DETECTORS
from .torch_weights import TorchDetector

NAME = "sfd"
WEIGHTS_FILE, WEIGHTS_URL = DETECTORS[NAME].weights.file_name, DETECTORS[NAME].weights.url
BGR_MEANS = np.array([104.0, 117.0, 123.0], dtype=np.float32)
CANDIDATE_SCORE = 0.05  # cells scoring above this are decoded
VARIANCES = (0.1, 0.2)  # of the centre and of the log size regressors
ANCHOR_STRIDES = 4  # an anchor's side, in strides
NMS_THRESHOLD = 0.3
DEFAULT_THRESHOLD = 0.5


def _parameter(key: str, value: np.ndarray):
    """face-alignment's ``conv1_1.weight`` -> ``conv1_1/conv/W``; an L2Norm's ``.weight``
    (one value per channel) -> ``.../scale`` shaped (1, C, 1, 1)."""
    layer, _, leaf = key.rpartition(".")
    if value.ndim == 1 and leaf == "weight":
        return f"{layer}/scale", value.reshape(1, -1, 1, 1)
    return f"{layer}/conv/{'W' if leaf == 'weight' else 'b'}", value


SFD_WEIGHTS = TorchDetector(NAME, s3fd, _parameter, WEIGHTS_FILE, WEIGHTS_URL)


def convert_sfd(src: str, dst: str, force: bool = False, allow_pickle: bool = False) -> str:
    """Convert face-alignment's SFD state dict (``s3fd-619a316812.pth``) to our ``.h5``."""
    from .torch_weights import convert_torch_detector

    return convert_torch_detector(SFD_WEIGHTS, src, dst, force=force, allow_pickle=allow_pickle)


def network_input(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 frames (B, H, W, 3) as the network takes them: float32 (B, 3, H, W), BGR,
    means subtracted."""
    bgr = np.ascontiguousarray(frames[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    bgr -= BGR_MEANS[:, None, None]
    return bgr


def candidates(outputs: Sequence[np.ndarray], index: int = 0):
    """(scores, heads, cells) of frame ``index``'s candidates, in face-alignment's order
    (head by head, row by row): their scores (float32), which head each is from, and the
    flat index of its cell within that head's map."""
    scores, heads, cells = [], [], []
    for head in range(len(STRIDES)):
        face = outputs[2 * head][index, 1].ravel()
        cell = np.flatnonzero(face > CANDIDATE_SCORE)
        scores.append(face[cell])
        cells.append(cell)
        heads.append(np.full(cell.size, head))
    return np.concatenate(scores), np.concatenate(heads), np.concatenate(cells)


def decode(outputs: Sequence[np.ndarray], index: int, heads: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(N, 4) float64 boxes of the given cells of frame ``index``, with face-alignment's
    arithmetic (float32 regressors times the variances, float64 anchors)."""
    boxes = np.empty((heads.size, 4))
    for head, stride in enumerate(STRIDES):
        chosen = np.flatnonzero(heads == head)
        if not chosen.size:
            continue
        regressors = outputs[2 * head + 1][index]
        width = regressors.shape[2]
        row, column = np.divmod(cells[chosen], width)
        loc = regressors[:, row, column].T  # (n, 4) float32
        side = float(stride * ANCHOR_STRIDES)
        centre = np.stack([stride / 2 + column * stride, stride / 2 + row * stride], axis=1).astype(np.float64)
        # Each product in float32 first, then by the anchor's side in float64, as theirs.
        centre = centre + (loc[:, :2] * VARIANCES[0]).astype(np.float64) * side
        size = side * np.exp(loc[:, 2:] * VARIANCES[1]).astype(np.float64)
        corner = centre - size / 2
        boxes[chosen] = np.concatenate([corner, corner + size], axis=1)
    return boxes


def faces(outputs: Sequence[np.ndarray], index: int = 0, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """(N, 5) float64 ``[left, top, right, bottom, score]`` of frame ``index``, best first:
    the candidates above ``threshold`` that survive suppression."""
    scores, heads, cells = candidates(outputs, index)
    # face-alignment's visiting order over all candidates, ties included, cut to those above threshold.
    order = scores.argsort()[::-1]
    order = order[scores[order] > threshold][:MAX_CANDIDATES]
    boxes = np.empty((order.size, 5))
    boxes[:, :4] = decode(outputs, index, heads[order], cells[order])
    boxes[:, 4] = scores[order]
    return boxes[nms(boxes, np.arange(order.size), NMS_THRESHOLD, offset=1.0)]


class SFDDetector(GraphDetector):
    """face-alignment's SFD (see the module and :class:`.graph_detector.GraphDetector`)."""

    weights_spec = SFD_WEIGHTS
    default_threshold = DEFAULT_THRESHOLD
    reference_scale = AUTHORS_REFERENCE_SCALE  # face-alignment's crop divisor for SFD boxes

    @classmethod
    def check_threshold(cls, threshold: float, given_as: str = "threshold") -> None:
        if not CANDIDATE_SCORE <= threshold <= 1:
            raise FaceAlignmentError(f"{given_as} {threshold}: expected a probability from {CANDIDATE_SCORE} to 1 "
                                     "(SFD decodes only candidates above it)")

    def network_input(self, frames: np.ndarray) -> np.ndarray:
        return network_input(frames)

    def boxes(self, outputs: Sequence[np.ndarray], index: int, frame_shape) -> np.ndarray:
        return faces(outputs, index, self.threshold)
