"""Run a multi-output graph (a face detector's) in NNabla or ONNX Runtime.

FAN's runners (:mod:`.nnabla_net`, :mod:`.onnx_net`) take one fixed-size input and give one
output. A detector sees whole frames of any size and gives several maps, so here the graph is
a function ``build(x) -> [outputs]`` over a parameter scope: NNabla builds it once per input
shape; ONNX gets one model whose batch, height and width are symbolic, exported once per
weights and cached beside them like FAN's (or in the user's cache folder).
"""
import contextlib
import hashlib
import io
import logging
import os
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

import nnabla as nn
import nnabla.functions as F
import numpy as np

from ..errors import BackendUnavailableError, FaceAlignmentError
from ..files import atomic_write
from .context import make_context
from .nnabla_net import parameter_store
from .export import CONVERTER_PACKAGE, EXPORT_EXTRA, ONNX_OPSET, onnx_exporter_available
from .output import checked_output

log = logging.getLogger(__name__)

Build = Callable[[nn.Variable], Sequence[nn.Variable]]
INPUT_NAME = "x"
# Symbolic names of the input's dimensions that may change from call to call (channels may not).
DYNAMIC_DIMS = {0: "batch", 2: "height", 3: "width"}
# Bump whenever an exported detector graph changes: part of every cache key.
GRAPH_EXPORT_VERSION = 1
# Ops whose attributes and constant inputs never hold a spatial size or the batch: a model made
# only of them runs on any frame size once its input's dimensions are made symbolic.
_SHAPE_FREE_OPS = {"Conv", "Relu", "MaxPool", "Concat", "Add", "Sub", "Mul", "Div", "Pow", "ReduceSum",
                   "ReduceMax", "Max", "Softmax", "Split", "Squeeze", "Unsqueeze", "Constant", "Identity",
                   "BatchNormalization", "Sigmoid", "Exp", "Transpose", "Clip", "LeakyRelu", "Resize"}


def output_name(i: int) -> str:
    return f"y{i}"


