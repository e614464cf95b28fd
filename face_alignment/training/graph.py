"""FAN's graph for training: the network of :mod:`face_alignment.nets` with ``training`` on,
its inputs for a batch, and ibug's losses; plus the same network in inference mode on the same
parameters, for validation.

The parameters live in one store (a parameter scope of their own): the training graph
updates them, BatchNorm's running statistics included, and the inference graph reads them.
"""
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional

import nnabla as nn
import numpy as np

from ..nets import build_graph
from ..nets.layers import running_statistics, update_running_statistics
from ..registry import Architecture
from ..shapes import RGB_CHANNELS
from ..weights.layout import expected_parameters
from . import losses

# Parameter-name prefixes of each part --freeze can name.
STEM = ("conv1/", "bn1/", "conv2/", "conv3/", "conv4/")
HOURGLASS_PARTS = ("m{i}/", "top_m_{i}/", "conv_last{i}/", "bn_end{i}/", "l{i}/", "bl{i}/", "al{i}/")
# BatchNorm's running statistics: updated by the forward pass, never by a solver.
RUNNING_STATS = ("/bn/mean", "/bn/var")


def part_prefixes(part: str, num_modules: int) -> tuple:
    """The parameter-name prefixes of ``part``: ``stem``, or ``hgN`` (hourglass N and its head)."""
    if part == "stem":
        return STEM
    if part.startswith("hg") and part[2:].isdigit() and int(part[2:]) < num_modules:
        return tuple(p.format(i=int(part[2:])) for p in HOURGLASS_PARTS)
    raise ValueError(f"--freeze {part!r}: expected stem or hg0..hg{num_modules - 1}")


def new_parameters(arch: Architecture, seed: int) -> "OrderedDict[str, np.ndarray]":
    """Random initial parameters (nnabla's initialisers, seeded) of ``arch``, in file order: the
    same for the same seed, whatever this process drew before. nnabla's initialisers draw from
    its own generator (``nnabla.random.prng``), not numpy's, so both are seeded, then put back."""
    from nnabla import random as nnabla_random

    rng_state, nnabla_prng = np.random.get_state(), nnabla_random.prng
    np.random.seed(seed)
    nnabla_random.prng = np.random.RandomState(seed)
    try:
        store = OrderedDict()
        with nn.parameter_scope("", store), nn.auto_forward(False):
            build_graph(arch.kind, nn.Variable((1, RGB_CHANNELS, arch.input_size, arch.input_size)),
                        **arch.graph_options())
            params = {k: v.d.copy() for k, v in nn.get_parameters(grad_only=False).items()}
    finally:
        np.random.set_state(rng_state)
        nnabla_random.prng = nnabla_prng
    return OrderedDict((name, params[name]) for name in expected_parameters(arch.kind, arch.num_modules, arch))


