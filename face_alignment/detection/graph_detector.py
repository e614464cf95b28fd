"""What SFD and RetinaFace share: weights converted from face-alignment's ``.pth``, a graph
run over whole frames on the model's backend (:mod:`.runtime`), and frames of one size run
as one batch.

A subclass names its weights (:class:`.torch_weights.TorchDetector`), its default threshold,
how frames become the network's input and how the network's maps become boxes.
"""
from typing import List, Optional, Sequence

import numpy as np

from ..backends.description import ANY_FRAME, NetworkDescription
from ..errors import FaceAlignmentError
from ..files import sha256_of
from .base import Detector, check_rgb
from .runtime import GraphRuntime
from .torch_weights import TorchDetector, load_detector_weights

# The frame shape ONNX models that take any size are exported at.
_EXAMPLE_SHAPE = (1, 3, 128, 128)


class GraphDetector(Detector):
    """``detect(rgb)`` and ``detect_batch(frames)`` (frames of one size, one batch).
    ``weights``: our converted ``.h5`` or face-alignment's ``.pth`` (converted on first use);
    None: the published ``.pth`` in the home folder. ``backend``: any backend with a runner
    ("nnabla", "onnxruntime", "openvino"; default: the fastest available); ``context``: "cpu",
    "cudnn" or an nnabla context (default cpu); ``precision``: the model's (an int8 model runs
    its detector in fp32); ``cache_dir``: where exported models are kept (default: the export
    cache's folder)."""

    weights_spec: TorchDetector
    # Whether the exported ONNX model takes any frame size; if not, one model per input shape.
    any_size_onnx = True
    box_relation = None  # not measured: no trained weights here
    thread_safe = False  # a graph's buffers are shared between calls

    def __init__(self, weights: Optional[str] = None, threshold: Optional[float] = None,
                 backend: Optional[str] = None, context=None, allow_pickle: bool = False,
                 cache_dir: Optional[str] = None, precision: Optional[str] = None):
        self.threshold = float(self.default_threshold if threshold is None else threshold)
        self.check_threshold(self.threshold)
        self.runtime = GraphRuntime(self.name, backend, context, precision, cache_dir)
        self.backend = self.runtime.backend
        self.weights_path, self._params = load_detector_weights(self.weights_spec, weights, allow_pickle)
        self._description = None

    @property
    def name(self) -> str:
        return self.weights_spec.name

    @classmethod
    def check_threshold(cls, threshold: float, given_as: str = "threshold") -> None:
        if not 0 <= threshold <= 1:
            raise FaceAlignmentError(f"{given_as} {threshold}: expected a probability from 0 to 1")

    @property
    def description(self) -> NetworkDescription:
        """The detector's graph as the runtime takes it (its weights' sha256 read on first use)."""
        if self._description is None:
            params = self._params
            self._description = NetworkDescription(
                self.name, self.weights_spec.build, lambda: params, sha256_of(self.weights_path), _EXAMPLE_SHAPE,
                ANY_FRAME if self.any_size_onnx else (), source=self.weights_path)
        return self._description

    def _network(self, shape):
        return self.runtime.runner(self.description, None if self.any_size_onnx else tuple(shape))

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
