"""Broken weight files: nonsense architecture attributes, parameters that are no numbers, and
values that make the network's output NaN give one line naming the file, in every tool and in
the API, and nothing is written."""
import argparse
import dataclasses
import gzip
import json
import os
import pickle

import h5py
import numpy as np
import pytest
import torch

import checkpoints
from conftest import CPU, SHARED, assert_one_line_error, run_tool
from face_alignment.api import FaceAlignment
from face_alignment.backends import make_network
from face_alignment.backends.export import export_onnx
from face_alignment.backends.onnx_cache import cached_model_path
from face_alignment.errors import CheckpointMismatchError, FaceAlignmentError, NonFiniteOutputError, \
    WeightsFileError
from face_alignment.registry import ARCHITECTURES, FAN
from face_alignment.weights import Weights, load_weights, open_weights
from face_alignment.weights.convert import convert_checkpoint
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.layout import expected_parameters
from face_alignment.weights.loading import architecture_attrs

FAN1 = dataclasses.replace(ARCHITECTURES["2DFAN4"], name="FAN1", num_modules=1)
EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")
INFER = "model_inference.py"
EXPORT = "export_model.py"


@pytest.fixture(scope="module")
def fan1_params():
    return checkpoints.nnabla_params(checkpoints.authors_fan(1, "avg", seed=3), FAN, 1)


def fan1_file(path, params, **attrs):
    """A FAN-1 .h5 as our converter writes it, with root attributes changed (None: removed)."""
    recorded = dict(architecture_attrs(FAN1), **attrs)
    write_h5(str(path), params, {k: v for k, v in recorded.items() if v is not None})
    return str(path)


def changed(params, name, change):
    params = dict(params)
    params[name] = change(params[name].copy())
    return params


def infer(model, tmp_path, *more):
    """model_inference.py on one photo with a given box, results as JSON only."""
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[250.0, 260.0, 600.0, 640.0]]))
    return run_tool(INFER, "--model", model, "--test-image", EINSTEIN, "--boxes", boxes,
                    "--save-json", tmp_path / "out.json", *CPU, *more)


# (attributes, what the error says about them)
NONSENSE = [
    ({"num_modules": "abc"}, "attribute num_modules='abc': expected one of 1, 2, 3, 4"),
    ({"num_modules": 7}, "attribute num_modules=7: expected one of 1, 2, 3, 4"),
    ({"num_modules": True}, "attribute num_modules=True"),
    ({"num_modules": 1.0}, "attribute num_modules=1.0"),
    ({"pooling": "banana"}, "attribute pooling='banana': expected one of avg, max"),
    ({"kind": "cnn"}, "attribute kind='cnn': expected one of fan, resnet_depth"),
    ({"landmarks": "4D"}, "attribute landmarks='4D': expected one of 2D, 3D"),
    ({"crop": "square"}, "attribute crop='square': expected one of authors, ibug"),
    ({"arch": 5}, "attribute arch=5: expected an architecture name"),
    ({"arch": "Mystery", "kind": None}, "records architecture 'Mystery', which is not one of 2DFAN4,"),
    ({"arch": "Mystery", "pooling": None, "crop": None}, "without pooling, crop to build it"),
]


@pytest.mark.parametrize("attrs, said", NONSENSE, ids=[str(a) for a, _ in NONSENSE])
def test_nonsense_attributes_are_named_by_the_library_and_the_api(tmp_path, fan1_params, attrs, said):
    path = fan1_file(tmp_path / "odd.h5", fan1_params, **attrs)
    with pytest.raises(CheckpointMismatchError) as raised:
        open_weights(path)
    assert str(raised.value).startswith(f"{path}: ") and said in str(raised.value)
    assert "\n" not in str(raised.value)
    with pytest.raises(FaceAlignmentError, match="odd.h5: "):
        FaceAlignment(path, context="cpu")


