"""Accuracy evaluation: .pts files, ground-truth folders, prediction documents, face matching,
NME under each normalisation, CED, AUC, failure rate and the CED chart.

Expected values are worked out by hand in the comments beside them, on a synthetic face whose
box and eye geometry are chosen to make the normalisers round numbers, and on the real
annotated photographs in /work/shared/data/faces.
"""
import json
import os

import cv2
import numpy as np
import pytest

from face_alignment.errors import AnnotationError, FaceAlignmentError
from face_alignment.evaluation import (AnnotatedImage, auc, box_iou, ced_curve, evaluate_document,
                                       failure_rate, load_ground_truth, match_faces, plot_ced,
                                       read_pts, write_pts)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACES = os.path.join(ROOT, "..", "shared", "data", "faces")

# --- A synthetic face with hand-picked normalisers -------------------------------------------
# Relative to its top-left corner the points span x 0..100 and y 0..144, so the face size is
# sqrt(100 * 144) = 120. Outer eye corners (indices 36, 45) at (30, 50) and (90, 50): the
# inter-ocular distance is 60. The eye contours average to (37.5, 50) and (82.5, 50): the
# inter-pupil distance is 45.
FACE_SIZE, INTEROCULAR, INTERPUPIL = 120.0, 60.0, 45.0
FACE_ORIGIN = np.array([200.0, 100.0])


def synthetic_face(origin=FACE_ORIGIN, seed=0):
    points = np.random.default_rng(seed).uniform([10, 10], [90, 134], size=(68, 2))
    points[0], points[16], points[8], points[19] = (0, 40), (100, 40), (50, 144), (30, 0)
    points[36:42] = [(30, 50), (35, 47), (40, 47), (45, 50), (40, 53), (35, 53)]
    points[42:48] = [(75, 50), (80, 47), (85, 47), (90, 50), (85, 53), (80, 53)]
    return points + origin


def annotated(name, *faces):
    return AnnotatedImage(name=name, path=f"/gt/{name}",
                          annotation_paths=tuple(f"/gt/{name}_{i}.pts" for i in range(len(faces))),
                          faces=tuple(faces))


def predicted_face(landmarks, box=None):
    landmarks = np.asarray(landmarks, dtype=float)
    if box is None:  # a detector-like box: the points' box with a margin
        box = np.concatenate((landmarks[:, :2].min(0) - 15, landmarks[:, :2].max(0) + 15))
    return {"box": [float(v) for v in box], "landmarks": landmarks.tolist(), "scores": [0.9] * 68}


def document(*images):
    """images: (name, [face dicts])."""
    return {"images": [{"path": f"/photos/{name}", "width": 640, "height": 480, "faces": faces}
                       for name, faces in images]}


# --- .pts ------------------------------------------------------------------------------------

def test_real_pts_files_parse_to_68_points_inside_their_images():
    for name in ("einstein", "breakingbad"):
        points = read_pts(os.path.join(FACES, f"{name}.pts"))
        height, width = cv2.imread(os.path.join(FACES, f"{name}.jpg")).shape[:2]
        assert points.shape == (68, 2)
        assert (points >= 0).all() and (points[:, 0] <= width - 1).all() and (points[:, 1] <= height - 1).all()


def test_read_pts_converts_1_based_to_0_based():
    # First lines of the files: "357.417253 308.455774" and "1283.598566 276.387616".
    einstein = read_pts(os.path.join(FACES, "einstein.pts"))
    breakingbad = read_pts(os.path.join(FACES, "breakingbad.pts"))
    np.testing.assert_allclose(einstein[0], [356.417253, 307.455774], atol=1e-9)
    np.testing.assert_allclose(breakingbad[0], [1282.598566, 275.387616], atol=1e-9)


def test_write_pts_writes_1_based_and_reads_back(tmp_path):
    points = synthetic_face() + 0.25
    path = str(tmp_path / "face.pts")
    write_pts(path, np.column_stack((points, np.full(68, 7.0))))  # z is dropped
    lines = open(path).read().splitlines()
    assert lines[:3] == ["version: 1", "n_points: 68", "{"] and lines[-1] == "}" and len(lines) == 72
    x, y = points[0]
    assert lines[3] == f"{x + 1:.6f} {y + 1:.6f}"  # (0, 40) + origin + 0.25, plus 1
    assert lines[3] == "201.250000 141.250000"
    np.testing.assert_allclose(read_pts(path), points, atol=1e-6)
    assert os.listdir(tmp_path) == ["face.pts"]


