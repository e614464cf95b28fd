"""Run a network in OpenVINO on the CPU, at fp32, bf16 or int8, from the project's ONNX export.

fp32 is fp32: OpenVINO runs convolutions in bfloat16 by default on CPUs that have it (AVX512_BF16,
AMX), so the inference precision is always set explicitly. bf16 is that same hint, refused on a
CPU without bfloat16 units, where OpenVINO would quietly run fp32. int8 runs a model quantized
by :mod:`face_alignment.precision` (post-training, calibrated on the user's own face crops) and
written only when its landmarks passed that command's accuracy gate; without one it is refused.
The layers the quantizer kept in float run in fp32.

The FP32/BF16 model is the shared ONNX export (:mod:`.onnx_cache`, which ONNX Runtime uses too);
OpenVINO reads it with its own ONNX front end (no ``onnx`` import). The int8 model sits beside
it in that cache folder, named by the same key. The compiled model goes to OpenVINO's CACHE_DIR
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
from . import onnx_net
from .export import INPUT_NAME, OUTPUT_NAME
from .onnx_cache import cache_folder, cached_model_path, onnx_model_path
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


def _cached_stem(weights: Weights, cache_dir: Optional[str]) -> str:
    """The shared ONNX export's name without its suffix: ``<arch>-<key>``."""
    return os.path.splitext(os.path.basename(cached_model_path(weights, cache_dir)))[0]


def compiled_cache_dir(weights: Weights, cache_dir: Optional[str] = None) -> str:
    """OpenVINO's CACHE_DIR for these weights: one folder per ONNX cache key."""
    return os.path.join(cache_folder(cache_dir), "openvino", _cached_stem(weights, cache_dir))


def int8_model_path(weights: Weights, cache_dir: Optional[str] = None) -> str:
    """Where the accuracy gate writes, and inference looks for, the int8 model of these weights:
    beside their ONNX export, under the same key (which holds the weights' sha256)."""
    return os.path.join(cache_folder(cache_dir), _cached_stem(weights, cache_dir) + INT8_SUFFIX)


def openvino_network(weights: Weights, target) -> "OpenVinoNetwork":
    """The backend registry's factory: ``target`` (a :class:`.registry.Target`) gives the
    precision and the export cache."""
    return OpenVinoNetwork(weights, precision=target.precision, cache_dir=target.cache_dir)


def _missing_int8(weights: Weights, detail: str) -> PrecisionUnavailableError:
    model = weights.path or "WEIGHTS.h5"
    return PrecisionUnavailableError(
        f"precision 'int8' needs a model calibrated for {weights.source}; {detail}. Make one (it is written "
        f"only if the landmarks stay close to fp32): {GATE_COMMAND} --model {model} --images YOUR_FACES_DIR "
        "--precision int8")


class OpenVinoNetwork:
    """A FAN or ResNetDepth in OpenVINO, callable on float32 batches (B, C, 256, 256) like
    :class:`NNablaNetwork` and :class:`OnnxRuntimeNetwork`. ``int8_model``: the path of a model
    written by the accuracy gate (default: the one found for these weights' sha256).
    ``compile_cache=False`` keeps the compiled model out of OpenVINO's cache (for a model that
    the gate may yet refuse)."""

    def __init__(self, weights: Weights, precision: str = FP32, threads: Optional[int] = None,
                 cache_dir: Optional[str] = None, int8_model: Optional[str] = None, compile_cache: bool = True):
        core = openvino_core()
        check_precision(precision, core)
        self.arch = weights.arch
        self.source = weights.source
        self.precision = precision
        self.threads = onnx_net.thread_count(threads)
        if precision == INT8:
            self.model_path = self._int8_model(weights, cache_dir, int8_model)
            model = core.read_model(self.model_path)
            self._check_int8_record(model, weights)
        else:
            self.model_path = onnx_model_path(weights, cache_dir)
            model = core.read_model(self.model_path)
        self._check_io(model)
        self.compile_options = {
            "INFERENCE_PRECISION_HINT": _INFERENCE_PRECISION[precision],
            "INFERENCE_NUM_THREADS": self.threads,
            # One request at a time, on every thread: the pipeline sends one batch, then waits.
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        if compile_cache:
            self.compile_options["CACHE_DIR"] = compiled_cache_dir(weights, cache_dir)
        self._compiled = core.compile_model(model, DEVICE, self.compile_options)
        self._request = self._compiled.create_infer_request()

    @property
    def input_channels(self) -> int:
        return input_channels(self.arch.kind)

    @property
    def inference_precision(self) -> str:
        """What the compiled model says it computes in ("f32", "bf16"): the proof of the hint."""
        return self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

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

    def _check_int8_record(self, model, weights: Weights) -> None:
        """An int8 model is used only for the weights it was calibrated and gated on."""
        key = [RT_INFO_SECTION, RT_WEIGHTS_SHA256]
        recorded = model.get_rt_info(key).astype(str) if model.has_rt_info(key) else None
        if recorded != weights.sha256:
            detail = "it records no weights" if recorded is None else "it was made from other weights"
            raise _missing_int8(weights, f"{self.model_path}: {detail}")

    def _check_io(self, model) -> None:
        inputs, outputs = model.inputs, model.outputs
        names = ([i.get_any_name() for i in inputs], [o.get_any_name() for o in outputs])
        if names != ([INPUT_NAME], [OUTPUT_NAME]) or inputs[0].get_partial_shape()[1].get_length() != \
                self.input_channels:
            raise BackendUnavailableError(f"{self.model_path}: inputs {names[0]}, outputs {names[1]}; expected "
                                          f"[{INPUT_NAME!r}] with {self.input_channels} channels, [{OUTPUT_NAME!r}]")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self._request.infer({0: batch})
        return checked_output(self._request.get_output_tensor(0).data.copy(), self.source)
