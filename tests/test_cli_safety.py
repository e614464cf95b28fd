"""model_inference.py and evaluate given what a user may type by mistake: nothing is
destroyed, nothing is left half done, and each mistake is one line naming what is wrong."""
import dataclasses
import json
import logging
import os
import shutil

import cv2
import numpy as np
import pytest

import checkpoints
from conftest import CPU, SHARED, assert_one_line_error, run_tool
from face_alignment.registry import ARCHITECTURES, FAN
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.loading import architecture_attrs

TOOL = "model_inference.py"
FACES = os.path.join(SHARED, "data", "faces")
EINSTEIN = os.path.join(FACES, "einstein.jpg")
EINSTEIN_BOX = [250.0, 260.0, 600.0, 640.0]
NNABLA_CPU = ("--backend", "nnabla", *CPU)


def fan1_h5(path, arch="2DFAN4", attrs=True):
    """A 1-module FAN with random weights, recorded as ``arch`` (or recording nothing)."""
    recorded = dataclasses.replace(ARCHITECTURES[arch], name=arch.replace("4", "1"), num_modules=1)
    params = checkpoints.nnabla_params(checkpoints.authors_fan(1, "avg", seed=3), FAN, 1)
    write_h5(str(path), params, architecture_attrs(recorded) if attrs else {})
    return str(path)


@pytest.fixture(scope="module")
def fan1(tmp_path_factory):
    return fan1_h5(tmp_path_factory.mktemp("fan1") / "fan1.h5")


@pytest.fixture
def boxes(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps([EINSTEIN_BOX]))
    return str(path)


@pytest.mark.parametrize("scale", ["0", "-195", "nan", "inf", "-inf", "big"])
def test_reference_scale_must_be_a_positive_finite_number(tmp_path, fan1, boxes, scale):
    result = run_tool(TOOL, "-m", fan1, "--test-image", EINSTEIN, "--boxes", boxes, f"--reference-scale={scale}",
                      "--save-json", tmp_path / "r.json", *NNABLA_CPU)
    assert_one_line_error(result, f"reference_scale {scale!r}" if scale == "big" else "reference_scale",
                          "expected a positive finite number")
    assert "Warning" not in result.stderr
    assert not (tmp_path / "r.json").exists()


# --- --boxes and --predictions: JSON that is not what it should be ----------------------------------