def _pts_text(points, declared=68):
    body = "\n".join(f"{x} {y}" for x, y in points)
    return f"version: 1\nn_points: {declared}\n{{\n{body}\n}}\n"


GOOD_POINTS = [(float(i), float(2 * i)) for i in range(1, 69)]
BAD_PTS = {
    # 67 points on lines 4..70, then '}' on line 71.
    "too_few": (_pts_text(GOOD_POINTS[:67]), ":71: expected 68 points before '}', found 67"),
    # The 69th point is on line 72, where '}' was expected.
    "too_many": (_pts_text(GOOD_POINTS + [(1.0, 1.0)]), ":72: expected '}' after 68 points"),
    "declares_67": (_pts_text(GOOD_POINTS, declared=67), ":2: expected 'n_points: 68', got 'n_points: 67'"),
    "no_opening_brace": (_pts_text(GOOD_POINTS).replace("{\n", ""), ":3: expected a header line"),
    "no_closing_brace": (_pts_text(GOOD_POINTS).replace("}\n", ""), "no '}' line closing the points"),
    # Point 7 is on line 3 + 7 = 10.
    "not_a_number": (_pts_text(GOOD_POINTS).replace("7.0 14.0", "7.0 fourteen"), ":10: expected a point 'x y'"),
    "three_numbers": (_pts_text(GOOD_POINTS).replace("7.0 14.0", "7.0 14.0 1.0"), ":10: expected a point 'x y'"),
    "nan": (_pts_text(GOOD_POINTS).replace("7.0 14.0", "7.0 nan"), ":10: expected a point 'x y'"),
    "empty": ("", "no '{' line opening the points"),
    # 68 points on lines 4..71, '}' on line 72, a blank line 73, the stray text on line 74.
    "text_after_closing_brace": (_pts_text(GOOD_POINTS) + "\nextra\n", ":74: expected nothing after"),
}


@pytest.mark.parametrize("case", sorted(BAD_PTS))
def test_malformed_pts_is_a_one_line_error_naming_file_and_line(tmp_path, case):
    text, expected = BAD_PTS[case]
    path = tmp_path / f"{case}.pts"
    path.write_text(text)
    with pytest.raises(AnnotationError) as raised:
        read_pts(str(path))
    message = str(raised.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_good_pts_text_parses_exactly(tmp_path):
    # The reference the malformed cases are cut from: coordinates minus 1.
    path = tmp_path / "good.pts"
    path.write_text(_pts_text(GOOD_POINTS))
    np.testing.assert_array_equal(read_pts(str(path)), np.array(GOOD_POINTS) - 1)


def test_missing_pts_file_is_an_annotation_error(tmp_path):
    with pytest.raises(AnnotationError, match="cannot read"):
        read_pts(str(tmp_path / "absent.pts"))


# --- Ground-truth folders --------------------------------------------------------------------

def _image(path):
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))


def test_load_ground_truth_pairs_images_with_their_pts_files(tmp_path):
    faces = [synthetic_face(origin=(10.0 * i, 0.0)) for i in range(5)]
    _image(tmp_path / "a.png")
    write_pts(str(tmp_path / "a.pts"), faces[0])
    _image(tmp_path / "b.jpg")  # 300W style, one file per face, in numeric order
    write_pts(str(tmp_path / "b_10.pts"), faces[3])
    write_pts(str(tmp_path / "b_2.pts"), faces[2])
    write_pts(str(tmp_path / "b_1.pts"), faces[1])
    _image(tmp_path / "unannotated.png")
    _image(tmp_path / "d.png")  # d_1.pts belongs to the image d_1.png, not to d.png
    _image(tmp_path / "d_1.png")
    write_pts(str(tmp_path / "d_1.pts"), faces[4])
    (tmp_path / "sub").mkdir()
    _image(tmp_path / "sub" / "e.jpeg")
    write_pts(str(tmp_path / "sub" / "e.pts"), faces[0])

    truth = load_ground_truth(str(tmp_path))

    assert sorted(truth) == ["a.png", "b.jpg", "d_1.png", "e.jpeg"]
    assert [os.path.basename(p) for p in truth["b.jpg"].annotation_paths] == ["b_1.pts", "b_2.pts", "b_10.pts"]
    for got, want in zip(truth["b.jpg"].faces, faces[1:4]):
        np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(truth["d_1.png"].faces[0], faces[4], atol=1e-6)
    assert truth["e.jpeg"].path == os.path.join(str(tmp_path), "sub", "e.jpeg")


