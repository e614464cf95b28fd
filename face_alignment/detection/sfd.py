"""SFD (S3FD), face-alignment's default face detector, in NNabla or ONNX Runtime.

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
from typing import List, Optional, Sequence

import numpy as np

from ..errors import FaceAlignmentError
from ..nets.sfd import STRIDES, s3fd
from .nms import nms
from .torch_weights import TorchDetector, detector_weights, load_detector_h5

NAME = "sfd"
WEIGHTS_FILE = "s3fd-619a316812.pth"
WEIGHTS_URL = "https://www.adrianbulat.com/downloads/python-fan/" + WEIGHTS_FILE
BGR_MEANS = np.array([104.0, 117.0, 123.0], dtype=np.float32)
CANDIDATE_SCORE = 0.05  # cells scoring above this are decoded
VARIANCES = (0.1, 0.2)  # of the centre and of the log size regressors
ANCHOR_STRIDES = 4  # an anchor's side, in strides
NMS_THRESHOLD = 0.3
DEFAULT_THRESHOLD = 0.5
REFERENCE_SCALE = 195.0  # face-alignment's crop divisor for SFD boxes


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
    order = order[scores[order] > threshold]
    boxes = np.empty((order.size, 5))
    boxes[:, :4] = decode(outputs, index, heads[order], cells[order])
    boxes[:, 4] = scores[order]
    return boxes[nms(boxes, np.arange(order.size), NMS_THRESHOLD, offset=1.0)]


class SFDDetector:
    """face-alignment's SFD: ``detect(rgb)`` and ``detect_batch(frames)`` (frames of one size,
    run as one batch). ``weights``: our converted ``.h5`` or face-alignment's ``.pth``
    (converted on first use); None: ``s3fd-619a316812.pth`` in the home folder.
    ``backend``: "nnabla" or "onnxruntime" (default: the fastest available); ``context``:
    an nnabla context (default cpu)."""

    name = NAME
    box_relation = None  # not measured on trained weights here
    reference_scale = REFERENCE_SCALE
    thread_safe = False  # a graph's buffers are shared between calls

    def __init__(self, weights: Optional[str] = None, threshold: float = DEFAULT_THRESHOLD,
                 backend: Optional[str] = None, context=None, allow_pickle: bool = False):
        from ..backends import NNABLA, ONNXRUNTIME, default_backend

        if not CANDIDATE_SCORE <= threshold <= 1:
            raise FaceAlignmentError(f"threshold={threshold}: expected a probability from {CANDIDATE_SCORE} to 1 "
                                     "(SFD decodes only candidates above 0.05)")
        self.threshold = float(threshold)
        self.weights_path = detector_weights(SFD_WEIGHTS, weights, allow_pickle)
        context_name = context.backend[0].split(":")[0] if context is not None else "cpu"
        self.backend = backend or default_backend(context_name)
        params = load_detector_h5(SFD_WEIGHTS, self.weights_path)
        if self.backend == NNABLA:
            from ..backends.graph_net import NNablaGraph

            self.network = NNablaGraph(s3fd, params, self.weights_path, context)
        elif self.backend == ONNXRUNTIME:
            self.network = _onnx_network(self.weights_path, params)
        else:
            raise FaceAlignmentError(f"backend {backend!r}: expected {NNABLA} or {ONNXRUNTIME}")

    def raw_outputs(self, frames: np.ndarray) -> List[np.ndarray]:
        """The network's 12 maps for RGB uint8 frames (B, H, W, 3): per head, face/background
        probabilities (B, 2, h, w) then box regressors (B, 4, h, w)."""
        return self.network(network_input(frames))

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(N, 5) float64 ``[left, top, right, bottom, score]`` in face-alignment's SFD
        coordinates (see the module), best first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> List[np.ndarray]:
        frames = [_checked_rgb(f) for f in frames]
        if not frames:
            return []
        if len({f.shape for f in frames}) > 1:
            raise FaceAlignmentError(f"frames: sizes {sorted({f.shape[:2] for f in frames})}; "
                                     "detect_batch takes frames of one size")
        outputs = self.raw_outputs(np.stack(frames))
        return [faces(outputs, i, self.threshold) for i in range(len(frames))]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.detect(image)


def _onnx_network(weights_path: str, params):
    import os

    from ..backends.graph_net import OnnxGraph
    from ..files import sha256_of
    from ..home import home_dir

    stem = os.path.splitext(os.path.basename(weights_path))[0]
    beside = os.path.join(os.path.dirname(os.path.abspath(weights_path)), f"{stem}.{{key}}.onnx")
    cached = os.path.join(home_dir(), f"{stem}.{{key}}.onnx")
    return OnnxGraph(NAME, s3fd, lambda: params, sha256_of(weights_path), (1, 3, 128, 128), weights_path,
                     [beside, cached])


def _checked_rgb(image) -> np.ndarray:
    # The seam's check_rgb (detection/base.py) replaces this once it lands on this branch.
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise FaceAlignmentError(f"image: expected an RGB uint8 array of shape (H, W, 3), got "
                                 f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', None)}")
    return image
