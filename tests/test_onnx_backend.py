"""The ONNX Runtime backend: same numbers as NNabla, the shared export cache (keyed by the
weights, bounded, least recently used first out, safe for concurrent exports), and the backend
choice in FaceAlignment and model_inference.py."""
import json
import logging
import os
import subprocess
import sys
import time
from collections import OrderedDict

import nnabla as nn
import numpy as np
import pytest

import checkpoints
from engine_fixtures import FAN1, crops, isolated_fan1_h5, fan1_params, fan1_reference  # noqa: F401 (fixtures)
from conftest import CPU, ROOT, SHARED, assert_one_line_error, run_tool
from face_alignment.api import FaceAlignment
from face_alignment.backends import (NNablaNetwork, OnnxRuntimeNetwork, available_backends, default_backend,
                                     make_network)
from face_alignment.backends import onnx_cache
from face_alignment.errors import BackendUnavailableError, FaceAlignmentError
from face_alignment.registry import FAN, Architecture
from face_alignment.weights.h5 import write_h5
from face_alignment.weights import loading
from face_alignment.weights.loading import Weights, architecture_attrs, open_weights

TOLERANCE = checkpoints.NETWORK_TOLERANCE
EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")
EINSTEIN_BOX = np.array([[250.0, 260.0, 600.0, 640.0]])


def test_backends_installed_here_and_the_default_is_onnxruntime():
    # The default set-up installs all three (openvino with the export extra).
    assert available_backends() == ("onnxruntime", "nnabla", "openvino")
    assert default_backend() == "onnxruntime"
    assert default_backend("cpu") == "onnxruntime"
    assert default_backend("cudnn") == "nnabla"  # ONNX Runtime is CPU-only here


def exports_folder():
    return os.path.join(os.environ["FACE_ALIGNMENT_HOME"], "exports")


def test_exports_once_into_the_cache_not_beside_the_weights_and_matches_nnabla(isolated_fan1_h5, crops, fan1_reference):
    net = OnnxRuntimeNetwork(open_weights(isolated_fan1_h5))
    assert os.listdir(os.path.dirname(isolated_fan1_h5)) == ["fan1.h5"]
    cached = os.listdir(exports_folder())
    assert len(cached) == 1 and cached[0].startswith(FAN1.name) and cached[0].endswith(".onnx")
    assert net.model_path == os.path.join(exports_folder(), cached[0])
    assert net.input_channels == 3
    for batch in (1, 3):
        ours = net(crops[:batch])
        assert ours.shape == (batch, 68, 64, 64)
        assert checkpoints.relative_error(ours, fan1_reference[:batch]) <= TOLERANCE


# Run in a fresh interpreter, so that what an earlier export imported does not count.
_SECOND_RUN = """
import json, sys
import numpy as np
from face_alignment.backends import make_network
from face_alignment.weights.loading import open_weights
net = make_network(open_weights(sys.argv[1]), "onnxruntime")
out = net(np.load(sys.argv[2]))
np.save(sys.argv[3], out)
exporters = ("onnx", "nnabla.utils.converter.onnx", "tensorflow", "tf2onnx")
print(json.dumps({"model": net.model_path, "imported": [m for m in exporters if m in sys.modules]}))
"""


