"""What SFD and RetinaFace share: weights converted from face-alignment's ``.pth``, a graph
run on NNabla or ONNX Runtime over whole frames, and frames of one size run as one batch.

A subclass names its weights (:class:`.torch_weights.TorchDetector`), its default threshold,
how frames become the network's input and how the network's maps become boxes.
"""
import os
from typing import List, Optional, Sequence

import numpy as np

from ..errors import FaceAlignmentError
from .base import Detector, check_rgb
from .torch_weights import TorchDetector, detector_weights, load_detector_h5

# The frame shape ONNX models that take any size are exported at.
_EXAMPLE_SHAPE = (1, 3, 128, 128)


class GraphDetector(Detector):
    """``detect(rgb)`` and ``detect_batch(frames)`` (frames of one size, one batch).
    ``weights``: our converted ``.h5`` or face-alignment's ``.pth`` (converted on first use);
    None: the published ``.pth`` in the home folder. ``backend``: "nnabla" or "onnxruntime"
    (default: the fastest available); ``context``: an nnabla context (default cpu);
    ``cache_dir``: where ONNX Runtime's export is kept (default: the export cache's folder)."""

    weights_spec: TorchDetector
    # Whether the exported ONNX model takes any frame size; if not, one model per input shape.
    any_size_onnx = True
    box_relation = None  # not measured: no trained weights here
    thread_safe = False  # a graph's buffers are shared between calls

    def __init__(self, weights: Optional[str] = None, threshold: Optional[float] = None,
                 backend: Optional[str] = None, context=None, allow_pickle: bool = False,
                 cache_dir: Optional[str] = None):
        from ..backends import NNABLA, ONNXRUNTIME, default_backend

        self.threshold = float(self.default_threshold if threshold is None else threshold)
        self.check_threshold(self.threshold)
        self.weights_path = detector_weights(self.weights_spec, weights, allow_pickle)
        context_name = context.backend[0].split(":")[0] if context is not None else "cpu"
        self.backend = backend or default_backend(context_name)
        if self.backend not in (NNABLA, ONNXRUNTIME):
            raise FaceAlignmentError(f"backend {backend!r}: expected {NNABLA} or {ONNXRUNTIME}")
        if self.backend == ONNXRUNTIME and context_name != "cpu":
            raise FaceAlignmentError(f"backend 'onnxruntime' runs on the CPU here, not in context {context_name!r}")
        self._params = load_detector_h5(self.weights_spec, self.weights_path)
        self._networks = {}  # input shape (or None: any) -> callable network
        self._context = context
        self._cache_dir = cache_dir

    @property
    def name(self) -> str:
        return self.weights_spec.name

    def check_threshold(self, threshold: float):
        if not 0 <= threshold <= 1:
            raise FaceAlignmentError(f"threshold={threshold}: expected a probability from 0 to 1")

    def _network(self, shape):
        from ..backends import NNABLA

        key = None if self.backend == NNABLA or self.any_size_onnx else tuple(shape)
        if key not in self._networks:
            if self.backend == NNABLA:
                from ..backends.graph_net import NNablaGraph

                self._networks[key] = NNablaGraph(self.weights_spec.build, self._params, self.weights_path,
                                                  self._context)
            else:
                self._networks[key] = self._onnx_network(key)
        return self._networks[key]

    def _onnx_network(self, shape):
        from ..backends.graph_net import OnnxGraph
        from ..files import sha256_of

        stem = os.path.splitext(os.path.basename(self.weights_path))[0]
        return OnnxGraph(self.name, self.weights_spec.build, lambda: self._params, sha256_of(self.weights_path),
                         shape or _EXAMPLE_SHAPE, self.weights_path, stem, any_size=shape is None,
                         cache_dir=self._cache_dir)

    def network_input(self, frames: np.ndarray) -> np.ndarray:
        """RGB uint8 frames (B, H, W, 3) as the network takes them."""
        raise NotImplementedError

    def raw_outputs(self, frames: np.ndarray) -> List[np.ndarray]:
        """The network's maps for RGB uint8 frames (B, H, W, 3)."""
        batch = self.network_input(frames)
        return self._network(batch.shape)(batch)

    def boxes(self, outputs: Sequence[np.ndarray], index: int, frame_shape) -> np.ndarray:
        """(N, 5) boxes of frame ``index`` from the network's maps."""
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(N, 5) float64 ``[left, top, right, bottom, score]``, best first, in the
        detector's coordinates (see its module)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> List[np.ndarray]:
        frames = [check_rgb(f) for f in frames]
        if not frames:
            return []
        if len({f.shape for f in frames}) > 1:
            raise FaceAlignmentError(f"frames: sizes {sorted({f.shape[:2] for f in frames})}; "
                                     "detect_batch takes frames of one size")
        outputs = self.raw_outputs(np.stack(frames))
        return [self.boxes(outputs, i, frames[0].shape[:2]) for i in range(len(frames))]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.detect(image)
