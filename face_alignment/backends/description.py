"""What the runtime knows of a network: one description, the same for every graph it runs.

FAN, ResNetDepth, the face detectors' graphs (BlazeFace, SFD, RetinaFace) and any graph of
one's own are each a :class:`NetworkDescription`: a name, ``build(x) -> outputs`` over a
parameter scope (nnabla's idiom), a parameter loader (called only when the parameters are
needed: a cached export needs none), the weights' sha256 (what names their exports), the
input shape it is exported at and which of its axes may vary. The exporter
(:mod:`.export`), the export cache (:mod:`.onnx_cache`) and the runners of every engine
(:mod:`.nnabla_net`, :mod:`.onnx_net`, :mod:`.openvino_net`, reached through
:mod:`.registry`) take nothing else.
"""
import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..registry import Architecture

INPUT_NAME = "x"
# Symbolic names of the input axes that may vary (channels never do).
AXIS_NAMES = {0: "batch", 2: "height", 3: "width"}
BATCH = (0,)  # a network taking crops of one size: only the batch varies
ANY_FRAME = (0, 2, 3)  # a detector taking whole frames: batch, height and width vary


@dataclass(frozen=True)
class NetworkDescription:
    """One network as every engine takes it.

    ``build``: input variable -> sequence of output variables, over the current parameter
    scope; ``params``: () -> the parameters by name; ``weights_sha256``: what its exports are
    cached by; ``input_shape``: (B, C, H, W) it is exported at; ``variable_dims``: the input
    axes that may differ from ``input_shape`` at run time (the others are fixed, and part of
    the cache key); ``output_names``: None for ``y0``, ``y1``, ...; ``graph``: whatever else
    shapes the graph (modules, pooling, variant), part of the cache key; ``source``: what
    errors name the weights by, their file."""

    name: str
    build: Callable[..., Sequence]
    params: Callable[[], Dict[str, np.ndarray]]
    weights_sha256: str
    input_shape: Tuple[int, ...]
    variable_dims: Tuple[int, ...] = BATCH
    output_names: Optional[Tuple[str, ...]] = None
    graph: str = ""
    source: str = ""

    def at(self, shape) -> "NetworkDescription":
        """The same network exported at ``shape`` (for a graph whose fixed axes must match)."""
        return dataclasses.replace(self, input_shape=tuple(int(s) for s in shape))

    def names_of_outputs(self, count: int) -> Tuple[str, ...]:
        return self.output_names or tuple(f"y{i}" for i in range(count))

    @property
    def shape_key(self) -> str:
        """The input shape with its variable axes by name: what fixes the exported graph's size."""
        return "x".join(AXIS_NAMES.get(a, str(a)) if a in self.variable_dims else str(s)
                        for a, s in enumerate(self.input_shape))


def fan_description(arch: Architecture, weights_sha256: str, params: Callable[[], Dict[str, np.ndarray]],
                    source: str = "") -> NetworkDescription:
    """FAN or ResNetDepth (``arch``): (B, C, S, S) crops in (S its input size, 256 but for a
    trained variant), one output "y"."""
    from ..nets import build_graph, input_channels

    def build(x):
        return [build_graph(arch.kind, x, **arch.graph_options())]

    # A FAN's sizes join the graph's name only where they differ from the published ones, so the
    # published networks' cache keys stay as they were.
    sizes = "".join(f"/{name}={value}" for name, value in arch.custom_sizes().items())
    return NetworkDescription(arch.name, build, params, weights_sha256,
                              (1, input_channels(arch.kind), arch.input_size, arch.input_size), BATCH, ("y",),
                              f"{arch.kind}/{arch.num_modules}/{arch.pooling}{sizes}", source)


def weights_description(weights) -> NetworkDescription:
    """The description of a :class:`~face_alignment.weights.Weights` (its parameters read
    only if an engine needs them)."""
    return fan_description(weights.arch, weights.sha256, lambda: weights.params, weights.source)