def test_real_faces_folder_loads():
    truth = load_ground_truth(FACES)
    assert sorted(truth) == ["breakingbad.jpg", "einstein.jpg"]
    assert [len(image.faces) for image in truth.values()] == [1, 1]


@pytest.mark.parametrize("layout", ["empty", "images_only", "missing"])
def test_folder_without_annotated_images_is_a_one_line_error(tmp_path, layout):
    folder = tmp_path / "gt"
    if layout != "missing":
        folder.mkdir()
    if layout == "images_only":
        _image(folder / "a.png")
        (folder / "notes.txt").write_text("no annotations here")
    with pytest.raises(AnnotationError) as raised:
        load_ground_truth(str(folder))
    assert str(raised.value).startswith(str(folder)) and "\n" not in str(raised.value)


def test_same_file_name_in_two_subfolders_is_an_error(tmp_path):
    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        _image(tmp_path / sub / "a.png")
        write_pts(str(tmp_path / sub / "a.pts"), synthetic_face())
    with pytest.raises(AnnotationError, match="same file name"):
        load_ground_truth(str(tmp_path))


def test_every_image_type_of_the_project_is_ground_truth(tmp_path):
    """takeo.ppm (a Netpbm copy of a shared photo) and the rest of the project's types count."""
    from face_alignment.pipeline.image import IMAGE_EXTENSIONS

    photo = cv2.imread(os.path.join(FACES, "einstein.jpg"))
    assert cv2.imwrite(str(tmp_path / "takeo.ppm"), photo)
    write_pts(str(tmp_path / "takeo.pts"), read_pts(os.path.join(FACES, "einstein.pts")))
    for extension in sorted(IMAGE_EXTENSIONS - {".ppm"}):
        (tmp_path / f"x{extension[1:]}{extension.upper()}").write_bytes(b"")  # pairing reads no pixels
        write_pts(str(tmp_path / f"x{extension[1:]}.pts"), synthetic_face())
    truth = load_ground_truth(str(tmp_path))
    assert sorted(truth) == sorted(["takeo.ppm"] + [f"x{e[1:]}{e.upper()}" for e in IMAGE_EXTENSIONS - {".ppm"}])
    np.testing.assert_allclose(truth["takeo.ppm"].faces[0], read_pts(os.path.join(FACES, "einstein.pts")),
                               atol=1e-6)
    assert truth.unevaluated == ()


def test_annotations_without_a_readable_image_are_reported_not_dropped(tmp_path, caplog):
    _image(tmp_path / "a.png")
    write_pts(str(tmp_path / "a.pts"), synthetic_face())
    (tmp_path / "anim.gif").write_bytes(b"GIF89a")  # a type OpenCV does not read
    write_pts(str(tmp_path / "anim.pts"), synthetic_face())
    write_pts(str(tmp_path / "lonely.pts"), synthetic_face())  # no image at all
    (tmp_path / "group.heic").write_bytes(b"")
    write_pts(str(tmp_path / "group_1.pts"), synthetic_face())  # 300W numbering, image unreadable
    write_pts(str(tmp_path / "b.PTS"), synthetic_face())
    _image(tmp_path / "b.png")

    with caplog.at_level("WARNING", logger="face_alignment"):
        truth = load_ground_truth(str(tmp_path))

    assert sorted(truth) == ["a.png"]
    reasons = {os.path.basename(path): reason for path, reason in truth.unevaluated}
    assert sorted(reasons) == ["anim.pts", "b.PTS", "group_1.pts", "lonely.pts"]
    assert reasons["anim.pts"].startswith("its image anim.gif is not of a type read here (expected one of ")
    assert ".ppm" in reasons["anim.pts"]
    assert reasons["group_1.pts"].startswith("its image group.heic is not of a type read here")
    assert reasons["lonely.pts"] == "no image of the same stem beside it"
    assert reasons["b.PTS"] == "expected the suffix '.pts', got '.PTS'"
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [f"{tmp_path / name}: not evaluated: {reasons[name]}" for name in sorted(reasons)]

    # Scoring carries them into the result and its JSON.
    result = evaluate_document(document(("a.png", [predicted_face(synthetic_face())])), truth, "face-size", 0.07)
    assert result.to_json()["unevaluated"] == [{"annotation": str(tmp_path / name), "reason": reasons[name]}
                                               for name in sorted(reasons)]


