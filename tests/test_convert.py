"""Every shipped checkpoint form converts through the command line, strictly and losslessly."""
import hashlib
import os
import shutil
from collections import OrderedDict

import h5py
import nnabla as nn
import numpy as np
import pytest
import torch

import checkpoints
from conftest import SHARED, assert_one_line_error, run_tool
from weight_files import FAN4, SEEING_DEPTH, link
from face_alignment.backends import NNablaNetwork
from face_alignment.registry import ARCHITECTURES
from face_alignment.weights import load_weights
from face_alignment.weights.layout import expected_parameters

CONVERT = "converters/convert_model_weights.py"
CONVERT_DEPTH = "converters/convert_resnet_depth_weights.py"


def published_layout(name):
    """(name, shape) of every parameter of nnabla-examples' published .h5, from ../shared."""
    rows = []
    with open(os.path.join(SHARED, "reference", f"published-h5-{name}.tsv")) as f:
        for line in f:
            if not line.startswith("#"):
                _, param, shape = line.rstrip("\n").split("\t")
                rows.append((param, tuple(int(s) for s in shape.split("x"))))
    return rows


def torch_name(param):
    """An independent spelling of the naming rule, for checking the converter's output."""
    scope, layer, leaf = param.rsplit("/", 2)
    leaf = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias",
            "mean": "running_mean", "var": "running_var"}[leaf]
    return scope.replace("/", ".") + "." + leaf


def assert_same_values(h5_path, model):
    """Round trip: nn.load_parameters reads the converted file and finds the source tensors."""
    state = model.state_dict()
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        nn.load_parameters(h5_path)
        loaded = nn.get_parameters(grad_only=False)
    assert len(loaded) == len([k for k in state if not k.endswith("num_batches_tracked")])
    for param, var in loaded.items():
        source = state[torch_name(param)].numpy()
        if param.endswith("affine/W"):
            source = source.T
        assert np.array_equal(var.d, source.reshape(var.shape)), param


def write_published_layout(path, model, step_counter=False):
    """A file in the published layout, as nnabla-examples' converter wrote it (optionally with
    the BatchNorm step counter some of those files carry)."""
    state = model.state_dict()
    with h5py.File(path, "w") as f:
        for i, (param, shape) in enumerate(published_layout("fan4")):
            f[param] = state[torch_name(param)].numpy().reshape(shape)
            f[param].attrs["need_grad"] = True
            f[param].attrs["index"] = i
        if step_counter:
            f["bn1/bn/num_batches_tracked"] = np.array([1000])
            f["bn1/bn/num_batches_tracked"].attrs["need_grad"] = False
            f["bn1/bn/num_batches_tracked"].attrs["index"] = len(f)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def scripted(weight_files, tmp_path_factory):
    """net -> its TorchScript archive under the published name, made when first asked for; only
    this module reads them (FAN-4's is 95 MB, ResNetDepth's 235 MB), so they go with it."""
    folder = tmp_path_factory.mktemp("scripted")
    names = {FAN4: "2DFAN4-cd938726ad.zip", SEEING_DEPTH: "depth-6c4283c0e0.zip"}
    made = {}

    def archive(net):
        if net not in made:
            made[net] = str(folder / names[net])
            checkpoints.save_torchscript(weight_files.model(net), made[net], channels=71 if net.kind == "depth" else 3)
        return made[net]

    yield archive
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def fan4_files(weight_files, scripted, tmp_path_factory):
    # The legacy checkpoint is the session's FAN-4 file (other tests link it), under its published name.
    legacy = link(weight_files.checkpoint(FAN4), tmp_path_factory.mktemp("fan4_files") / "2DFAN4-11f355bf06.pth.tar")
    return legacy, scripted(FAN4)


def test_our_layout_is_the_published_layout():
    assert list(expected_parameters("fan", 4).items()) == published_layout("fan4")
    assert list(expected_parameters("resnet_depth").items()) == published_layout("resnet_depth")


def test_legacy_torchscript_and_published_h5_give_the_same_parameters(tmp_path, fan4, fan4_files):
    legacy, scripted = fan4_files
    with open(legacy, "rb") as f:
        assert f.read(2) != b"PK"  # really the pre-zip format
    from_legacy, from_script = tmp_path / "legacy.h5", tmp_path / "script.h5"
    assert run_tool(CONVERT, "--pretrained-model", legacy, "--save-path", from_legacy).returncode == 0
    assert run_tool(CONVERT, "--pretrained-model", scripted, "--save-path", from_script).returncode == 0

    published = tmp_path / "2DFAN4_NNabla_model.h5"
    write_published_layout(published, fan4, step_counter=True)

    for path in (from_legacy, from_script):
        assert_same_values(str(path), fan4)
        with h5py.File(path, "r") as f:
            assert f.attrs["arch"] == "2DFAN4"
            assert int(f.attrs["num_modules"]) == 4 and f.attrs["pooling"] == "avg"
            assert sorted(k for k in f.attrs) == sorted(
                ["arch", "kind", "num_modules", "pooling", "landmarks", "crop", "source_file", "source_sha256"])
    with h5py.File(from_legacy, "r") as f:
        assert f.attrs["source_sha256"] == sha256(legacy)

    loaded = [load_weights(str(p), kind="fan", num_modules=4) for p in (from_legacy, from_script, published)]
    assert loaded[2].arch == ARCHITECTURES["2DFAN4"]  # recognised by its published file name
    for other in loaded[1:]:
        assert list(other.params) == list(loaded[0].params)
        for k in loaded[0].params:
            assert np.array_equal(other.params[k], loaded[0].params[k]), k


