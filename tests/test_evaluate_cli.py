"""``python -m face_alignment.evaluate`` run as users run it (tests/in_process.py), on folders of
annotated images and prediction files written to a temporary directory."""
import json
import os

import cv2
import numpy as np
import pytest

from conftest import run_tool
from face_alignment.evaluation import read_pts, write_pts
from face_alignment.pipeline.image import IMAGE_EXTENSIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACES = os.path.join(ROOT, "..", "shared", "data", "faces")

# A synthetic face spanning 100 x 144 px (face size sqrt(100 * 144) = 120) with outer eye
# corners 60 px apart (inter-ocular 60) and eye-contour centres 45 px apart (inter-pupil 45).
FACE_SIZE, INTEROCULAR, INTERPUPIL = 120.0, 60.0, 45.0


def synthetic_face(seed=0):
    # Multiples of 1/8 survive the trip through a .pts file (6 decimals) exactly.
    points = np.round(np.random.default_rng(seed).uniform([10, 10], [90, 134], size=(68, 2)) * 8) / 8
    points[0], points[16], points[8], points[19] = (0, 40), (100, 40), (50, 144), (30, 0)
    points[36:42] = [(30, 50), (35, 47), (40, 47), (45, 50), (40, 53), (35, 53)]
    points[42:48] = [(75, 50), (80, 47), (85, 47), (90, 50), (85, 53), (80, 53)]
    return points + [150.0, 60.0]


def run_cli(*args):
    return run_tool("-m face_alignment.evaluate", *args)


def assert_one_line_error(completed, *fragments):
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr
    assert "Traceback" not in completed.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def face_entry(landmarks):
    landmarks = np.asarray(landmarks, dtype=float)
    box = np.concatenate((landmarks.min(0) - 10, landmarks.max(0) + 10))
    return {"box": box.tolist(), "landmarks": landmarks.tolist(), "scores": [1.0] * 68}


def write_predictions(path, faces_by_name, width=400, height=300):
    doc = {"images": [{"path": os.path.join("somewhere", name), "width": width, "height": height,
                       "faces": [face_entry(f) for f in faces]} for name, faces in faces_by_name.items()]}
    with open(path, "w") as f:
        json.dump(doc, f)
    return str(path)


@pytest.fixture
def synthetic_folder(tmp_path):
    """Two annotated images with the same face; one unannotated image."""
    folder = tmp_path / "gt"
    folder.mkdir()
    for name in ("a", "b", "unannotated"):
        cv2.imwrite(str(folder / f"{name}.png"), np.zeros((300, 400, 3), np.uint8))
    write_pts(str(folder / "a.pts"), synthetic_face())
    write_pts(str(folder / "b.pts"), synthetic_face())
    return folder


@pytest.mark.parametrize("normalization, normaliser", [
    ("face-size", FACE_SIZE), ("interocular", INTEROCULAR), ("interpupil", INTERPUPIL)])
def test_json_report_of_a_known_offset(tmp_path, synthetic_folder, normalization, normaliser):
    # Image a: every point 5 px off, (3, 4). Image b: the face is missed.
    predictions = write_predictions(tmp_path / "shifted.json",
                                    {"a.png": [synthetic_face() + [3.0, 4.0]], "b.png": []})
    completed = run_cli("--ground-truth", synthetic_folder, "--predictions", predictions,
                        "--normalization", normalization, "--json")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)

    nme = 5.0 / normaliser
    assert report["label"] == "shifted" and report["normalization"] == normalization
    assert report["nme"] == pytest.approx(nme, rel=1e-9)
    assert report["missed"] == 1 and report["faces"] == 2 and report["images"] == 2
    # Below the threshold the found face adds (0.07 - nme) / 0.07 to the AUC; at or above it,
    # nothing. Either way the total is shared between 2 faces.
    assert report["auc"] == pytest.approx(max(0.07 - nme, 0.0) / 0.07 / 2, rel=1e-9)
    assert report["failure_rate"] == (0.5 if nme <= 0.07 else 1.0)
    entries = {os.path.basename(e["path"]): e for e in report["per_image"]}
    assert entries["a.png"]["nme"] == [pytest.approx(nme, rel=1e-9)] and entries["a.png"]["missed"] == 0
    assert entries["b.png"]["nme"] == [None] and entries["b.png"]["missed"] == 1
    assert "NaN" not in completed.stdout and "Infinity" not in completed.stdout


def test_table_report(tmp_path, synthetic_folder):
    predictions = write_predictions(tmp_path / "p.json", {"a.png": [synthetic_face() + [3.0, 4.0]],
                                                          "b.png": [synthetic_face()]})
    completed = run_cli("--ground-truth", synthetic_folder, "--predictions", predictions)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    # 5 / 120 = 0.041667 for a, 0 for b; overall NME 0.020833; AUC (1 + (0.07 - 0.041667) / 0.07) / 2.
    assert lines[2].split() == ["a.png", "1", "0.0417", "0"]
    assert lines[3].split() == ["b.png", "1", "0.0000", "0"]
    text = completed.stdout
    assert "NME                 0.0208" in text
    assert f"AUC@0.07            {(1 + (0.07 - 5 / 120) / 0.07) / 2:.4f}" in text
    assert "failure rate        0.0000" in text and "missed              0" in text