def test_a_folder_whose_only_annotations_lack_images_says_why(tmp_path):
    (tmp_path / "takeo.gif").write_bytes(b"GIF89a")
    write_pts(str(tmp_path / "takeo.pts"), synthetic_face())
    with pytest.raises(AnnotationError) as raised:
        load_ground_truth(str(tmp_path))
    message = str(raised.value)
    assert message.startswith(f"{tmp_path}: no annotated images") and "\n" not in message
    assert f"{tmp_path / 'takeo.pts'}: its image takeo.gif is not of a type read here" in message


# --- NME under each normalisation --------------------------------------------------------------

@pytest.mark.parametrize("normalization, normaliser", [
    ("face-size", FACE_SIZE), ("interocular", INTEROCULAR), ("interpupil", INTERPUPIL)])
def test_offset_of_3_4_pixels_gives_5_over_the_normaliser(normalization, normaliser):
    truth = synthetic_face()
    doc = document(("face.jpg", [predicted_face(truth + [3.0, 4.0])]))
    result = evaluate_document(doc, {"face.jpg": annotated("face.jpg", truth)}, normalization, 0.07)
    assert result.nme == pytest.approx(5.0 / normaliser, rel=1e-12)
    assert result.images[0].errors.tolist() == pytest.approx([5.0 / normaliser], rel=1e-12)
    assert result.missed == 0


def test_nme_is_the_mean_over_points_and_ignores_z():
    truth = synthetic_face()
    moved = truth.copy()
    moved[:34] += [3.0, -4.0]  # half the points 5 px off, half exact: mean 2.5 px
    with_z = np.column_stack((moved, np.linspace(-500, 500, 68)))
    doc = document(("face.jpg", [predicted_face(with_z)]))
    result = evaluate_document(doc, {"face.jpg": annotated("face.jpg", truth)}, "face-size", 0.07)
    assert result.nme == pytest.approx(2.5 / FACE_SIZE, rel=1e-12)


@pytest.mark.parametrize("threshold", [0.001, 0.07, 0.5])
def test_perfect_predictions_give_nme_0_and_auc_1(threshold):
    faces = {name: annotated(name, synthetic_face(seed=i)) for i, name in enumerate(["a.png", "b.png"])}
    doc = document(*[(name, [predicted_face(image.faces[0])]) for name, image in faces.items()])
    result = evaluate_document(doc, faces, "interocular", threshold)
    assert result.nme == 0.0 and result.auc == 1.0 and result.failure_rate == 0.0 and result.missed == 0


