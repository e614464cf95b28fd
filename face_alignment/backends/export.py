"""The one exporter: a described network (:mod:`.description`) as the files other runtimes load,
NNabla's ``.nnp`` and ONNX.

``.nnp`` is written by ``nnabla.utils.save.save`` (network, executor and parameters in one
archive). ONNX is converted from that ``.nnp`` by nnabla-converter's exporter, called in-process
through its Python API (``NnpImporter`` then ``OnnxExporter``: the two steps ``nnabla_cli
convert`` runs) so that the model can be edited before it is written, with no subprocess. The
ONNX exporter needs only the ``onnx`` package: TensorFlow, which nnabla-converter also installs,
is never imported. The converter fixes every dimension; :func:`make_dims_symbolic` then frees
those the description says may vary.
"""
import contextlib
import hashlib
import dataclasses
import importlib.util
import io
import os
import types
from typing import Dict, Mapping, Optional, Sequence

import nnabla as nn
import numpy as np

from ..errors import BackendUnavailableError, FaceAlignmentError
from ..files import atomic_write, check_not_there
from ..registry import Architecture
from ..weights import load_weights
from .description import AXIS_NAMES, INPUT_NAME, NetworkDescription, fan_description

# The one export version: part of every cached model's key (:mod:`.onnx_cache`). Bump it
# whenever an exported graph changes (this module, or any network's build).
EXPORT_VERSION = 2
# The newest opset nnabla-converter 1.39 writes (it knows 6, 7, 9, 10, 11 and 13); onnxruntime
# runs it, and opset 13's Resize is exactly FAN's nearest-neighbour upsampling.
ONNX_OPSET = 13
OUTPUT_NAME = "y"  # FAN's and ResNetDepth's one output
BATCH_DIM = AXIS_NAMES[0]
CONVERTER_PACKAGE = "nnabla-converter==1.39.0"
EXPORT_EXTRA = "pip install -e '.[export]'"
# What the exporter's temporary folders were called before it kept the graph in memory: one a
# killed export of an earlier version left is removed by the cache.
TEMP_FOLDER_PREFIX = "fan-export-"

# Every ONNX file written here ends with the sha256 of the bytes before it, in a protobuf field
# of this number (unknown to ONNX, so skipped by every reader): the export cache checks it on
# load, so a damaged or cut-short model is never used.
_DIGEST_FIELD = 0x1FA5
_DIGEST_LABEL = b"face_alignment.sha256:"

# Ops whose attributes and constant inputs never hold a spatial size or the batch: a model made
# only of them runs on any input size once its input's dimensions are made symbolic.
_SHAPE_FREE_OPS = {"Conv", "Relu", "MaxPool", "Concat", "Add", "Sub", "Mul", "Div", "Pow", "ReduceSum",
                   "ReduceMax", "Max", "Softmax", "Split", "Squeeze", "Unsqueeze", "Constant", "Identity",
                   "BatchNormalization", "Sigmoid", "Exp", "Transpose", "Clip", "LeakyRelu", "Resize"}
# Ops that may hold a spatial size but never the batch: allowed when only the batch varies.
# Reshape's shape constant is rewritten to keep the input's batch, and a Transpose must keep
# the batch first (as BlazeFace's NCHW -> NHWC before its reshapes); anything else stops the export.
_BATCH_FREE_OPS = _SHAPE_FREE_OPS | {"AveragePool", "Gemm", "Reshape", "Pad"}


def onnx_exporter_available() -> bool:
    """Whether nnabla-converter's ONNX exporter and the onnx package are installed (checked
    without importing them)."""
    if importlib.util.find_spec("onnx") is None:
        return False
    package = os.path.dirname(nn.__file__)
    return os.path.isfile(os.path.join(package, "utils", "converter", "onnx", "exporter.py"))


def _nnp_contents(description: NetworkDescription):
    """(the runner, what nnabla's save() takes for the described network: input "x", its
    outputs, one executor)."""
    from .nnabla_net import NNablaRunner

    runner = NNablaRunner(description)
    x, outputs, _ = runner.graph(description.input_shape)
    names = description.names_of_outputs(len(outputs))
    return runner, {
        "networks": [{"name": description.name, "batch_size": description.input_shape[0],
                      "names": {INPUT_NAME: x}, "outputs": dict(zip(names, outputs))}],
        "executors": [{"name": "runtime", "network": description.name, "data": [INPUT_NAME],
                       "output": list(names)}],
    }