def test_published_layout_loads_unchanged_with_nn_load_parameters(tmp_path, fan4):
    """The graph built in a scope filled by nn.load_parameters uses exactly those parameters."""
    path = tmp_path / "published.h5"
    write_published_layout(path, fan4)
    scope = OrderedDict()
    with nn.parameter_scope("", scope):
        nn.load_parameters(str(path))
        before = {k: v for k, v in nn.get_parameters(grad_only=False).items()}
        from face_alignment.nets import fan
        fan(nn.Variable((1, 3, 256, 256)))
        after = nn.get_parameters(grad_only=False)
    assert list(after) == list(before) and all(after[k] is before[k] for k in before)


def test_depth_checkpoint_and_its_torchscript_twin(tmp_path, weight_files, scripted):
    # The ResNetDepth the pipeline's tests use: its checkpoint is on disk already (235 MB).
    legacy = link(weight_files.checkpoint(SEEING_DEPTH, "depth"), tmp_path / "depth-2a464da4ea.pth.tar")
    for source in (legacy, scripted(SEEING_DEPTH)):
        out = tmp_path / (os.path.basename(source) + ".h5")
        result = run_tool(CONVERT_DEPTH, "--pretrained-model", source, "--save-path", out)
        assert result.returncode == 0, result.stderr
        assert_same_values(str(out), weight_files.model(SEEING_DEPTH))
        assert load_weights(str(out), kind="resnet_depth").arch.name == "ResNetDepth"
        with h5py.File(out, "r") as f:
            assert f["fc/affine/W"].shape == (2048, 68)


@pytest.mark.parametrize("file_name, arch, num_modules, pooling", [
    ("2dfan2.pth", "ibug-2dfan2", 2, "max"),
    ("2dfan2_alt.pth", "ibug-2dfan2_alt", 2, "max"),
    ("2dfan4.pth", "ibug-2dfan4", 4, "avg"),
])
def test_ibug_checkpoints_take_pooling_from_their_name(tmp_path, file_name, arch, num_modules, pooling):
    model = checkpoints.authors_fan(num_modules, pooling, seed=11)
    source = tmp_path / file_name
    checkpoints.save_plain(model, source)
    out = tmp_path / "out.h5"
    assert run_tool(CONVERT, "--pretrained-model", source, "--save-path", out).returncode == 0
    assert_same_values(str(out), model)
    loaded = load_weights(str(out))
    assert (loaded.arch.name, loaded.arch.num_modules, loaded.arch.pooling, loaded.arch.crop) == \
        (arch, num_modules, pooling, "ibug")
    if num_modules == 2:  # the recorded pooling reaches the graph: outputs match the max-pool reference
        crops = np.random.RandomState(3).rand(1, 3, 256, 256).astype(np.float32)
        ours = NNablaNetwork(loaded.arch, loaded.params)(crops)
        assert checkpoints.relative_error(ours, checkpoints.torch_forward(model, crops)) <= checkpoints.NETWORK_TOLERANCE


def published_h5_contents(path):
    """(name, shape, values) of every parameter of an .h5, in the order of its ``index``
    attributes, as nnabla's load_parameters orders them."""
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        names.sort(key=lambda name: int(f[name].attrs["index"]))
        return [(name, f[name].shape, f[name][...]) for name in names]


def notes(result):
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ") and "which FAN" in line]


@pytest.mark.parametrize("file_name, says_which", [("my-model.pth.tar", False), ("2DFAN4-rand.pth.tar", True),
                                                   ("2DFAN4.pth.tar", True)])
def test_any_name_converts_an_authors_fan4_exactly_as_nnabla_examples(tmp_path, fan4, weight_files, file_name,
                                                                     says_which):
    """nnabla-examples' converter takes a checkpoint of any name: names, shapes and order are
    those of its published files, values the source tensors renamed and reshaped by hand."""
    source = link(weight_files.checkpoint(FAN4), tmp_path / file_name)
    out = tmp_path / "out.h5"
    result = run_tool(CONVERT, "--pretrained-model", source, "--save-path", out)
    assert result.returncode == 0, result.stderr

    state = fan4.state_dict()
    contents = published_h5_contents(out)
    assert [(name, shape) for name, shape, _ in contents] == published_layout("fan4")
    for name, shape, values in contents:
        assert np.array_equal(values, state[torch_name(name)].numpy().reshape(shape)), name
    with h5py.File(out, "r") as f:
        assert f.attrs["arch"] == "2DFAN4" and f.attrs["crop"] == "authors" and f.attrs["pooling"] == "avg"
    if says_which:
        assert notes(result) == []
    else:  # one line says what was assumed and how to choose otherwise; no error
        [note] = notes(result)
        assert str(source) in note and "4-module FAN as 2DFAN4" in note and "--arch" in note
        assert "error" not in result.stderr and "Traceback" not in result.stderr


