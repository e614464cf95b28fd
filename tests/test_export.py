"""Exported .nnp and ONNX models compute what our NNabla graphs compute, at any batch size;
export_model.py writes them and reports bad input in one line."""
import os
import shutil
from collections import OrderedDict

import nnabla as nn
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import checkpoints
from conftest import assert_one_line_error, run_tool
from face_alignment.backends import NNablaNetwork, export_nnp, export_onnx
from face_alignment.backends.export import BATCH_DIM, ONNX_OPSET, _make_batch_symbolic
from face_alignment.backends.onnx_cache import onnx_model_path
from face_alignment.errors import FaceAlignmentError
from face_alignment.registry import ARCHITECTURES, FAN, Architecture
from face_alignment.weights import load_weights
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.loading import architecture_attrs
from weight_files import SEEING_DEPTH

TOLERANCE = checkpoints.NETWORK_TOLERANCE
TOOL = "export_model.py"
NETWORKS = ("fan1-avg", "fan2-max", "fan4-avg", "depth")


# The full-size networks' ONNX exports (4 s and 9 s on an idle 2-core machine, several times
# that on a busy one) are the session's (conftest's SESSION_EXPORTS), made once for every test that exports the same file:
# FAN-4 is the random 2DFAN4 the docs' pages write (scripts/random_weights.py, seed 0, whose
# export test_docs.py makes), ResNetDepth the depth model of test_pipeline_parity and
# test_compat (SEEING_DEPTH), converted from the published file name as they convert it.
DEPTH_FILE = (SEEING_DEPTH, "depth-2a464da4ea.pth.tar", "depth")


@pytest.fixture(scope="module")
def full_size(weight_files, module_folder):
    """name -> the Weights of a full-size network, from .h5 files."""
    fan4 = module_folder("fan4") / "2DFAN4.h5"
    result = run_tool("scripts/random_weights.py", "2DFAN4", fan4)
    assert result.returncode == 0, result.stderr
    return {"fan4-avg": load_weights(str(fan4)), "depth": load_weights(weight_files.converted(*DEPTH_FILE))}


@pytest.fixture(scope="module")
def networks(full_size):
    """name -> (architecture, parameters) for random-weight networks of every shape we export."""
    fan1 = checkpoints.authors_fan(1, "avg", seed=21)
    fan2 = checkpoints.authors_fan(2, "max", seed=22)
    assert full_size["fan4-avg"].arch == ARCHITECTURES["2DFAN4"]
    assert full_size["depth"].arch == ARCHITECTURES["ResNetDepth"]
    return {
        "fan1-avg": (Architecture("test-fan1-avg", FAN, 1, "avg"), checkpoints.nnabla_params(fan1, FAN, 1)),
        "fan2-max": (Architecture("test-fan2-max", FAN, 2, "max"), checkpoints.nnabla_params(fan2, FAN, 2)),
        **{name: (weights.arch, weights.params) for name, weights in full_size.items()},
    }


@pytest.fixture(scope="module")
def exported(networks, full_size, module_folder):
    """Each network exported once, as ONNX and .nnp (the ONNX of FAN-4 only: its .nnp would
    run at NNabla's cpu speed and test nothing the smaller FANs do not). The full-size
    networks' ONNX is the session cache's: the same exporter (:func:`export_onnx` and the
    cache both write :func:`write_onnx` of the network's description)."""
    folder = module_folder("exported")
    files = {}
    for name, (arch, params) in networks.items():
        if name in full_size:
            files[name, ".onnx"] = onnx_model_path(full_size[name])
        else:
            files[name, ".onnx"] = export_onnx(arch, params, str(folder / f"{name}.onnx"))
        if name != "fan4-avg":
            files[name, ".nnp"] = export_nnp(arch, params, str(folder / f"{name}.nnp"))
    return files


