"""model_inference.py as a user runs it: JSON output, given boxes, folders, 3D, bad input."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

import checkpoints
from conftest import CPU, SHARED, assert_one_line_error, run_tool
from face_alignment.backends import cuda_available
from face_alignment.weights.convert import convert_checkpoint
from weight_files import SEEING_DEPTH

TOOL = "model_inference.py"
FACES = os.path.join(SHARED, "data", "faces")
BOXES = {"breakingbad.jpg": [[1180.0, 230.0, 1420.0, 520.0]], "einstein.jpg": [[250.0, 260.0, 600.0, 640.0]]}


@pytest.fixture(scope="module")
def models(module_folder, weight_files, fan1_3d_h5):
    """A 2-module FAN (fast), converted from ibug's checkpoint; a ResNetDepth, converted from
    the authors'; a one-hourglass FAN recorded as a 3D one (3D needs a 3D-FAN). Random
    weights. The last two are test_pipeline_parity.py's (the same files, so one ONNX export
    of each in a session: ResNetDepth's takes seconds)."""
    folder = module_folder("cli_models")
    checkpoints.save_plain(checkpoints.authors_fan(2, "max", seed=3), folder / "2dfan2.pth")
    convert_checkpoint(str(folder / "2dfan2.pth"), str(folder / "fan.h5"))
    depth = weight_files.converted(SEEING_DEPTH, "depth-2a464da4ea.pth.tar", "depth")
    return str(folder / "fan.h5"), depth, fan1_3d_h5


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in BOXES:
        shutil.copy(os.path.join(FACES, name), folder / name)
    return folder


def check_document(document, dims):
    """The documented --save-json shape, value by value."""
    assert set(document) == {"images", "errors"} and document["errors"] == []
    for record in document["images"]:
        assert set(record) == {"path", "width", "height", "faces"}
        image = cv2.imread(record["path"])
        assert (record["height"], record["width"]) == image.shape[:2]
        for face in record["faces"]:
            assert set(face) == {"box", "landmarks", "scores"}
            assert len(face["box"]) == 4 and all(isinstance(v, float) for v in face["box"])
            assert len(face["landmarks"]) == 68 and all(len(p) == dims for p in face["landmarks"])
            assert all(isinstance(v, float) for p in face["landmarks"] for v in p)
            assert len(face["scores"]) == 68 and all(isinstance(v, float) for v in face["scores"])


def test_folder_with_boxes_json_and_pictures(tmp_path, models, photos):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(BOXES))
    out_json, out_dir = tmp_path / "result.json", tmp_path / "drawn"
    result = run_tool(TOOL, "--model", models[0], "--test-image", photos, "--boxes", boxes,
                      "--save-json", out_json, "--output", out_dir, *CPU)
    assert result.returncode == 0, result.stderr
    assert "2/2" in result.stderr  # the progress bar went through both images
    document = json.loads(out_json.read_text())
    check_document(document, dims=2)
    assert [os.path.basename(r["path"]) for r in document["images"]] == sorted(BOXES)
    for record in document["images"]:
        [face] = record["faces"]
        assert face["box"] == BOXES[os.path.basename(record["path"])][0]  # honoured, not detected
        points = np.array(face["landmarks"])
        left, top, right, bottom = face["box"]
        size = right - left
        # Landmarks lie in the crop around the box (random weights put them anywhere in it).
        assert np.all(points[:, 0] > left - size) and np.all(points[:, 0] < right + size)
    assert sorted(os.listdir(out_dir)) == ["breakingbad_landmarks.png", "einstein_landmarks.png"]
    drawn = cv2.imread(str(out_dir / "einstein_landmarks.png"))
    assert drawn.shape == cv2.imread(os.path.join(FACES, "einstein.jpg")).shape


def test_box_list_applies_to_every_image_and_json_alone_draws_nothing(tmp_path, models):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[300, 300, 500, 520], [10, 10, 120, 140]]))
    out_json = tmp_path / "r.json"
    result = run_tool(TOOL, "-m", models[0], "--test-image", os.path.join(FACES, "einstein.jpg"),
                      "--test-image", os.path.join(FACES, "breakingbad.jpg"), "--boxes", boxes,
                      "--save-json", out_json, "--decode", "argmax", *CPU, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(out_json.read_text())
    assert [len(r["faces"]) for r in document["images"]] == [2, 2]
    assert document["images"][1]["faces"][1]["box"] == [10.0, 10.0, 120.0, 140.0]
    assert sorted(os.listdir(tmp_path)) == ["boxes.json", "r.json"]  # nothing drawn


def test_3d_landmarks_and_3d_view(tmp_path, models):
    out_json, out_png = tmp_path / "r.json", tmp_path / "out3d.png"
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"einstein.jpg": BOXES["einstein.jpg"]}))  # a name of no image is an error
    result = run_tool(TOOL, "--landmarks-type-3D", "--model", models[2], "--resnet-depth-model", models[1],
                      "--test-image", os.path.join(FACES, "einstein.jpg"), "--boxes", boxes,
                      "--save-json", out_json, "--output", out_png, *CPU)
    assert result.returncode == 0, result.stderr
    document = json.loads(out_json.read_text())
    check_document(document, dims=3)
    z = np.array(document["images"][0]["faces"][0]["landmarks"])[:, 2]
    assert np.all(np.isfinite(z)) and z.std() > 0
    picture = cv2.imread(str(out_png))
    height, width = cv2.imread(os.path.join(FACES, "einstein.jpg")).shape[:2]
    assert picture.shape[0] == height and picture.shape[1] > width  # the 3D view beside the photo