def test_real_annotations_scored_against_themselves(tmp_path):
    faces = {f"{name}.jpg": [read_pts(os.path.join(FACES, f"{name}.pts"))] for name in ("einstein", "breakingbad")}
    predictions = write_predictions(tmp_path / "exact.json", faces)
    completed = run_cli("--ground-truth", FACES, "--predictions", predictions, "--json", "--threshold", "0.05")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert (report["nme"], report["auc"], report["failure_rate"], report["missed"]) == (0.0, 1.0, 0.0, 0)
    assert sorted(os.path.basename(e["path"]) for e in report["per_image"]) == ["breakingbad.jpg", "einstein.jpg"]


def test_several_prediction_files_with_labels_and_a_ced_plot(tmp_path, synthetic_folder):
    exact = write_predictions(tmp_path / "exact.json", {"a.png": [synthetic_face()], "b.png": [synthetic_face()]})
    shifted = write_predictions(tmp_path / "shifted.json", {"a.png": [synthetic_face() + [3.0, 4.0]],
                                                            "b.png": [synthetic_face() + [3.0, 4.0]]})
    plot = tmp_path / "ced.png"
    completed = run_cli("--ground-truth", synthetic_folder, "--predictions", exact, shifted,
                        "--label", "argmax", "--label", "centroid", "--json",
                        "--ced-plot", plot, "--plot-size", "640x480")
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)["results"]
    assert [r["label"] for r in results] == ["argmax", "centroid"]
    assert [r["nme"] for r in results] == [0.0, pytest.approx(5 / 120, rel=1e-9)]
    assert [r["auc"] for r in results] == [1.0, pytest.approx((0.07 - 5 / 120) / 0.07, rel=1e-9)]
    image = cv2.imread(str(plot))
    assert image is not None and image.shape == (480, 640, 3)


def test_default_plot_size_and_labels_from_file_stems(tmp_path, synthetic_folder):
    first = write_predictions(tmp_path / "first.json", {"a.png": [synthetic_face()]})
    second = write_predictions(tmp_path / "second.json", {"b.png": [synthetic_face()]})
    plot = tmp_path / "ced.png"
    completed = run_cli("--ground-truth", synthetic_folder, "--predictions", first, second, "--ced-plot", plot)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("first: ") and "\nsecond: " in completed.stdout
    assert cv2.imread(str(plot)).shape == (600, 800, 3)


# --- Bad input: one line on stderr, status 2 ----------------------------------------------------

def test_pts_with_the_wrong_point_count(tmp_path, synthetic_folder):
    points = "\n".join("1.0 2.0" for _ in range(67))
    (synthetic_folder / "b.pts").write_text(f"version: 1\nn_points: 68\n{{\n{points}\n}}\n")
    predictions = write_predictions(tmp_path / "p.json", {"a.png": [synthetic_face()]})
    completed = run_cli("--ground-truth", synthetic_folder, "--predictions", predictions)
    assert_one_line_error(completed, str(synthetic_folder / "b.pts"), ":71: expected 68 points")


def test_predictions_of_another_shape(tmp_path, synthetic_folder):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"path": "a.png", "width": 400, "height": 300,
                                           "faces": [{"box": [0, 0, 1, 1], "landmarks": [[0, 0]] * 5,
                                                      "scores": [1.0] * 68}]}]}))
    completed = run_cli("--ground-truth", synthetic_folder, "--predictions", bad)
    assert_one_line_error(completed, str(bad), "images[0].faces[0].landmarks: expected 68 points")


def test_predictions_that_are_not_json(tmp_path, synthetic_folder):
    bad = tmp_path / "bad.json"
    bad.write_text("{\"images\": [")
    assert_one_line_error(run_cli("--ground-truth", synthetic_folder, "--predictions", bad),
                          str(bad), "not valid JSON")


def test_missing_predictions_file(tmp_path, synthetic_folder):
    absent = tmp_path / "absent.json"
    assert_one_line_error(run_cli("--ground-truth", synthetic_folder, "--predictions", absent),
                          str(absent), "cannot read")


def test_empty_ground_truth_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    predictions = write_predictions(tmp_path / "p.json", {"a.png": [synthetic_face()]})
    assert_one_line_error(run_cli("--ground-truth", empty, "--predictions", predictions),
                          str(empty), "no annotated images")


