"""Run a network in NNabla: parameters set once, one graph per batch size, ``forward()`` many times."""
from collections import OrderedDict
from typing import Dict

import nnabla as nn
import numpy as np

from ..registry import Architecture
from ..weights.layout import build_graph, input_channels
from .context import make_context


class NNablaNetwork:
    """A FAN or ResNetDepth with its weights, callable on float32 batches (B, C, 256, 256)."""

    def __init__(self, arch: Architecture, params: Dict[str, np.ndarray], context=None):
        self.arch = arch
        self.context = context if context is not None else make_context("cpu")
        self._scope = OrderedDict()
        with nn.parameter_scope("", self._scope), nn.context_scope(self.context):
            for name, value in params.items():
                nn.parameter.get_parameter_or_create(name, value.shape, value, need_grad=False)
        self._num_params = len(params)
        self._graphs = {}  # batch size -> (input, output)

    @property
    def input_channels(self) -> int:
        return input_channels(self.arch.kind)

    def _graph(self, batch_size: int):
        if batch_size not in self._graphs:
            with nn.parameter_scope("", self._scope), nn.context_scope(self.context), nn.auto_forward(False):
                x = nn.Variable((batch_size, self.input_channels, 256, 256))
                y = build_graph(self.arch.kind, x, self.arch.num_modules, self.arch.pooling)
                y.persistent = True
                count = len(nn.get_parameters(grad_only=False))
            # Any parameter the graph had to create would be random: the layout check upstream
            # makes this impossible, and this keeps it so.
            assert count == self._num_params, f"graph created {count - self._num_params} parameters"
            self._graphs[batch_size] = (x, y)
        return self._graphs[batch_size]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        x, y = self._graph(batch.shape[0])
        x.d = batch
        y.forward(clear_buffer=True)
        return np.array(y.d, copy=True)
