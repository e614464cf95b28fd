"""Converting BlazeFace weights (fan-convert-detector) and finding the converted model."""
import hashlib
import os

import numpy as np
import pytest

from blazeface_references import extract_tflite
from conftest import assert_one_line_error, run_tool
from face_alignment.detection.blazeface import BlazeFaceDetector, default_weights
from face_alignment.detection.convert_cli import main as convert_main
from face_alignment.errors import WeightsFileError
from face_alignment.weights.h5 import read_h5

CONVERT = "converters/convert_detector_weights.py"


@pytest.fixture(scope="module")
def short_range(tmp_path_factory):
    return extract_tflite("short_range", str(tmp_path_factory.mktemp("tflite")))


def test_converts_a_tflite_model_to_h5(short_range, tmp_path):
    target = tmp_path / "short.h5"
    result = run_tool(CONVERT, "--detector", "blazeface", "--pretrained-model", short_range, "--save-path", target)
    assert result.returncode == 0, result.stderr
    _, attrs = read_h5(str(target))
    with open(short_range, "rb") as f:
        assert attrs["source_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert attrs["variant"] == "short_range"
    # The .h5 runs exactly as the .tflite it came from.
    squares = np.random.RandomState(2).randint(0, 256, (1, 128, 128, 3), dtype=np.uint8)
    from_h5, from_tflite = BlazeFaceDetector(str(target)), BlazeFaceDetector(short_range)
    for ours, theirs in zip(from_h5.raw_outputs(squares), from_tflite.raw_outputs(squares)):
        np.testing.assert_array_equal(ours, theirs)


def test_converts_face_alignments_pth(tmp_path):
    import torch

    from blazeface_references import authors_blazeface

    source = tmp_path / "blazefaceback.pth"
    torch.save(authors_blazeface().net_blazeface.BlazeFace(back_model=True).state_dict(), str(source))
    assert convert_main(["--detector", "blazeface", "-i", str(source), "-o", str(tmp_path / "back.h5")]) == 0
    assert BlazeFaceDetector(str(tmp_path / "back.h5")).variant == "back"


def test_refuses_what_it_cannot_run(tmp_path):
    sparse = extract_tflite("full_range_sparse", str(tmp_path))
    result = run_tool(CONVERT, "--detector", "blazeface", "--pretrained-model", sparse,
                      "--save-path", tmp_path / "s.h5")
    assert_one_line_error(result, sparse, "DENSIFY")
    assert not os.path.exists(tmp_path / "s.h5")

    page = tmp_path / "face_detection_full_range.tflite"
    page.write_text("<html>404</html>")
    with pytest.raises(WeightsFileError, match="face_detection_full_range.tflite: not BlazeFace weights.*HTML"):
        BlazeFaceDetector(str(page))


def test_a_truncated_tflite_is_called_cut_short(short_range, tmp_path):
    """Was "not a readable TFLite model (error)", or struct's own traceback when cut near its
    end (issue 25, item 20)."""
    from face_alignment.detection.blazeface_convert import read_blazeface_weights

    data = open(short_range, "rb").read()
    for size in (100, len(data) - 4):
        cut = tmp_path / f"cut{size}.tflite"
        cut.write_bytes(data[:size])
        with pytest.raises(WeightsFileError) as refused:
            read_blazeface_weights(str(cut))
        message = str(refused.value)
        assert message.startswith(f"{cut}: ") and "cut short" in message and f"it has {size})" in message


def test_never_overwrites_without_force(short_range, tmp_path, capsys):
    target = tmp_path / "out.h5"
    target.write_bytes(b"mine")
    assert convert_main(["--detector", "blazeface", "-i", short_range, "-o", str(target)]) == 2
    assert target.read_bytes() == b"mine" and str(target) in capsys.readouterr().err
    assert convert_main(["--detector", "blazeface", "-i", short_range, "-o", str(target), "--force"]) == 0
    assert BlazeFaceDetector(str(target)).variant == "short_range"


def test_default_weights_are_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), "blazeface_full_range.h5")
    assert default_weights() == expected and not os.path.exists(expected)
    # Missing there, it is converted on first use into the home in use (where from, and the
    # sha256 check: tests/test_detector_home.py).
    BlazeFaceDetector()
    assert os.path.isfile(expected)