@pytest.mark.parametrize("extra, fragment", [
    (["--label", "only-one"], "--label given 1 times for 2 predictions files"),
    (["--threshold", "0"], "threshold 0.0: expected a positive number"),
    (["--plot-size", "800-600", "--ced-plot", "x.png"], "expected WIDTHxHEIGHT"),
    (["--normalization", "eyes"], "invalid choice: 'eyes'"),
])
def test_bad_options(tmp_path, synthetic_folder, extra, fragment):
    predictions = write_predictions(tmp_path / "p.json", {"a.png": [synthetic_face()]})
    completed = run_cli("--ground-truth", synthetic_folder, "--predictions", predictions, predictions, *extra)
    assert_one_line_error(completed, fragment)


def test_missing_required_option(synthetic_folder):
    assert_one_line_error(run_cli("--ground-truth", synthetic_folder), "--predictions")


# --- Other image types, other tools' predictions --------------------------------------------------

def pts_points_by_hand(path):
    """The 68 'x y' lines between the braces of an iBUG .pts file, as written (1-based)."""
    lines = open(path).read().splitlines()
    start = lines.index("{") + 1
    return np.array([[float(v) for v in line.split()] for line in lines[start:start + 68]])


@pytest.fixture
def takeo_folder(tmp_path):
    """takeo.ppm, a Netpbm copy of einstein.jpg, with einstein's annotation as takeo.pts; and
    two annotations that annotate nothing readable: one alone, one beside a GIF."""
    import shutil

    folder = tmp_path / "gt"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "takeo.ppm"), cv2.imread(os.path.join(FACES, "einstein.jpg")))
    shutil.copy(os.path.join(FACES, "einstein.pts"), folder / "takeo.pts")
    shutil.copy(os.path.join(FACES, "einstein.pts"), folder / "lonely.pts")
    (folder / "old.gif").write_bytes(b"GIF89a")
    shutil.copy(os.path.join(FACES, "einstein.pts"), folder / "old.pts")
    return folder


def minimal_predictions(path, points):
    """What a user converting another tool's output may write: path and landmarks only."""
    with open(path, "w") as f:
        json.dump({"images": [{"path": "from/another/tool/takeo.ppm", "faces": [{"landmarks": points.tolist()}]}]}, f)
    return str(path)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (3.0, 4.0)])
def test_ppm_ground_truth_and_minimal_predictions(tmp_path, takeo_folder, shift):
    annotated = pts_points_by_hand(takeo_folder / "takeo.pts")
    # Predictions are 0-based: the annotation's points minus 1, moved by ``shift`` (5 px or 0).
    predictions = minimal_predictions(tmp_path / "other-tool.json", annotated - 1.0 + shift)
    completed = run_cli("--ground-truth", takeo_folder, "--predictions", predictions, "--json")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)

    width, height = annotated.max(0) - annotated.min(0)
    expected = np.hypot(*shift) / np.sqrt(width * height)  # face-size normalisation
    assert [os.path.basename(e["path"]) for e in report["per_image"]] == ["takeo.ppm"]
    assert report["faces"] == 1 and report["missed"] == 0
    if shift == (0.0, 0.0):
        assert report["nme"] == 0.0 and report["auc"] == 1.0
    else:
        assert report["nme"] == pytest.approx(expected, rel=1e-9) and expected > 0.01

    # The annotations that annotate nothing readable: named on stderr and in the report.
    old, lonely = str(takeo_folder / "old.pts"), str(takeo_folder / "lonely.pts")
    assert completed.stderr.splitlines() == [
        f"warning: {lonely}: not evaluated: no image of the same stem beside it",
        f"warning: {old}: not evaluated: its image old.gif is not of a type read here (expected one of "
        + ", ".join(sorted(IMAGE_EXTENSIONS)) + ")"]
    assert [u["annotation"] for u in report["unevaluated"]] == [lonely, old]

    table = run_cli("--ground-truth", takeo_folder, "--predictions", predictions)
    assert table.returncode == 0, table.stderr
    assert "  not evaluated       2  (annotation files without a readable image)" in table.stdout.splitlines()
    assert table.stdout.splitlines()[2].split() == ["takeo.ppm", "1", f"{expected:.4f}", "0"]


@pytest.mark.parametrize("face, fragment", [
    ({}, "images[0].faces[0]: expected an object with a 'landmarks' field"),
    ({"landmarks": [[1.0, 2.0]] * 67}, "images[0].faces[0].landmarks: expected 68 points"),
    ({"landmarks": [[1.0, 2.0]] * 68, "box": [5, 5, 1, 1]}, "images[0].faces[0].box: expected left <= right"),
])
def test_minimal_predictions_missing_or_malformed_what_evaluation_needs(tmp_path, synthetic_folder, face, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"path": "a.png", "faces": [face]}]}))
    assert_one_line_error(run_cli("--ground-truth", synthetic_folder, "--predictions", bad), str(bad), fragment)


def test_predictions_entry_without_a_path(tmp_path, synthetic_folder):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"faces": []}]}))
    assert_one_line_error(run_cli("--ground-truth", synthetic_folder, "--predictions", bad),
                          str(bad), "images[0]: expected an object with a 'path' field")