def test_an_unknown_architecture_with_every_field_is_built_from_them(tmp_path, fan1_params):
    path = fan1_file(tmp_path / "mine.h5", fan1_params, arch="Mine", pooling="max", crop="ibug")
    assert open_weights(path).arch == dataclasses.replace(FAN1, name="Mine", pooling="max", crop="ibug",
                                                          description="")


def test_arch_given_by_the_caller_replaces_nonsense_attributes(tmp_path):
    params = {k: np.zeros(s, np.float32) for k, s in expected_parameters(FAN, 2).items()}
    path = str(tmp_path / "fan2.h5")
    write_h5(path, params, {"arch": "ibug-2dfan2", "pooling": "banana"})
    with pytest.raises(CheckpointMismatchError, match="pooling='banana'"):
        open_weights(path)
    assert open_weights(path, arch="ibug-2dfan2").arch == ARCHITECTURES["ibug-2dfan2"]


@pytest.mark.parametrize("attrs, said", [NONSENSE[0], NONSENSE[4], NONSENSE[9]], ids=["modules", "pooling", "arch"])
def test_nonsense_attributes_through_the_command_lines(tmp_path, fan1_params, attrs, said):
    path = fan1_file(tmp_path / "odd.h5", fan1_params, **attrs)
    assert_one_line_error(infer(path, tmp_path), "odd.h5: ", said)
    assert_one_line_error(run_tool(EXPORT, "--model", path, "--output", tmp_path / "odd.onnx"), "odd.h5: ", said)
    assert sorted(os.listdir(tmp_path)) == ["boxes.json", "odd.h5"]


def _with_parameter_as(source, target, name, value):
    """A copy of ``source`` whose parameter ``name`` is ``value``, with its attributes kept."""
    with h5py.File(source, "r") as f, h5py.File(target, "w") as g:
        for key, attr in f.attrs.items():
            g.attrs[key] = attr
        f.visititems(lambda n, obj: f.copy(obj, g, n) if isinstance(obj, h5py.Dataset) and n != name else None)
        g[name] = value
        g[name].attrs["index"] = f[name].attrs["index"]
    return str(target)


@pytest.mark.parametrize("value, stored", [
    (np.array([b"0.5"] * 68), "|S3"),
    (np.array(["0.5"] * 68, dtype=h5py.string_dtype()), "object"),
    (np.ones(68, dtype=bool), "bool"),
], ids=["bytes", "str", "bool"])
def test_a_parameter_that_is_not_numbers_is_named(tmp_path, fan1_params, value, stored):
    good = fan1_file(tmp_path / "good.h5", fan1_params)
    path = _with_parameter_as(good, tmp_path / "odd.h5", "l0/conv/b", value)
    expected = f"{path}: parameter l0/conv/b is stored as {stored}, expected numbers"
    with pytest.raises(WeightsFileError) as raised:
        load_weights(path)
    assert str(raised.value) == expected
    fa = None
    with pytest.raises(WeightsFileError, match="odd.h5: parameter l0/conv/b is stored as"):
        fa = FaceAlignment(path, context="cpu", backend="nnabla")
    assert fa is None
    os.remove(good)
    assert_one_line_error(infer(path, tmp_path), expected)
    assert_one_line_error(run_tool(EXPORT, "--model", path, "--output", tmp_path / "odd.nnp"), expected)
    assert sorted(os.listdir(tmp_path)) == ["boxes.json", "odd.h5"]


def with_value(index, value):
    def change(array):
        array.flat[index] = value
        return array
    return change


def huge(array):
    """Finite weights whose output is not: 3e38 times 256 positive activations overflows float32."""
    return np.full_like(array, 3e38)


CROPS = np.random.RandomState(0).rand(2, 3, 256, 256).astype(np.float32)


