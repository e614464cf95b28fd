"""One model configuration: defaults resolved once (so spelled-out defaults are equal and
serialise identically), built alike from keywords, flags and JSON, checked, and what
FaceAlignment is built from."""
import argparse
import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest

from conftest import SHARED
from face_alignment.api import FaceAlignment
from face_alignment.backends import context
from face_alignment.backends.registry import PRECISIONS
from face_alignment.cli_flags import add_model_arguments, config_from_args
from face_alignment.config import ModelConfig
from face_alignment.errors import BackendUnavailableError, FaceAlignmentError

EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")
EINSTEIN_BOX = np.array([[250.0, 260.0, 600.0, 640.0]])
# What README and --help give as the defaults, on a machine without CUDA and with ONNX Runtime.
DOCUMENTED_DEFAULTS = dict(decode="centroid", detector="blazeface", calibrate_boxes=True, backend="onnxruntime",
                           context="cpu", flip=False,
                           integer_landmarks=False, reference_scale=195.0, device_id=0, type_config="float",
                           precision="fp32", batch_size=8, max_pixels=150_000_000)


@pytest.fixture(autouse=True)
def without_cuda(monkeypatch):
    """The documented defaults are a machine's without CUDA (with nnabla-ext-cuda installed,
    cudnn is the default context): these tests pretend to be on one wherever they run."""
    monkeypatch.setattr(context, "cuda_available", lambda: False)


def parse(*flags):
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    return parser.parse_args(list(flags))


def test_defaults_spelled_out_give_an_equal_configuration_with_the_same_json(fan1_h5):
    implicit = ModelConfig.build(fan1_h5)
    explicit = ModelConfig.build(fan1_h5, arch="FAN1", network_size=1, **DOCUMENTED_DEFAULTS)
    assert implicit == explicit and implicit.to_json() == explicit.to_json()
    assert implicit.model_sha256 == hashlib.sha256(open(fan1_h5, "rb").read()).hexdigest()
    assert (implicit.arch, implicit.network_size, implicit.depth_model, implicit.is_3d) == ("FAN1", 1, None, False)
    assert implicit.model == os.path.abspath(fan1_h5)
    # The same from the command line, given or not.
    assert config_from_args(parse(), fan1_h5) == implicit
    assert config_from_args(parse("--decode", "centroid", "--detector", "blazeface", "--precision", "fp32",
                                  "--backend", "onnxruntime", "--context", "cpu"), fan1_h5) == implicit


def test_each_option_changes_the_configuration_and_is_named(fan1_h5):
    base = ModelConfig.build(fan1_h5)
    for options, field in ((dict(flip=True), "flip"), (dict(decode="argmax"), "decode"),
                           (dict(backend="nnabla"), "backend"), (dict(batch_size=4), "batch_size"),
                           (dict(reference_scale=200), "reference_scale"), (dict(detector="cnn"), "detector"),
                           (dict(detector_threshold=0.5), "detector_threshold"), (dict(max_pixels=10), "max_pixels"),
                           (dict(calibrate_boxes=False), "calibrate_boxes"), (dict(detector="hog"), "detector")):
        changed = ModelConfig.build(fan1_h5, **options)
        assert changed != base
        [difference] = changed.differences(base)
        assert difference.split()[0] == field, difference
    # Where the files are and which GPU is used change no result.
    assert dataclasses.replace(base, model="/elsewhere/fan1.h5", device_id=1) == base


@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime", "openvino"])
def test_half_on_the_cpu_is_refused_alike_by_every_backend(fan1_h5, backend):
    """ONNX Runtime used to record type_config 'half' and compute in float, byte for byte the
    float picture; NNabla refused it only when its context was made."""
    with pytest.raises(FaceAlignmentError, match=f"type_config 'half'.*cudnn.*{backend} on cpu"):
        ModelConfig.build(fan1_h5, backend=backend, context="cpu", type_config="half")


def test_float16_in_the_face_alignment_api_on_the_cpu_is_refused(monkeypatch, fan1_h5):
    import torch

    from face_alignment import LandmarksType, compat, hub

    monkeypatch.setattr(hub, "weights_path", lambda name: fan1_h5)
    for backend in ("nnabla", "onnxruntime"):
        with pytest.raises(FaceAlignmentError, match="type_config 'half'"):
            compat.FaceAlignment(LandmarksType.TWO_D, device="cpu", dtype=torch.float16, face_detector="folder",
                                 backend=backend)


