"""One photo that cannot be read (cut short, damaged) costs only itself: the others are
landmarked and written, the bad one is named on a line of its own and listed in the JSON's
``errors``, and the run ends with exit status 2. The same for evaluate --model."""
import json
import os
import shutil

import pytest

from conftest import CPU, SHARED, assert_one_line_error, run_tool
from face_alignment.api import FaceAlignment
from face_alignment.errors import ImageReadError

FACES = os.path.join(SHARED, "data", "faces")
EINSTEIN = os.path.join(FACES, "einstein.jpg")
BOX = [250.0, 260.0, 600.0, 640.0]


def _cut(path, to):
    data = open(path, "rb").read()
    to.write_bytes(data[:len(data) // 2])


@pytest.fixture
def mix(tmp_path):
    """1.jpg and 3.jpg good, 2_cut.jpg cut short in the middle."""
    folder = tmp_path / "mix"
    folder.mkdir()
    shutil.copy(EINSTEIN, folder / "1.jpg")
    _cut(EINSTEIN, folder / "2_cut.jpg")
    shutil.copy(EINSTEIN, folder / "3.jpg")
    return folder


def test_a_cut_photo_in_a_folder_costs_only_itself(tmp_path, mix, fan1_h5):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([BOX]))
    saved, pictures = tmp_path / "pred.json", tmp_path / "pics"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", mix, "--boxes", boxes,
                      "--save-json", saved, "--output", pictures, "--backend", "nnabla", *CPU)
    error = assert_one_line_error(result, "2_cut.jpg", "truncated JPEG", "the other 2 were processed")
    # The bad photo named on a line of its own, with why, before the last line.
    named = [line for line in result.stderr.splitlines()[:-1] if "2_cut.jpg" in line]
    assert len(named) == 1 and "truncated JPEG" in named[0] and named[0] != error
    document = json.loads(saved.read_text())
    assert [os.path.basename(r["path"]) for r in document["images"]] == ["1.jpg", "3.jpg"]
    assert all(len(r["faces"]) == 1 for r in document["images"])
    [failure] = document["errors"]
    assert failure["path"] == str(mix / "2_cut.jpg") and failure["reason"].startswith("truncated JPEG")
    assert sorted(os.listdir(pictures)) == ["1_landmarks.png", "3_landmarks.png"]


def test_every_photo_bad_leaves_no_empty_folder_and_an_errors_list(tmp_path, fan1_h5):
    folder = tmp_path / "bad"
    folder.mkdir()
    _cut(EINSTEIN, folder / "a.jpg")
    (folder / "b.png").write_text("not an image")
    saved, pictures = tmp_path / "pred.json", tmp_path / "pics"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", folder, "--save-json", saved,
                      "--output", pictures, "--backend", "nnabla", *CPU)
    assert_one_line_error(result, "2 of 2 images could not be read", "a.jpg", "b.png")
    assert not pictures.exists()
    document = json.loads(saved.read_text())
    assert document["images"] == []
    assert [os.path.basename(e["path"]) for e in document["errors"]] == ["a.jpg", "b.png"]
    assert "not a readable image" in document["errors"][1]["reason"]


def test_a_photo_good_and_complete_writes_an_empty_errors_list(tmp_path, fan1_h5):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([BOX]))
    saved = tmp_path / "pred.json"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", EINSTEIN, "--boxes", boxes,
                      "--save-json", saved, "--backend", "nnabla", *CPU)
    assert result.returncode == 0, result.stderr
    assert json.loads(saved.read_text())["errors"] == []