@pytest.mark.parametrize("name, change, said", [
    ("conv1/conv/W", with_value(5, np.nan), "parameter conv1/conv/W holds NaN or infinite values"),
    ("m0/b1_4/bn2/bn/gamma", with_value(0, np.inf), "parameter m0/b1_4/bn2/bn/gamma holds NaN or infinite values"),
    ("bn1/bn/var", with_value(3, -0.5),
     "parameter bn1/bn/var (a BatchNorm variance) holds negative values (down to -0.5)"),
], ids=["nan", "inf", "negative-variance"])
def test_nan_or_a_negative_variance_is_refused_and_nothing_written(tmp_path, fan1_params, name, change, said):
    path = fan1_file(tmp_path / "broken.h5", changed(fan1_params, name, change))
    for backend in ("nnabla", "onnxruntime"):
        assert_one_line_error(infer(path, tmp_path, "--backend", backend), f"{path}: {said}; the weights are broken")
    assert_one_line_error(run_tool(EXPORT, "--model", path, "--output", tmp_path / "broken.onnx"), f"{path}: {said}")
    assert sorted(os.listdir(tmp_path)) == ["boxes.json", "broken.h5"]  # no JSON, no ONNX model cached


def test_converting_a_checkpoint_with_a_negative_variance_is_refused(tmp_path):
    state = checkpoints.authors_fan(1, "avg", seed=3).state_dict()
    state["conv2.bn1.running_var"][7] = -2.0
    torch.save(state, tmp_path / "fan1.pth")
    result = run_tool("converters/convert_model_weights.py", "-i", tmp_path / "fan1.pth", "-o", tmp_path / "fan1.h5")
    assert_one_line_error(result, f"{tmp_path / 'fan1.pth'}: parameter conv2/bn1/bn/var (a BatchNorm variance) "
                                  "holds negative values (down to -2)")
    assert sorted(os.listdir(tmp_path)) == ["fan1.pth"]


def test_output_that_is_not_finite_names_the_weights_file(tmp_path, fan1_params):
    path = fan1_file(tmp_path / "huge.h5", changed(fan1_params, "l0/conv/W", huge))
    load_weights(path)  # every value a finite number, every variance positive
    said = f"{path}: the network gave NaN or infinite values; the weights are broken"
    for backend in ("nnabla", "onnxruntime"):
        assert_one_line_error(infer(path, tmp_path, "--backend", backend), said)
        fa = FaceAlignment(path, context="cpu", backend=backend)
        with pytest.raises(NonFiniteOutputError) as raised:
            fa.get_landmarks_from_image(EINSTEIN, np.array([[250.0, 260.0, 600.0, 640.0]]))
        assert str(raised.value).startswith(said)
    assert not os.path.exists(tmp_path / "out.json")


def test_a_cached_onnx_model_of_broken_weights_is_caught_at_its_output(tmp_path, fan1_params):
    """A cache hit reads no weight values, so only the output can tell."""
    broken = changed(fan1_params, "conv1/conv/W", with_value(5, np.nan))
    path = fan1_file(tmp_path / "broken.h5", broken)
    cached = cached_model_path(open_weights(path))
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    export_onnx(FAN1, broken, cached)  # as a version that checked nothing left it
    assert_one_line_error(infer(path, tmp_path, "--backend", "onnxruntime"),
                          f"{path}: the network gave NaN or infinite values")
    assert not os.path.exists(tmp_path / "out.json")


def test_weights_given_as_arrays_are_named_as_such(tmp_path, fan1_params, monkeypatch):
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(tmp_path))
    weights = Weights(FAN1, changed(fan1_params, "l0/conv/W", huge))
    for backend in ("nnabla", "onnxruntime"):
        with pytest.raises(NonFiniteOutputError, match="^the given weights: the network gave NaN or infinite"):
            make_network(weights, backend)(CROPS)
    sound = Weights(FAN1, fan1_params)
    for backend in ("nnabla", "onnxruntime"):
        assert np.isfinite(make_network(sound, backend)(CROPS)).all()


