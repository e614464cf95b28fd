"""Where networks run: every network described one way (:mod:`.description`), one exporter to
``.nnp`` / ONNX (:mod:`.export`), one export cache (:mod:`.onnx_cache`), and one runner per
engine, reached through the registry of backends (:mod:`.registry`: NNabla on cpu or cudnn,
ONNX Runtime and OpenVINO on the CPU, or any ``package.module:Class``). docs/runtime.md
describes how they fit."""
from typing import Optional

from ..weights import Weights
from .context import CONTEXTS, TYPE_CONFIGS, cuda_available, default_context_name, make_context
from .export import export_model, export_nnp, export_onnx, onnx_exporter_available
from .onnx_cache import onnx_model_path
from .description import NetworkDescription
from .registry import (BACKENDS, DEFAULT_PRECISION, FP32, PRECISIONS, BackendSpec, Network, Target, available_backends,
                       backend_spec, build_network, build_runner, check_target, default_backend, runs_graphs,
                       uncalibrated_precision)

NNABLA = "nnabla"
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"


def target_of(context, precision: str = DEFAULT_PRECISION, cache_dir: Optional[str] = None) -> Target:
    """A Target from a context name, or from an nnabla context (what callers passed before Targets)."""
    if context is None or isinstance(context, str):
        return Target(context or "cpu", precision=precision, cache_dir=cache_dir)
    name, _, type_config = context.backend[0].partition(":")
    return Target(name, int(getattr(context, "device_id", 0) or 0), type_config or "float", precision, cache_dir)


def make_network(weights: Weights, backend: Optional[str] = None, context=None, precision: str = DEFAULT_PRECISION,
                 cache_dir: Optional[str] = None) -> Network:
    """A callable network (float32 (B, C, 256, 256) in, heatmaps or depths out) on ``backend``
    (a name of :data:`BACKENDS` or ``"package.module:Class"``; default: :func:`default_backend`).
    ``context``: a context name ("cpu", "cudnn") or an nnabla context (default cpu)."""
    if not isinstance(weights, Weights):
        raise TypeError(f"make_network takes Weights (from open_weights or Weights(arch, params)), "
                        f"not {type(weights).__name__}")
    target = target_of(context, precision, cache_dir)
    return build_network(weights, backend or default_backend(target.context), target)


def __getattr__(name):
    # The network classes, imported only when asked for: ONNX Runtime's module is not needed
    # to run NNabla, and neither is needed to build a configuration.
    if name == "NNablaNetwork":
        from .nnabla_net import NNablaNetwork
        return NNablaNetwork
    if name == "OnnxRuntimeNetwork":
        from .onnx_net import OnnxRuntimeNetwork
        return OnnxRuntimeNetwork
    if name == "OpenVinoNetwork":
        from .openvino_net import OpenVinoNetwork
        return OpenVinoNetwork
    raise AttributeError(name)


__all__ = ["BACKENDS", "CONTEXTS", "DEFAULT_PRECISION", "FP32", "NNABLA", "ONNXRUNTIME", "OPENVINO", "PRECISIONS",
           "TYPE_CONFIGS", "BackendSpec", "NNablaNetwork", "Network", "NetworkDescription", "OnnxRuntimeNetwork",
           "OpenVinoNetwork", "Target", "available_backends", "backend_spec", "build_network", "build_runner",
           "check_target", "cuda_available", "default_backend", "default_context_name", "export_model", "export_nnp",
           "export_onnx", "make_context", "make_network", "onnx_exporter_available", "onnx_model_path",
           "runs_graphs", "target_of"]