def write_nnp(description: NetworkDescription, path: str, force: bool = True) -> str:
    """Write the described network as an ``.nnp`` (input "x", its outputs, any batch size)."""
    from nnabla.utils.save import save

    runner, contents = _nnp_contents(description)
    # save() reads the network's parameters from the current scope.
    with runner.parameter_scope():
        # atomic_write keeps the extension, which is how save() picks the .nnp format.
        with atomic_write(path, force) as tmp:
            save(tmp, contents, variable_batch_size=True, parameters=nn.get_parameters(grad_only=False))
    return path


def check_exporter() -> None:
    if not onnx_exporter_available():
        raise BackendUnavailableError(
            f"ONNX export needs nnabla-converter and onnx: pip install {CONVERTER_PACKAGE} "
            f"(or the project's export extra: {EXPORT_EXTRA})")


def onnx_model(description: NetworkDescription, opset: int = ONNX_OPSET):
    """The ONNX ``ModelProto`` of the described network, its variable dimensions symbolic (the
    others fixed at its input shape), checked by ``onnx.checker``."""
    check_exporter()
    import onnx
    from nnabla.utils.converter.nnabla import expander
    from nnabla.utils.converter.onnx import OnnxExporter, exporter

    # The exporter numbers the names it makes from a module-level counter: reset it, so the
    # same weights give the same bytes whatever was exported before in this process.
    exporter.random_seed = 0
    graph, parameters = _graph_proto(description)
    # The converter reports its progress with print(); keep it off our output.
    with contextlib.redirect_stdout(io.StringIO()):
        nnp = types.SimpleNamespace(protobuf=expander.NnpExpander(graph).execute(), other_files=[])
        model = OnnxExporter(nnp, description.input_shape[0], -1, opset=str(opset)).export_model_proto()
    _put_parameters(model, parameters)
    make_dims_symbolic(model, description.name, {a: AXIS_NAMES[a] for a in description.variable_dims})
    onnx.checker.check_model(model, full_check=True)
    return model


def _graph_proto(description: NetworkDescription):
    """(nnabla's protobuf of the described network, its parameters by name and shape only; the
    parameters' values by name). The converter copies parameters value by value through Python
    lists, most of an export's time: they go into the ONNX model as bytes instead
    (:func:`_put_parameters`); the graph needs no .nnp file round trip either."""
    from nnabla.utils.save import create_proto

    runner, contents = _nnp_contents(description)
    with runner.parameter_scope():
        graph = create_proto(contents, include_params=False, variable_batch_size=True)
        values = {name: np.ascontiguousarray(v.d, dtype=np.float32)
                  for name, v in nn.get_parameters(grad_only=False).items()}
    for name, value in values.items():
        entry = graph.parameter.add()
        entry.variable_name = name
        entry.shape.dim.extend(value.shape)
    return graph, values


def _put_parameters(model, values: Mapping[str, np.ndarray]) -> None:
    """Fill the ONNX initializers the converter made from shape-only parameters with their
    values (the converter only reshapes them at opset 13: the element order is nnabla's)."""
    import onnx

    for initializer in model.graph.initializer:
        value = values.get(initializer.name)
        if value is None:
            continue
        if initializer.data_type != onnx.TensorProto.FLOAT or int(np.prod(initializer.dims)) != value.size:
            raise FaceAlignmentError(f"ONNX export: parameter {initializer.name} became {list(initializer.dims)} "
                                     f"of type {initializer.data_type}; expected {value.size} float values")
        initializer.raw_data = value.tobytes()


def write_onnx(description: NetworkDescription, path: str, opset: int = ONNX_OPSET, force: bool = True) -> str:
    """Write the described network as ONNX at ``path`` (atomically), its digest recorded in it."""
    data = onnx_model(description, opset).SerializeToString()
    with atomic_write(path, force) as tmp, open(tmp, "wb") as f:
        f.write(data + _digest_record(data))
    return path


def _varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _digest_record(data: bytes) -> bytes:
    """The sha256 of ``data``, as a field of the model that no ONNX reader knows (so skips):
    appended bytes of protobuf's length-delimited field :data:`_DIGEST_FIELD`."""
    return _digest_record_of(hashlib.sha256(data).hexdigest())


