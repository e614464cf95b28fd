"""Which BlazeFace model each name loads: every name of the detector registry the model its
entry publishes (as TFLite reads that file), and face-alignment's ``face_detector="blazeface"``
its own model (short range, or the back-camera one with ``back_model=True``) on its centre crop."""
import os

import numpy as np
import pytest
from blazeface_references import authors_blazeface, extract_tflite, run_tflite, tflite_interpreter
from face_alignment.detection.blazeface import default_weights
from face_alignment.detection.blazeface_convert import convert_blazeface
from face_alignment.detection.registry import DETECTORS, load_detector

VARIANTS = ("full_range", "short_range", "back")
BLAZEFACE_NAMES = sorted(name for name, spec in DETECTORS.items() if spec.factory.endswith(":BlazeFaceDetector"))


@pytest.fixture(scope="module")
def mediapipe_home(tmp_path_factory):
    """A home holding every variant converted from MediaPipe's files (the wheel's), as the
    set-up converts them; and those files."""
    tflite = tmp_path_factory.mktemp("mediapipe")
    home = tmp_path_factory.mktemp("home")
    for variant in VARIANTS:
        convert_blazeface(extract_tflite(variant, str(tflite)), str(home / f"blazeface_{variant}.h5"))
    return str(home), str(tflite)


@pytest.fixture
def in_home(mediapipe_home, monkeypatch, tmp_path):
    home, tflite = mediapipe_home
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", home)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no face-alignment checkpoints
    return tflite


def _published_variant(name):
    """The variant of the file the registry entry publishes, from its file name."""
    file_name = DETECTORS[name].weights.file_name
    assert file_name.startswith("face_detection_") and file_name.endswith(".tflite"), file_name
    return file_name[len("face_detection_"):-len(".tflite")]


@pytest.mark.parametrize("name", BLAZEFACE_NAMES)
def test_each_registry_name_loads_the_model_it_publishes(name, in_home):
    """Loaded with no weights, as ``--detector NAME`` does: the network takes the input size
    and gives the outputs of MediaPipe's file for that entry, run by TFLite."""
    variant = _published_variant(name)
    interpreter = tflite_interpreter(os.path.join(in_home, f"face_detection_{variant}.tflite"))
    size = interpreter.get_input_details()[0]["shape"][1]
    detector = load_detector(name, backend="nnabla")
    assert (detector.variant, detector.input_size, detector.weights) == (variant, size, default_weights(variant))
    square = np.random.RandomState(3).randint(0, 256, (1, size, size, 3), dtype=np.uint8)
    raw_boxes, logits = detector.raw_outputs(square)
    expected_boxes, expected_logits = run_tflite(interpreter, square.astype(np.float32) / 127.5 - 1)
    np.testing.assert_allclose(raw_boxes, expected_boxes, atol=1e-3 * np.abs(expected_boxes).max())
    np.testing.assert_allclose(logits, expected_logits, atol=1e-3 * np.abs(expected_logits).max())


@pytest.mark.parametrize("back_model", [False, True])
def test_face_alignments_blazeface_is_its_own_model_on_its_centre_crop(back_model, in_home, fan1_h5, monkeypatch):
    """face-alignment's BlazeFace net (hollance's) takes 128 px inputs, 256 with back_model."""
    from face_alignment import FaceAlignment, LandmarksType, hub

    monkeypatch.setattr(hub, "weights_path", lambda name: fan1_h5)  # a small FAN: the detector is tested
    kwargs = {"face_detector_kwargs": {"back_model": True}} if back_model else {}
    fa = FaceAlignment(LandmarksType.TWO_D, device="cpu", face_detector="blazeface", backend="nnabla", **kwargs)
    theirs = authors_blazeface().net_blazeface.BlazeFace(back_model=back_model)
    detector = fa.face_detector
    assert detector.input_size == theirs.x_scale == theirs.y_scale
    assert (detector.variant, detector.crop) == ("back" if back_model else "short_range", "center")