@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime"])  # onnxruntime reads ahead in a thread
def test_keep_going_yields_the_failure_in_its_place(tmp_path, mix, fan1_h5, backend):
    fa = FaceAlignment(fan1_h5, backend=backend, context="cpu", batch_size=2)
    paths = [str(mix / name) for name in ("1.jpg", "2_cut.jpg", "3.jpg", "1.jpg")]
    results = list(fa.predict_files(paths, [[BOX]] * 4, keep_going=True))
    assert [path for path, _, _ in results] == paths
    _, image, error = results[1]
    assert image is None and isinstance(error, ImageReadError) and "truncated JPEG" in str(error)
    for path, image, predictions in results[:1] + results[2:]:
        assert image.shape == (1024, 817, 3) and predictions.landmarks.shape == (1, 68, 2)
    # Without keep_going the error is raised where it belongs, as before.
    with pytest.raises(ImageReadError, match="2_cut.jpg"):
        list(fa.predict_files(paths, [[BOX]] * 4))


def test_evaluate_model_scores_the_readable_images_and_names_the_bad_one(tmp_path, fan1_h5):
    folder = tmp_path / "gt"
    folder.mkdir()
    for name in ("einstein", "breakingbad"):
        shutil.copy(os.path.join(FACES, name + ".jpg"), folder)
        shutil.copy(os.path.join(FACES, name + ".pts"), folder)
    _cut(EINSTEIN, folder / "cut.jpg")
    shutil.copy(os.path.join(FACES, "einstein.pts"), folder / "cut.pts")
    plot = tmp_path / "ced.png"
    result = run_tool("-m face_alignment.evaluate", "--ground-truth", folder, "--model", fan1_h5, "--gt-boxes",
                      "--json", "--ced-plot", plot)
    assert_one_line_error(result, "cut.jpg", "truncated JPEG", "the other 2 were scored")
    report = json.loads(result.stdout)
    assert report["images"] == 2 and report["faces"] == 2 and report["missed"] == 0
    assert [image["name"] for image in report["per_image"]] == ["breakingbad.jpg", "einstein.jpg"]
    [unevaluated] = report["unevaluated"]
    assert unevaluated["annotation"] == str(folder / "cut.pts") and "truncated JPEG" in unevaluated["reason"]
    assert plot.exists()
    # The scores are those of the two good images alone.
    good = tmp_path / "good"
    shutil.copytree(folder, good)
    (good / "cut.jpg").unlink()
    (good / "cut.pts").unlink()
    alone = run_tool("-m face_alignment.evaluate", "--ground-truth", good, "--model", fan1_h5, "--gt-boxes", "--json")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["nme"] == pytest.approx(report["nme"], rel=1e-9)


def _damaged(to):
    """einstein.jpg, whole, with a restart marker written into the middle of its scan: libjpeg
    decodes through it, greys out the rest and says 'Corrupt JPEG data: premature end of data
    segment' on stderr."""
    data = bytearray(open(EINSTEIN, "rb").read())
    data[len(data) // 2:len(data) // 2 + 2] = b"\xff\xd3"
    to.write_bytes(bytes(data))
    return to


def test_a_damaged_jpeg_is_named_with_its_damage_in_our_line_alone(tmp_path, fan1_h5):
    damaged = _damaged(tmp_path / "damaged.jpg")
    saved = tmp_path / "pred.json"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", damaged, "--test-image", EINSTEIN,
                      "--save-json", saved, "--backend", "nnabla", "--no-progress", *CPU)
    assert_one_line_error(result, "damaged.jpg", "damaged JPEG", "premature end of data segment")
    # libjpeg's own line never reaches the user: only ours (a line naming the file, and the last).
    assert not [line for line in result.stderr.splitlines() if line.startswith("Corrupt JPEG")], result.stderr
    [failure] = json.loads(saved.read_text())["errors"]
    assert failure["reason"].startswith("damaged JPEG")


def test_reading_a_damaged_jpeg_raises_and_prints_nothing(tmp_path, capfd):
    from face_alignment.pipeline.image import read_image

    with pytest.raises(ImageReadError, match="damaged.jpg: damaged JPEG .*premature end of data segment"):
        read_image(_damaged(tmp_path / "damaged.jpg"))
    assert capfd.readouterr().err == ""
    read_image(EINSTEIN)  # a whole, sound JPEG still reads