def append_digest(path: str, covering: Sequence[str] = ()) -> None:
    """Append to the file at ``path`` the digest of the files ``covering`` and of its own bytes,
    as :func:`holds_its_digest` checks it. For an OpenVINO IR: its .bin, covering its .xml
    (OpenVINO reads the .bin only at the offsets the .xml gives, never past them)."""
    digest = hashlib.sha256()
    for name in (*covering, path):
        with open(name, "rb") as f:
            _hash_into(digest, f, os.path.getsize(name))
    with open(path, "ab") as f:
        f.write(_digest_record_of(digest.hexdigest()))


def holds_its_digest(path: str, covering: Sequence[str] = ()) -> bool:
    """Whether the file at ``path`` ends with the digest :func:`write_onnx` (or
    :func:`append_digest`, with the same ``covering``) recorded, and the rest (the files
    ``covering`` first) matches it: False for a damaged, cut, missing or foreign file."""
    digest = hashlib.sha256()
    try:
        for name in covering:
            with open(name, "rb") as f:
                if not _hash_into(digest, f, os.path.getsize(name)):
                    return False
        size = os.path.getsize(path)
        if size <= _RECORD_SIZE:
            return False
        with open(path, "rb") as f:
            if not _hash_into(digest, f, size - _RECORD_SIZE):
                return False
            record = f.read()
    except OSError:
        return False
    return record == _digest_record_of(digest.hexdigest())


def _hash_into(digest, f, count: int) -> bool:
    """Feed ``count`` bytes of ``f`` to ``digest``; False if the file ends before."""
    while count:
        chunk = f.read(min(count, 1 << 20))
        if not chunk:
            return False
        digest.update(chunk)
        count -= len(chunk)
    return True


def _digest_record_of(hexdigest: str) -> bytes:
    payload = _DIGEST_LABEL + hexdigest.encode()
    return _varint(_DIGEST_FIELD << 3 | 2) + _varint(len(payload)) + payload


def make_dims_symbolic(model, name: str, dims: Mapping[int, str]) -> None:
    """Free the input axes ``dims`` (axis -> symbol) of an exported model: symbolic on the
    input, on the outputs' batch (and, when a spatial axis varies, on every output axis but
    the channels), and Reshape shapes that keep the input's batch instead of a fixed number.
    Refused, naming the op, for a graph with an op that might hold a size that varies."""
    from onnx import numpy_helper

    if not dims:
        return
    graph = model.graph
    spatial = any(axis != 0 for axis in dims)
    unknown = sorted({n.op_type for n in graph.node} - (_SHAPE_FREE_OPS if spatial else _BATCH_FREE_OPS))
    if unknown:
        raise FaceAlignmentError(f"{name}: cannot make the {'input' if spatial else 'batch'} size of an ONNX "
                                 f"graph with {', '.join(unknown)} symbolic")
    initializers = {i.name for i in graph.initializer}
    for value in graph.input:
        if value.name in initializers:
            continue
        for axis, symbol in dims.items():
            dim = value.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = symbol
    for value in graph.output:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis == 0 and 0 in dims:
                dim.ClearField("dim_value")
                dim.dim_param = dims[0]
            elif spatial and axis != 1:
                dim.ClearField("dim_value")
                dim.dim_param = f"{value.name}_{AXIS_NAMES.get(axis, axis)}"
    # Shapes recorded for intermediate values carry the sizes the converter was given.
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


def _make_batch_symbolic(model, name: str) -> None:
    """:func:`make_dims_symbolic` of the batch alone."""
    make_dims_symbolic(model, name, {0: BATCH_DIM})


def _fan(arch: Architecture, params: Dict[str, np.ndarray], dynamic_batch: bool = True) -> NetworkDescription:
    description = fan_description(arch, "", lambda: params)
    return description if dynamic_batch else dataclasses.replace(description, variable_dims=())


def export_nnp(arch: Architecture, params: Dict[str, np.ndarray], path: str, force: bool = True) -> str:
    """Write ``arch`` with ``params`` as an ``.nnp`` (input "x", output "y", any batch size)."""
    return write_nnp(_fan(arch, params), path, force)


def export_onnx(arch: Architecture, params: Dict[str, np.ndarray], path: str, dynamic_batch: bool = True,
                opset: int = ONNX_OPSET, force: bool = True) -> str:
    """Write ``arch`` with ``params`` as ONNX (input "x", output "y"); with ``dynamic_batch``
    the first dimension is symbolic ("batch"), otherwise it is 1."""
    return write_onnx(_fan(arch, params, dynamic_batch), path, opset, force)


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


_RECORD_SIZE = len(_digest_record_of("0" * 64))  # the record's length: the digest's is fixed
