"""Run a network in ONNX Runtime, from an ONNX model exported once and cached.

The model is exported on first use and kept next to the weight file as
``<stem>.<key>.onnx``; the key is a digest of the weights' sha256 and of everything that shapes
the graph (kind, modules, pooling, opset, export-code version), so changed weights or a changed
exporter never reuse a stale model. Where the weights' folder is not writable the model goes to
the user's cache folder. A cached model is loaded with onnxruntime alone: nnabla-converter and
onnx are imported only to export.
"""
import hashlib
import logging
import os
from typing import List, Optional

import numpy as np

from ..errors import BackendUnavailableError
from ..registry import Architecture
from ..weights import Weights
from ..nets import input_channels
from .export import EXPORT_VERSION, INPUT_NAME, ONNX_OPSET, OUTPUT_NAME
from .output import checked_output

log = logging.getLogger(__name__)
ORT_PACKAGE = "onnxruntime"
CACHE_FOLDER_NAME = "nnabla-face-alignment"
# Threads per session when none are given, instead of every core: set by the dataset job's
# Ray workers so that several processes on one machine do not oversubscribe its cores.
THREADS_VARIABLE = "FACE_ALIGNMENT_ORT_THREADS"


def user_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, CACHE_FOLDER_NAME)


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


def cache_key(arch: Architecture, weights_sha256: str, opset: int = ONNX_OPSET) -> str:
    graph = f"{arch.kind}/{arch.num_modules}/{arch.pooling}/opset{opset}/export{EXPORT_VERSION}"
    return hashlib.sha256(f"{weights_sha256}/{graph}".encode()).hexdigest()[:16]


def cache_candidates(weights: Weights, cache_dir: Optional[str] = None) -> List[str]:
    """Where the ONNX model of these weights may be, in the order it is looked for and written:
    beside the weight file, then the cache folder."""
    key = cache_key(weights.arch, weights.sha256)
    folders = []
    if weights.path is not None:
        stem = os.path.splitext(os.path.basename(weights.path))[0]
        folders.append(os.path.dirname(os.path.abspath(weights.path)))
    else:
        stem = weights.arch.name
    folders.append(cache_dir or user_cache_dir())
    return [os.path.join(folder, f"{stem}.{key}.onnx") for folder in folders]


def _writable(folder: str) -> bool:
    return os.path.isdir(folder) and os.access(folder, os.W_OK)


class OnnxRuntimeNetwork:
    """A FAN or ResNetDepth in ONNX Runtime, callable on float32 batches (B, C, 256, 256) like
    :class:`NNablaNetwork`. The cached model is found by the weights' sha256, so on a hit the
    weight values are never read."""

    def __init__(self, weights: Weights, cache_dir: Optional[str] = None, threads: Optional[int] = None):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BackendUnavailableError(f"backend 'onnxruntime' needs its package: pip install {ORT_PACKAGE}") \
                from None
        self.arch = weights.arch
        self.source = weights.source  # what errors name the weights by: their file
        self._options = session_options(threads)
        candidates = cache_candidates(weights, cache_dir)
        self.model_path, self._session = self._cached_session(candidates)
        if self._session is None:
            self.model_path = self._export(weights, candidates)
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

    def _cached_session(self, candidates: List[str]):
        for path in candidates:
            if os.path.isfile(path):
                try:
                    return path, self._load(path)
                except Exception as e:  # onnxruntime's errors share no base class but Exception
                    log.warning("%s: unreadable cached ONNX model (%s); exporting it again",
                                path, str(e).splitlines()[0] if str(e) else type(e).__name__)
                    return None, None
        return None, None

    @staticmethod
    def _export(weights: Weights, candidates: List[str]) -> str:
        from .export import export_onnx

        target = next((p for p in candidates if _writable(os.path.dirname(p))), None)
        if target is None:
            target = candidates[-1]
            os.makedirs(os.path.dirname(target), exist_ok=True)
        log.info("exporting %s to ONNX (once): %s", weights.arch.name, target)
        return export_onnx(weights.arch, weights.params, target)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return checked_output(self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0], self.source)
