"""Run a network in ONNX Runtime, from the shared ONNX export (:mod:`.onnx_cache`).

A cached model is found by the weights' sha256 and loaded with onnxruntime alone:
nnabla-converter and onnx are imported only to export.
"""
import logging
import os
from typing import Optional

import numpy as np

from ..errors import BackendUnavailableError
from ..weights import Weights
from ..nets import input_channels
from .export import INPUT_NAME, OUTPUT_NAME
from .onnx_cache import onnx_model_path
from .output import checked_output

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
    # BatchNorm+ReLU as a fused depthwise step. 3x faster than EXTENDED at batch 8. Every BN
    # that can be folded into a convolution (bn1, bn_end: a conv's only consumer) already is,
    # at level BASIC; the rest read tensors the blocks' concatenation also needs unnormalised.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = thread_count(threads)
    # One chain of convolutions: nothing for parallel execution of branches to gain.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads sleep instead of spinning. Spinning (even only within a run, with
    # session.force_spinning_stop) was 6% faster at batch 1 on an idle machine here, but 37%
    # slower when one other process wanted a core; the detector thread running ahead does.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT warns about harmless things on stderr
    return options


class OnnxRuntimeNetwork:
    """A FAN or ResNetDepth in ONNX Runtime, callable on float32 batches (B, C, 256, 256) like
    :class:`NNablaNetwork`. The cached model is found by the weights' sha256, so on a hit the
    weight values are never read."""

    # What the backend registry reads when this class is named as "module:Class".
    contexts = ("cpu",)
    precisions = ("fp32",)
    releases_gil = True

    def __init__(self, weights: Weights, target=None, cache_dir: Optional[str] = None,
                 threads: Optional[int] = None):
        """``target``: a :class:`.registry.Target` (its ``cache_dir`` is used unless
        ``cache_dir`` is given)."""
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BackendUnavailableError(f"backend 'onnxruntime' needs its package: pip install {ORT_PACKAGE}") \
                from None
        if cache_dir is None and target is not None:
            cache_dir = target.cache_dir
        self.arch = weights.arch
        self.source = weights.source  # what errors name the weights by: their file
        self._options = session_options(threads)
        self.model_path = onnx_model_path(weights, cache_dir)
        try:
            self._session = self._load(self.model_path)
        except Exception as e:  # onnxruntime's errors share no base class but Exception
            log.warning("%s: unreadable cached ONNX model (%s); exporting it again",
                        self.model_path, str(e).splitlines()[0] if str(e) else type(e).__name__)
            self.model_path = onnx_model_path(weights, cache_dir, rebuild=True)
            self._session = self._load(self.model_path)

    @property
    def input_channels(self) -> int:
        return input_channels(self.arch.kind)

    def _load(self, path: str):
        import onnxruntime as ort

        session = ort.InferenceSession(path, self._options, providers=["CPUExecutionProvider"])
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if ([i.name for i in inputs], [o.name for o in outputs]) != ([INPUT_NAME], [OUTPUT_NAME]) \
                or inputs[0].shape[1] != self.input_channels:
            raise ValueError(f"inputs {[i.name for i in inputs]}, outputs {[o.name for o in outputs]}")
        return session

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return checked_output(self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0], self.source)