def test_second_run_uses_the_cache_with_onnxruntime_alone(isolated_fan1_h5, crops, fan1_reference, tmp_path):
    first = OnnxRuntimeNetwork(open_weights(isolated_fan1_h5))
    before = os.stat(first.model_path)
    np.save(tmp_path / "crops.npy", crops[:2])
    result = subprocess.run([sys.executable, "-c", _SECOND_RUN, isolated_fan1_h5, str(tmp_path / "crops.npy"),
                             str(tmp_path / "out.npy")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"model": first.model_path, "imported": []}
    after = os.stat(first.model_path)
    # The same file, not written again; only marked as used (its time, for the eviction order).
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert after.st_mtime_ns >= before.st_mtime_ns
    assert checkpoints.relative_error(np.load(tmp_path / "out.npy"), fan1_reference[:2]) <= TOLERANCE


def test_cache_key_follows_the_weights_and_the_graph(isolated_fan1_h5, fan1_params, tmp_path):
    changed = OrderedDict(fan1_params)
    changed["conv1/conv/W"] = changed["conv1/conv/W"].copy()
    changed["conv1/conv/W"][0, 0, 0, 0] += 1e-3
    other = tmp_path / "other"
    other.mkdir()
    write_h5(str(other / "fan1.h5"), changed, architecture_attrs(FAN1))
    with open(isolated_fan1_h5, "rb") as f:
        (other / "copy.h5").write_bytes(f.read())

    def path(weights_path, arch=FAN1, cache_dir=None):
        return onnx_cache.cached_model_path(Weights(arch, path=str(weights_path)), cache_dir)

    assert path(isolated_fan1_h5) != path(other / "fan1.h5")  # changed weights
    assert path(isolated_fan1_h5) == path(other / "copy.h5")  # the same bytes under another name: one export
    assert path(isolated_fan1_h5) != path(isolated_fan1_h5, Architecture(FAN1.name, FAN, 1, "max"))  # another graph
    assert os.path.dirname(path(isolated_fan1_h5)) == exports_folder()  # FACE_ALIGNMENT_HOME's
    assert os.path.dirname(path(isolated_fan1_h5, cache_dir=str(tmp_path / "given"))) == str(tmp_path / "given")


def test_weights_without_a_file_are_keyed_by_their_values(fan1_params, tmp_path):
    changed = OrderedDict(fan1_params)
    changed["conv1/conv/b"] = changed["conv1/conv/b"] + 1e-3
    same = onnx_cache.cached_model_path(Weights(FAN1, OrderedDict(fan1_params)), str(tmp_path))
    assert onnx_cache.cached_model_path(Weights(FAN1, fan1_params), str(tmp_path)) == same
    assert onnx_cache.cached_model_path(Weights(FAN1, changed), str(tmp_path)) != same
    assert os.path.dirname(same) == str(tmp_path) and os.path.basename(same).startswith(FAN1.name + "-")


def test_a_cache_hit_reads_no_weight_values(isolated_fan1_h5, crops, fan1_reference, monkeypatch):
    first = OnnxRuntimeNetwork(open_weights(isolated_fan1_h5))

    def unexpected_read(path):
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(loading, "read_h5", unexpected_read)
    net = OnnxRuntimeNetwork(open_weights(isolated_fan1_h5))
    assert net.model_path == first.model_path
    assert checkpoints.relative_error(net(crops[:1]), fan1_reference[:1]) <= TOLERANCE


def test_corrupt_cache_is_rebuilt(isolated_fan1_h5, crops, fan1_reference, caplog):
    path = OnnxRuntimeNetwork(open_weights(isolated_fan1_h5)).model_path
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING):
        net = OnnxRuntimeNetwork(open_weights(isolated_fan1_h5))
    assert net.model_path == path
    assert any("unreadable cached ONNX model" in r.getMessage() for r in caplog.records)
    assert checkpoints.relative_error(net(crops[:1]), fan1_reference[:1]) <= TOLERANCE


def test_cache_dir_replaces_the_home_folder(isolated_fan1_h5, crops, fan1_reference, tmp_path):
    given = tmp_path / "given"
    net = make_network(open_weights(isolated_fan1_h5), "onnxruntime", cache_dir=str(given))
    assert os.path.dirname(net.model_path) == str(given) and os.listdir(given) == [os.path.basename(net.model_path)]
    assert not os.path.exists(exports_folder())
    assert checkpoints.relative_error(net(crops[:1]), fan1_reference[:1]) <= TOLERANCE


def _planted(folder, name, size, age):
    """A file of ``size`` bytes in the cache, last used ``age`` seconds ago."""
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(b"\0" * size)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_the_cache_keeps_its_bound_by_removing_the_least_recently_used(isolated_fan1_h5, monkeypatch):
    weights = open_weights(isolated_fan1_h5)
    model = onnx_cache.onnx_model_path(weights)
    folder, size = os.path.dirname(model), os.path.getsize(model)
    os.utime(model, (time.time() - 3000,) * 2)  # the oldest of all...
    older = _planted(folder, "a-old.onnx", size, 2000)
    newer = _planted(folder, "b-new.onnx", size, 1000)
    # What an engine built from an export (OpenVINO's compiled model) goes with it; the int8
    # model the accuracy gate made from it stays.
    built, gated = os.path.join(folder, "openvino", "a-old"), _planted(folder, "a-old.int8.xml", 10, 5000)
    os.makedirs(built)
    _planted(built, "0123.blob", 10, 2000)
    assert onnx_cache.onnx_model_path(weights) == model  # ...until used now
    # Room for two models of this size: of the three, the one used longest ago goes.
    monkeypatch.setenv(onnx_cache.SIZE_VARIABLE, str(2.5 * size / 2 ** 20))
    assert onnx_cache.evict(folder) == 1
    assert sorted(os.listdir(folder)) == sorted([os.path.basename(model), os.path.basename(newer), "openvino",
                                                 os.path.basename(gated)])
    assert not os.path.exists(older) and not os.path.exists(built)
    os.remove(gated)
    os.rmdir(os.path.join(folder, "openvino"))
    # An export over the bound keeps itself, whatever the bound.
    monkeypatch.setenv(onnx_cache.SIZE_VARIABLE, "0")
    rebuilt = onnx_cache.onnx_model_path(weights, rebuild=True)
    assert os.listdir(folder) == [os.path.basename(rebuilt)]
    monkeypatch.setenv(onnx_cache.SIZE_VARIABLE, "lots")
    with pytest.raises(FaceAlignmentError, match=onnx_cache.SIZE_VARIABLE):
        onnx_cache.evict(folder)


_EXPORT = """
import sys
from face_alignment.backends.onnx_cache import onnx_model_path
from face_alignment.weights.loading import open_weights
print(onnx_model_path(open_weights(sys.argv[1])))
"""


