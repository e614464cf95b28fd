"""Our networks as files other runtimes load: NNabla's ``.nnp`` and ONNX.

``.nnp`` is written by ``nnabla.utils.save.save`` (network, executor and parameters in one
archive). ONNX is converted from that ``.nnp`` by nnabla-converter's exporter, called in-process
through its Python API (``NnpImporter`` then ``OnnxExporter``: the two steps ``nnabla_cli
convert`` runs) so that the model can be edited before it is written, with no subprocess. The
ONNX exporter needs only the ``onnx`` package: TensorFlow, which nnabla-converter also installs,
is never imported. The converter fixes the batch size; :func:`export_onnx` makes it symbolic.
"""
import contextlib
import importlib.util
import io
import os
import tempfile
from typing import Dict, Optional

import nnabla as nn
import numpy as np

from ..errors import BackendUnavailableError, FaceAlignmentError
from ..files import atomic_write, check_not_there
from ..registry import Architecture
from ..weights import load_weights
from .nnabla_net import NNablaNetwork

# Part of every ONNX cache key: bump it whenever the exported graph changes.
EXPORT_VERSION = 1
# The newest opset nnabla-converter 1.39 writes (it knows 6, 7, 9, 10, 11 and 13); onnxruntime
# runs it, and opset 13's Resize is exactly FAN's nearest-neighbour upsampling.
ONNX_OPSET = 13
INPUT_NAME = "x"
OUTPUT_NAME = "y"
BATCH_DIM = "batch"
CONVERTER_PACKAGE = "nnabla-converter==1.39.0"
EXPORT_EXTRA = "pip install -e '.[export]'"

# Ops whose attributes and constant inputs never hold the batch size, so a symbolic first
# dimension on the graph's input and output is all a model made of them needs. Reshape is
# handled on its own (its shape constant is rewritten), and so is Transpose (the batch must stay
# first, as in BlazeFace's NCHW -> NHWC before its reshapes); anything else stops the export.
_BATCH_FREE_OPS = {"Conv", "BatchNormalization", "Relu", "AveragePool", "MaxPool", "Concat", "Add",
                   "Resize", "Pad", "Constant", "Gemm", "Reshape", "Transpose"}


def export_nnp(arch: Architecture, params: Dict[str, np.ndarray], path: str, force: bool = True) -> str:
    """Write ``arch`` with ``params`` as an ``.nnp`` (input "x", output "y", any batch size)."""
    from nnabla.utils.save import save

    network = NNablaNetwork(arch, params)
    x, y = network.graph(1)
    contents = {
        "networks": [{"name": arch.name, "batch_size": 1, "names": {INPUT_NAME: x}, "outputs": {OUTPUT_NAME: y}}],
        "executors": [{"name": "runtime", "network": arch.name, "data": [INPUT_NAME], "output": [OUTPUT_NAME]}],
    }
    # save() reads the network's parameters from the current scope.
    with network.parameter_scope():
        # atomic_write keeps the extension, which is how save() picks the .nnp format.
        with atomic_write(path, force) as tmp:
            save(tmp, contents, variable_batch_size=True, parameters=nn.get_parameters(grad_only=False))
    return path


def onnx_exporter_available() -> bool:
    """Whether nnabla-converter's ONNX exporter and the onnx package are installed (checked
    without importing them)."""
    if importlib.util.find_spec("onnx") is None:
        return False
    package = os.path.dirname(nn.__file__)
    return os.path.isfile(os.path.join(package, "utils", "converter", "onnx", "exporter.py"))