def _deep(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("content, fragments", [
    (_deep(100000), ["nested too deeply"]),
    (json.dumps([1, 2, 3, 4, 5, 6, 7, 8]), ["shape (8,)", "expected (N, 4)"]),
    ('{"einstein.jpg": [[250, 260, 600, Infinity]]}', ["'einstein.jpg'", "NaN or infinite"]),
    ('[[250, 260, 600, 1e999]]', ["the list", "NaN or infinite"]),
    (json.dumps({"einstien.jpg": [EINSTEIN_BOX]}),
     [f"'einstien.jpg' names none of the images, and {EINSTEIN!r}, ", "would be detected"]),
    (json.dumps({"einstein.jpg": [EINSTEIN_BOX], "a.jpg": [], "b.jpg": []}),
     [f"'a.jpg', 'b.jpg' name none of the images, and {os.path.join(FACES, 'breakingbad.jpg')!r} would be"]),
    # Every image named, and one name more: as the README's flag table says, an error too.
    (json.dumps({"einstein.jpg": [EINSTEIN_BOX], "breakingbad.jpg": [], "other.jpg": [[1, 2, 3, 4]]}),
     ["'other.jpg' names none of the images;"]),
])
def test_boxes_that_are_not_boxes_for_these_images(tmp_path, fan1, content, fragments):
    bad = tmp_path / "bad_boxes.json"
    bad.write_text(content)
    result = run_tool(TOOL, "-m", fan1, "--test-image", EINSTEIN, "--test-image",
                      os.path.join(FACES, "breakingbad.jpg"), "--boxes", bad, "--save-json", tmp_path / "r.json",
                      *NNABLA_CPU)
    assert_one_line_error(result, str(bad), *fragments)
    assert not (tmp_path / "r.json").exists()


def test_boxes_keyed_by_the_path_given_or_the_file_name(tmp_path, fan1):
    """The check for misspelt names accepts both ways of naming an image."""
    given = tmp_path / "boxes.json"
    given.write_text(json.dumps({EINSTEIN: [EINSTEIN_BOX], "breakingbad.jpg": []}))
    out = tmp_path / "r.json"
    result = run_tool(TOOL, "-m", fan1, "--test-image", EINSTEIN, "--test-image",
                      os.path.join(FACES, "breakingbad.jpg"), "--boxes", given, "--save-json", out, *NNABLA_CPU)
    assert result.returncode == 0, result.stderr
    [einstein, breakingbad] = json.loads(out.read_text())["images"]
    assert [face["box"] for face in einstein["faces"]] == [EINSTEIN_BOX]
    assert breakingbad["faces"] == []  # an empty list is "no face here", not "detect"


@pytest.fixture
def ground_truth(tmp_path):
    folder = tmp_path / "gt"
    folder.mkdir()
    for name in ("einstein.jpg", "einstein.pts"):
        shutil.copy(os.path.join(FACES, name), folder / name)
    return folder


def test_deeply_nested_predictions(tmp_path, ground_truth):
    bad = tmp_path / "deep.json"
    bad.write_text(_deep(100000))
    assert_one_line_error(run_tool("-m face_alignment.evaluate", "--ground-truth", ground_truth, "--predictions", bad),
                          str(bad), "nested too deeply")


# --- Permissions ------------------------------------------------------------------------------------
# Tests run as root, whom the kernel lets read anything, so what it does for other users is
# simulated in this process: the os functions fail for a "locked" folder (mode 000) as they do
# for a user who is not its owner.

def lock(monkeypatch, folder, unreadable_files=()):
    """Make ``folder`` behave as a folder of mode 000 (and ``unreadable_files`` as files of mode
    000) does to an unprivileged user: it cannot be listed, nothing in it can be reached."""
    folder = os.path.abspath(folder)
    unreadable = {os.path.abspath(f) for f in unreadable_files}

    def inside(path):
        return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(folder + os.sep)

    def denied(path):
        return PermissionError(13, "Permission denied", os.fspath(path))

    def guard(function, refuse):
        def guarded(path=".", *args, **kwargs):
            if refuse(path):
                raise denied(path)
            return function(path, *args, **kwargs)
        return guarded

    def listing(path):
        return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)) == folder

    monkeypatch.setattr(os, "scandir", guard(os.scandir, lambda p: listing(p) or inside(p)))
    monkeypatch.setattr(os, "listdir", guard(os.listdir, lambda p: listing(p) or inside(p)))
    monkeypatch.setattr(os, "stat", guard(os.stat, inside))
    monkeypatch.setattr(os, "lstat", guard(os.lstat, inside))
    access = os.access

    def guarded_access(path, mode, *args, **kwargs):
        if inside(path) or (listing(path) and mode != os.F_OK):
            return False
        if isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)) in unreadable:
            return mode == os.F_OK
        return access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", guarded_access)