def test_missed_faces_fail_count_in_auc_and_stay_out_of_the_mean():
    truth = {name: annotated(name, synthetic_face()) for name in ("found.png", "far.png", "empty.png", "absent.png")}
    far_away = synthetic_face(origin=(900.0, 900.0))  # its box does not touch the annotation's
    doc = document(("found.png", [predicted_face(synthetic_face() + [3.0, 4.0])]),
                   ("far.png", [predicted_face(far_away)]),
                   ("empty.png", []),
                   ("unannotated.png", [predicted_face(synthetic_face())]))  # ignored
    result = evaluate_document(doc, truth, "face-size", 0.07)

    found_nme = 5.0 / FACE_SIZE  # 0.041667, below the threshold
    assert result.missed == 3
    assert result.nme == pytest.approx(found_nme, rel=1e-12)
    assert result.failure_rate == 0.75  # three of four faces missed
    # Only the found face adds area: 0.07 - 0.041667 of the 0.07 width, shared by 4 faces.
    assert result.auc == pytest.approx((0.07 - found_nme) / 0.07 / 4, rel=1e-12)
    by_name = {image.name: image for image in result.images}
    assert [by_name[n].missed for n in ("found.png", "far.png", "empty.png", "absent.png")] == [0, 1, 1, 1]
    assert by_name["absent.png"].predicted is False and by_name["empty.png"].predicted is True

    as_json = json.loads(json.dumps(result.to_json(), allow_nan=False))
    entries = {entry["name"]: entry for entry in as_json["per_image"]}
    assert entries["far.png"]["nme"] == [None] and entries["far.png"]["mean_nme"] is None
    assert entries["found.png"]["nme"] == [pytest.approx(found_nme, rel=1e-12)]
    assert as_json["missed"] == 3 and as_json["faces"] == 4


def test_all_faces_missed_gives_null_nme_in_json():
    truth = {"a.png": annotated("a.png", synthetic_face())}
    result = evaluate_document(document(("a.png", [])), truth, "face-size", 0.07)
    assert np.isnan(result.nme) and result.auc == 0.0 and result.failure_rate == 1.0
    as_json = result.to_json()
    assert as_json["nme"] is None
    json.dumps(as_json, allow_nan=False)  # raises if a NaN or infinity slipped through


def test_zero_normaliser_names_the_annotation():
    degenerate = np.full((68, 2), 50.0)
    with pytest.raises(AnnotationError, match=r"/gt/a.png_0.pts: the interocular distance"):
        evaluate_document(document(("a.png", [])), {"a.png": annotated("a.png", degenerate)},
                          "interocular", 0.07)


# --- CED, AUC, failure rate ------------------------------------------------------------------

# Hand-made errors: the CED is 0 on [0, 0.01), 1/5 on [0.01, 0.035), 2/5 on [0.035, 0.07),
# so the area up to 0.07 is 0.2 * 0.025 + 0.4 * 0.035 = 0.019 and AUC@0.07 = 0.019 / 0.07.
ERRORS = np.array([0.035, 0.01, np.inf, 0.07, 0.1])


def test_auc_of_a_hand_made_error_list():
    assert auc(ERRORS, 0.07) == pytest.approx(0.019 / 0.07, rel=1e-12)
    # Up to 0.2: (0.19 + 0.165 + 0.13 + 0.1 + 0) / 5 = 0.117 of area, / 0.2 = 0.585.
    assert auc(ERRORS, 0.2) == pytest.approx(0.585, rel=1e-12)
    # An error exactly at the threshold is a success; above it, or missed, a failure.
    assert failure_rate(ERRORS, 0.07) == 0.4
    assert failure_rate(ERRORS, 0.2) == 0.2


def test_ced_curve_corners_and_its_area_is_the_auc():
    corners, proportions = ced_curve(ERRORS, 0.07)
    np.testing.assert_array_equal(corners, [0.0, 0.01, 0.035, 0.07, 0.07])
    np.testing.assert_array_equal(proportions, [0.0, 0.2, 0.4, 0.6, 0.6])
    area = np.sum(np.diff(corners) * proportions[:-1])  # steps-post: value holds to the next corner
    assert area == pytest.approx(0.019, rel=1e-12)


@pytest.mark.parametrize("errors, threshold", [([], 0.07), ([0.1, np.nan], 0.07), ([-0.1], 0.07),
                                               ([0.1], 0.0), ([0.1], np.inf)])
def test_metrics_refuse_meaningless_input(errors, threshold):
    with pytest.raises(FaceAlignmentError):
        auc(np.array(errors), threshold)


# --- Matching predicted faces to annotated ones -------------------------------------------------

def test_box_iou_by_hand():
    # Overlap 9 x 10 = 90, union 100 + 100 - 90 = 110.
    iou = box_iou([[0, 0, 10, 10]], [[1, 0, 11, 10], [20, 0, 30, 10]])
    np.testing.assert_allclose(iou, [[90 / 110, 0.0]])


