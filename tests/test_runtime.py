"""The one runtime: a described network runs alike on every engine, and the export cache
survives what a fault probe did to it (a damaged, cut or evicted export; a read-only cache; a
damaged int8 model; stale temporaries; a bad FACE_ALIGNMENT_CACHE_MB), the same way on every
engine built on it. The detectors run on the model's backend, context and precision.

Most cases use a tiny described graph (a 3x3 convolution and its ReLU, random weights) whose
outputs numpy computes by hand: the code under test is the same for every network."""
import logging
import os
import sys
import tempfile
import time

import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest
from blazeface_references import extract_tflite
from conftest import SHARED, annotated_box
from face_alignment.api import FaceAlignment
from face_alignment.backends import Target, build_runner, onnx_cache
from face_alignment.backends.description import ANY_FRAME, NetworkDescription
from face_alignment.backends.openvino_net import OpenVinoRunner
from face_alignment.detection import as_detector, load_detector
from face_alignment.errors import BackendUnavailableError, FaceAlignmentError, PrecisionUnavailableError

ENGINES = ("nnabla", "onnxruntime", "openvino")
CACHED = ("onnxruntime", "openvino")  # the engines built on the export cache (NNabla keeps nothing)
EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")

_rng = np.random.RandomState(11)
WEIGHT = _rng.randn(4, 3, 3, 3).astype(np.float32)
BIAS = _rng.randn(4).astype(np.float32)
FRAMES = _rng.rand(2, 3, 9, 7).astype(np.float32)  # not the export's shape: its axes vary


def tiny(weights_sha256="ab" * 32):
    def build(x):
        h = PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c")
        return [h, F.relu(h)]

    return NetworkDescription("tiny", build, lambda: {"c/conv/W": WEIGHT, "c/conv/b": BIAS}, weights_sha256,
                              (1, 3, 8, 8), ANY_FRAME, ("a", "b"), source="tiny.h5")


def by_hand(x):
    """The 3x3 convolution (zero padding 1) and its ReLU, in numpy."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3)
    conv = np.einsum("nchwij,ocij->nohw", windows, WEIGHT) + BIAS[None, :, None, None]
    return [conv, np.maximum(conv, 0)]


def assert_by_hand(runner):
    for ours, expected in zip(runner(FRAMES), by_hand(FRAMES)):
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv(onnx_cache.SIZE_VARIABLE, raising=False)
    return str(tmp_path / "exports")


def run_on(engine, cache_dir, description=None):
    return build_runner(description or tiny(), engine, Target(cache_dir=cache_dir))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_described_graph_runs_alike_on_every_engine(engine, cache):
    runner = run_on(engine, cache)
    assert_by_hand(runner)
    exported = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
    assert [n for n in exported if n.endswith(".onnx")] == ([] if engine == "nnabla" else
                                                           [os.path.basename(runner.model_path)])


def _damage_weights(path):
    """The convolution's weights multiplied by -3 inside the model, at the same file size."""
    with open(path, "rb") as f:
        data = f.read()
    at = data.find(WEIGHT.tobytes())
    assert at >= 0
    damaged = data[:at] + (WEIGHT * -3).tobytes() + data[at + WEIGHT.nbytes:]
    assert len(damaged) == len(data)
    with open(path, "wb") as f:
        f.write(damaged)
    return data