def test_detection_and_no_face(tmp_path, models):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 128, np.uint8))
    out_json = tmp_path / "r.json"
    result = run_tool(TOOL, "--model", models[0], "--test-image", blank,
                      "--test-image", os.path.join(FACES, "breakingbad.jpg"), "--save-json", out_json, *CPU)
    assert result.returncode == 0, result.stderr
    assert "blank.png: no face found" in result.stderr
    document = json.loads(out_json.read_text())
    assert document["images"][0]["faces"] == []
    assert len(document["images"][1]["faces"]) >= 1  # HOG finds at least one of the two people


def test_huge_box_is_cropped_and_drawn(tmp_path, models):
    """A box of 100000 pixels: its 181819-pixel crop window, cut out whole, was 99 GB."""
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[0.0, 0.0, 100000.0, 100000.0]]))
    out_json, out_png = tmp_path / "r.json", tmp_path / "out.png"
    result = run_tool(TOOL, "--model", models[0], "--test-image", os.path.join(FACES, "einstein.jpg"),
                      "--boxes", boxes, "--save-json", out_json, "--output", out_png)
    assert result.returncode == 0, result.stderr
    [face] = json.loads(out_json.read_text())["images"][0]["faces"]
    assert np.all(np.isfinite(face["landmarks"]))
    assert cv2.imread(str(out_png)).shape == (1024, 817, 3)


def test_cut_short_or_oversized_image_is_one_line_and_nothing_else(tmp_path, models):
    """libjpeg's 'Premature end of JPEG file' used to come first, then landmarks of a
    half-grey picture; now our error is the only complaint on stderr."""
    whole = open(os.path.join(FACES, "einstein.jpg"), "rb").read()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[:len(whole) // 2])
    out = tmp_path / "o.png"
    result = run_tool(TOOL, "--model", models[0], "--test-image", cut, "--output", out)
    assert_one_line_error(result, "cut.jpg", "truncated JPEG")
    # Before it, only our start-up log (model, ONNX export): nothing from libjpeg or OpenCV.
    before = result.stderr.splitlines()[:-1]
    assert not [line for line in before if "JPEG" in line or "cut.jpg" in line or line.startswith("[")], before
    # Einstein is 817 x 1024 = 836608 pixels.
    face = os.path.join(FACES, "einstein.jpg")
    assert_one_line_error(run_tool(TOOL, "--model", models[0], "--test-image", face, "--output", out,
                                   "--max-pixels", 836607),
                          "einstein.jpg", "817 x 1024 pixels", "0.836607 megapixels", "--max-pixels")
    assert_one_line_error(run_tool(TOOL, "--model", models[0], "--test-image", face, "--output", out,
                                   "--max-pixels", "0"), "--max-pixels", "'0'")
    assert not out.exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path, models, monkeypatch):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    face = os.path.join(FACES, "einstein.jpg")
    assert_one_line_error(run_tool(TOOL, "--model", models[0], "--test-image", text), "notes.jpg")
    assert_one_line_error(run_tool(TOOL, "--model", tmp_path / "none.h5", "--test-image", face), "none.h5")
    assert_one_line_error(run_tool(TOOL, "--model", models[1], "--test-image", face), "ResNetDepth", "FAN")
    # No model anywhere, and no network: the first-use lookup (face_alignment.hub) finds nothing.
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FACE_ALIGNMENT_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # the discard port: refused
    assert_one_line_error(run_tool(TOOL, "--test-image", face, cwd=tmp_path), "fetch_weights.py 2DFAN4",
                          "2DFAN4-11f355bf06.pth.tar", str(tmp_path / "torch"))
    assert_one_line_error(run_tool(TOOL, "--model", models[0], "--test-image", tmp_path / "missing.jpg"),
                          "missing.jpg")
    bad_boxes = tmp_path / "b.json"
    bad_boxes.write_text('{"einstein.jpg": [[1, 2, 3]]}')
    assert_one_line_error(run_tool(TOOL, "--model", models[0], "--test-image", face, "--boxes", bad_boxes),
                          "b.json")
    if not cuda_available():  # where the extension is installed, cudnn is no mistake
        assert_one_line_error(run_tool(TOOL, "--model", models[0], "--test-image", face, "--context", "cudnn"),
                              "nnabla-ext-cuda")
    assert not any(p.suffix == ".png" for p in tmp_path.iterdir())