def test_one_prediction_serves_one_annotated_face():
    # Both annotations overlap prediction 0 most (90/110 and 30/170); the better pair wins and
    # the other annotation, overlapping nothing else, is missed.
    truth_boxes = np.array([[0, 0, 10, 10], [8, 0, 18, 10]])
    assert match_faces(truth_boxes, np.array([[1, 0, 11, 10], [20, 0, 30, 10]])).tolist() == [0, -1]
    assert match_faces(truth_boxes, np.array([[20, 0, 30, 10], [1, 0, 11, 10]])).tolist() == [1, -1]
    assert match_faces(truth_boxes, np.zeros((0, 4))).tolist() == [-1, -1]


@pytest.mark.parametrize("decoy_first", [False, True])
@pytest.mark.parametrize("decoy_shift", [(-700.0, 40.0), (-60.0, 0.0)])  # far away / overlapping
def test_matcher_picks_the_annotated_face_in_breakingbad(decoy_first, decoy_shift):
    truth = read_pts(os.path.join(FACES, "breakingbad.pts"))
    # Noise of exactly 2 px per point in random directions: the NME is 2 / face size.
    angles = np.random.default_rng(1).uniform(0, 2 * np.pi, 68)
    near = truth + 2.0 * np.column_stack((np.cos(angles), np.sin(angles)))
    decoy = truth + decoy_shift + 20.0 * np.column_stack((np.sin(angles), np.cos(angles)))
    faces = [predicted_face(near), predicted_face(decoy)]
    doc = {"images": [{"path": "breakingbad.jpg", "width": 1920, "height": 1080,
                       "faces": faces[::-1] if decoy_first else faces}]}

    result = evaluate_document(doc, load_ground_truth(FACES), "face-size", 0.07)

    width, height = truth.max(0) - truth.min(0)
    by_name = {image.name: image for image in result.images}
    assert by_name["breakingbad.jpg"].errors.tolist() == pytest.approx([2.0 / np.sqrt(width * height)], rel=1e-9)
    assert by_name["einstein.jpg"].missed == 1  # not in the document
    assert truth[:, 0].min() > 1000  # the annotated man is the one on the right


# --- Prediction documents of the wrong shape ----------------------------------------------------

def _broken(change):
    """A good one-face document for a.png after ``change(image, face)``."""
    doc = document(("a.png", [predicted_face(synthetic_face())]))
    change(doc["images"][0], doc["images"][0]["faces"][0])
    return doc


def _set_x_of_point_5(value):
    return _broken(lambda image, face: face["landmarks"][5].__setitem__(0, value))