def _truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "r+b") as f:
        f.truncate(len(data) // 2)
    return data


@pytest.mark.parametrize("damage", [_damage_weights, _truncate])
@pytest.mark.parametrize("engine", CACHED)
def test_a_damaged_or_cut_export_is_exported_again_never_used(engine, damage, cache, caplog):
    path = run_on(engine, cache).model_path
    original = damage(path)
    with caplog.at_level(logging.WARNING):
        runner = run_on(engine, cache)
    assert runner.model_path == path
    assert_by_hand(runner)
    with open(path, "rb") as f:
        assert f.read() == original  # the same export again
    assert any(path in r.getMessage() and "exporting it again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("engine", CACHED)
def test_a_model_evicted_between_lookup_and_load_is_exported_again(engine, cache, monkeypatch):
    run_on(engine, cache)  # in the cache: the lookup finds it...
    lookup = onnx_cache.model_path

    def evicted_meanwhile(description, cache_dir=None, rebuild=False):
        path = lookup(description, cache_dir, rebuild)
        if not rebuild:
            os.remove(path)  # ...and another process evicts it before it is read
        return path

    monkeypatch.setattr(onnx_cache, "model_path", evicted_meanwhile)
    runner = run_on(engine, cache)
    assert os.path.isfile(runner.model_path)
    assert_by_hand(runner)


@pytest.mark.parametrize("engine", CACHED)
def test_a_read_only_cache_holding_the_export_is_used_as_it_is(engine, cache, monkeypatch):
    run_on("onnxruntime", cache)
    before = sorted(os.listdir(cache))
    # Read-only to this process (tests may run as root, whom permissions do not stop).
    inside = os.path.abspath(cache)
    makedirs, access = os.makedirs, os.access

    def refused_makedirs(path, *args, **kwargs):
        if os.path.abspath(path).startswith(inside):
            raise PermissionError(13, "Read-only file system", path)
        return makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", refused_makedirs)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.path.abspath(path).startswith(inside)
                        and mode & os.W_OK else access(path, mode, **kw))
    assert_by_hand(run_on(engine, cache))
    assert sorted(os.listdir(cache)) == before  # nothing written there (no openvino/ folder)


def _int8_model(cache, folder):
    """An OpenVINO IR written as the gate writes one (here the fp32 graph itself: what is
    tested is reading it)."""
    import openvino as ov

    from face_alignment.precision.quantize import save_ir

    return save_ir(ov.Core().read_model(run_on("onnxruntime", cache).model_path), os.path.join(folder, "tiny.int8.xml"))


def _rename_network(path):
    """The .xml changed at the same size: the network's name, one letter."""
    with open(path, "rb") as f:
        data = f.read()
    at = data.index(b'<net name="') + len(b'<net name="')
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(b"Z" if data[at:at + 1] != b"Z" else b"Y")


@pytest.mark.parametrize("damage", ["bin cut short", "broken xml", "bin's weights at its size", "xml at its size"])
def test_a_damaged_int8_model_is_one_line_naming_it_and_the_gate(damage, cache, tmp_path):
    xml = _int8_model(cache, str(tmp_path))
    assert_by_hand(OpenVinoRunner(tiny(), model=xml, cache_dir=cache))  # whole: it runs
    harm, suffix = {"bin cut short": (_truncate, ".bin"), "broken xml": (_truncate, ".xml"),
                    "bin's weights at its size": (_damage_weights, ".bin"),
                    "xml at its size": (_rename_network, ".xml")}[damage]
    harm(xml[:-len(".xml")] + suffix)
    with pytest.raises(PrecisionUnavailableError) as raised:
        OpenVinoRunner(tiny(), model=xml, cache_dir=cache)
    message = str(raised.value)
    assert "\n" not in message and xml in message and "face_alignment.precision" in message and "again" in message


@pytest.mark.parametrize("setting", ["inf", "1e400", "nan", "abc", "-1"])
def test_a_bad_cache_bound_is_refused_first_on_a_miss_and_on_a_hit(setting, cache, monkeypatch):
    monkeypatch.setenv(onnx_cache.SIZE_VARIABLE, setting)
    with pytest.raises(FaceAlignmentError, match=onnx_cache.SIZE_VARIABLE):
        run_on("onnxruntime", cache)
    assert not os.path.exists(cache)  # refused before exporting anything
    monkeypatch.delenv(onnx_cache.SIZE_VARIABLE)
    run_on("onnxruntime", cache)
    monkeypatch.setenv(onnx_cache.SIZE_VARIABLE, setting)
    with pytest.raises(FaceAlignmentError, match=onnx_cache.SIZE_VARIABLE):
        run_on("onnxruntime", cache)  # a hit: refused all the same
    with pytest.raises(FaceAlignmentError, match=onnx_cache.SIZE_VARIABLE):
        onnx_cache.model_path(tiny(), cache)  # by the cache itself (the precision gate's way in)
    with pytest.raises(FaceAlignmentError, match=onnx_cache.SIZE_VARIABLE):
        run_on("nnabla", cache)  # a setting like any other: checked whatever the engine


def test_temporaries_a_killed_export_left_go_on_the_next_run(cache, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    os.makedirs(cache)
    old = time.time() - 2 * onnx_cache.STALE_SECONDS

    def planted(path, age):
        if path.endswith("/"):
            os.makedirs(path)
        else:
            with open(path, "wb") as f:
                f.write(b"\0" * 100)
        os.utime(path.rstrip("/"), (age, age))
        return path.rstrip("/")

    stale = [planted(os.path.join(cache, ".fa-0123abcd.tmp.onnx"), old),
             planted(str(scratch / "fan-export-k1ll3d") + "/", old)]
    busy = [planted(os.path.join(cache, ".fa-4567cdef.tmp.onnx"), time.time()),  # another export, now
            planted(str(scratch / "fan-export-n0w") + "/", time.time())]
    run_on("onnxruntime", cache)
    assert not any(os.path.exists(p) for p in stale)
    assert all(os.path.exists(p) for p in busy)


# --- detectors on the model's target ---------------------------------------------------------

@pytest.fixture
def counting():
    import counting_backend

    counting_backend.RUNS.clear()
    return counting_backend


@pytest.fixture(scope="module")
def mediapipe(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mediapipe"))


@pytest.fixture(scope="module")
def short_range(mediapipe):
    return extract_tflite("short_range", mediapipe)


@pytest.fixture(scope="module")
def full_range(mediapipe):
    return extract_tflite("full_range", mediapipe)


def test_under_int8_only_fan_runs_in_int8(fan1_3d_h5, weight_files, full_range, counting, caplog):
    """The accuracy gate makes an int8 model for FAN alone: ResNetDepth and the detector beside
    it run in fp32, and the line at start-up says where each runs."""
    from weight_files import SEEING_DEPTH

    depth = weight_files.converted(SEEING_DEPTH, "depth-2a464da4ea.pth.tar", "depth")
    with caplog.at_level(logging.INFO, logger="face_alignment.api"):
        fa = FaceAlignment(fan1_3d_h5, depth, backend="counting_backend:Int8Counting", precision="int8",
                           detector="blazeface", detector_model=full_range, decode="argmax")
    assert any("3DFAN1 (3D) on counting_backend:Int8Counting (cpu, int8), ResNetDepth at fp32" in r.getMessage()
               and "detector blazeface on counting_backend:Int8Counting (cpu, fp32)" in r.getMessage()
               for r in caplog.records)
    fa.get_landmarks_from_image(EINSTEIN, annotated_box("einstein")[None])
    assert {(name, precision) for name, _, precision in counting.RUNS} == {("3DFAN1", "int8"), ("ResNetDepth", "fp32")}


def test_the_detector_runs_on_the_models_backend(fan1_h5, full_range, counting, caplog):
    with caplog.at_level(logging.INFO, logger="face_alignment.api"):
        fa = FaceAlignment(fan1_h5, backend="counting_backend:Counting", detector="blazeface",
                           detector_model=full_range, decode="argmax")
    # Where each network runs, in the one line at start-up.
    assert any("FAN1 (2D) on counting_backend:Counting (cpu, fp32)" in r.getMessage()
               and "detector blazeface on counting_backend:Counting (cpu, fp32)" in r.getMessage()
               for r in caplog.records)
    found = fa.get_landmarks_from_image(EINSTEIN)
    assert len(found.boxes) >= 1
    # BlazeFace, then FAN on the faces: both through the one backend, on the model's target.
    assert counting.RUNS[0] == ("blazeface_full_range", "cpu", "fp32")
    assert {run[0] for run in counting.RUNS[1:]} == {"FAN1"}
    # The same boxes as BlazeFace on NNabla itself.
    reference = load_detector("blazeface", full_range, backend="nnabla")
    np.testing.assert_array_equal(fa.detector.detect(read_rgb(EINSTEIN)), reference.detect(read_rgb(EINSTEIN)))


def read_rgb(path):
    from face_alignment.pipeline.image import read_image

    return read_image(path)


@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime"])
def test_face_alignment_gives_its_backend_to_the_detector(fan1_h5, short_range, backend):
    fa = FaceAlignment(fan1_h5, backend=backend, context="cpu", detector="blazeface-short",
                       detector_model=short_range)
    assert fa.detector.backend == backend and fa.detector.runtime.target.context == "cpu"


def test_the_detector_is_given_the_context_and_says_where_it_cannot_run(short_range, counting, tmp_path):
    detector = as_detector("blazeface-short", context="cudnn", backend="counting_backend:Counting",
                           weights=short_range, cache_dir=str(tmp_path))
    detector.detect(np.zeros((64, 64, 3), np.uint8))
    assert counting.RUNS == [("blazeface_short_range", "cudnn", "fp32")]
    # ONNX Runtime runs on the CPU only: one line, before the weights are read.
    with pytest.raises(BackendUnavailableError, match="'onnxruntime'.*'cudnn'") as raised:
        as_detector("retinaface", context="cudnn", backend="onnxruntime", weights=str(tmp_path / "absent.h5"))
    assert "\n" not in str(raised.value)


def test_a_backend_that_runs_fan_only_leaves_the_detector_on_the_fastest_and_says_so(short_range, counting,
                                                                                   caplog):
    from face_alignment.backends import default_backend

    with caplog.at_level(logging.INFO, logger="face_alignment.detection.runtime"):
        detector = as_detector("blazeface-short", context="cpu", backend="counting_backend:FanOnly",
                               weights=short_range)
    assert detector.backend == default_backend("cpu")
    assert any("runs FAN only" in r.getMessage() for r in caplog.records)


def test_an_int8_model_runs_its_detector_in_fp32():
    from face_alignment.detection.runtime import placement

    assert placement("blazeface", "openvino", "cpu", "int8")[1].precision == "fp32"
    assert placement("blazeface", "openvino", "cpu", "fp32")[1].precision == "fp32"


def test_dlib_runs_where_its_entry_says(fan1_h5, caplog):
    with caplog.at_level(logging.INFO, logger="face_alignment.api"):
        FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector="hog")
    assert any("detector hog on dlib, on the CPU" in r.getMessage() for r in caplog.records)


# --- RetinaFace's and SFD's exports: the same cache --------------------------------------------

@pytest.fixture(scope="module")
def retinaface_h5(tmp_path_factory):
    """RetinaFace with random weights (positive BatchNorm variances), as our converter writes it."""
    from face_alignment.detection.retinaface import RETINAFACE_WEIGHTS
    from face_alignment.detection.torch_weights import ATTR_DETECTOR, graph_parameters
    from face_alignment.weights.h5 import write_h5

    rng = np.random.RandomState(3)
    params = {k: (np.abs(rng.randn(*s)) + 0.5 if k.endswith("/var") else rng.randn(*s) * 0.1).astype(np.float32)
              for k, s in graph_parameters(RETINAFACE_WEIGHTS.build).items()}
    path = str(tmp_path_factory.mktemp("retinaface") / "retinaface.h5")
    write_h5(path, params, {ATTR_DETECTOR: RETINAFACE_WEIGHTS.name})
    return path


@pytest.mark.parametrize("engine", CACHED)
def test_retinafaces_cut_export_is_exported_again(engine, retinaface_h5, cache):
    from face_alignment.detection.retinaface import RetinaFaceDetector

    frame = (np.random.RandomState(4).rand(1, 48, 64, 3) * 255).astype(np.uint8)
    expected = RetinaFaceDetector(retinaface_h5, backend="nnabla").raw_outputs(frame)
    first = RetinaFaceDetector(retinaface_h5, backend=engine, cache_dir=cache)
    first.raw_outputs(frame)
    (path,) = [os.path.join(cache, n) for n in os.listdir(cache) if n.endswith(".onnx")]
    _truncate(path)
    again = RetinaFaceDetector(retinaface_h5, backend=engine, cache_dir=cache)
    for ours, theirs in zip(again.raw_outputs(frame), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_a_cut_conversion_in_the_cache_is_converted_again(retinaface_h5, tmp_path):
    import torch
    from face_alignment.detection.retinaface import RetinaFaceDetector
    from face_alignment.weights.h5 import read_h5

    # The same weights as face-alignment's .pth holds them (our names mapped back to PyTorch's).
    leaves = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias", "mean": "running_mean",
              "var": "running_var"}
    params, _ = read_h5(retinaface_h5)
    state = {}
    for name, value in params.items():
        scope, kind, leaf = name.rsplit("/", 2)
        state[f"{scope.replace('/', '.')}.{leaves[leaf]}"] = torch.from_numpy(value if kind == "conv" else
                                                                              value.reshape(-1))
    pth = str(tmp_path / "retinaface.pth")
    torch.save(state, pth)
    converted = RetinaFaceDetector(pth, backend="nnabla").weights_path
    _truncate(converted)  # a conversion cut short (a killed process, a full disk)
    again = RetinaFaceDetector(pth, backend="nnabla")
    assert again.weights_path == converted
    frame = (np.random.RandomState(4).rand(1, 48, 64, 3) * 255).astype(np.uint8)
    for ours, theirs in zip(again.raw_outputs(frame), RetinaFaceDetector(retinaface_h5, backend="nnabla")
                            .raw_outputs(frame)):
        np.testing.assert_array_equal(ours, theirs)


def test_the_detectors_options_are_checked_before_the_model_loads(fan1_h5, monkeypatch):
    from face_alignment import landmarker

    def unexpected(*args, **kwargs):
        raise AssertionError("the model was loaded first")

    monkeypatch.setattr(landmarker.Landmarker, "from_config", unexpected)
    with pytest.raises(FaceAlignmentError, match="'blazeface' takes no max_side option"):
        FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector="blazeface", detector_max_side=100)


@pytest.mark.parametrize("engine", ["openvino"])  # NNabla and ONNX Runtime: tests/test_blazeface.py
def test_blazeface_on_every_engine_matches_tflite(engine, full_range):
    from blazeface_references import run_tflite, tflite_interpreter
    from face_alignment.detection.blazeface import BlazeFaceDetector, letterbox

    detector = BlazeFaceDetector(full_range, backend=engine)
    squares = np.stack([letterbox(read_rgb(EINSTEIN), detector.input_size)[0]] * 2)  # a batch of two
    ours = detector.raw_outputs(squares)
    theirs = run_tflite(tflite_interpreter(full_range), (squares[:1].astype(np.float32) / 127.5 - 1))
    for got, reference in zip(ours, theirs):
        for one in got:
            assert np.abs(one - reference[0]).max() / np.abs(reference).max() <= 1e-4
