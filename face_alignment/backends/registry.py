"""The backends networks run on, as data: a name, the factory that builds a network, where it
runs (contexts), in which precisions, and what must be installed for it.

Adding a backend is one module with a factory ``(weights: Weights, target: Target) -> Network``
and one entry in :data:`BACKENDS`. A backend that is not registered can still be named as
``"package.module:Class"``: the class is the factory, and its attributes ``contexts``,
``precisions`` and ``releases_gil`` (all optional) say what the entry would.
"""
import importlib.util
import sys
from dataclasses import dataclass
from typing import Dict, Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from ..errors import BackendUnavailableError
from ..plugins import FORM, is_reference, load_reference
from ..registry import Architecture

FP32, BF16, INT8 = "fp32", "bf16", "int8"
PRECISIONS = (FP32, BF16, INT8)  # what a backend may compute in; fp32 is every backend's
DEFAULT_PRECISION = FP32
CPU = "cpu"


@runtime_checkable
class Network(Protocol):
    """A FAN or ResNetDepth ready to run: float32 (B, C, 256, 256) in [0, 1] -> heatmaps
    (B, 68, 64, 64) or depths (B, 68), checked finite (:func:`.output.checked_output`)."""

    arch: Architecture
    source: str  # what errors name the weights by: their file

    @property
    def input_channels(self) -> int: ...

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Target:
    """Where and how a network runs: what every factory is given besides the weights.
    ``cache_dir``: where exported models are kept (None: :func:`.onnx_cache.cache_folder`)."""

    context: str = CPU
    device_id: int = 0
    type_config: str = "float"
    precision: str = DEFAULT_PRECISION
    cache_dir: Optional[str] = None


@dataclass(frozen=True)
class BackendSpec:
    name: str
    factory: str  # "module:attr", imported when a network is made
    contexts: Tuple[str, ...] = (CPU,)
    precisions: Tuple[str, ...] = (DEFAULT_PRECISION,)
    requires: Tuple[str, ...] = ()  # modules that must be importable (looked for, not imported)
    package: str = ""  # what to install when they are not: "pip install ..."
    exports_onnx: bool = False  # builds on the shared ONNX export, so needs the exporter on first use
    releases_gil: bool = False  # runs without Python's GIL: images are read ahead in a thread meanwhile
    description: str = ""


# Fastest first (docs/speed-and-backends.md): the default is the first that can run
# here. OpenVINO, as fast as ONNX Runtime at fp32, comes last: it is the one that runs bf16 and int8.
BACKENDS: Dict[str, BackendSpec] = {
    s.name: s
    for s in (
        BackendSpec("onnxruntime", "face_alignment.backends.onnx_net:OnnxRuntimeNetwork", requires=("onnxruntime",),
                    package="onnxruntime", exports_onnx=True, releases_gil=True,
                    description="ONNX Runtime on the CPU, from the shared ONNX export"),
        BackendSpec("nnabla", "face_alignment.backends.nnabla_net:nnabla_network", contexts=(CPU, "cudnn"),
                    description="NNabla: cpu, or cudnn with nnabla-ext-cuda"),
        BackendSpec("openvino", "face_alignment.backends.openvino_net:openvino_network", precisions=PRECISIONS,
                    requires=("openvino",), package="openvino", exports_onnx=True, releases_gil=True,
                    description="OpenVINO on the CPU, from the shared ONNX export: fp32, bf16, int8"),
    )
}


def _importable(module: str) -> bool:
    if module in sys.modules:  # None there means "known not to import" (and tests say so)
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed(spec: BackendSpec) -> bool:
    return all(_importable(m) for m in spec.requires)


def backend_spec(name: str) -> BackendSpec:
    """The registered backend ``name``, or the one a ``"package.module:Class"`` names."""
    if name in BACKENDS:
        return BACKENDS[name]
    if is_reference(name):
        factory = load_reference(name, "backend", BackendUnavailableError)
        return BackendSpec(name, name, contexts=tuple(getattr(factory, "contexts", (CPU,))),
                           precisions=tuple(getattr(factory, "precisions", (DEFAULT_PRECISION,))),
                           releases_gil=bool(getattr(factory, "releases_gil", False)))
    raise BackendUnavailableError(f"backend {name!r} is not one of {', '.join(BACKENDS)} (or a {FORM})")


def available_backends() -> Tuple[str, ...]:
    """The registered backends whose runtime is installed, fastest first."""
    return tuple(name for name, spec in BACKENDS.items() if installed(spec))


def default_backend(context: Optional[str] = None) -> str:
    """The fastest backend that can run in ``context`` (default cpu) from scratch: a backend
    built on the ONNX export needs the exporter too, to make its model the first time."""
    from .export import onnx_exporter_available

    context = context or CPU
    for name in available_backends():
        spec = BACKENDS[name]
        if context in spec.contexts and (not spec.exports_onnx or onnx_exporter_available()):
            return name
    return "nnabla"


def check_target(spec: BackendSpec, context: str, precision: str) -> None:
    """Refuse, in one line naming the backend, a context or precision it cannot run in."""
    if context not in spec.contexts:
        others = [n for n, s in BACKENDS.items() if context in s.contexts]
        raise BackendUnavailableError(
            f"backend {spec.name!r} runs in context {', '.join(map(repr, spec.contexts))} here, not {context!r}; "
            f"use context {spec.contexts[0]!r}" + (f", or backend {', '.join(map(repr, others))}" if others else ""))
    if precision not in PRECISIONS:
        raise BackendUnavailableError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision not in spec.precisions:
        others = [n for n, s in BACKENDS.items() if precision in s.precisions]
        raise BackendUnavailableError(f"precision {precision!r} runs on backend {', '.join(map(repr, others))}, "
                                      f"not {spec.name!r} (which runs {', '.join(spec.precisions)})")


def build_network(weights, backend: str, target: Target) -> Network:
    """``backend``'s network for ``weights`` on ``target``, checked to be one."""
    spec = backend_spec(backend)
    check_target(spec, target.context, target.precision)
    if not installed(spec):
        raise BackendUnavailableError(f"backend {spec.name!r} needs its package: pip install {spec.package}")
    factory = load_reference(spec.factory, "backend", BackendUnavailableError, class_only=spec.name not in BACKENDS)
    network = factory(weights, target)
    if not isinstance(network, Network):
        raise BackendUnavailableError(f"backend {spec.name!r}: its factory made a {type(network).__name__}, "
                                      "not a network (a callable with arch, source and input_channels)")
    return network
