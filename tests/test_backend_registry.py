"""The backend seam: a backend of one's own, in a module no other module names, runs through
FaceAlignment and model_inference.py when named as "package.module:Class"."""
import json
import os
import sys
import textwrap

import numpy as np
import pytest

from conftest import CPU, SHARED, assert_one_line_error, run_tool
from face_alignment.api import FaceAlignment
from face_alignment.backends import BACKENDS, backend_spec
from face_alignment.errors import BackendUnavailableError

EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")
BOX = [250.0, 260.0, 600.0, 640.0]
# A backend in twenty lines: every landmark's heatmap is one peak at (x, y) = PEAK.
PEAK_BACKEND = textwrap.dedent('''
    import numpy as np

    PEAK = (32, 32)
    SEEN = []  # (shape, dtype, min, max) of every batch


    class PeakNetwork:
        contexts = ("cpu",)

        def __init__(self, weights, target):
            self.arch, self.source, self.input_channels = weights.arch, weights.source, 3
            self.target = target

        def __call__(self, batch):
            SEEN.append((batch.shape, batch.dtype, float(batch.min()), float(batch.max())))
            out = np.zeros((len(batch), 68, 64, 64), np.float32)
            out[:, :, PEAK[1], PEAK[0]] = 1.0
            return out
''')


@pytest.fixture
def peak_module(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "peak_backend.py").write_text(PEAK_BACKEND)
    monkeypatch.syspath_prepend(str(folder))
    import peak_backend
    yield peak_backend
    del sys.modules["peak_backend"]


def test_a_backend_named_by_module_and_class_runs_through_face_alignment(fan1_h5, peak_module):
    fa = FaceAlignment(fan1_h5, backend="peak_backend:PeakNetwork", decode="argmax", batch_size=2)
    assert fa.backend == "peak_backend:PeakNetwork" and "peak_backend" not in BACKENDS
    assert fa.fan.target.precision == "fp32" and fa.fan.target.context == "cpu"
    first = fa.get_landmarks_from_image(EINSTEIN, np.array([BOX, BOX, BOX]))
    # Three faces at batch size 2: two calls, each a float32 (B, 3, 256, 256) batch of pixels in [0, 1].
    assert [seen[0] for seen in peak_module.SEEN] == [(2, 3, 256, 256), (1, 3, 256, 256)]
    assert all(seen[1] == np.float32 and 0 <= seen[2] <= seen[3] <= 1 for seen in peak_module.SEEN)
    assert first.landmarks.shape == (3, 68, 2) and np.ptp(first.landmarks.reshape(-1, 2), axis=0).max() == 0
    # One heatmap pixel to the right is one heatmap pixel of the authors' crop: a square of
    # 200 * (w + h) / 195 image pixels over 64 heatmap pixels.
    peak_module.PEAK = (33, 32)
    moved = fa.get_landmarks_from_image(EINSTEIN, np.array([BOX]))
    width, height = BOX[2] - BOX[0], BOX[3] - BOX[1]
    shift = moved.landmarks[0, 0] - first.landmarks[0, 0]
    np.testing.assert_allclose(shift, [200 * (width + height) / 195 / 64, 0], rtol=1e-6)


def test_model_inference_takes_the_backend_by_module_and_class(fan1_h5, peak_module, tmp_path):
    boxes, out = tmp_path / "boxes.json", tmp_path / "out.json"
    boxes.write_text(json.dumps([BOX]))

    def run(*flags):
        return run_tool("model_inference.py", "--model", fan1_h5, "--test-image", EINSTEIN, "--boxes", boxes, *flags,
                        *CPU, env={"PYTHONPATH": str(tmp_path / "plugins")})

    result = run("--backend", "peak_backend:PeakNetwork", "--decode", "argmax", "--save-json", str(out))
    assert result.returncode == 0, result.stderr
    assert "on peak_backend:PeakNetwork (cpu, fp32)" in result.stderr
    landmarks = np.array(json.loads(out.read_text())["images"][0]["faces"][0]["landmarks"])
    expected = FaceAlignment(fan1_h5, backend="peak_backend:PeakNetwork", decode="argmax").get_landmarks_from_image(
        EINSTEIN, np.array([BOX])).landmarks[0]
    np.testing.assert_allclose(landmarks, expected, atol=1e-6)
    # A module that is not there, a class that is not, a precision the backend lacks: one line, naming it.
    assert_one_line_error(run("--backend", "no_such_module:Net"), "no_such_module")
    assert_one_line_error(run("--backend", "peak_backend:Nothing"), "Nothing")
    assert_one_line_error(run("--backend", "peak_backend:PeakNetwork", "--precision", "int8"),
                          "peak_backend:PeakNetwork", "int8")


def test_the_registry_lists_what_runs_where(peak_module):
    # Fastest first: the default is the first that can run (OpenVINO is as fast at fp32; it comes
    # last, as the one that runs the lower precisions).
    assert list(BACKENDS) == ["onnxruntime", "nnabla", "openvino"]
    assert backend_spec("nnabla").contexts == ("cpu", "cudnn") and backend_spec("onnxruntime").contexts == ("cpu",)
    assert backend_spec("openvino").precisions == ("fp32", "bf16", "int8")
    assert [name for name, spec in BACKENDS.items() if "int8" in spec.precisions] == ["openvino"]
    assert backend_spec("peak_backend:PeakNetwork").precisions == ("fp32",)
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        backend_spec("tensorrt")


@pytest.mark.parametrize("reference", ["os:path", "json:loads", "os:sep"])
def test_a_module_attribute_that_is_no_class_is_refused_in_one_line(fan1_h5, reference, capsys):
    """A module, a function and a string named where a class goes (issue 25, item 17): each was
    a TypeError traceback when first called; now refused as the name is loaded, from the API,
    from face-alignment's API and from the command line."""
    import logging

    from face_alignment import compat, inference_cli
    from face_alignment.errors import FaceAlignmentError

    for keyword in ("detector", "backend"):
        with pytest.raises(FaceAlignmentError, match="not a class") as caught:
            FaceAlignment(fan1_h5, context="cpu", **{keyword: reference})
        assert f"{keyword} {reference!r}" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(FaceAlignmentError, match="not a class"):
        compat.FaceAlignment(compat.LandmarksType.TWO_D, device="cpu", face_detector=reference)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        for flag in ("--detector", "--backend"):
            status = inference_cli.main(["--model", fan1_h5, "--test-image", EINSTEIN, flag, reference, *CPU])
            error = capsys.readouterr().err.strip().splitlines()[-1]
            assert status == 2 and error.startswith(f"error: {flag[2:]} {reference!r}") and "not a class" in error
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