FACE_0 = "images[0].faces[0]"
BAD_DOCUMENTS = {
    "not_an_object": ([1, 2], "top level: expected an object with a 'images' field"),
    "no_images": ({"pictures": []}, "top level: expected an object with a 'images' field"),
    "images_not_list": ({"images": {}}, "images: expected a list"),
    "no_path": (_broken(lambda image, face: image.pop("path")),
                "images[0]: expected an object with a 'path' field"),
    "faces_not_list": (_broken(lambda image, face: image.update(faces=None)),
                       "images[0].faces: expected a list"),
    "no_faces": (_broken(lambda image, face: image.pop("faces")),
                 "images[0]: expected an object with a 'faces' field"),
    "no_landmarks": (_broken(lambda image, face: face.pop("landmarks")),
                     f"{FACE_0}: expected an object with a 'landmarks' field"),
    "face_not_object": (_broken(lambda image, face: image.update(faces=[[1, 2]])),
                        f"{FACE_0}: expected an object with a 'landmarks' field"),
    "empty_path": (_broken(lambda image, face: image.update(path="")), "images[0].path: expected a file path"),
    "short_box": (_broken(lambda image, face: face.update(box=[0, 0, 1])), f"{FACE_0}.box: expected"),
    "inverted_box": (_broken(lambda image, face: face.update(box=[10, 0, 1, 5])), "left <= right"),
    "67_landmarks": (_broken(lambda image, face: face["landmarks"].pop()),
                     f"{FACE_0}.landmarks: expected 68"),
    "4_columns": (_broken(lambda image, face: face.update(landmarks=[[1, 2, 3, 4]] * 68)),
                  f"{FACE_0}.landmarks: expected 68"),
    "ragged": (_broken(lambda image, face: face["landmarks"][5].pop()), f"{FACE_0}.landmarks: expected 68"),
    "string_coordinate": (_set_x_of_point_5("12"), f"{FACE_0}.landmarks: expected 68"),
    "null_coordinate": (_set_x_of_point_5(None), f"{FACE_0}.landmarks: expected 68"),
    "nan_coordinate": (_set_x_of_point_5(float("nan")), f"{FACE_0}.landmarks: expected 68"),
    "duplicate_names": ({"images": [document(("a.png", []))["images"][0]] * 2},
                        "images[1].path: file name 'a.png' appears twice"),
    "no_name_matches": (document(("other.png", [predicted_face(synthetic_face())])),
                        "matches an annotated image"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_document_of_another_shape_is_a_one_line_error(case):
    doc, expected = BAD_DOCUMENTS[case]
    truth = {"a.png": annotated("a.png", synthetic_face())}
    with pytest.raises(AnnotationError) as raised:
        evaluate_document(doc, truth, "face-size", 0.07, source="preds.json")
    message = str(raised.value)
    assert message.startswith("preds.json: ") and expected in message and "\n" not in message


def test_only_path_faces_and_landmarks_are_needed():
    """Documents converted from other tools: no width, height, box or scores. Without a box the
    face is paired by the box around its landmarks: the decoy, 700 px away, overlaps nothing,
    and the face 5 px off, (3, 4), is found whichever comes first."""
    truth = synthetic_face()
    for faces in ([truth + [3.0, 4.0], truth - [700.0, 0.0]], [truth - [700.0, 0.0], truth + [3.0, 4.0]]):
        doc = {"images": [{"path": "elsewhere/a.png", "faces": [{"landmarks": f.tolist(), **extra}
                                                                for f, extra in zip(faces, ({}, {"box": None}))]},
                          {"path": "b.png", "faces": []}]}
        result = evaluate_document(doc, {"a.png": annotated("a.png", truth), "b.png": annotated("b.png", truth)},
                                   "face-size", 0.07)
        assert result.images[0].errors.tolist() == [pytest.approx(5.0 / FACE_SIZE, rel=1e-12)]
        assert result.images[1].missed == 1


def test_fields_evaluation_does_not_read_are_not_checked():
    doc = _broken(lambda image, face: (image.update(width=0, height="480"), face.update(scores=[1.0])))
    result = evaluate_document(doc, {"a.png": annotated("a.png", synthetic_face())}, "face-size", 0.07)
    assert result.nme == 0.0


def test_good_document_with_3d_landmarks_and_integers_is_accepted():
    truth = synthetic_face()
    face = predicted_face(np.column_stack((np.round(truth) + 1, np.zeros(68))).astype(int))
    result = evaluate_document(document(("a.png", [face])), {"a.png": annotated("a.png", truth)},
                               "face-size", 0.07)
    assert result.missed == 0 and 0 < result.nme < 0.07


# --- CED chart ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(800, 600), (113, 201), (1234, 567)])
def test_ced_plot_is_a_png_of_exactly_the_requested_size(tmp_path, size):
    path = str(tmp_path / "ced.png")
    plot_ced([("argmax", ERRORS), ("centroid", ERRORS / 2)], path, 0.07, size)
    image = cv2.imread(path)
    assert image is not None and image.shape == (size[1], size[0], 3)
    assert image.min() < 128 < image.max()  # something is drawn on the white background
    assert os.listdir(tmp_path) == ["ced.png"]  # no temporary file left behind


def test_ced_plot_refuses_a_silly_size_and_writes_nothing(tmp_path):
    with pytest.raises(FaceAlignmentError, match="plot size 10x600"):
        plot_ced([("a", ERRORS)], str(tmp_path / "ced.png"), 0.07, (10, 600))
    assert os.listdir(tmp_path) == []