def test_the_detector_threshold_flag_reaches_the_configuration_and_the_detector(fan1_h5):
    config = config_from_args(parse("--detector-threshold", "0.75"), fan1_h5)
    assert config.detector_threshold == 0.75 and config == ModelConfig.build(fan1_h5, detector_threshold=0.75)
    assert config_from_args(parse(), fan1_h5).detector_threshold is None  # the detector's own
    assert ModelConfig.from_json(config.to_json()).detector_threshold == 0.75
    # The detector built from the configuration keeps only what scores that much.
    fa = FaceAlignment.from_config(dataclasses.replace(config, backend="nnabla"))
    assert (fa.detector.name, fa.detector.threshold) == ("blazeface", 0.75)


def test_json_round_trip_and_bad_json_is_named(fan1_h5):
    config = ModelConfig.build(fan1_h5, flip=True, detector_threshold=0.25, batch_size=3)
    again = ModelConfig.from_json(config.to_json())
    assert again == config and again.to_json() == config.to_json() and again.model == config.model
    data = json.loads(config.to_json())
    with pytest.raises(FaceAlignmentError, match="'flop'"):
        ModelConfig.from_dict(dict(data, flop=True))
    with pytest.raises(FaceAlignmentError, match="batch_size"):
        ModelConfig.from_dict(dict(data, batch_size=0))
    with pytest.raises(FaceAlignmentError, match="flip"):
        ModelConfig.from_dict(dict(data, flip="yes"))
    with pytest.raises(FaceAlignmentError, match="decode"):
        ModelConfig.from_dict(dict(data, decode="median"))
    with pytest.raises(FaceAlignmentError, match="model_sha256"):
        ModelConfig.from_dict({k: v for k, v in data.items() if k != "model_sha256"})


