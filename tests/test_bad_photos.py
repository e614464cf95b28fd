"""One photo that cannot be read (cut short, damaged) costs only itself: the others are
landmarked and written, the bad one is named on a line of its own and listed in the JSON's
``errors``, and the run ends with exit status 2. The same for evaluate --model."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import CPU, SHARED, assert_one_line_error, run_tool
from face_alignment.api import FaceAlignment
from face_alignment.errors import FaceAlignmentError, ImageReadError, UnreadableImageWarning

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
def test_on_error_yield_gives_the_failure_in_its_place(tmp_path, mix, fan1_h5, backend):
    fa = FaceAlignment(fan1_h5, backend=backend, context="cpu", batch_size=2)
    paths = [str(mix / name) for name in ("1.jpg", "2_cut.jpg", "3.jpg", "1.jpg")]
    results = list(fa.predict_files(paths, [[BOX]] * 4, on_error="yield"))
    assert [path for path, _, _ in results] == paths
    _, image, error = results[1]
    assert image is None and isinstance(error, ImageReadError) and "truncated JPEG" in str(error)
    for path, image, predictions in results[:1] + results[2:]:
        assert image.shape == (1024, 817, 3) and predictions.landmarks.shape == (1, 68, 2)
    # Asked for, the error is raised where it belongs.
    with pytest.raises(ImageReadError, match="2_cut.jpg"):
        list(fa.predict_files(paths, [[BOX]] * 4, on_error="raise"))


@pytest.fixture(scope="module")
def fa_cpu(fan1_h5):
    return FaceAlignment(fan1_h5, backend="nnabla", context="cpu", batch_size=2)


def test_by_default_a_bad_file_is_a_warning_naming_it_and_the_others_go_on(mix, fa_cpu):
    """As the command line does with a folder: the README's predict_files loop gets the good
    files' results, and each bad one is named in a warning, not an exception."""
    (mix / "notimage.jpg").write_text("not an image")
    paths = [str(mix / name) for name in ("1.jpg", "2_cut.jpg", "3.jpg", "notimage.jpg")]
    with pytest.warns(UnreadableImageWarning) as caught:
        results = list(fa_cpu.predict_files(paths, [[BOX]] * 4, decodes=("argmax", "centroid")))
    assert [path for path, _, _ in results] == [paths[0], paths[2]]
    assert all(p["centroid"].landmarks.shape == (1, 68, 2) for _, _, p in results)
    named = [str(w.message) for w in caught if issubclass(w.category, UnreadableImageWarning)]
    assert len(named) == 2 and "2_cut.jpg" in named[0] and "notimage.jpg" in named[1]
    # The positional calls keep each image's place: None where a file could not be read.
    with pytest.warns(UnreadableImageWarning, match="2_cut.jpg"):
        found = list(fa_cpu.get_landmarks_from_images(paths[:3], [[BOX]] * 3))
    assert found[1] is None and found[0].landmarks.shape == found[2].landmarks.shape == (1, 68, 2)
    np.testing.assert_array_equal(found[0].landmarks, results[0][2][fa_cpu.decode].landmarks)
    # One image asked for alone still raises: there is nothing else to go on with.
    with pytest.raises(ImageReadError, match="notimage.jpg"):
        fa_cpu.get_landmarks_from_image(paths[3])
    with pytest.raises(FaceAlignmentError, match="on_error: got 'skip'"):
        list(fa_cpu.predict_files(paths, on_error="skip"))


def test_face_alignment_api_directory_gives_none_for_a_bad_file(mix, fan1_h5, monkeypatch):
    """face-alignment's get_landmarks_from_directory: six photos and a text file named
    notimage.jpg give six results and None for it (as for a face-free image), with a warning."""
    import face_alignment
    from face_alignment import hub

    monkeypatch.setattr(hub, "weights_path", lambda name: fan1_h5)
    for name in ("4.jpg", "5.jpg", "6.jpg"):
        shutil.copy(EINSTEIN, mix / name)
    (mix / "2_cut.jpg").unlink()
    shutil.copy(EINSTEIN, mix / "2.jpg")
    for index in range(1, 7):
        np.save(mix / f"{index}.npy", np.array([BOX]))
    (mix / "notimage.jpg").write_text("not an image")
    fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device="cpu", face_detector="folder",
                                      backend="nnabla", flip_input=False)
    with pytest.warns(UnreadableImageWarning, match="notimage.jpg"):
        found = fa.get_landmarks_from_directory(str(mix), show_progress_bar=False)
    assert sorted(os.path.basename(p) for p in found) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "6.jpg",
                                                          "notimage.jpg"]
    assert found[str(mix / "notimage.jpg")] is None
    assert all(len(v) == 1 and v[0].shape == (68, 2) for p, v in found.items() if not p.endswith("notimage.jpg"))
    with pytest.warns(UnreadableImageWarning):
        assert fa.get_landmarks_from_directory(str(mix), show_progress_bar=False,
                                               return_bboxes=True)[str(mix / "notimage.jpg")] == (None, None, None)


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


def test_ctrl_c_on_a_folder_keeps_the_finished_images_json(tmp_path, mix, fan1_h5, monkeypatch):
    """Ctrl-C while the second picture is saved: the results of the first two images are in
    --save-json (the first's picture is on disk), and the image not done is listed as such;
    status 130."""
    from face_alignment import inference_cli
    from face_alignment.cli_support import EXIT_INTERRUPTED
    from face_alignment.pipeline import draw

    (mix / "2_cut.jpg").unlink()
    shutil.copy(EINSTEIN, mix / "4.jpg")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([BOX]))
    saved, pictures = tmp_path / "pred.json", tmp_path / "pics"
    save_image, calls = draw.save_image, []

    def interrupted_at_the_second(path, picture):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        save_image(path, picture)

    monkeypatch.setattr(draw, "save_image", interrupted_at_the_second)
    status = inference_cli.main(["--model", fan1_h5, "--test-image", str(mix), "--boxes", str(boxes), "--save-json",
                                 str(saved), "--output", str(pictures), "--backend", "nnabla", "--context", "cpu",
                                 "--no-progress"])
    assert status == EXIT_INTERRUPTED
    assert os.listdir(pictures) == ["1_landmarks.png"]
    document = json.loads(saved.read_text())
    assert [r["path"] for r in document["images"]] == [str(mix / "1.jpg"), str(mix / "3.jpg")]
    assert all(len(r["faces"]) == 1 for r in document["images"])
    assert [e["path"] for e in document["errors"]] == [str(mix / "4.jpg")]
    assert all("interrupted" in e["reason"] for e in document["errors"])
