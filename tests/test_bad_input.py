"""Bad weights give one specific error naming the file, exit status 2, and nothing written."""
import os

import h5py
import numpy as np
import pytest
import torch

import checkpoints
from conftest import assert_one_line_error, run_tool
from face_alignment.errors import CheckpointMismatchError, OutputExistsError, WeightsFileError
from face_alignment.weights import load_weights
from face_alignment.weights.convert import convert_checkpoint
from face_alignment.weights.layout import expected_parameters

CONVERT = "converters/convert_model_weights.py"


@pytest.fixture(scope="module")
def fan2_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fan2")
    model = checkpoints.authors_fan(2, "max", seed=2)
    path = folder / "2dfan2.pth"
    checkpoints.save_plain(model, path)
    return path, model


def convert_fails(tmp_path, source, *fragments, error=WeightsFileError, **kwargs):
    """Both the library and the command line refuse ``source`` and write nothing."""
    out = tmp_path / "out.h5"
    with pytest.raises(error) as raised:
        convert_checkpoint(str(source), str(out), **kwargs)
    assert "\n" not in str(raised.value)
    line = assert_one_line_error(run_tool(CONVERT, "--pretrained-model", source, "--save-path", out), *fragments)
    assert os.listdir(tmp_path) == [p for p in os.listdir(tmp_path) if p != "out.h5" and not p.startswith(".")]
    return line


def test_missing_file(tmp_path):
    convert_fails(tmp_path, tmp_path / "nope.pth", "nope.pth", "no such file")


def test_text_file(tmp_path):
    source = tmp_path / "2DFAN4.pth.tar"
    source.write_text("this is not a checkpoint\n")
    convert_fails(tmp_path, source, "2DFAN4.pth.tar: not a PyTorch checkpoint: it looks like text")