def test_face_alignment_from_a_configuration_equals_one_from_keywords(fan1_h5, tmp_path):
    options = dict(backend="nnabla", context="cpu", flip=True, decode="argmax")
    direct = FaceAlignment(fan1_h5, **options)
    config = ModelConfig.from_json(ModelConfig.build(fan1_h5, **options).to_json())
    rebuilt = FaceAlignment.from_config(config)
    assert direct.config == rebuilt.config == config and (rebuilt.flip, rebuilt.decode) == (True, "argmax")
    ours = rebuilt.get_landmarks_from_image(EINSTEIN, EINSTEIN_BOX)
    theirs = direct.get_landmarks_from_image(EINSTEIN, EINSTEIN_BOX)
    np.testing.assert_array_equal(ours.landmarks, theirs.landmarks)
    # The file changed since: refused, naming it.
    changed = tmp_path / "fan1.h5"
    changed.write_bytes(open(fan1_h5, "rb").read())
    moved = dataclasses.replace(config, model=str(changed))
    FaceAlignment.from_config(moved)  # the same bytes elsewhere: fine
    with open(changed, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\x01" * 8)
    with pytest.raises(FaceAlignmentError, match=str(changed)):
        FaceAlignment.from_config(moved)
    with pytest.raises(TypeError, match="config"):  # from_config's, not a keyword of FaceAlignment's
        FaceAlignment(fan1_h5, config=config)


def test_precisions_other_than_fp32_are_refused_by_backends_that_lack_them(fan1_h5):
    assert PRECISIONS == ("fp32", "bf16", "int8")
    for backend in ("nnabla", "onnxruntime"):
        for precision in ("bf16", "int8"):
            with pytest.raises(BackendUnavailableError) as refused:
                ModelConfig.build(fan1_h5, backend=backend, precision=precision)
            # The message names the backend asked for, the precision, and the backend that runs it.
            assert all(f"'{name}'" in str(refused.value) for name in (backend, precision, "openvino"))
    # Asked for alone, a lower precision picks the backend that runs it.
    assert ModelConfig.build(fan1_h5, precision="int8").backend == "openvino"
    with pytest.raises(BackendUnavailableError, match="fp16"):
        ModelConfig.build(fan1_h5, precision="fp16")


def test_the_cnn_detector_model_keyword_and_flag_are_the_detector_model(fan1_h5, tmp_path):
    weights = tmp_path / "mmod.dat"
    weights.write_bytes(b"a detector")
    by_keyword = ModelConfig.build(fan1_h5, detector="cnn", cnn_detector_model=str(weights))
    assert by_keyword == ModelConfig.build(fan1_h5, detector="cnn", detector_model=str(weights))
    assert by_keyword.detector_model_sha256 == hashlib.sha256(b"a detector").hexdigest()
    flags = parse("--detector", "cnn", "--cnn-face-detection-model", str(weights))
    assert config_from_args(flags, fan1_h5) == by_keyword
    # nnabla-examples' flag alone selects dlib's CNN detector, in Python as on the command line.
    assert config_from_args(parse("--cnn-face-detection-model", str(weights)), fan1_h5) == by_keyword
    assert ModelConfig.build(fan1_h5, cnn_detector_model=str(weights)) == by_keyword
    assert config_from_args(parse("--raw-detector-boxes"), fan1_h5).calibrate_boxes is False
    with pytest.raises(FaceAlignmentError, match="nowhere.dat"):
        ModelConfig.build(fan1_h5, detector_model=str(tmp_path / "nowhere.dat"))
    # A folder is called one, not missing (issue 25, item 20).
    with pytest.raises(FaceAlignmentError) as folder:
        config_from_args(parse("--detector-model", str(tmp_path)), fan1_h5)
    assert str(folder.value).startswith(f"{tmp_path}: a folder") and "no such" not in str(folder.value)
    # The same file given under both names, and no detector: still dlib's CNN.
    assert ModelConfig.build(fan1_h5, cnn_detector_model=str(weights), detector_model=str(weights)) == by_keyword
    # A configuration taken elsewhere (a Ray worker, from_config) checks the detector's file
    # too: changed in place, it is refused by name before any network is built.
    weights.write_bytes(b"another detector")
    with pytest.raises(FaceAlignmentError) as refused:
        FaceAlignment.from_config(by_keyword)
    assert str(weights) in str(refused.value) and "detector_model" in str(refused.value)


@pytest.fixture(scope="module")
def depth_names_h5(tmp_path_factory):
    """A file with ResNetDepth's parameter names (and one-number values: a configuration reads
    names only)."""
    from face_alignment.registry import RESNET_DEPTH
    from face_alignment.weights import expected_parameters
    from face_alignment.weights.h5 import write_h5

    path = tmp_path_factory.mktemp("depth") / "depth.h5"
    write_h5(str(path), {name: np.zeros(1, np.float32) for name in expected_parameters(RESNET_DEPTH)}, {})
    return str(path)


def test_the_python_api_refuses_a_2d_fan_for_3d_landmarks(fan1_h5, depth_names_h5, tmp_path):
    from face_alignment.registry import ARCHITECTURES
    from face_alignment.weights.h5 import read_h5
    from face_alignment.weights.h5 import write_h5
    from face_alignment.weights.loading import architecture_attrs

    assert ARCHITECTURES["2DFAN4"].landmarks == "2D"  # what fan1_h5 records (as FAN1)
    with pytest.raises(FaceAlignmentError, match=f"{fan1_h5}: holds FAN1, a 2D-FAN"):
        FaceAlignment(fan1_h5, depth_names_h5, backend="nnabla")
    # The same parameters recorded as a 3D-FAN make a 3D configuration.
    fan_3d = tmp_path / "fan1_3d.h5"
    params, _ = read_h5(fan1_h5)
    write_h5(str(fan_3d), params, architecture_attrs(dataclasses.replace(ARCHITECTURES["3DFAN4"], name="3DFAN1",
                                                                       num_modules=1)))
    config = ModelConfig.build(str(fan_3d), depth_names_h5)
    assert config.is_3d and config.depth_model_sha256 == hashlib.sha256(open(depth_names_h5, "rb").read()).hexdigest()


def test_the_landmarker_takes_boxes_from_anywhere_and_face_alignment_composes_it(fan1_h5):
    from face_alignment.landmarker import Landmarker

    config = ModelConfig.build(fan1_h5, backend="nnabla", context="cpu", batch_size=2)
    landmarker = Landmarker.from_config(config)
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:200, 150:250] = 200
    boxes = np.array([[150.0, 100, 250, 200], [10, 10, 90, 90], [300, 150, 390, 290]])
    [(item, seen, predictions)] = landmarker.landmarks([("mine", image, boxes)], ("argmax", "centroid"))
    assert item == "mine" and seen is image and set(predictions) == {"argmax", "centroid"}
    assert predictions["centroid"].landmarks.shape == (3, 68, 2)
    np.testing.assert_array_equal(predictions["centroid"].boxes, boxes)
    fa = FaceAlignment.from_config(config)
    assert isinstance(fa.landmarker, Landmarker) and fa.fan is fa.landmarker.fan
    np.testing.assert_allclose(fa.get_landmarks_from_image(image, boxes).landmarks,
                               predictions["centroid"].landmarks, atol=1e-6)