def run_in_process(capsys, main, *args):
    """``main`` (a command line's) on ``args``: its exit status and its one error line. The
    root logger, which command lines set up, is left as it was for the tests after this one."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:  # argparse's way out
        status = e.code
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err.strip().splitlines()
    return status, err[-1] if err else ""


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(EINSTEIN, folder / "einstein.jpg")
    return folder


def test_a_folder_that_cannot_be_listed_is_not_empty(monkeypatch, capsys, fan1, photos):
    from face_alignment.inference_cli import main

    lock(monkeypatch, photos)
    status, error = run_in_process(capsys, main, "-m", fan1, "--test-image", photos,
                                   "--save-json", photos.parent / "r.json")
    assert status == 2
    assert error == f"error: {photos}: cannot list the folder (Permission denied)"


def test_an_image_in_a_folder_that_cannot_be_entered_is_not_missing(monkeypatch, capsys, fan1, photos):
    from face_alignment.inference_cli import main

    lock(monkeypatch, photos)
    image = photos / "einstein.jpg"
    status, error = run_in_process(capsys, main, "-m", fan1, "--test-image", image,
                                   "--save-json", photos.parent / "r.json")
    assert status == 2
    assert error == f"error: {image}: cannot reach the image or folder (Permission denied)"


def test_an_image_that_cannot_be_read(monkeypatch, capsys, fan1, photos, tmp_path):
    from face_alignment.inference_cli import main

    image = photos / "einstein.jpg"
    lock(monkeypatch, tmp_path / "elsewhere", unreadable_files=[image])
    status, error = run_in_process(capsys, main, "-m", fan1, "--test-image", photos,
                                   "--save-json", photos.parent / "r.json")
    assert status == 2
    assert error == f"error: {image}: cannot read the image (permission denied)"


def test_a_ground_truth_subfolder_that_cannot_be_listed(monkeypatch, capsys, tmp_path, ground_truth):
    from face_alignment.evaluate import main

    hidden = ground_truth / "helen"
    hidden.mkdir()
    for name in ("breakingbad.jpg", "breakingbad.pts"):
        shutil.copy(os.path.join(FACES, name), hidden / name)
    predictions = tmp_path / "p.json"
    predictions.write_text(json.dumps({"images": [{"path": "einstein.jpg", "faces": []}]}))
    lock(monkeypatch, hidden)
    status, error = run_in_process(capsys, main, "--ground-truth", ground_truth, "--predictions", predictions)
    assert status == 2
    assert error == f"error: {hidden}: cannot read the ground-truth folder (Permission denied)"


# --- Outputs: never an input, never each other, checked before any work ---------------------------

def _folder_state(folder):
    return {p: open(os.path.join(folder, p), "rb").read() for p in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, p))}


@pytest.mark.parametrize("outputs, fragments", [
    (["--output", "face.jpg"], ["face.jpg: --output is the same file as --test-image face.jpg"]),
    (["--output", "./photo_link.png"], ["--output is the same file as --test-image face.jpg"]),  # a symbolic link
    (["--save-json", "face.jpg"], ["face.jpg: --save-json is the same file as --test-image face.jpg"]),
    (["--save-json", "hard_link.json"], ["--save-json is the same file as --test-image face.jpg"]),
    (["--save-json", "boxes.json"], ["--save-json is the same file as --boxes boxes.json"]),
    (["--save-json", "fan.h5"], ["--save-json is the same file as --model fan.h5"]),
    (["--output", "x.png", "--save-json", "sub/../x.png"], ["--save-json is the same file as --output x.png",
                                                            "not another output"]),
])
def test_no_output_overwrites_an_input_or_another_output(tmp_path, fan1, outputs, fragments):
    shutil.copy(EINSTEIN, tmp_path / "face.jpg")
    os.link(fan1, tmp_path / "fan.h5")  # shared: a hard link, not a copy
    (tmp_path / "boxes.json").write_text(json.dumps([EINSTEIN_BOX]))
    (tmp_path / "sub").mkdir()
    os.symlink("face.jpg", tmp_path / "photo_link.png")
    os.link(tmp_path / "face.jpg", tmp_path / "hard_link.json")
    before = _folder_state(tmp_path)
    result = run_tool(TOOL, "-m", "fan.h5", "--test-image", "face.jpg", "--boxes", "boxes.json", *outputs,
                      *NNABLA_CPU, cwd=tmp_path)
    assert_one_line_error(result, *fragments, "expected a path that is not")
    assert _folder_state(tmp_path) == before
    with open(EINSTEIN, "rb") as original:
        assert (tmp_path / "face.jpg").read_bytes() == original.read()


def test_an_output_folder_that_is_missing_is_found_before_any_picture_is_drawn(tmp_path, fan1, boxes):
    pictures = tmp_path / "pictures"
    result = run_tool(TOOL, "-m", fan1, "--test-image", EINSTEIN, "--test-image",
                      os.path.join(FACES, "breakingbad.jpg"), "--boxes", boxes, "--output", pictures,
                      "--save-json", tmp_path / "missing" / "r.json", *NNABLA_CPU)
    assert_one_line_error(result, f"{tmp_path / 'missing'}: ", "--save-json")
    assert not pictures.exists()


@pytest.mark.parametrize("images, outputs, fragment", [
    (2, ["--save-json", "{locked}/r.json"], "{locked}: cannot write --save-json in this folder (permission denied)"),
    (2, ["--output", "{locked}/new/pics"], "{locked}: cannot write --output in this folder (permission denied)"),
    (2, ["--output", "{file}/pics"], "{file}: not a folder; --output needs a folder there"),
    (2, ["--save-json", "{tmp}"], "{tmp}: --save-json is a folder; expected a file name"),
    (1, ["--output", "{tmp}/result"], "{tmp}/result: unsupported image file extension (use e.g. .png or .jpg)"),
    (1, ["--save-json", "{tmp}/" + "r" * 300 + ".json"], "--save-json: file name of 305 bytes; expected at most 255"),
    # Renamed into place, an output would put a regular file where a pipe (or /dev/null) was.
    (1, ["--save-json", "{pipe}"], "{pipe}: --save-json is a device, pipe or socket"),
    (1, ["--output", "{pipe}"], "{pipe}: --output is a device, pipe or socket"),
])
def test_an_output_that_cannot_be_written_is_found_before_the_model_is_loaded(
        monkeypatch, capsys, tmp_path, fan1, boxes, images, outputs, fragment):
    from face_alignment import api, inference_cli

    places = dict(locked=tmp_path / "locked", file=boxes, tmp=tmp_path, pipe=tmp_path / "pipe.png")
    places["locked"].mkdir()
    os.mkfifo(places["pipe"])
    access = os.access
    # The kernel's answer to a user other than the owner of the folder "locked" (mode 755).
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: access(path, mode, **kw) and not (
        os.path.abspath(path) == str(places["locked"]) and mode & os.W_OK))
    monkeypatch.setattr(api.FaceAlignment, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    status, error = run_in_process(capsys, inference_cli.main, "-m", fan1, *["--test-image", EINSTEIN] * images,
                                   "--boxes", boxes, *[part.format(**places) for part in outputs])
    assert status == 2
    assert error.startswith("error: ") and fragment.format(**places) in error
    assert os.listdir(places["locked"]) == []



@pytest.mark.parametrize("option, fragment", [
    (["--batch-size", "0"], "argument --batch-size: '0': expected a whole number, 1 or more"),
    (["--batch-size", "-1"], "argument --batch-size: '-1': expected a whole number, 1 or more"),
    (["--device-id", "-5"], "argument --device-id/-d: '-5': expected a whole number, 0 or more"),
    (["--test-image", ""], "--test-image '': an empty path; expected an image file or folder"),
    # Each detector's own range, checked before FAN is loaded (issue 25, item 19).
    (["--detector-threshold", "-1"], "--detector-threshold -1.0: expected a score between 0 and 1"),
    (["--detector", "sfd", "--detector-threshold", "0.01"], "--detector-threshold 0.01: expected a probability from 0.05"),
])
def test_bad_counts_and_empty_paths_are_named_by_their_flag_before_the_model_is_loaded(
        monkeypatch, capsys, fan1, boxes, option, fragment):
    from face_alignment import api, inference_cli

    monkeypatch.setattr(api.FaceAlignment, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    status, error = run_in_process(capsys, inference_cli.main, "-m", fan1, "--test-image", EINSTEIN,
                                   "--boxes", boxes, *option)
    assert status == 2
    assert error.startswith("error: ") and fragment in error, error


def test_a_negative_threshold_is_dlibs_own_adjustment():
    """dlib's HOG takes a negative threshold (its adjust_threshold: weaker faces too)."""
    from face_alignment.detection.registry import detector_class

    detector_class("hog").check_threshold(-0.5, "--detector-threshold")