@pytest.fixture(scope="module")
def references(networks):
    """Our NNabla graph's outputs on 3 random inputs per network."""
    out = {}
    for index, (name, (arch, params)) in enumerate(networks.items()):
        net = NNablaNetwork(arch, params)
        inputs = np.random.RandomState(index).rand(3, net.input_channels, 256, 256).astype(np.float32)
        out[name] = inputs, net(inputs)
    return out


@pytest.mark.parametrize("name", NETWORKS)
def test_onnx_equals_nnabla_at_batch_1_and_3(name, exported, references):
    inputs, reference = references[name]
    model = onnx.load(exported[name, ".onnx"])
    assert model.opset_import[0].version == ONNX_OPSET
    for value in (model.graph.input[0], model.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == BATCH_DIM
    session = ort.InferenceSession(exported[name, ".onnx"], providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        ours = session.run(["y"], {"x": inputs[:batch]})[0]
        assert ours.shape == reference[:batch].shape
        assert checkpoints.relative_error(ours, reference[:batch]) <= TOLERANCE


@pytest.mark.parametrize("name", [n for n in NETWORKS if n != "fan4-avg"])
def test_nnp_loads_back_and_equals_nnabla_at_batch_1_and_3(name, networks, exported, references):
    from nnabla.utils.nnp_graph import NnpLoader

    inputs, reference = references[name]
    arch = networks[name][0]
    for batch in (1, 3):
        # One loader per batch size: NnpLoader resolves a Reshape's shape for the first
        # batch size it builds and keeps it for later ones.
        loader = NnpLoader(exported[name, ".nnp"])
        assert loader.get_network_names() == [arch.name]
        with nn.parameter_scope("", OrderedDict()):
            graph = loader.get_network(arch.name, batch_size=batch)
        x, y = graph.inputs["x"], graph.outputs["y"]
        x.d = inputs[:batch]
        y.forward(clear_buffer=True)
        assert y.d.shape == reference[:batch].shape
        assert checkpoints.relative_error(y.d, reference[:batch]) <= TOLERANCE


def test_static_batch_export_takes_batch_1_only(networks, tmp_path):
    arch, params = networks["fan1-avg"]
    path = export_onnx(arch, params, str(tmp_path / "static.onnx"), dynamic_batch=False)
    model = onnx.load(path)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 256, 256]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="dimension"):
        session.run(["y"], {"x": np.zeros((3, 3, 256, 256), np.float32)})


def _flatten_model(shape):
    """x (N, 2, 3) -> Reshape(shape) -> y: what a converter writes when it bakes a batch of 1 in."""
    node_shape = helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(
        np.array(shape, np.int64), "shape_value"))
    reshape = helper.make_node("Reshape", ["x", "shape"], ["y"], name="flatten")
    graph = helper.make_graph([node_shape, reshape], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])


@pytest.mark.parametrize("shape", [[1, 6], [1, -1], [-1, 6]])
def test_fixed_batch_in_a_reshape_is_made_symbolic(shape):
    model = _flatten_model(shape)
    _make_batch_symbolic(model, "flatten")
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(4 * 6, dtype=np.float32).reshape(4, 2, 3)
    np.testing.assert_array_equal(session.run(["y"], {"x": x})[0], x.reshape(4, 6))


def test_graph_with_an_op_that_may_hold_the_batch_is_refused():
    model = _flatten_model([1, 6])
    model.graph.node.append(helper.make_node("Expand", ["y", "shape"], ["z"]))
    with pytest.raises(FaceAlignmentError, match="flatten: .*Expand"):
        _make_batch_symbolic(model, "flatten")


@pytest.fixture(scope="module")
def exported_fan1_h5(networks, module_folder):
    """The .h5 of this module's FAN-1 (the network `exported` holds), for the command line."""
    arch, params = networks["fan1-avg"]
    path = module_folder("cli") / "fan1.h5"
    write_h5(str(path), params, architecture_attrs(arch))
    return path


