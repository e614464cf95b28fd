"""SIGTERM stops a command line as Ctrl-C does: temporary files and folders are removed, no
output is left half-made, one line says so, and the exit status is 143 (128 + SIGTERM).

Each tool is run as a user runs it, with one library call replaced by a pause that says when
it has begun: the signal then comes while the temporary files certainly exist."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import checkpoints
from conftest import CPU, ROOT, SHARED
from face_alignment.cli_support import EXIT_INTERRUPTED, EXIT_TERMINATED
from face_alignment.files import TEMP_PREFIX
from face_alignment.registry import FAN
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.loading import architecture_attrs
from test_weight_safety import FAN1

EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")
DRIVER = """
import importlib, os, runpy, signal, sys, time

signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, even if a parent ignores it

def pause(*args, **kwargs):
    open(os.environ["PAUSED"], "w").close()
    time.sleep(600)

module, _, name = sys.argv[1].rpartition(".")
owner, _, attribute = name.rpartition(":") if ":" in name else ("", "", name)
target = importlib.import_module(module)
setattr(getattr(target, owner) if owner else target, attribute, pause)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# (what pauses, "module.attribute" or "module.Class:method")
WRITING_H5 = "h5py.Group:create_dataset"  # the temporary .h5 is open beside the output
WRITING_NNP = "nnabla.utils.save.save"  # the temporary .nnp is made beside the output
EXPORTING_ONNX = "nnabla.utils.converter.onnx.OnnxExporter:export_model_proto"  # the graph is in memory only


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    model = checkpoints.authors_fan(1, "avg", seed=3)
    checkpoints.save_legacy(model, folder / "fan1.pth.tar")
    write_h5(str(folder / "fan1.h5"), checkpoints.nnabla_params(model, FAN, 1), architecture_attrs(FAN1))
    return folder


def run_and_terminate(tmp_path, watched, pause_in, script, *args, signum=signal.SIGTERM, env=None):
    """Run ``script`` until it reaches ``pause_in``, send ``signum`` (SIGTERM); (process, stderr,
    private TMPDIR, what ``watched`` and the TMPDIR held when the signal was sent). ``env``:
    variables to add."""
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    paused = tmp_path / "paused"
    env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(private_tmp), PAUSED=str(paused), **(env or {}))
    process = subprocess.Popen([sys.executable, "-c", DRIVER, pause_in, os.path.join(ROOT, script), *map(str, args)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3000):  # at most about 5 minutes on a busy machine, never expected
            if paused.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert paused.exists(), process.communicate(timeout=60)[1]
        held = sorted(os.listdir(watched)), sorted(os.listdir(private_tmp))
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    paused.unlink()
    return process, stderr, private_tmp, held


def assert_terminated(process, stderr):
    assert process.returncode == EXIT_TERMINATED, (process.returncode, stderr)
    assert stderr.strip().splitlines()[-1] == "error: terminated", stderr
    assert "Traceback" not in stderr


def test_terminated_conversion_leaves_no_temporary_h5(tmp_path, sources):
    out = tmp_path / "out"
    out.mkdir()
    process, stderr, private_tmp, (held, _) = run_and_terminate(
        tmp_path, out, WRITING_H5, "converters/convert_model_weights.py",
        "-i", sources / "fan1.pth.tar", "-o", out / "fan1.h5")
    assert len(held) == 1 and held[0].startswith(TEMP_PREFIX) and held[0].endswith(".h5")
    assert_terminated(process, stderr)
    assert os.listdir(out) == []
    assert os.listdir(private_tmp) == []


def test_ctrl_c_cleans_up_the_same_and_exits_130(tmp_path, sources):
    """130 (128 + SIGINT), what a shell reports for Ctrl-C, so that a script running the tool
    stops too; it was 2, the status of a mistake in the input."""
    out = tmp_path / "out"
    out.mkdir()
    process, stderr, private_tmp, (held, _) = run_and_terminate(
        tmp_path, out, WRITING_H5, "converters/convert_model_weights.py",
        "-i", sources / "fan1.pth.tar", "-o", out / "fan1.h5", signum=signal.SIGINT)
    assert len(held) == 1 and held[0].startswith(TEMP_PREFIX)
    assert process.returncode == EXIT_INTERRUPTED == 130, (process.returncode, stderr)
    assert stderr.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in stderr, stderr
    assert os.listdir(out) == []
    assert os.listdir(private_tmp) == []


@pytest.mark.parametrize("pause_in, extension", [(WRITING_NNP, ".nnp"), (EXPORTING_ONNX, ".onnx")])
def test_terminated_export_leaves_no_temporary_file_or_folder(tmp_path, sources, pause_in, extension):
    out = tmp_path / "out"
    out.mkdir()
    process, stderr, private_tmp, held = run_and_terminate(
        tmp_path, out, pause_in, "export_model.py", "--model", sources / "fan1.h5",
        "--output", out / f"fan1{extension}")
    if extension == ".nnp":
        assert len(held[0]) == 1 and held[0][0].startswith(TEMP_PREFIX) and held[0][0].endswith(".nnp")
    else:
        assert held == ([], [])  # the ONNX export writes no temporary file, there or in TMPDIR
    assert_terminated(process, stderr)
    assert os.listdir(out) == []
    assert os.listdir(private_tmp) == []


def test_terminated_inference_leaves_no_onnx_cache_half_made(tmp_path, sources):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "fan1.h5").write_bytes((sources / "fan1.h5").read_bytes())
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[250.0, 260.0, 600.0, 640.0]]))
    # An export cache of this test's own: the model must be exported (not found) for the stop.
    exports = tmp_path / "exports"
    exports.mkdir()
    process, stderr, private_tmp, (_, in_tmp) = run_and_terminate(
        tmp_path, weights, EXPORTING_ONNX, "model_inference.py", "--model", weights / "fan1.h5",
        "--test-image", EINSTEIN, "--boxes", boxes, "--save-json", tmp_path / "out.json", "--backend", "onnxruntime",
        "--cache-dir", exports, *CPU)
    assert in_tmp == []  # the ONNX export writes no temporary file
    assert_terminated(process, stderr)
    assert os.listdir(weights) == ["fan1.h5"] and os.listdir(exports) == []
    assert os.listdir(private_tmp) == []
    assert not (tmp_path / "out.json").exists()
