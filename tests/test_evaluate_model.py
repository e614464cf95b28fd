"""evaluate --model runs the pipeline itself; its scores equal scoring model_inference.py's JSON."""
import json
import os
import shutil

import pytest

import checkpoints
from conftest import SHARED, assert_one_line_error, run_tool
from face_alignment.evaluation import load_ground_truth, points_box
from face_alignment.weights.convert import convert_checkpoint

FACES = os.path.join(SHARED, "data", "faces")


@pytest.fixture(scope="module")
def fan(module_folder):
    folder = module_folder("eval_model")
    checkpoints.save_plain(checkpoints.authors_fan(2, "max", seed=8), folder / "2dfan2.pth")
    convert_checkpoint(str(folder / "2dfan2.pth"), str(folder / "fan.h5"))
    return str(folder / "fan.h5")


def test_decode_both_in_one_pass_matches_scoring_saved_predictions(tmp_path, fan):
    result = run_tool("-m face_alignment.evaluate", "--ground-truth", FACES, "--model", fan,
                      "--decode", "both", "--gt-boxes", "--json", "--ced-plot", tmp_path / "ced.png")
    assert result.returncode == 0, result.stderr
    both = json.loads(result.stdout)["results"]
    assert [r["label"] for r in both] == ["fan argmax", "fan centroid"]
    assert (tmp_path / "ced.png").exists()

    truth = load_ground_truth(FACES)
    boxes = {name: points_box(image.faces[0])[None].tolist() for name, image in truth.items()}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    for decoded in both:
        method = decoded["label"].split()[-1]
        saved = tmp_path / f"{method}.json"
        made = run_tool("model_inference.py", "--model", fan, "--test-image", FACES, "--boxes",
                        tmp_path / "boxes.json", "--decode", method, "--save-json", saved)
        assert made.returncode == 0, made.stderr
        scored = run_tool("-m face_alignment.evaluate", "--ground-truth", FACES, "--predictions", saved, "--json")
        assert scored.returncode == 0, scored.stderr
        scored = json.loads(scored.stdout)
        assert scored["faces"] == decoded["faces"] == 2 and scored["missed"] == decoded["missed"] == 0
        assert scored["nme"] == pytest.approx(decoded["nme"], rel=1e-9)
        assert scored["auc"] == pytest.approx(decoded["auc"], rel=1e-9)
    assert both[0]["nme"] != both[1]["nme"]  # two decodings of the same heatmaps really differ


def test_gt_boxes_from_an_annotation_with_a_lost_decimal_point(tmp_path, fan):
    """One coordinate of a .pts file typed without its decimal point (3e8 pixels instead of
    a few hundred): the crop window around the points, cut out whole, would have been 210 PiB
    and a MemoryError traceback. Now the face is cropped and scored."""
    folder = tmp_path / "gt"
    folder.mkdir()
    shutil.copy(os.path.join(FACES, "einstein.jpg"), folder / "einstein.jpg")
    lines = open(os.path.join(FACES, "einstein.pts")).read().splitlines()
    x, y = lines[3].split()  # the first point
    assert "." in y
    lines[3] = f"{x} {y.replace('.', '')}"
    (folder / "einstein.pts").write_text("\n".join(lines) + "\n")
    assert load_ground_truth(str(folder))["einstein.jpg"].faces[0][:, 1].max() > 1e7
    result = run_tool("-m face_alignment.evaluate", "--ground-truth", folder, "--model", fan, "--gt-boxes", "--json")
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["faces"] == 1 and scored["missed"] == 0 and scored["nme"] >= 0


def test_max_pixels_limits_the_images_read(fan):
    """breakingbad.jpg, read first, is 1920 x 1080 = 2073600 pixels."""
    result = run_tool("-m face_alignment.evaluate", "--ground-truth", FACES, "--model", fan, "--gt-boxes",
                      "--max-pixels", 2073599)
    assert_one_line_error(result, "breakingbad.jpg", "1920 x 1080 pixels", "2.0736 megapixels", "--max-pixels")
    assert_one_line_error(run_tool("-m face_alignment.evaluate", "--ground-truth", FACES, "--model", fan,
                                   "--max-pixels", "0"), "--max-pixels", "'0'")
