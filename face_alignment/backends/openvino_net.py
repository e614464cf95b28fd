"""Run a network in OpenVINO on the CPU, at fp32, bf16 or int8, from the project's ONNX export.

fp32 is fp32: OpenVINO runs convolutions in bfloat16 by default on CPUs that have it (AVX512_BF16,
AMX), so the inference precision is always set explicitly. bf16 is that same hint, refused on a
CPU without bfloat16 units, where OpenVINO would quietly run fp32. int8 runs a model quantized
by :mod:`face_alignment.precision` (post-training, calibrated on the user's own face crops) and
written only when its landmarks passed that command's accuracy gate; without one it is refused.
The layers the quantizer kept in float run in fp32.

The FP32/BF16 model is the shared ONNX export (:mod:`.onnx_cache`, which ONNX Runtime uses too);
OpenVINO reads it with its own ONNX front end (no ``onnx`` import). The int8 model sits beside
it in that cache folder, named by the same key; its .bin ends with the digest of both of its
files, which is checked before they are read. The compiled model goes to OpenVINO's CACHE_DIR
in ``openvino/`` there, in a folder named by the same key (weights' sha256 and graph), so a second
process loads it instead of compiling again; OpenVINO's own hash inside it covers the
precision and thread count. One model takes every batch size (a dynamic first dimension).
"""
import logging
import os
from typing import List, Optional

import numpy as np

from ..errors import BackendUnavailableError, PrecisionUnavailableError
from ..nets import input_channels
from ..weights import Weights
from . import onnx_net, signal_stack
from .description import NetworkDescription, weights_description
from .export import holds_its_digest
from .onnx_cache import cache_folder, description_path, load_cached
from .output import checked_output
from .registry import BF16, FP32, INT8, PRECISIONS

log = logging.getLogger(__name__)

OPENVINO_PACKAGE = "openvino"
DEVICE = "CPU"
# OpenVINO's inference precision per precision. int8's layers kept in float run in fp32: they
# were kept because they are sensitive, and the gate measured them so.
_INFERENCE_PRECISION = {FP32: "f32", BF16: "bf16", INT8: "f32"}
# What OpenVINO's OPTIMIZATION_CAPABILITIES list when the CPU has bfloat16 units.
BF16_CAPABILITY = "BF16"
# The command that makes an int8 model (and measures bf16), named in refusals.
GATE_COMMAND = "python -m face_alignment.precision"
INT8_SUFFIX = ".int8.xml"  # OpenVINO IR; its weights are in the .bin beside it
# Where an int8 model records what it was made from, in its rt_info.
RT_INFO_SECTION = "face_alignment"
RT_WEIGHTS_SHA256 = "weights_sha256"


def openvino_core():
    """An OpenVINO Core, or a one-line error saying how to install it."""
    try:
        import openvino as ov
    except ImportError:
        raise BackendUnavailableError(f"backend 'openvino' needs its package: pip install {OPENVINO_PACKAGE}") \
            from None
    return ov.Core()


def cpu_capabilities(core) -> List[str]:
    """OpenVINO's OPTIMIZATION_CAPABILITIES of this CPU (FP32, BF16, INT8, ...)."""
    return list(core.get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))


def check_precision(precision: str, core) -> None:
    """Refuse, in one line, a precision that is unknown or that this CPU cannot run."""
    if precision not in PRECISIONS:
        raise PrecisionUnavailableError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == BF16:
        capabilities = cpu_capabilities(core)
        if BF16_CAPABILITY not in capabilities:
            raise PrecisionUnavailableError(
                f"precision 'bf16' needs a CPU with bfloat16 units (AVX512_BF16 or AMX); OpenVINO finds "
                f"only {', '.join(capabilities) or 'none'} on this one: use 'fp32'")


def _stem(description: NetworkDescription, cache_dir: Optional[str]) -> str:
    """The shared ONNX export's name without its suffix: ``<name>-<key>``."""
    return os.path.splitext(os.path.basename(description_path(description, cache_dir)))[0]


