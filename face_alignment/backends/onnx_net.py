"""Run a network in ONNX Runtime, from the shared ONNX export (:mod:`.onnx_cache`).

A cached model is found by the weights' sha256 and loaded with onnxruntime alone:
nnabla-converter and onnx are imported only to export. Also the CPU engines' thread count.
"""
import logging
import os
from typing import List, Optional

import numpy as np

from ..errors import BackendUnavailableError
from ..weights import Weights
from ..nets import input_channels
from .description import INPUT_NAME, NetworkDescription, weights_description
from .onnx_cache import load_cached
from .output import checked_output
from .registry import FP32

log = logging.getLogger(__name__)
ORT_PACKAGE = "onnxruntime"
# Threads per session when none are given, instead of every core: set by the dataset job's
# Ray workers so that several processes on one machine do not oversubscribe its cores.
THREADS_VARIABLE = "FACE_ALIGNMENT_ORT_THREADS"


def physical_cores() -> int:
    """Cores this process may run on, counting hyper-threads once: a second thread on a
    core's sibling only competes for the same FMA units in these convolution-bound graphs."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = set()
    try:
        with open("/proc/cpuinfo") as f:
            physical = None
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    cores.add((physical, value.strip()))
    except OSError:
        pass
    return max(1, min(allowed, len(cores) or allowed))


def thread_count(threads: Optional[int] = None) -> int:
    """Threads one network runs on: ``threads``, else $FACE_ALIGNMENT_ORT_THREADS, else the
    physical cores. Every CPU backend (ONNX Runtime, OpenVINO) takes the same number."""
    return threads or int(os.environ.get(THREADS_VARIABLE) or 0) or physical_cores()


def session_options(threads: Optional[int] = None):
    """ONNX Runtime options for these graphs on a CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Level ALL adds the NCHWc layout: blocked convolution kernels, and pre-activation
    # BatchNorm+ReLU as a fused depthwise step, much faster than EXTENDED (docs/speed-and-backends.md).
    # Every BN that can be folded into a convolution (bn1, bn_end: a conv's only consumer) already
    # is, at level BASIC; the rest read tensors the blocks' concatenation also needs unnormalised.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = thread_count(threads)
    # One chain of convolutions: nothing for parallel execution of branches to gain.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads sleep instead of spinning. Spinning (even only within a run, with
    # session.force_spinning_stop) gains a little on an idle machine but loses much more when
    # one other process wants a core, as the detector thread running ahead does
    # (docs/speed-and-backends.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT warns about harmless things on stderr
    return options


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailableError(f"backend 'onnxruntime' needs its package: pip install {ORT_PACKAGE}") \
            from None
    return onnxruntime


class OnnxRuntimeRunner:
    """A described network (:class:`.description.NetworkDescription`) in ONNX Runtime, from its
    model in the export cache (exported on first use, again if damaged); callable on float32
    batches like :class:`.nnabla_net.NNablaRunner`, returning the list of its outputs."""

    def __init__(self, description: NetworkDescription, cache_dir: Optional[str] = None,
                 threads: Optional[int] = None):
        _onnxruntime()
        self.description = description
        self.source = description.source
        self._options = session_options(threads)
        self.model_path, self._session = load_cached(description, cache_dir, self._load)
        self._outputs = [o.name for o in self._session.get_outputs()]

    def _load(self, path: str):
        session = _onnxruntime().InferenceSession(path, self._options, providers=["CPUExecutionProvider"])
        check_io(self.description, [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()],
                 session.get_inputs()[0].shape[1])
        return session

    def __call__(self, batch: np.ndarray) -> List[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return [checked_output(y, self.source) for y in self._session.run(self._outputs, {INPUT_NAME: batch})]


def check_io(description: NetworkDescription, inputs: List[str], outputs: List[str], channels) -> None:
    """Refuse a model whose input and outputs are not the described network's."""
    expected = description.output_names
    if inputs != [INPUT_NAME] or channels != description.input_shape[1] or \
            (expected is not None and outputs != list(expected)):
        raise ValueError(f"inputs {inputs}, outputs {outputs}; expected [{INPUT_NAME!r}] with "
                         f"{description.input_shape[1]} channels" + (f", {list(expected)}" if expected else ""))


def onnxruntime_runner(description: NetworkDescription, target) -> OnnxRuntimeRunner:
    """The backend registry's runner factory."""
    return OnnxRuntimeRunner(description, target.cache_dir)


class OnnxRuntimeNetwork:
    """A FAN or ResNetDepth in ONNX Runtime, callable on float32 batches (B, C, 256, 256) like
    :class:`NNablaNetwork`. The cached model is found by the weights' sha256, so on a hit the
    weight values are never read."""

    # What the backend registry reads when this class is named as "module:Class".
    contexts = ("cpu",)
    precisions = (FP32,)
    releases_gil = True

    def __init__(self, weights: Weights, target=None, cache_dir: Optional[str] = None,
                 threads: Optional[int] = None):
        """``target``: a :class:`.registry.Target` (its ``cache_dir`` is used unless
        ``cache_dir`` is given)."""
        if cache_dir is None and target is not None:
            cache_dir = target.cache_dir
        self.arch = weights.arch
        self.source = weights.source  # what errors name the weights by: their file
        self.runner = OnnxRuntimeRunner(weights_description(weights), cache_dir, threads)
        self.model_path = self.runner.model_path

    @property
    def input_channels(self) -> int:
        return input_channels(self.arch.kind)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.runner(batch)[0]
