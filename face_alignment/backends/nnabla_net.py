"""Run a network in NNabla: parameters set once, one graph per batch size, ``forward()`` many times."""
from collections import OrderedDict
from typing import Dict

import nnabla as nn
import numpy as np

from ..errors import FaceAlignmentError
from ..registry import Architecture
from ..nets import build_graph, input_channels
from ..weights.loading import GIVEN_WEIGHTS
from .context import make_context
from .output import checked_output


def parameter_store(params: Dict[str, np.ndarray], context) -> "OrderedDict[str, nn.Variable]":
    """A parameter scope's store holding exactly ``params`` (as constants, no gradients), made
    in ``context``: what a network's graphs are built in, apart from every other network's."""
    store = OrderedDict()
    with nn.parameter_scope("", store), nn.context_scope(context):
        for name, value in params.items():
            nn.parameter.get_parameter_or_create(name, value.shape, value, need_grad=False)
    return store


class NNablaNetwork:
    """A FAN or ResNetDepth with its weights, callable on float32 batches (B, C, S, S), S its input size."""

    def __init__(self, arch: Architecture, params: Dict[str, np.ndarray], context=None,
                 source: str = GIVEN_WEIGHTS):
        self.arch = arch
        self.source = source  # what errors name the weights by: their file
        self.context = context if context is not None else make_context("cpu")
        self._scope = parameter_store(params, self.context)
        self._num_params = len(params)
        self._graphs = {}  # batch size -> (input, output)

    @property
    def input_channels(self) -> int:
        return input_channels(self.arch.kind)

    def parameter_scope(self):
        """nnabla's parameter scope holding exactly this network's parameters (what
        ``nnabla.utils.save`` reads the network's parameters from)."""
        return nn.parameter_scope("", self._scope)

    def graph(self, batch_size: int):
        """(input, output) variables of the graph for ``batch_size``, built on first use."""
        if batch_size not in self._graphs:
            with self.parameter_scope(), nn.context_scope(self.context), nn.auto_forward(False):
                x = nn.Variable((batch_size, self.input_channels, self.arch.input_size, self.arch.input_size))
                y = build_graph(self.arch.kind, x, **self.arch.graph_options())
                y.persistent = True
                created = len(nn.get_parameters(grad_only=False)) - self._num_params
            # A parameter the graph had to create would hold random values.
            if created:
                raise FaceAlignmentError(f"{self.arch.name}: the parameters do not fit the graph "
                                         f"({created} created)")
            self._graphs[batch_size] = (x, y)
        return self._graphs[batch_size]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        x, y = self.graph(batch.shape[0])
        x.d = batch
        y.forward(clear_buffer=True)
        return checked_output(np.array(y.d, copy=True), self.source)


def nnabla_network(weights, target) -> NNablaNetwork:
    """The backend registry's factory: ``weights`` (a Weights) on ``target``'s context."""
    return NNablaNetwork(weights.arch, weights.params, make_context(target.context, target.device_id,
                                                                    target.type_config), weights.source)