class NNablaGraph:
    """``build`` with ``params``, callable on float32 batches (B, C, H, W); returns the list of
    outputs. One graph per input shape, built on first use."""

    def __init__(self, build: Build, params: Dict[str, np.ndarray], source: str, context=None):
        self.build = build
        self.source = source  # what errors name the weights by: their file
        self.context = context if context is not None else make_context("cpu")
        self._scope = parameter_store(params, self.context)
        self._num_params = len(params)
        self._graphs = {}  # input shape -> (input, outputs, sink)

    def parameter_scope(self):
        return nn.parameter_scope("", self._scope)

    def graph(self, shape):
        shape = tuple(shape)
        if shape not in self._graphs:
            with self.parameter_scope(), nn.context_scope(self.context), nn.auto_forward(False):
                x = nn.Variable(shape)
                outputs = list(self.build(x))
                for y in outputs:
                    y.persistent = True
                sink = F.sink(*outputs)
                created = len(nn.get_parameters(grad_only=False)) - self._num_params
            if created:  # a parameter the graph had to create would hold arbitrary values
                raise FaceAlignmentError(f"{self.source}: the parameters do not fit the graph ({created} created)")
            self._graphs[shape] = (x, outputs, sink)
        return self._graphs[shape]

    def __call__(self, batch: np.ndarray) -> List[np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        x, outputs, sink = self.graph(batch.shape)
        x.d = batch
        sink.forward(clear_buffer=True)
        return [checked_output(np.array(y.d, copy=True), self.source) for y in outputs]


def onnx_graph_model(name: str, build: Build, params: Dict[str, np.ndarray], example_shape: Sequence[int],
                     any_size: bool = True, opset: int = ONNX_OPSET):
    """The ONNX ``ModelProto`` of ``build`` with ``params`` (input "x", outputs "y0", "y1", ...),
    exported at ``example_shape``; with ``any_size`` then made to take any batch, height and width."""
    if not onnx_exporter_available():
        raise BackendUnavailableError(f"ONNX export needs nnabla-converter and onnx: pip install "
                                      f"{CONVERTER_PACKAGE} (or the project's export extra: {EXPORT_EXTRA})")
    import onnx
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter, exporter
    from nnabla.utils.save import save

    network = NNablaGraph(build, params, name)
    x, outputs, _ = network.graph(example_shape)
    contents = {
        "networks": [{"name": name, "batch_size": example_shape[0], "names": {INPUT_NAME: x},
                      "outputs": {output_name(i): y for i, y in enumerate(outputs)}}],
        "executors": [{"name": "runtime", "network": name, "data": [INPUT_NAME],
                       "output": [output_name(i) for i in range(len(outputs))]}],
    }
    exporter.random_seed = 0  # the exporter numbers its names from a module-level counter
    with tempfile.TemporaryDirectory(prefix="detector-export-") as folder:
        nnp_path = os.path.join(folder, "model.nnp")
        with network.parameter_scope():
            save(nnp_path, contents, parameters=nn.get_parameters(grad_only=False))
        with contextlib.redirect_stdout(io.StringIO()):  # the converter print()s its progress
            nnp = NnpImporter(nnp_path, expand_network=True, executor_index=None).execute()
            model = OnnxExporter(nnp, example_shape[0], -1, opset=str(opset)).export_model_proto()
    if any_size:
        _make_dims_symbolic(model, name)
    onnx.checker.check_model(model, full_check=True)
    return model


def _make_dims_symbolic(model, name: str):
    """Symbolic batch, height and width on the input; outputs' sizes left for the runtime to
    infer. Refused for a graph with an op that might hold a size."""
    graph = model.graph
    unknown = sorted({n.op_type for n in graph.node} - _SHAPE_FREE_OPS)
    if unknown:
        raise FaceAlignmentError(f"{name}: cannot make the input size of an ONNX graph with "
                                 f"{', '.join(unknown)} symbolic")
    initializers = {i.name for i in graph.initializer}
    for value in graph.input:
        if value.name in initializers:
            continue
        for axis, symbol in DYNAMIC_DIMS.items():
            dim = value.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = symbol
    for value in graph.output:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis != 1:
                dim.ClearField("dim_value")
                dim.dim_param = f"{value.name}_{DYNAMIC_DIMS.get(axis, axis)}"
    del graph.value_info[:]  # shapes recorded at the example size


class OnnxGraph:
    """The same graph in ONNX Runtime, from a model exported once into the shared export cache
    (:mod:`.onnx_cache`): callable like :class:`NNablaGraph`. With ``any_size`` one model takes
    every input shape; without, the model takes ``example_shape`` only (for graphs whose
    exported ops hold sizes), and the shape is part of its cache key. ``cache_name``: what the
    cached file is named by; ``params``: called only if the model must be exported."""

    def __init__(self, name: str, build: Build, params: Callable[[], Dict[str, np.ndarray]], weights_sha256: str,
                 example_shape: Sequence[int], source: str, cache_name: str, any_size: bool = True,
                 threads: Optional[int] = None, cache_dir: Optional[str] = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("backend 'onnxruntime' needs its package: pip install onnxruntime") \
                from None
        from .onnx_cache import cached_export, graph_model_path
        from .onnx_net import session_options

        self.source = source
        shape = "any" if any_size else "x".join(map(str, example_shape))
        key = hashlib.sha256(f"{weights_sha256}/{name}/{shape}/opset{ONNX_OPSET}/export{GRAPH_EXPORT_VERSION}"
                             .encode()).hexdigest()[:16]

        def export(path: str) -> None:
            model = onnx_graph_model(name, build, params(), example_shape, any_size)
            with atomic_write(path, force=True) as tmp, open(tmp, "wb") as f:
                f.write(model.SerializeToString())

        self.model_path = cached_export(graph_model_path(cache_name, key, cache_dir), export, name)
        self._session = ort.InferenceSession(self.model_path, session_options(threads),
                                             providers=["CPUExecutionProvider"])
        self._outputs = [output_name(i) for i in range(len(self._session.get_outputs()))]

    def __call__(self, batch: np.ndarray) -> List[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return [checked_output(y, self.source) for y in self._session.run(self._outputs, {INPUT_NAME: batch})]