def test_cli_writes_nnp_and_onnx_by_extension(exported_fan1_h5, exported, references, tmp_path):
    nnp_out, onnx_out = tmp_path / "out.nnp", tmp_path / "out.onnx"
    for out in (nnp_out, onnx_out):
        result = run_tool(TOOL, "--model", exported_fan1_h5, "--output", out)
        assert result.returncode == 0, result.stderr
        assert "test-fan1-avg" in result.stderr
    # The command line's ONNX is the library's, byte for byte; its .nnp holds the same network.
    with open(onnx_out, "rb") as a, open(exported["fan1-avg", ".onnx"], "rb") as b:
        assert a.read() == b.read()
    from nnabla.utils.nnp_graph import NnpLoader

    loader = NnpLoader(str(nnp_out))
    with nn.parameter_scope("", OrderedDict()):
        graph = loader.get_network("test-fan1-avg", batch_size=2)
    inputs, reference = references["fan1-avg"]
    graph.inputs["x"].d = inputs[:2]
    graph.outputs["y"].forward()
    assert checkpoints.relative_error(graph.outputs["y"].d, reference[:2]) <= TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nnp", "out.onnx"]  # no temporary files left


def test_cli_errors_are_one_line(exported_fan1_h5, tmp_path):
    missing = tmp_path / "missing.h5"
    assert_one_line_error(run_tool(TOOL, "--model", missing, "--output", tmp_path / "a.onnx"), "missing.h5")
    assert_one_line_error(run_tool(TOOL, "--model", exported_fan1_h5, "--output", tmp_path / "model.pb"),
                          "model.pb", "'.pb'", ".nnp or .onnx")
    assert_one_line_error(run_tool(TOOL, "--model", exported_fan1_h5, "--output", tmp_path / "model"),
                          "no extension")
    existing = tmp_path / "there.nnp"
    existing.write_bytes(b"keep me")
    assert_one_line_error(run_tool(TOOL, "--model", exported_fan1_h5, "--output", existing), "there.nnp", "--force")
    assert existing.read_bytes() == b"keep me"
    assert_one_line_error(run_tool(TOOL, "--model", exported_fan1_h5, "--output", tmp_path / "nowhere" / "a.nnp"),
                          "nowhere", "does not exist")
    assert_one_line_error(run_tool(TOOL, "--model", exported_fan1_h5), "--output")
    assert not os.path.exists(tmp_path / "a.onnx")


def test_the_weights_are_never_their_own_output_even_with_force(exported_fan1_h5, tmp_path):
    weights = tmp_path / "fan1.onnx"  # an .h5 by any other name is still read
    shutil.copy(exported_fan1_h5, weights)
    result = run_tool(TOOL, "--model", weights, "--output", tmp_path / "." / "fan1.onnx", "--force")
    assert_one_line_error(result, "--output is the same file as --model", "not an input")
    with open(exported_fan1_h5, "rb") as original:
        assert weights.read_bytes() == original.read()
    assert os.listdir(tmp_path) == ["fan1.onnx"]



def _transposed_flatten_model(perm):
    """x -> Transpose(perm) -> Reshape([1, 6]) -> y."""
    model = _flatten_model([1, 6])
    model.graph.node[1].input[0] = "t"
    model.graph.node.insert(1, helper.make_node("Transpose", ["x"], ["t"], perm=perm, name="swap"))
    return model


def test_transpose_that_keeps_the_batch_first_is_batch_free():
    model = _transposed_flatten_model([0, 2, 1])
    _make_batch_symbolic(model, "flatten")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(4 * 6, dtype=np.float32).reshape(4, 2, 3)
    np.testing.assert_array_equal(session.run(["y"], {"x": x})[0], x.transpose(0, 2, 1).reshape(4, 6))
    with pytest.raises(FaceAlignmentError, match="flatten: Transpose swap moves the batch axis"):
        _make_batch_symbolic(_transposed_flatten_model([1, 0, 2]), "flatten")