class TrainingGraph:
    """A FAN in training mode for batches of ``batch_size``, its losses, and a solver's view of
    its learnable parameters. ``feed(batch)`` sets the inputs from a batch of the data
    pipeline's arrays; ``forward_backward()`` computes the losses and gradients."""

    def __init__(self, arch: Architecture, params: Dict[str, np.ndarray], batch_size: int,
                 heatmap_weight: float = 1.0, distance_weight: float = 0.0, gamma: float = losses.GAMMA,
                 radius: float = losses.RADIUS, frozen: Iterable[str] = (), context=None):
        self.arch = arch
        self.context = context if context is not None else nn.get_current_context()
        self.store = OrderedDict()
        frozen = tuple(prefix for part in frozen for prefix in part_prefixes(part, arch.num_modules))
        self._frozen = frozen
        with nn.parameter_scope("", self.store), nn.context_scope(self.context):
            for name, value in params.items():
                nn.parameter.get_parameter_or_create(name, value.shape, value, need_grad=self._learns(name))
            size, n = arch.input_size, arch.num_landmarks
            self.crop = nn.Variable((batch_size, RGB_CHANNELS, size, size))
            with nn.auto_forward(False), running_statistics() as self._running:
                self.predicted: List[nn.Variable] = build_graph(
                    arch.kind, self.crop, training=True, all_outputs=True, **arch.graph_options())
                heatmap_shape = self.predicted[-1].shape
                self.heatmaps = nn.Variable(heatmap_shape)
                self.landmarks = nn.Variable((batch_size, n, 2))
                self.normalisers = nn.Variable((batch_size,))
                self.weights = nn.Variable((batch_size,))
                self.heatmap_loss = losses.heatmap_mse(self.predicted, self.heatmaps, self.weights)
                self.distance_loss = losses.landmark_distance(self.predicted, self.landmarks, self.normalisers,
                                                              self.weights, size, gamma, radius)
                self.loss = losses.total_loss(self.heatmap_loss, self.distance_loss, heatmap_weight,
                                              distance_weight)
            created = set(nn.get_parameters(grad_only=False)) - set(params)
        if created:
            raise ValueError(f"{arch.name}: the parameters do not fit the graph ({len(created)} created, "
                             f"e.g. {sorted(created)[0]})")
        for variable in (self.heatmap_loss, self.distance_loss, self.loss):
            variable.persistent = True

    @property
    def variables(self) -> "OrderedDict[str, nn.Variable]":
        """Every parameter (running statistics too), by name."""
        with nn.parameter_scope("", self.store):
            return nn.get_parameters(grad_only=False)

    @property
    def learnable(self) -> "OrderedDict[str, nn.Variable]":
        """What the solver updates: every parameter but the running statistics and the frozen
        parts (by name: building the graph asks for gradients of every parameter it uses)."""
        return OrderedDict((k, v) for k, v in self.variables.items() if self._learns(k))

    def _learns(self, name: str) -> bool:
        return not name.endswith(RUNNING_STATS) and not name.startswith(self._frozen)

    def parameters(self) -> "OrderedDict[str, np.ndarray]":
        return OrderedDict((k, v.d.copy()) for k, v in self.variables.items())

    def set_parameters(self, params: Dict[str, np.ndarray]):
        variables = self.variables
        for name, value in params.items():
            variables[name].d = value

    def feed(self, batch: Dict[str, np.ndarray], weight_norm: Optional[float] = None):
        """Inputs from a batch: ``crop``, ``heatmaps``, ``landmarks``, ``landmark_box_corners``
        and ``weight``, the sample weights divided by ``weight_norm`` when it is positive (ibug
        divides by the training set's mean weight), all ones otherwise."""
        self.crop.d = batch["crop"]
        self.heatmaps.d = batch["heatmaps"]
        self.landmarks.d = batch["landmarks"]
        self.normalisers.d = losses.box_sizes(batch["landmark_box_corners"])
        weights = np.asarray(batch["weight"], np.float32)
        self.weights.d = weights / np.float32(weight_norm) if weight_norm and weight_norm > 0 else np.ones_like(weights)

    def forward_backward(self):
        """Forward (updating BatchNorm's running statistics) and backward into zeroed gradients;
        returns (total, heatmap, distance) losses as floats."""
        self.loss.forward()
        update_running_statistics(self._running)
        for variable in self.variables.values():
            variable.grad.zero()
        self.loss.backward(clear_buffer=True)
        return float(self.loss.d), float(self.heatmap_loss.d), float(self.distance_loss.d)


class InferenceGraph:
    """The same network in inference mode on the training graph's parameters: heatmaps of the
    last hourglass for batches of ``batch_size``."""

    def __init__(self, training: TrainingGraph, batch_size: int):
        arch = training.arch
        with nn.parameter_scope("", training.store), nn.context_scope(training.context), nn.auto_forward(False):
            self.crop = nn.Variable((batch_size, RGB_CHANNELS, arch.input_size, arch.input_size))
            self.heatmaps = build_graph(arch.kind, self.crop, **arch.graph_options())
        self.heatmaps.persistent = True

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        self.crop.d = crops
        self.heatmaps.forward(clear_buffer=True)
        return self.heatmaps.d.copy()