def test_concurrent_exports_of_one_model_leave_one_whole_file(isolated_fan1_h5, crops, fan1_reference):
    env = dict(os.environ, PYTHONPATH=ROOT)
    runs = [subprocess.Popen([sys.executable, "-c", _EXPORT, isolated_fan1_h5], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=env) for _ in range(2)]
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    [path] = {out.strip() for out, _ in outputs}
    assert os.listdir(exports_folder()) == [os.path.basename(path)]  # no temporary file left
    net = OnnxRuntimeNetwork(open_weights(isolated_fan1_h5))
    assert net.model_path == path
    assert checkpoints.relative_error(net(crops[:1]), fan1_reference[:1]) <= TOLERANCE


def test_backend_errors_are_one_line(fan1_params, monkeypatch):
    cudnn = nn.Context(backend=["cudnn:float", "cuda:float", "cpu:float"], array_class="CudaCachedArray")
    with pytest.raises(BackendUnavailableError) as caught:
        make_network(Weights(FAN1, fan1_params), "onnxruntime", cudnn)
    assert "cudnn" in str(caught.value) and "'nnabla'" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(TypeError, match="takes Weights"):
        make_network(FAN1, fan1_params)  # the arguments before Weights existed
    with pytest.raises(BackendUnavailableError, match="'tensorrt'.*onnxruntime, nnabla"):
        make_network(Weights(FAN1, fan1_params), "tensorrt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(BackendUnavailableError, match="pip install onnxruntime"):
        make_network(Weights(FAN1, fan1_params), "onnxruntime")


def test_face_alignment_landmarks_agree_across_backends(fan2_h5, caplog):
    landmarks = {}
    for backend in ("nnabla", "onnxruntime"):
        with caplog.at_level(logging.INFO, logger="face_alignment"):
            fa = FaceAlignment(fan2_h5, backend=backend, context="cpu")
        assert f"on {backend} (cpu, fp32)" in caplog.text
        assert type(fa.fan) is (NNablaNetwork if backend == "nnabla" else OnnxRuntimeNetwork)
        for decode in ("centroid", "argmax"):
            (prediction,) = fa.predict([EINSTEIN], [EINSTEIN_BOX], (decode,))
            landmarks[backend, decode] = prediction[decode].landmarks
    for decode in ("centroid", "argmax"):
        ours, reference = landmarks["onnxruntime", decode], landmarks["nnabla", decode]
        assert ours.shape == reference.shape == (1, 68, 2)
        assert np.max(np.abs(ours - reference)) <= 0.01


def test_model_inference_backend_flag(fan2_h5, tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([EINSTEIN_BOX[0].tolist()]))
    results = {}
    for backend in ("nnabla", "onnxruntime"):
        out = tmp_path / f"{backend}.json"
        result = run_tool("model_inference.py", "--model", fan2_h5, "--test-image", EINSTEIN, "--boxes", boxes,
                          "--backend", backend, "--save-json", out, *CPU)
        assert result.returncode == 0, result.stderr
        # --backend reaches FAN and the detector alike.
        assert f"on {backend} (cpu, fp32)" in result.stderr and f"detector blazeface on {backend} (cpu" in result.stderr
        results[backend] = np.array(json.loads(out.read_text())["images"][0]["faces"][0]["landmarks"])
    assert np.max(np.abs(results["onnxruntime"] - results["nnabla"])) <= 0.01
    assert_one_line_error(run_tool("model_inference.py", "--model", fan2_h5, "--test-image", EINSTEIN,
                                   "--backend", "tensorrt"), "--backend", "tensorrt")


def test_asking_for_onnxruntime_picks_the_cpu_context_on_a_cuda_machine(fan2_h5, monkeypatch):
    import face_alignment.config as config
    from face_alignment.backends import context

    # As if nnabla's CUDA extension were installed: cudnn becomes the default context...
    monkeypatch.setattr(config, "default_context_name", lambda: "cudnn")
    monkeypatch.setattr(context, "cuda_available", lambda: False)  # (even where it is installed)
    with pytest.raises(BackendUnavailableError, match="nnabla-ext-cuda"):
        FaceAlignment(fan2_h5)  # ...which cannot be made here
    # ...but ONNX Runtime, asked for by name, runs on the CPU without being told the context.
    fa = FaceAlignment(fan2_h5, backend="onnxruntime")
    assert fa.backend == "onnxruntime" and fa.context == "cpu"


def test_cache_dir_holds_the_detectors_exports_too(isolated_fan1_h5, tmp_path):
    """``cache_dir`` is where every export goes, the face detector's too: nothing lands in
    FACE_ALIGNMENT_HOME's cache."""
    from face_alignment.pipeline.image import read_image

    cache = tmp_path / "elsewhere"
    fa = FaceAlignment(isolated_fan1_h5, backend="onnxruntime", cache_dir=str(cache))
    assert len(fa.detect_faces(read_image(EINSTEIN))) == 1
    exported = sorted(name.rsplit("-", 1)[0] for name in os.listdir(cache) if name.endswith(".onnx"))
    assert exported == ["blazeface_full_range", FAN1.name]
    assert not os.path.exists(exports_folder())
