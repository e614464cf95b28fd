"""Run a network in NNabla: parameters set once, one graph per input shape, ``forward()`` many times."""
from collections import OrderedDict
from typing import Dict, List

import nnabla as nn
import nnabla.functions as F
import numpy as np

from ..errors import FaceAlignmentError
from ..registry import Architecture
from ..nets import input_channels
from ..shapes import CROP_SIZE
from ..weights.loading import GIVEN_WEIGHTS
from .context import make_context
from .description import NetworkDescription, fan_description
from .output import checked_output


def parameter_store(params: Dict[str, np.ndarray], context) -> "OrderedDict[str, nn.Variable]":
    """A parameter scope's store holding exactly ``params`` (as constants, no gradients), made
    in ``context``: what a network's graphs are built in, apart from every other network's."""
    store = OrderedDict()
    with nn.parameter_scope("", store), nn.context_scope(context):
        for name, value in params.items():
            nn.parameter.get_parameter_or_create(name, value.shape, value, need_grad=False)
    return store


class NNablaRunner:
    """A described network (:class:`.description.NetworkDescription`) in NNabla, callable on
    float32 batches; returns the list of its outputs. One graph per input shape, built on first
    use, and refused if building it had to create a parameter (which would hold arbitrary values)."""

    def __init__(self, description: NetworkDescription, context=None):
        self.description = description
        self.source = description.source
        self.context = context if context is not None else make_context("cpu")
        params = description.params()
        self._scope = parameter_store(params, self.context)
        self._num_params = len(params)
        self._graphs = {}  # input shape -> (input, outputs, sink)

    def parameter_scope(self):
        """nnabla's parameter scope holding exactly this network's parameters (what
        ``nnabla.utils.save`` reads the network's parameters from)."""
        return nn.parameter_scope("", self._scope)

    def graph(self, shape):
        """(input, outputs, sink) of the graph for input ``shape``, built on first use."""
        shape = tuple(int(s) for s in shape)
        if shape not in self._graphs:
            with self.parameter_scope(), nn.context_scope(self.context), nn.auto_forward(False):
                x = nn.Variable(shape)
                outputs = list(self.description.build(x))
                for y in outputs:
                    y.persistent = True
                sink = F.sink(*outputs)
                created = len(nn.get_parameters(grad_only=False)) - self._num_params
            if created:
                raise FaceAlignmentError(f"{self.description.name} ({self.source}): the parameters do not fit "
                                         f"the graph ({created} created)")
            self._graphs[shape] = (x, outputs, sink)
        return self._graphs[shape]

    def __call__(self, batch: np.ndarray) -> List[np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        x, outputs, sink = self.graph(batch.shape)
        x.d = batch
        sink.forward(clear_buffer=True)
        return [checked_output(np.array(y.d, copy=True), self.source) for y in outputs]


def nnabla_runner(description: NetworkDescription, target) -> NNablaRunner:
    """The backend registry's runner factory: ``description`` on ``target``'s context."""
    return NNablaRunner(description, make_context(target.context, target.device_id, target.type_config))


class NNablaNetwork:
    """A FAN or ResNetDepth with its weights, callable on float32 batches (B, C, 256, 256)."""

    def __init__(self, arch: Architecture, params: Dict[str, np.ndarray], context=None,
                 source: str = GIVEN_WEIGHTS):
        self.arch = arch
        self.source = source  # what errors name the weights by: their file
        self.runner = NNablaRunner(fan_description(arch, "", lambda: params, source), context)  # NNabla caches nothing
        self.context = self.runner.context

    @property
    def input_channels(self) -> int:
        return input_channels(self.arch.kind)

    def parameter_scope(self):
        return self.runner.parameter_scope()

    def graph(self, batch_size: int):
        """(input, output) variables of the graph for ``batch_size``, built on first use."""
        x, outputs, _ = self.runner.graph((batch_size, self.input_channels, CROP_SIZE, CROP_SIZE))
        return x, outputs[0]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.runner(batch)[0]


def nnabla_network(weights, target) -> NNablaNetwork:
    """The backend registry's factory: ``weights`` (a Weights) on ``target``'s context."""
    return NNablaNetwork(weights.arch, weights.params, make_context(target.context, target.device_id,
                                                                    target.type_config), weights.source)
