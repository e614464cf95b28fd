"""The writer seam (face_alignment/writers.py) and model_inference.py --save-pts: the .pts
files are read back by hand here, as another tool would, and compared with the JSON document
of the same run; outputs are checked before the model loads and left unwritten on an error."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import CPU, SHARED, assert_one_line_error, run_tool
from face_alignment.errors import FaceAlignmentError
from face_alignment.writers import WRITERS, Faces, LandmarkTable, PtsFolder, ResultsDocument, open_writer

FACES = os.path.join(SHARED, "data", "faces")
# einstein.jpg: one face; breakingbad.jpg: two boxes, so two files; blank.png: none.
BOXES = {"einstein.jpg": [[250.0, 260.0, 600.0, 640.0]],
         "breakingbad.jpg": [[1180.0, 230.0, 1420.0, 520.0], [600.0, 200.0, 850.0, 500.0]],
         "blank.png": []}


@pytest.fixture
def photos(tmp_path):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("einstein.jpg", "breakingbad.jpg"):
        shutil.copy(os.path.join(FACES, name), folder / name)
    cv2.imwrite(str(folder / "blank.png"), np.zeros((40, 60, 3), np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(BOXES))
    return folder, boxes


def _parse_pts_by_hand(path):
    """(header lines, points) of an iBUG file: 'version: 1', 'n_points: N', '{', N lines of
    'x y', '}'."""
    lines = open(path).read().splitlines()
    opening, closing = lines.index("{"), lines.index("}")
    points = np.array([[float(v) for v in line.split()] for line in lines[opening + 1:closing]])
    return lines[:opening], points, lines[closing + 1:]


def test_pts_files_hold_the_json_document_s_landmarks_1_based(tmp_path, fan1_h5, photos):
    folder, boxes = photos
    out, document = tmp_path / "pts", tmp_path / "results.json"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", folder, "--boxes", boxes,
                      "--save-json", document, "--save-pts", out, "--no-progress", *CPU)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["breakingbad_1.pts", "breakingbad_2.pts", "einstein.pts"]
    faces = {os.path.basename(r["path"]): r["faces"] for r in json.loads(document.read_text())["images"]}
    expected = {"einstein.pts": faces["einstein.jpg"][0], "breakingbad_1.pts": faces["breakingbad.jpg"][0],
                "breakingbad_2.pts": faces["breakingbad.jpg"][1]}
    for name, face in expected.items():
        header, points, after = _parse_pts_by_hand(out / name)
        # As the shared 300W-style annotations: a version, the number of points, nothing after.
        shared_header, _, _ = _parse_pts_by_hand(os.path.join(FACES, "einstein.pts"))
        assert [line.split(":")[0] for line in header] == [line.split(":")[0] for line in shared_header]
        assert header[1].split(":")[1].strip() == "68" and after == []
        np.testing.assert_allclose(points, np.array(face["landmarks"]) + 1, atol=1e-6)


def test_pts_outputs_are_checked_before_the_model_loads(tmp_path, photos):
    folder, boxes = photos
    before = sorted(os.listdir(folder))
    model = str(tmp_path / "never_loaded.h5")  # does not exist: loading it would be the error
    # Beside the images, .pts files are their annotations.
    error = assert_one_line_error(run_tool("model_inference.py", "--model", model, "--test-image", folder,
                                           "--save-pts", folder, *CPU))
    assert str(folder) in error and "--save-pts" in error and "never_loaded" not in error
    (tmp_path / "a_file").write_text("")
    error = assert_one_line_error(run_tool("model_inference.py", "--model", model, "--test-image", folder,
                                           "--save-pts", tmp_path / "a_file", *CPU))
    assert "a_file" in error and "--save-pts" in error
    error = assert_one_line_error(run_tool("model_inference.py", "--model", model, "--test-video",
                                           tmp_path / "any.mp4", "--save-pts", tmp_path / "pts", *CPU))
    assert "--save-pts" in error and "--save-landmarks" in error
    assert sorted(os.listdir(folder)) == before and not os.path.exists(tmp_path / "pts")


def test_a_bad_image_mid_run_keeps_the_good_ones_pts_and_is_listed_in_the_document(tmp_path, fan1_h5, photos):
    folder, boxes = photos
    whole = (folder / "einstein.jpg").read_bytes()
    (folder / "einstein.jpg").write_bytes(whole[:len(whole) // 2])  # read after breakingbad.jpg
    out, document = tmp_path / "pts", tmp_path / "results.json"
    assert_one_line_error(run_tool("model_inference.py", "--model", fan1_h5, "--test-image", folder,
                                   "--boxes", boxes, "--save-json", document, "--save-pts", out, *CPU),
                          "einstein.jpg", "truncated JPEG")
    with open(document) as f:
        written = json.load(f)
    assert [os.path.basename(i["path"]) for i in written["images"]] == ["blank.png", "breakingbad.jpg"]
    assert [os.path.basename(e["path"]) for e in written["errors"]] == ["einstein.jpg"]
    assert sorted(os.listdir(out)) == ["breakingbad_1.pts", "breakingbad_2.pts"]  # its two boxes; blank: none


def _faces(source, count, dims=2):
    rng = np.random.default_rng(count)
    return Faces(source, (64, 48), rng.uniform(0, 40, (count, 4)), rng.uniform(0, 40, (count, 68, dims)),
                 rng.uniform(0, 1, (count, 68)))


def test_the_extension_chooses_the_writer_and_an_unknown_one_is_named(tmp_path):
    assert WRITERS["landmarks"][".parquet"] is LandmarkTable and WRITERS["results"][".json"] is ResultsDocument
    assert WRITERS["landmarks"][".json"] is LandmarkTable and WRITERS["pts"][""] is PtsFolder
    for kind, name in (("landmarks", "rows.txt"), ("results", "rows.parquet")):
        with pytest.raises(FaceAlignmentError) as caught:
            open_writer(kind, str(tmp_path / name))
        assert name in str(caught.value) and ".json" in str(caught.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind, name", [("results", "doc.json"), ("landmarks", "rows.parquet"),
                                        ("landmarks", "rows.json"), ("pts", "pts")])
def test_every_writer_leaves_nothing_after_an_error_and_writes_on_close(tmp_path, kind, name):
    path = str(tmp_path / name)
    with pytest.raises(RuntimeError):
        with open_writer(kind, path) as writer:
            writer.write(_faces("a/face.jpg", 2))
            raise RuntimeError("stopped")
    assert os.listdir(tmp_path) == []
    with open_writer(kind, path, dims=3) as writer:
        writer.write(_faces("a/face.jpg", 1, dims=3))
    assert os.listdir(tmp_path) == [name]
    if kind == "pts":
        assert os.listdir(path) == ["face.pts"]


def test_pts_names_that_would_clash_are_refused():
    writer = PtsFolder("pts")
    writer.write(_faces("a/face.jpg", 2))  # face_1.pts, face_2.pts
    writer.write(_faces("a/face.jpg", 2))  # the same image again: the same files
    with pytest.raises(FaceAlignmentError) as caught:
        writer.write(_faces("b/face_1.jpg", 1))
    assert "face_1.pts" in str(caught.value) and "b/face_1.jpg" in str(caught.value)
    writer.abandon(caught.value)