CONVERT = "converters/convert_model_weights.py"
DOWNLOADED = "2DFAN4-11f355bf06.pth.tar"
# What failed downloads leave under the weights' name, and what the error says they look like.
NOT_CHECKPOINTS = [
    (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n", "looks like an HTML page"),
    (b"\xef\xbb\xbf \r\n  <html><body>Please sign in</body></html>", "looks like an HTML page"),
    (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>', "looks like an XML document"),
    (b'{"message": "Not Found", "documentation_url": "https://example.org"}', "looks like JSON"),
    (b"[]\n", "looks like JSON"),
    (b"Not Found\n", "looks like text"),
    ("Zugriff verweigert – bitte melden Sie sich an.\n".encode(), "looks like text"),
    (b"", "is empty"),
]


@pytest.mark.parametrize("body, said", NOT_CHECKPOINTS, ids=range(len(NOT_CHECKPOINTS)))
def test_a_page_saved_as_a_checkpoint_is_named_as_such(tmp_path, body, said):
    source = tmp_path / DOWNLOADED
    source.write_bytes(body)
    expected = f"{source}: not a PyTorch checkpoint: it {said} (a failed download?)"
    with pytest.raises(WeightsFileError) as raised:
        convert_checkpoint(str(source), str(tmp_path / "out.h5"))
    assert str(raised.value) == expected
    result = run_tool(CONVERT, "--pretrained-model", source, "--save-path", tmp_path / "out.h5")
    assert assert_one_line_error(result) == f"error: {expected}"
    assert "pickle" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == [DOWNLOADED]


def test_binary_that_is_no_torch_format_gets_no_pickle_advice(tmp_path):
    source = tmp_path / DOWNLOADED
    source.write_bytes(gzip.compress(b"<html></html>") + bytes(range(256)))
    assert_one_line_error(run_tool(CONVERT, "-i", source, "-o", tmp_path / "out.h5"),
                          f"{source}: not a PyTorch checkpoint (neither a zip archive nor torch's legacy format)")
    # A pickle, but not torch.save's: no magic number first.
    source.write_bytes(pickle.dumps({"conv1.weight": [0.0]}, protocol=2))
    assert_one_line_error(run_tool(CONVERT, "-i", source, "-o", tmp_path / "out.h5"), "neither a zip archive")
    assert sorted(os.listdir(tmp_path)) == [DOWNLOADED]


@pytest.mark.parametrize("zipped", [False, True], ids=["legacy", "zip"])
def test_a_checkpoint_holding_python_objects_still_gets_the_pickle_advice(tmp_path, zipped):
    model = checkpoints.authors_fan(1, "avg", seed=3)
    source = tmp_path / "fan1.pth.tar"
    torch.save({"state_dict": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, source,
               _use_new_zipfile_serialization=zipped)
    assert_one_line_error(run_tool(CONVERT, "-i", source, "-o", tmp_path / "out.h5"),
                          f"{source}: holds Python objects besides tensors", "--allow-pickle")
    assert sorted(os.listdir(tmp_path)) == ["fan1.pth.tar"]
    result = run_tool(CONVERT, "-i", source, "-o", tmp_path / "out.h5", "--allow-pickle")
    assert result.returncode == 0, result.stderr
    reference = checkpoints.nnabla_params(model, FAN, 1)
    converted = load_weights(str(tmp_path / "out.h5")).params
    assert list(converted) == list(reference)
    assert all(np.array_equal(converted[k], reference[k]) for k in reference)


def test_a_page_saved_as_an_h5_is_named_as_such(tmp_path):
    page = tmp_path / "2DFAN4_NNabla_model.h5"
    page.write_bytes(NOT_CHECKPOINTS[0][0])
    expected = f"{page}: not a readable HDF5 weight file: it looks like an HTML page (a failed download?)"
    assert_one_line_error(infer(page, tmp_path), expected)
    assert_one_line_error(run_tool(EXPORT, "--model", page, "--output", tmp_path / "out.onnx"), expected)
    assert sorted(os.listdir(tmp_path)) == ["2DFAN4_NNabla_model.h5", "boxes.json"]
