"""Where a face detector's graph runs: on the model's target (backend, context, precision,
export cache), through the backends' one runner per engine (:func:`~face_alignment.backends.build_runner`).

The target is resolved and checked when the detector is made (a one-line error if the detector
cannot run there), the runner built on first use (an export, the first time, on the engines
built on ONNX). A backend that has no runner for graphs other than FAN's (a ``module:Class``
backend without a ``runner``) runs FAN only: the detector then runs on the fastest backend of
the same context instead, and says so.
"""
import logging
from typing import Optional, Tuple

from ..backends.description import NetworkDescription

log = logging.getLogger(__name__)


def placement(name: str, backend: Optional[str] = None, context=None, precision: Optional[str] = None,
              cache_dir: Optional[str] = None):
    """(backend, Target) detector ``name`` runs on for the model's backend and target, checked
    (one line naming the backend if it cannot run there)."""
    from ..backends import backend_spec, check_target, default_backend, runs_graphs, target_of, uncalibrated_precision

    target = target_of(context, uncalibrated_precision(precision), cache_dir)
    chosen = backend or default_backend(target.context)
    if not runs_graphs(chosen):
        instead = default_backend(target.context)
        log.info("%s: backend %r runs FAN only; %s runs on %s", name, chosen, name, instead)
        chosen = instead
    check_target(backend_spec(chosen), target.context, target.precision)
    return chosen, target


def describe_target(backend: str, target) -> str:
    """What log lines say of where a network runs: ``backend (context, precision)``."""
    return f"{backend} ({target.context}, {target.precision})"


class GraphRuntime:
    """A detector's graphs on one backend and target: a runner per description, built on first
    use. ``per_shape``: the exported model fixes the input's size, so an engine built on ONNX
    gets one runner per input shape (NNabla builds one graph per shape in any case)."""

    def __init__(self, name: str, backend: Optional[str] = None, context=None, precision: Optional[str] = None,
                 cache_dir: Optional[str] = None):
        self.name = name
        self.backend, self.target = placement(name, backend, context, precision, cache_dir)
        self._runners = {}

    @property
    def where(self) -> str:
        return describe_target(self.backend, self.target)

    def runner(self, description: NetworkDescription, shape: Optional[Tuple[int, ...]] = None):
        """The runner of ``description`` (at input ``shape`` when its exported model fixes it)."""
        from ..backends import backend_spec, build_runner

        fixed = shape is not None and backend_spec(self.backend).exports_onnx
        key = tuple(shape) if fixed else None
        if key not in self._runners:
            self._runners[key] = build_runner(description.at(shape) if fixed else description, self.backend,
                                              self.target)
        return self._runners[key]