def compiled_cache_dir(weights: Weights, cache_dir: Optional[str] = None) -> str:
    """OpenVINO's CACHE_DIR for these weights: one folder per ONNX cache key."""
    return _compiled_folder(weights_description(weights), cache_dir)


def _compiled_folder(description: NetworkDescription, cache_dir: Optional[str]) -> str:
    return os.path.join(cache_folder(cache_dir), "openvino", _stem(description, cache_dir))


def _writable_folder(folder: str) -> Optional[str]:
    """``folder``, made if need be; None where it cannot be written (a cache shared read-only:
    the model is compiled each time instead of kept)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def int8_model_path(weights: Weights, cache_dir: Optional[str] = None) -> str:
    """Where the accuracy gate writes, and inference looks for, the int8 model of these weights:
    beside their ONNX export, under the same key (which holds the weights' sha256)."""
    return os.path.join(cache_folder(cache_dir), _stem(weights_description(weights), cache_dir) + INT8_SUFFIX)


def openvino_network(weights: Weights, target) -> "OpenVinoNetwork":
    """The backend registry's factory: ``target`` (a :class:`.registry.Target`) gives the
    precision and the export cache."""
    return OpenVinoNetwork(weights, precision=target.precision, cache_dir=target.cache_dir)


def openvino_runner(description: NetworkDescription, target) -> "OpenVinoRunner":
    """The backend registry's runner factory (fp32 or bf16: an int8 model is FAN's alone)."""
    return OpenVinoRunner(description, target.precision, cache_dir=target.cache_dir)


def _int8_command(weights: Weights) -> str:
    return f"{GATE_COMMAND} --model {weights.path or 'WEIGHTS.h5'} --images YOUR_FACES_DIR --precision int8"


def _missing_int8(weights: Weights, detail: str) -> PrecisionUnavailableError:
    return PrecisionUnavailableError(
        f"precision 'int8' needs a model calibrated for {weights.source}; {detail}. Make one (it is written "
        f"only if the landmarks stay close to fp32): {_int8_command(weights)}")


class OpenVinoRunner:
    """A described network (:class:`.description.NetworkDescription`) in OpenVINO on the CPU,
    callable on float32 batches like :class:`.nnabla_net.NNablaRunner`, returning the list of
    its outputs. Its model is the shared ONNX export (exported on first use, again if damaged
    or gone before it was read), or ``model``, an IR given as it is (the gate's int8 model:
    ``check`` is called on it; if it cannot be read, a one-line error naming it).
    ``compile_cache=False`` keeps the compiled model out of OpenVINO's cache."""

    def __init__(self, description: NetworkDescription, precision: str = FP32, threads: Optional[int] = None,
                 cache_dir: Optional[str] = None, model: Optional[str] = None, check=None,
                 compile_cache: bool = True):
        self._core = openvino_core()
        check_precision(precision, self._core)
        self.description = description
        self.source = description.source
        self.precision = precision
        self.threads = onnx_net.thread_count(threads)
        self.compile_options = {
            "INFERENCE_PRECISION_HINT": _INFERENCE_PRECISION[precision],
            "INFERENCE_NUM_THREADS": self.threads,
            # One request at a time, on every thread: the pipeline sends one batch, then waits.
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        compiled = _writable_folder(_compiled_folder(description, cache_dir)) if compile_cache else None
        if compiled is not None:
            self.compile_options["CACHE_DIR"] = compiled
        if model is None:
            self.model_path, self._compiled = load_cached(description, cache_dir, self._compile)
        else:
            self.model_path = model
            self._compiled = self._compile_given(model, check)
        self._request = self._compiled.create_infer_request()

    def _compile(self, path: str, check=None):
        model = self._core.read_model(path)
        if check is not None:
            check(model)
        channels = model.inputs[0].get_partial_shape()[1].get_length()
        onnx_net.check_io(self.description, [i.get_any_name() for i in model.inputs],
                          [o.get_any_name() for o in model.outputs], channels)
        return self._core.compile_model(model, DEVICE, self.compile_options)

    def _compile_given(self, path: str, check):
        try:
            # Damage that keeps the files' sizes would otherwise be read as a model like any other.
            if not holds_its_digest(os.path.splitext(path)[0] + ".bin", covering=(path,)):
                raise ValueError("it and the .bin beside it do not match the digest recorded when they were written")
            return self._compile(path, check)
        except PrecisionUnavailableError:
            raise
        except Exception as e:  # noqa: BLE001 - OpenVINO's errors share no base class but Exception
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise PrecisionUnavailableError(
                f"{path}: unreadable model ({detail[:200]}); delete it (and the .bin beside it) and run "
                f"{GATE_COMMAND} again to make it") from None

    @property
    def inference_precision(self) -> str:
        """What the compiled model says it computes in ("f32", "bf16"): the proof of the hint."""
        return self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def __del__(self):
        # OpenVINO's objects go first; they may leave the thread on a freed signal stack.
        for name in ("_request", "_compiled", "_core"):
            self.__dict__.pop(name, None)
        try:
            signal_stack.repair()
        except Exception:  # noqa: BLE001 - at interpreter exit ctypes or /proc may be gone already
            pass

    def __call__(self, batch: np.ndarray) -> List[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self._request.infer({0: batch})
        return [checked_output(self._request.get_output_tensor(i).data.copy(), self.source)
                for i in range(len(self._compiled.outputs))]


class OpenVinoNetwork:
    """A FAN or ResNetDepth in OpenVINO, callable on float32 batches (B, C, 256, 256) like
    :class:`NNablaNetwork` and :class:`OnnxRuntimeNetwork`. ``int8_model``: the path of a model
    written by the accuracy gate (default: the one found for these weights' sha256).
    ``compile_cache=False`` keeps the compiled model out of OpenVINO's cache (for a model that
    the gate may yet refuse)."""

    def __init__(self, weights: Weights, precision: str = FP32, threads: Optional[int] = None,
                 cache_dir: Optional[str] = None, int8_model: Optional[str] = None, compile_cache: bool = True):
        check_precision(precision, openvino_core())
        self.arch = weights.arch
        self.source = weights.source
        self.precision = precision
        description = weights_description(weights)
        model = self._int8_model(weights, cache_dir, int8_model) if precision == INT8 else None
        self.runner = OpenVinoRunner(description, precision, threads, cache_dir, model,
                                     lambda read: self._check_int8_record(read, weights, model), compile_cache)
        self.model_path = self.runner.model_path
        self.threads = self.runner.threads
        self.compile_options = self.runner.compile_options

    @property
    def input_channels(self) -> int:
        return input_channels(self.arch.kind)

    @property
    def inference_precision(self) -> str:
        return self.runner.inference_precision

    @staticmethod
    def _int8_model(weights: Weights, cache_dir: Optional[str], given: Optional[str]) -> str:
        if given is not None:
            if not os.path.isfile(given):
                raise _missing_int8(weights, f"{given} does not exist")
            return given
        found = int8_model_path(weights, cache_dir)
        if not os.path.isfile(found):
            raise _missing_int8(weights, "none has been made")
        return found

    @staticmethod
    def _check_int8_record(model, weights: Weights, path: str) -> None:
        """An int8 model is used only for the weights it was calibrated and gated on."""
        key = [RT_INFO_SECTION, RT_WEIGHTS_SHA256]
        recorded = model.get_rt_info(key).astype(str) if model.has_rt_info(key) else None
        if recorded != weights.sha256:
            detail = "it records no weights" if recorded is None else "it was made from other weights"
            raise _missing_int8(weights, f"{path}: {detail}")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.runner(batch)[0]