def test_truncated_checkpoint(tmp_path, fan2_source):
    data = fan2_source[0].read_bytes()
    source = tmp_path / "2dfan2.pth"
    source.write_bytes(data[: len(data) // 2])
    convert_fails(tmp_path, source, "2dfan2.pth", "not a readable PyTorch checkpoint")


def test_other_network(tmp_path):
    """A torchvision-style ResNet-18 state dict is neither FAN nor ResNetDepth."""
    state = {"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.weight": torch.ones(64),
             "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3), "fc.weight": torch.zeros(1000, 512),
             "fc.bias": torch.zeros(1000)}
    source = tmp_path / "resnet18.pth"
    torch.save(state, source)
    # layer1 + fc look like ResNetDepth, but the tensors do not fit it: named precisely.
    convert_fails(tmp_path, source, "resnet18.pth", "ResNetDepth", error=CheckpointMismatchError)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, source)
    convert_fails(tmp_path, source, "not a FAN or ResNetDepth checkpoint", error=CheckpointMismatchError)


def test_extra_missing_and_misshapen_tensors_are_named(tmp_path, fan2_source):
    state = fan2_source[1].state_dict()
    extra = dict(state, **{"m0.extra.weight": torch.zeros(3)})
    torch.save(extra, tmp_path / "2dfan2.pth")
    convert_fails(tmp_path, tmp_path / "2dfan2.pth", "unused", "m0.extra.weight", error=CheckpointMismatchError)

    missing = {k: v for k, v in state.items() if k != "top_m_1.conv2.weight"}
    torch.save(missing, tmp_path / "2dfan2.pth")
    convert_fails(tmp_path, tmp_path / "2dfan2.pth", "missing", "top_m_1/conv2/conv/W", error=CheckpointMismatchError)

    misshapen = dict(state, **{"l1.weight": torch.zeros(67, 256, 1, 1)})
    torch.save(misshapen, tmp_path / "2dfan2.pth")
    convert_fails(tmp_path, tmp_path / "2dfan2.pth", "wrong shape", "l1/conv/W", error=CheckpointMismatchError)


def test_existing_output_is_kept_unless_forced(tmp_path, fan2_source):
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        convert_checkpoint(str(fan2_source[0]), str(out))
    assert_one_line_error(run_tool(CONVERT, "--pretrained-model", fan2_source[0], "--save-path", out),
                          "out.h5", "--force")
    assert out.read_bytes() == b"precious"
    assert run_tool(CONVERT, "--pretrained-model", fan2_source[0], "--save-path", out, "--force").returncode == 0
    assert load_weights(str(out)).arch.name == "ibug-2dfan2"
    assert sorted(os.listdir(tmp_path)) == ["out.h5"]  # no temporary file left behind



def test_the_checkpoint_is_never_its_own_output_even_with_force(tmp_path, fan2_source):
    """--force replaces an existing output; by any path, the checkpoint being converted is
    not one. And where the output cannot go is found before the checkpoint is read."""
    source = tmp_path / "2dfan2.pth"
    source.write_bytes(fan2_source[0].read_bytes())
    os.mkdir(tmp_path / "sub")
    result = run_tool(CONVERT, "--pretrained-model", source, "--save-path", tmp_path / "sub" / ".." / "2dfan2.pth",
                      "--force")
    assert_one_line_error(result, "--save-path", "--pretrained-model")
    assert source.read_bytes() == fan2_source[0].read_bytes()
    assert_one_line_error(run_tool(CONVERT, "-i", source, "-o", tmp_path / "sub", "--force"),
                          "--save-path is a folder")
    assert sorted(os.listdir(tmp_path)) == ["2dfan2.pth", "sub"] and os.listdir(tmp_path / "sub") == []

def _write_h5(path, params):
    with h5py.File(path, "w") as f:
        for i, (k, v) in enumerate(params.items()):
            f[k] = v
            f[k].attrs["need_grad"] = False
            f[k].attrs["index"] = i


def _zeros(kind, modules):
    return {k: np.zeros(s, np.float32) for k, s in expected_parameters(kind, modules).items()}


def test_h5_missing_parameter_or_wrong_shape(tmp_path):
    params = _zeros("fan", 2)
    del params["m1/b3_2/conv2/conv/W"]
    _write_h5(tmp_path / "a.h5", params)
    with pytest.raises(CheckpointMismatchError, match=r"a\.h5.*missing: m1/b3_2/conv2/conv/W"):
        load_weights(str(tmp_path / "a.h5"))
    params = _zeros("fan", 2)
    params["bn1/bn/var"] = np.zeros((1, 32, 1, 1), np.float32)
    _write_h5(tmp_path / "b.h5", params)
    with pytest.raises(CheckpointMismatchError, match=r"b\.h5.*wrong shape: bn1/bn/var \(1, 32, 1, 1\)"):
        load_weights(str(tmp_path / "b.h5"))


def test_h5_of_fan2_where_fan4_is_asked_and_depth_where_fan_is_asked(tmp_path):
    _write_h5(tmp_path / "fan2.h5", _zeros("fan", 2))
    with pytest.raises(CheckpointMismatchError, match=r"fan2\.h5: holds a 2-module FAN, but a 4-module FAN"):
        load_weights(str(tmp_path / "fan2.h5"), kind="fan", num_modules=4)
    _write_h5(tmp_path / "depth.h5", _zeros("resnet_depth", 4))
    with pytest.raises(CheckpointMismatchError, match=r"depth\.h5: holds a ResNetDepth, but a FAN was asked for"):
        load_weights(str(tmp_path / "depth.h5"), kind="fan")


def test_h5_that_is_not_hdf5(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(WeightsFileError, match=r"x\.h5: not a readable HDF5 weight file"):
        load_weights(str(tmp_path / "x.h5"))
    with pytest.raises(WeightsFileError, match=r"y\.h5: no such file"):
        load_weights(str(tmp_path / "y.h5"))


def test_written_files_get_ordinary_permissions(tmp_path):
    from face_alignment.files import atomic_write

    with atomic_write(str(tmp_path / "a.txt")) as tmp:
        open(tmp, "w").write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o666 & ~mask


def test_broken_h5_through_model_inference_is_one_line(tmp_path):
    face = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "faces", "einstein.jpg")
    params = _zeros("fan", 2)
    _write_h5(tmp_path / "fan2.h5", params)
    assert_one_line_error(run_tool("model_inference.py", "--model", tmp_path / "fan2.h5", "--network-size", "4",
                                   "--test-image", face), "fan2.h5", "2-module FAN", "4-module FAN")
    del params["l1/conv/b"]
    _write_h5(tmp_path / "broken.h5", params)
    assert_one_line_error(run_tool("model_inference.py", "--model", tmp_path / "broken.h5", "--test-image", face),
                          "broken.h5", "missing: l1/conv/b")