def onnx_model(arch: Architecture, params: Dict[str, np.ndarray], dynamic_batch: bool = True,
               opset: int = ONNX_OPSET):
    """The ONNX ``ModelProto`` of ``arch`` with ``params``, checked by ``onnx.checker``."""
    if not onnx_exporter_available():
        raise BackendUnavailableError(
            f"ONNX export needs nnabla-converter and onnx: pip install {CONVERTER_PACKAGE} "
            f"(or the project's export extra: {EXPORT_EXTRA})")
    import onnx
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter, exporter

    # The exporter numbers the names it makes from a module-level counter: reset it, so the
    # same weights give the same bytes whatever was exported before in this process.
    exporter.random_seed = 0

    with tempfile.TemporaryDirectory(prefix="fan-export-") as folder:
        nnp_path = export_nnp(arch, params, os.path.join(folder, "model.nnp"))
        # The converter reports its progress with print(); keep it off our output.
        with contextlib.redirect_stdout(io.StringIO()):
            nnp = NnpImporter(nnp_path, expand_network=True, executor_index=None).execute()
            model = OnnxExporter(nnp, 1, -1, opset=str(opset)).export_model_proto()
    if dynamic_batch:
        _make_batch_symbolic(model, arch.name)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(arch: Architecture, params: Dict[str, np.ndarray], path: str, dynamic_batch: bool = True,
                opset: int = ONNX_OPSET, force: bool = True) -> str:
    """Write ``arch`` with ``params`` as ONNX (input "x", output "y"); with ``dynamic_batch``
    the first dimension is symbolic ("batch"), otherwise it is 1."""
    model = onnx_model(arch, params, dynamic_batch, opset)
    with atomic_write(path, force) as tmp:
        with open(tmp, "wb") as f:
            f.write(model.SerializeToString())
    return path


EXPORTERS = {".nnp": export_nnp, ".onnx": export_onnx}


def export_model(weights_path: str, output_path: str, arch: Optional[str] = None,
                 num_modules: Optional[int] = None, force: bool = False) -> Architecture:
    """Export an ``.h5`` weight file to ``output_path``, as ``.nnp`` or ``.onnx`` by its
    extension. Returns the architecture exported."""
    extension = os.path.splitext(output_path)[1].lower()
    if extension not in EXPORTERS:
        raise FaceAlignmentError(f"{output_path}: unknown output format {extension or '(no extension)'!r}; "
                                 f"expected {' or '.join(EXPORTERS)}")
    check_not_there(output_path, force)  # before the export, which takes seconds
    weights = load_weights(weights_path, num_modules=num_modules, arch=arch)
    EXPORTERS[extension](weights.arch, weights.params, output_path, force=force)
    return weights.arch


def _make_batch_symbolic(model, name: str):
    """Let the model take any batch: a symbolic first dimension on the input and output, and
    Reshape shapes that keep the input's batch instead of a fixed number."""
    from onnx import numpy_helper

    graph = model.graph
    unknown = sorted({n.op_type for n in graph.node} - _BATCH_FREE_OPS)
    if unknown:
        raise FaceAlignmentError(f"{name}: cannot make the batch size of an ONNX graph with "
                                 f"{', '.join(unknown)} symbolic")
    initializers = {i.name for i in graph.initializer}
    for value in list(graph.input) + list(graph.output):
        if value.name in initializers:
            continue
        first = value.type.tensor_type.shape.dim[0]
        first.ClearField("dim_value")
        first.dim_param = BATCH_DIM
    # Shapes recorded for intermediate values carry the batch size the converter was given.
    del graph.value_info[:]

    for node in graph.node:  # a transpose is batch-free while the batch stays the first axis
        if node.op_type == "Transpose" and next(list(a.ints) for a in node.attribute if a.name == "perm")[0] != 0:
            raise FaceAlignmentError(f"{name}: Transpose {node.name} moves the batch axis")

    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    for node in graph.node:
        if node.op_type != "Reshape":
            continue
        source = constants.get(node.input[1])
        if source is None:
            raise FaceAlignmentError(f"{name}: Reshape {node.name} takes a computed shape")
        tensor = next(a.t for a in source.attribute if a.name == "value")
        shape = numpy_helper.to_array(tensor).copy()
        if shape[0] > 0:
            shape[0] = 0  # ONNX Reshape: 0 copies the input's dimension, here the batch
            tensor.CopyFrom(numpy_helper.from_array(shape, tensor.name))