def test_a_url_given_as_an_image_is_called_a_url(monkeypatch, capsys, fan1):
    """Was "no such image file" (issue 25, item 20): images are read from local files only."""
    from face_alignment import api, inference_cli
    from face_alignment.errors import ImageReadError
    from face_alignment.pipeline.image import read_image

    url = "https://example.com/faces/einstein.jpg"
    with pytest.raises(ImageReadError) as refused:
        read_image(url)
    assert str(refused.value).startswith(f"{url}: a URL") and "local files only" in str(refused.value)
    monkeypatch.setattr(api.FaceAlignment, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    status, error = run_in_process(capsys, inference_cli.main, "-m", fan1, "--test-image", url)
    assert status == 2 and error.startswith(f"error: {url}: a URL") and "local files only" in error


def test_an_empty_video_path_is_not_taken_for_no_video(capsys, fan1, tmp_path):
    """An empty --test-video once counted as none given: the error blamed --save-landmarks."""
    from face_alignment import inference_cli

    status, error = run_in_process(capsys, inference_cli.main, "-m", fan1, "--test-video", "",
                                   "--save-landmarks", tmp_path / "l.json")
    assert (status, error) == (2, "error: --test-video '': an empty path; expected a video file")


# --- One picture per image, named predictably ------------------------------------------------------

@pytest.mark.parametrize("images, names", [
    (["p/einstein.jpg", "p/face.jpg"], ["einstein_landmarks.png", "face_landmarks.png"]),
    (["a/face.jpg", "b/face.jpg", "a/face.png", "a/einstein.jpg"],
     ["a_face.jpg_landmarks.png", "b_face.jpg_landmarks.png", "a_face.png_landmarks.png", "einstein_landmarks.png"]),
    (["x/2020/face.jpg", "x/2021/face.jpg"], ["2020_face.jpg_landmarks.png", "2021_face.jpg_landmarks.png"]),
    (["x/Face.jpg", "y/face.jpg"], ["x_Face.jpg_landmarks.png", "y_face.jpg_landmarks.png"]),  # case-blind systems
    (["Face.jpg", "face.jpg"], ["Face.jpg_landmarks.png", "face.jpg_landmarks_2.png"]),
    (["a_b/face.jpg", "a/b/face.jpg"], ["a_b_face.jpg_landmarks.png", "a_b_face.jpg_landmarks_2.png"]),
    (["face.jpg", "face.jpg", "./face.jpg"],
     ["face.jpg_landmarks.png", "face.jpg_landmarks_2.png", "face.jpg_landmarks_3.png"]),
    (["s/x_face.jpg.png", "a/face.jpg", "b/face.jpg"],  # a unique stem that is a clash's name
     ["x_face.jpg_landmarks.png", "a_face.jpg_landmarks.png", "b_face.jpg_landmarks.png"]),
    (["s/a_face.jpg.png", "s/a/face.jpg", "s/b/face.jpg"],
     ["a_face.jpg_landmarks.png", "a_face.jpg_landmarks_2.png", "b_face.jpg_landmarks.png"]),
])
def test_picture_names(images, names):
    from face_alignment.files import picture_names

    assert picture_names(images) == names


def test_images_of_the_same_name_get_a_picture_each(tmp_path, fan1, boxes):
    for folder, name, source in [("a", "face.jpg", EINSTEIN), ("b", "face.jpg", os.path.join(FACES, "breakingbad.jpg")),
                                 ("a", "face.png", os.path.join(FACES, "breakingbad.jpg"))]:
        (tmp_path / folder).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / folder / name), cv2.imread(source)[:300 + 100 * len(os.listdir(tmp_path))])
    images = ["a/face.jpg", "b/face.jpg", "a/face.png", "a/face.jpg"]
    result = run_tool(TOOL, "-m", fan1, *sum((["--test-image", image] for image in images), []), "--boxes", boxes,
                      "--output", "pics", *NNABLA_CPU, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = {"a_face.jpg_landmarks.png": "a/face.jpg", "b_face.jpg_landmarks.png": "b/face.jpg",
                "a_face.png_landmarks.png": "a/face.png", "a_face.jpg_landmarks_2.png": "a/face.jpg"}
    assert sorted(os.listdir(tmp_path / "pics")) == sorted(expected)
    for picture, image in expected.items():  # each picture is of its own image (their heights differ)
        assert cv2.imread(str(tmp_path / "pics" / picture)).shape == cv2.imread(str(tmp_path / image)).shape
        assert f"{image}: 1 face(s) -> {os.path.join('pics', picture)}" in result.stderr


# --- evaluate: the CED chart ------------------------------------------------------------------------

@pytest.fixture
def predictions(tmp_path):
    path = tmp_path / "pred.json"
    path.write_text(json.dumps({"images": [{"path": "einstein.jpg", "faces": []}]}))
    return path


@pytest.mark.parametrize("target, fragment", [
    ("{predictions}", "--ced-plot is the same file as --predictions {predictions}"),
    ("{gt}/einstein.jpg", "--ced-plot is the same file as the ground-truth image {gt}/einstein.jpg"),
    ("{gt}/./einstein.pts", "--ced-plot is the same file as the annotation {gt}/einstein.pts"),
])
def test_the_ced_plot_overwrites_no_input(tmp_path, ground_truth, predictions, target, fragment):
    before = {**_folder_state(tmp_path), **_folder_state(ground_truth)}
    places = dict(predictions=predictions, gt=ground_truth)
    result = run_tool("-m face_alignment.evaluate", "--ground-truth", ground_truth, "--predictions", predictions,
                      "--ced-plot", target.format(**places))
    assert_one_line_error(result, fragment.format(**places), "expected a path that is not an input")
    assert {**_folder_state(tmp_path), **_folder_state(ground_truth)} == before


@pytest.mark.parametrize("options, fragment", [
    (["--ced-plot", "{tmp}/missing/ced.png"], "{tmp}/missing: the folder for --ced-plot does not exist"),
    (["--ced-plot", "{tmp}"], "{tmp}: --ced-plot is a folder; expected a file name"),
    (["--threshold", "0"], "threshold 0.0: expected a positive number"),
    (["--ced-plot", "{tmp}/ced.png", "--plot-size", "50x50"], "plot size 50x50: expected whole numbers of pixels"),
    (["--ced-plot", "{tmp}/pipe.png"], "{tmp}/pipe.png: --ced-plot is a device, pipe or socket"),
])
def test_evaluate_refuses_a_bad_output_or_option_before_the_model_runs(monkeypatch, capsys, tmp_path, ground_truth,
                                                                       fan1, options, fragment):
    from face_alignment import api, evaluate

    os.mkfifo(tmp_path / "pipe.png")  # a named pipe, never to be replaced by the chart
    monkeypatch.setattr(api.FaceAlignment, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    status, error = run_in_process(capsys, evaluate.main, "--ground-truth", ground_truth, "--model", fan1,
                                   "--gt-boxes", *[o.format(tmp=tmp_path) for o in options])
    assert status == 2
    assert error.startswith("error: ") and fragment.format(tmp=tmp_path) in error


# --- A 2D-FAN for 3D landmarks -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fans_3d(module_folder, weight_files):
    """ResNetDepth, FANs that say they are 2D or 3D in different ways, and FANs that say nothing."""
    from weight_files import FAN4, SEEING_DEPTH, link

    folder = module_folder("fans_3d")
    # The pipeline tests' ResNetDepth, as our converter wrote it (it records its architecture).
    link(weight_files.converted(SEEING_DEPTH, "depth-2a464da4ea.pth.tar", "depth"), folder / "depth.h5")
    fan1_h5(folder / "recorded_2d.h5", "2DFAN4")
    fan1_h5(folder / "recorded_3d.h5", "3DFAN4")
    fan1_h5(folder / "nameless.h5", attrs=False)
    published = weight_files.h5(FAN4)  # as nnabla-examples publish it: no attributes
    link(published, folder / "3DFAN4_NNabla_model.h5")
    link(published, folder / "2DFAN4_NNabla_model.h5")
    return folder


@pytest.mark.parametrize("model, fragments", [
    ("recorded_2d.h5", ["holds 2DFAN1, a 2D-FAN (as the file records)"]),
    ("2DFAN4_NNabla_model.h5", ["holds 2DFAN4, a 2D-FAN (as its name says; pass --arch if it is not)"]),
])
def test_a_2d_fan_is_refused_for_3d_landmarks(tmp_path, fans_3d, boxes, model, fragments):
    result = run_tool(TOOL, "--landmarks-type-3D", "-m", fans_3d / model, "--resnet-depth-model", fans_3d / "depth.h5",
                      "--test-image", EINSTEIN, "--boxes", boxes, "--save-json", tmp_path / "r.json",
                      "--output", tmp_path / "r.png", *NNABLA_CPU)
    assert_one_line_error(result, str(fans_3d / model), *fragments, "need a 3D-FAN")
    assert os.listdir(tmp_path) == ["boxes.json"]


@pytest.mark.parametrize("model", ["recorded_3d.h5", "nameless.h5", "3DFAN4_NNabla_model.h5"])
def test_a_fan_that_is_3d_or_says_nothing_gives_3d_landmarks(tmp_path, fans_3d, boxes, model):
    out = tmp_path / "r.json"
    result = run_tool(TOOL, "--landmarks-type-3D", "-m", fans_3d / model, "--resnet-depth-model", fans_3d / "depth.h5",
                      "--test-image", EINSTEIN, "--boxes", boxes, "--save-json", out, *NNABLA_CPU)
    assert result.returncode == 0, result.stderr
    [face] = json.loads(out.read_text())["images"][0]["faces"]
    assert np.array(face["landmarks"]).shape == (68, 3)


def test_an_existing_output_folder_takes_the_picture_of_one_image(tmp_path, fan1, boxes):
    result = run_tool(TOOL, "-m", fan1, "--test-image", EINSTEIN, "--boxes", boxes, "--output", tmp_path, *NNABLA_CPU)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["boxes.json", "einstein_landmarks.png"]
    assert cv2.imread(str(tmp_path / "einstein_landmarks.png")).shape == cv2.imread(EINSTEIN).shape


def test_an_image_name_that_is_not_utf8_is_refused_not_a_crash(tmp_path, fan1, boxes):
    folder = tmp_path / "photos"
    folder.mkdir()
    with open(os.path.join(bytes(folder), b"caf\xe9.jpg"), "wb") as f, open(EINSTEIN, "rb") as photo:
        f.write(photo.read())
    result = run_tool(TOOL, "-m", fan1, "--test-image", folder, "--boxes", boxes, "--save-json", tmp_path / "r.json",
                      *NNABLA_CPU)
    assert_one_line_error(result, str(folder), "caf\\udce9.jpg: ", "UTF-8")


def test_a_file_name_with_a_line_break_keeps_the_error_on_one_line(tmp_path, fan1, boxes):
    """Line breaks are legal in file names: the error shows them escaped, as repr does."""
    missing = tmp_path / "new\nyear.jpg"
    result = run_tool(TOOL, "-m", fan1, "--test-image", missing, "--boxes", boxes, *NNABLA_CPU)
    assert_one_line_error(result, f"{tmp_path}/new\\nyear.jpg: ")


def test_a_ground_truth_image_name_that_is_not_utf8_is_refused_not_a_crash(tmp_path, ground_truth, fan1):
    for suffix in (".jpg", ".pts"):
        os.rename(ground_truth / f"einstein{suffix}", os.path.join(bytes(ground_truth), b"caf\xe9" + suffix.encode()))
    result = run_tool("-m face_alignment.evaluate", "--ground-truth", ground_truth, "--model", fan1, "--gt-boxes")
    assert_one_line_error(result, "caf\\udce9.jpg: ", "UTF-8")


@pytest.mark.parametrize("given, fragment", [(EINSTEIN, "is not a folder"), ("missing", "does not exist")])
def test_a_ground_truth_that_is_no_folder(tmp_path, predictions, given, fragment):
    result = run_tool("-m face_alignment.evaluate", "--ground-truth", tmp_path / given, "--predictions", predictions)
    assert_one_line_error(result, f"{tmp_path / given}: ground-truth folder {fragment}")


def test_running_out_of_memory_is_one_line(capsys):
    """numpy refusing an array larger than memory (as a 100000-pixel box's crop window, cut
    out whole, once did: test_crop.py now proves crops cost what the crop does) ends a command
    line with one line, not a MemoryError traceback."""
    from face_alignment.cli_support import command_line

    def allocate(argv):
        np.empty(2 ** 62, np.uint8)  # 4 EiB

    status, error = run_in_process(capsys, command_line(allocate))
    assert status == 2
    assert error.startswith("error: out of memory (Unable to allocate 4.00 EiB"), error


def test_an_error_after_the_progress_bar_started_is_the_last_line(tmp_path, fan1, boxes):
    """With several images a progress bar is drawn; an image that cannot be read used to
    print its error in the middle of the bar's line, and the bar was drawn again after it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(EINSTEIN, folder / "einstein.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    result = run_tool(TOOL, "-m", fan1, "--test-image", folder, "--boxes", boxes, "--save-json", tmp_path / "r.json",
                      *NNABLA_CPU)
    assert "0/2" in result.stderr  # the bar was drawn
    assert_one_line_error(result, f"{folder / 'empty.jpg'}: ")
    # The image that could be read is not lost with the one that could not (test_bad_photos.py).
    document = json.loads((tmp_path / "r.json").read_text())
    assert [os.path.basename(r["path"]) for r in document["images"]] == ["einstein.jpg"]
    assert [os.path.basename(e["path"]) for e in document["errors"]] == ["empty.jpg"]