def test_a_fan2_named_nothing_converts_as_ibug_2dfan2_and_arch_chooses_another(tmp_path):
    model = checkpoints.authors_fan(2, "max", seed=5)
    source = tmp_path / "my_finetuned.pth"
    checkpoints.save_plain(model, source)
    out = tmp_path / "out.h5"
    result = run_tool(CONVERT, "--pretrained-model", source, "--save-path", out)
    assert result.returncode == 0, result.stderr
    [note] = notes(result)
    assert str(source) in note and "2-module FAN as ibug-2dfan2" in note and "--arch" in note
    assert_same_values(str(out), model)
    arch = load_weights(str(out)).arch
    assert (arch.name, arch.pooling, arch.crop) == ("ibug-2dfan2", "max", "ibug")

    chosen = tmp_path / "alt.h5"
    result = run_tool(CONVERT, "--pretrained-model", source, "--save-path", chosen, "--arch", "ibug-2dfan2_alt")
    assert result.returncode == 0 and notes(result) == [], result.stderr
    assert load_weights(str(chosen)).arch.name == "ibug-2dfan2_alt"
    # An --arch that contradicts the weights is refused.
    assert_one_line_error(run_tool(CONVERT, "--pretrained-model", source, "--save-path", tmp_path / "x.h5",
                                   "--arch", "2DFAN4"), "2-module FAN", "2DFAN4")


@pytest.mark.parametrize("file_name, arch", [
    # Every published stem, with other suffixes and other extensions.
    ("2DFAN4-rand.pth.tar", "2DFAN4"), ("2DFAN4.zip", "2DFAN4"), ("2DFAN4_NNabla_model (1).h5", "2DFAN4"),
    ("3DFAN4-finetuned.pth.tar", "3DFAN4"), ("3DFAN4.h5", "3DFAN4"),
    ("depth-rand.pth.tar", "ResNetDepth"), ("depth.h5", "ResNetDepth"),
    ("2dfan2.pth.tar", "ibug-2dfan2"), ("2dfan2-300w.pth", "ibug-2dfan2"),
    ("2dfan2_alt.h5", "ibug-2dfan2_alt"), ("2dfan2_alt-v2.pth", "ibug-2dfan2_alt"),
    ("2dfan4_ft.pth", "ibug-2dfan4"),
    # Names that only look alike say nothing.
    ("2DFAN40.pth.tar", None), ("depthwise.pth", None), ("2dfan4", "ibug-2dfan4"), ("my-2DFAN4.pth.tar", None),
    ("2dfan2_alternative.pth", "ibug-2dfan2"),
])
def test_a_name_starting_with_a_published_stem_is_that_model(file_name, arch):
    from face_alignment.registry import weights_for_file

    known = weights_for_file(file_name)
    assert (known and known.arch) == arch


def test_a_name_that_says_another_model_than_the_weights_is_refused(tmp_path):
    model = checkpoints.authors_fan(2, "max", seed=6)
    source = tmp_path / "2dfan4-mine.pth"
    checkpoints.save_plain(model, source)
    assert_one_line_error(run_tool(CONVERT, "--pretrained-model", source, "--save-path", tmp_path / "out.h5"),
                          str(source), "holds a 2-module FAN", "ibug-2dfan4", "its name", "--arch")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("file_name, num_modules, pooling", [
    ("fan.pth", 4, "avg"), ("fan.pth", 2, "max"), ("2dfan2_alt-x.pth", 2, "max"), ("3DFAN4-x.pth", 4, "avg"),
    ("fan.pth", 1, "avg")])
def test_converting_and_loading_give_one_answer(tmp_path, caplog, file_name, num_modules, pooling):
    """A checkpoint converted under a name, and an .h5 without recorded architecture (as
    nnabla-examples writes them) under the same name, are taken to be the same model."""
    from face_alignment.weights.convert import convert_checkpoint

    model = checkpoints.authors_fan(num_modules, pooling, seed=num_modules)
    source = tmp_path / file_name
    checkpoints.save_plain(model, source)
    converted = convert_checkpoint(str(source), str(tmp_path / "out.h5"))

    bare = tmp_path / "bare" / (os.path.splitext(file_name)[0] + ".h5")
    bare.parent.mkdir()
    with h5py.File(bare, "w") as f:  # names and shapes only, no root attributes
        for i, (name, shape) in enumerate(expected_parameters("fan", num_modules).items()):
            f[name] = model.state_dict()[torch_name(name)].numpy().reshape(shape)
            f[name].attrs["index"] = i
    caplog.clear()
    loaded = load_weights(str(bare)).arch
    assert loaded == converted
    assert loaded.num_modules == num_modules and loaded.pooling == pooling
    said = [r.getMessage() for r in caplog.records if "name does not say which FAN" in r.getMessage()]
    if file_name == "fan.pth":
        assert len(said) == 1 and str(bare) in said[0] and f"as {loaded.name}" in said[0]
    else:
        assert said == []
