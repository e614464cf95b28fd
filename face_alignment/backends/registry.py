"""The backends networks run on, as data: a name, the factories that build a network on it,
where it runs (contexts), in which precisions, and what must be installed for it.

Every engine has one runner, which runs any described network
(:class:`.description.NetworkDescription`: FAN, ResNetDepth, the face detectors' graphs), made
by the entry's ``runner`` factory ``(description, target) -> callable batch -> [outputs]``
(:func:`build_runner`); FAN and ResNetDepth are wrapped as a :class:`Network` by its
``factory`` ``(weights: Weights, target: Target) -> Network`` (:func:`build_network`). Adding
a backend is one module with both and one entry in :data:`BACKENDS`. A backend that is not
registered can still be named as ``"package.module:Class"``: the class is the network factory,
and its attributes ``contexts``, ``precisions``, ``releases_gil`` and ``runner`` (a callable
``(description, target)``, for the detectors; all optional) say what the entry would.
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


def uncalibrated_precision(precision: Optional[str]) -> str:
    """The precision of a network the accuracy gate does not calibrate (ResNetDepth, the
    detectors) beside a FAN at ``precision``: the same, but fp32 for int8 (the gate makes an
    int8 model for FAN alone)."""
    return DEFAULT_PRECISION if precision in (None, INT8) else precision


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
    runner: str = ""  # "module:attr" of the runner factory; "": runs no other graph than FAN's
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
        BackendSpec("onnxruntime", "face_alignment.backends.onnx_net:OnnxRuntimeNetwork",
                    "face_alignment.backends.onnx_net:onnxruntime_runner", requires=("onnxruntime",),
                    package="onnxruntime", exports_onnx=True, releases_gil=True,
                    description="ONNX Runtime on the CPU, from the shared ONNX export"),
        BackendSpec("nnabla", "face_alignment.backends.nnabla_net:nnabla_network",
                    "face_alignment.backends.nnabla_net:nnabla_runner", contexts=(CPU, "cudnn"),
                    description="NNabla: cpu, or cudnn with nnabla-ext-cuda"),
        BackendSpec("openvino", "face_alignment.backends.openvino_net:openvino_network",
                    "face_alignment.backends.openvino_net:openvino_runner", precisions=PRECISIONS,
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
        runner = f"{name}.runner" if callable(getattr(factory, "runner", None)) else ""
        return BackendSpec(name, name, runner, contexts=tuple(getattr(factory, "contexts", (CPU,))),
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


def _checked_spec(backend: str, target: Target) -> BackendSpec:
    from .onnx_cache import size_limit

    size_limit()  # the export cache's setting, checked before anything is loaded or exported
    spec = backend_spec(backend)
    check_target(spec, target.context, target.precision)
    if not installed(spec):
        raise BackendUnavailableError(f"backend {spec.name!r} needs its package: pip install {spec.package}")
    return spec


def runs_graphs(backend: str) -> bool:
    """Whether ``backend`` has a runner for any described network (the detectors' graphs)."""
    return bool(backend_spec(backend).runner)


def build_runner(description, backend: str, target: Target):
    """``backend``'s runner of ``description`` (a :class:`.description.NetworkDescription`) on
    ``target``: callable on float32 batches, returning the list of the network's outputs."""
    spec = _checked_spec(backend, target)
    if not spec.runner:
        raise BackendUnavailableError(f"backend {spec.name!r} runs FAN only: it has no runner for "
                                      f"{description.name}")
    return load_reference(spec.runner, "backend", BackendUnavailableError, class_only=False)(description, target)


def build_network(weights, backend: str, target: Target) -> Network:
    """``backend``'s network for ``weights`` on ``target``, checked to be one."""
    spec = _checked_spec(backend, target)
    factory = load_reference(spec.factory, "backend", BackendUnavailableError, class_only=spec.name not in BACKENDS)
    network = factory(weights, target)
    if not isinstance(network, Network):
        raise BackendUnavailableError(f"backend {spec.name!r}: its factory made a {type(network).__name__}, "
                                      "not a network (a callable with arch, source and input_channels)")
    return network
