"""Where networks run: NNabla (contexts cpu, cudnn) or ONNX Runtime (CPU), and export to
``.nnp`` / ONNX."""
import importlib.util
from typing import Optional, Tuple, Union

from ..errors import BackendUnavailableError
from ..weights import Weights
from .context import CONTEXTS, TYPE_CONFIGS, cuda_available, default_context_name, make_context
from .export import export_model, export_nnp, export_onnx, onnx_exporter_available
from .nnabla_net import NNablaNetwork
from .onnx_net import ORT_PACKAGE, OnnxRuntimeNetwork

NNABLA = "nnabla"
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
# Fastest first at fp32: on a 2-core CPU ONNX Runtime runs FAN-4 about 10x faster than NNabla's
# cpu context; OpenVINO is as fast at fp32, and the one that runs bf16 and int8.
BACKENDS = (ONNXRUNTIME, NNABLA, OPENVINO)
FP32 = "fp32"
# Precisions each backend runs FAN at; lower ones are OpenVINO's (see backends/openvino_net.py).
PRECISIONS = ("fp32", "bf16", "int8")

Network = Union[NNablaNetwork, OnnxRuntimeNetwork]


def available_backends() -> Tuple[str, ...]:
    """The backends whose runtime is installed, fastest first."""
    package = {ONNXRUNTIME: ORT_PACKAGE, OPENVINO: "openvino"}
    return tuple(b for b in BACKENDS if b == NNABLA or importlib.util.find_spec(package[b]) is not None)


def default_backend(context: Optional[str] = None) -> str:
    """The fastest backend that can run here from scratch. ONNX Runtime needs the ONNX exporter
    too (to make its model the first time), and runs on the CPU only: the cudnn context is
    NNabla's."""
    if context == "cudnn":
        return NNABLA
    if ONNXRUNTIME in available_backends() and onnx_exporter_available():
        return ONNXRUNTIME
    return NNABLA


def make_network(weights: Weights, backend: Optional[str] = None, context=None, precision: str = FP32) -> Network:
    """A callable network (float32 (B, C, 256, 256) in, heatmaps or depths out) on ``backend``
    (default: :func:`default_backend`). ``context``: an nnabla context from :func:`make_context`
    (default cpu). ``precision``: one of :data:`PRECISIONS`; below fp32, OpenVINO's."""
    if not isinstance(weights, Weights):
        raise TypeError(f"make_network takes Weights (from open_weights or Weights(arch, params)), "
                        f"not {type(weights).__name__}")
    context_name = context.backend[0].split(":")[0] if context is not None else "cpu"
    backend = backend or default_backend(context_name)
    if precision not in PRECISIONS:
        raise BackendUnavailableError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != FP32 and backend != OPENVINO:
        raise BackendUnavailableError(f"precision {precision!r} runs on backend 'openvino', not {backend!r}")
    if backend == OPENVINO:
        if context_name != "cpu":
            raise BackendUnavailableError(f"backend 'openvino' runs on the CPU here, not in context {context_name!r}")
        from .openvino_net import OpenVinoNetwork

        return OpenVinoNetwork(weights, precision=precision)
    if backend == NNABLA:
        return NNablaNetwork(weights.arch, weights.params, context, weights.source)
    if backend == ONNXRUNTIME:
        if context_name != "cpu":
            raise BackendUnavailableError(
                f"backend 'onnxruntime' runs on the CPU here, not in context {context_name!r}; "
                "use context 'cpu', or backend 'nnabla' for the GPU")
        return OnnxRuntimeNetwork(weights)
    raise BackendUnavailableError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "CONTEXTS", "NNABLA", "ONNXRUNTIME", "OPENVINO", "PRECISIONS", "TYPE_CONFIGS", "NNablaNetwork", "Network",
           "OnnxRuntimeNetwork", "available_backends", "cuda_available", "default_backend",
           "default_context_name", "export_model", "export_nnp", "export_onnx", "make_context",
           "make_network"]
