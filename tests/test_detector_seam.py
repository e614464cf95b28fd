"""The detector seam: a detector of the user's own (tests/plugin_detector.py, one module and
no registry entry) runs through the Python API, the video path and model_inference.py by its
name, and the registry's dlib detectors give dlib's own boxes."""
import json
import os

import cv2
import dlib
import numpy as np
import pytest

import plugin_detector
from conftest import CPU, SHARED, TESTS, annotated_box, assert_one_line_error, run_tool
from synthetic_video import write_clip
from face_alignment.api import FaceAlignment
from face_alignment.detection import DETECTORS, BoxRelation, load_detector
from face_alignment.detection.base import reframe
from face_alignment.detection.dlib_detectors import DLIB_BOXES
from face_alignment.errors import FaceAlignmentError
from face_alignment.matching import box_iou

PLUGIN = "plugin_detector:FixedBoxes"
# The third scores under the threshold the tests set (0.5); the order is not the score order.
BOXES = [[20.0, 30.0, 110.0, 120.0, 0.7], [130.0, 20.0, 190.0, 80.0, 0.9], [0.0, 0.0, 50.0, 50.0, 0.2]]
KEPT = np.array([BOXES[1], BOXES[0]])  # above 0.5, best first


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)


@pytest.fixture
def plugin_boxes(monkeypatch):
    monkeypatch.setenv(plugin_detector.BOXES_VARIABLE, json.dumps(BOXES))


def test_a_plugin_detector_runs_through_the_api(fan1_h5, image, plugin_boxes):
    fa = FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector=PLUGIN, detector_threshold=0.5,
                       calibrate_boxes=False)
    found = fa.get_landmarks_from_image(image)
    assert type(fa.detector).__name__ == "FixedBoxes" and fa.detector.calls == 1
    np.testing.assert_array_equal(found.boxes, KEPT[:, :4])
    # The same faces, given as boxes, skip the detector and give the same landmarks.
    given = fa.get_landmarks_from_image(image, boxes=KEPT[:, :4])
    assert fa.detector.calls == 1
    np.testing.assert_array_equal(found.landmarks, given.landmarks)


def test_a_plugin_detector_object_or_callable_is_taken_as_it_is(fan1_h5, image, plugin_boxes):
    detector = plugin_detector.FixedBoxes(threshold=0.5)
    fa = FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector=detector, calibrate_boxes=False)
    np.testing.assert_array_equal(fa.get_landmarks_from_image(image).boxes, KEPT[:, :4])
    assert detector.calls == 1
    # A plain function with four columns: its boxes in its order.
    fa = FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector=lambda img: KEPT[::-1, :4])
    np.testing.assert_array_equal(fa.get_landmarks_from_image(image).boxes, KEPT[::-1, :4])


def test_a_plugin_detector_runs_through_the_video_path(fan1_h5, image, plugin_boxes, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", [image] * 4)
    fa = FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector=PLUGIN, detector_threshold=0.5,
                       calibrate_boxes=False)
    frames = list(fa.get_landmarks_from_video(clip, detect_every=2))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    # Random weights' landmarks need not follow a face, so how often the tracker lost the faces
    # and detected again is not said; the first frame is the plugin's detection.
    assert fa.detector.calls >= 1 and frames[0].sources == ("detector", "detector")
    np.testing.assert_array_equal(frames[0].prediction.boxes[np.argsort(frames[0].tracks)], KEPT[:, :4])
    # The tracker started from the plugin's own relation until it measured the faces'.
    assert fa.face_tracker().relation == plugin_detector.FixedBoxes.box_relation


def test_a_plugin_detector_runs_through_model_inference(fan1_h5, image, tmp_path):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), image[..., ::-1])
    env = {plugin_detector.BOXES_VARIABLE: json.dumps(BOXES), "PYTHONPATH": TESTS}
    result = run_tool("model_inference.py", "--model", fan1_h5, *CPU, "--backend", "nnabla", "--test-image", photo,
                      "--detector", PLUGIN, "--detector-threshold", "0.5", "--raw-detector-boxes", "--save-json", tmp_path / "out.json",
                      env=env)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.json") as f:
        faces = json.load(f)["images"][0]["faces"]
    np.testing.assert_array_equal([face["box"] for face in faces], KEPT[:, :4])


@pytest.mark.parametrize("name, named", [("mtcnn", "mtcnn"), ("no_such_module:Finder", "no_such_module"),
                                         ("plugin_detector:Missing", "Missing")])
def test_an_unknown_detector_is_one_line_naming_it(tmp_path, name, named, fan1_h5):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((40, 40, 3), np.uint8))
    result = run_tool("model_inference.py", "--model", fan1_h5, *CPU, "--backend", "nnabla", "--test-image", photo,
                      "--detector", name, "--save-json", tmp_path / "out.json", env={"PYTHONPATH": TESTS})
    assert_one_line_error(result, named)
    assert not (tmp_path / "out.json").exists()


def test_options_a_detector_does_not_take_are_refused_by_name():
    with pytest.raises(FaceAlignmentError, match="max_side"):
        load_detector(PLUGIN, max_side=100)
    with pytest.raises(FaceAlignmentError, match="hog.*model file"):
        load_detector("hog", weights="some.dat")


def test_registry_detectors_give_dlibs_own_boxes():
    # breakingbad.jpg shrunk below HOG's max_side, so our detector sees the very pixels
    # dlib is given here: the boxes must be dlib's, bit for bit, with its scores.
    image = cv2.imread(os.path.join(SHARED, "data", "faces", "breakingbad.jpg"))[..., ::-1]
    image = np.ascontiguousarray(cv2.resize(image, (800, 450), interpolation=cv2.INTER_AREA))
    rects, scores, _ = dlib.get_frontal_face_detector().run(image, 1, 0.0)
    expected = np.array([(r.left(), r.top(), r.right(), r.bottom(), s) for r, s in zip(rects, scores)])
    expected = expected[np.argsort(-expected[:, 4], kind="stable")]
    assert len(expected) >= 1
    np.testing.assert_array_equal(load_detector("hog").detect(image), expected)
    assert set(DETECTORS) >= {"hog", "cnn"}


def test_reframe_by_hand():
    # A 20 px box that sits 2 radii wide around its landmarks' centroid: radius 10, centroid
    # (10, 10). A relation 3 radii wide, centre half a radius up: [-5, -10, 25, 20].
    source, target = BoxRelation(0.0, 0.0, 2.0, 2.0), BoxRelation(0.0, -0.5, 3.0, 3.0)
    np.testing.assert_allclose(reframe(np.array([[0.0, 0.0, 20.0, 20.0, 0.9]]), source, target),
                               [[-5.0, -10.0, 25.0, 20.0]])
    # Offsets scale with the radius, and come back: source -> target -> source is the identity.
    boxes = np.array([[10.0, 40.0, 50.0, 90.0], [0.0, 0.0, 7.0, 9.0]])
    source = BoxRelation(0.2, -0.1, 2.0, 2.5)  # width/height ratio of the boxes: mean radius
    there = reframe(boxes, source, target)
    np.testing.assert_allclose(reframe(there, target, target), there)
    np.testing.assert_allclose(reframe(np.array([[0.0, 0.0, 40.0, 40.0]]), BoxRelation(0.5, 0.0, 2.0, 2.0),
                                       BoxRelation(0.0, 0.0, 2.0, 2.0)), [[-10.0, 0.0, 30.0, 40.0]])


def test_detections_are_mapped_onto_the_crops_boxes_unless_asked_not_to(fan1_h5, image, plugin_boxes):
    relation, hog = plugin_detector.FixedBoxes.box_relation, DLIB_BOXES["hog"]
    fa = FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector=PLUGIN, detector_threshold=0.5)
    # By hand, for the first box [130, 20, 190, 80]: radius 60 / 3 = 20, centroid (160, 50 + 0.3 * 20).
    radius, centroid = 20.0, np.array([160.0, 56.0])
    middle = centroid + np.array([hog.dx, hog.dy]) * radius
    half = np.array([hog.width, hog.height]) * radius / 2
    expected = np.concatenate([middle - half, middle + half])
    found = fa.get_landmarks_from_image(image)
    np.testing.assert_allclose(found.boxes[0], expected)
    np.testing.assert_allclose(found.boxes, reframe(KEPT, relation, hog))
    # Tracking then places boxes as HOG's, since that is what the boxes are now.
    assert fa.face_tracker().relation == hog
    # Given boxes are never mapped.
    np.testing.assert_array_equal(fa.get_landmarks_from_image(image, boxes=KEPT[:, :4]).boxes, KEPT[:, :4])


def test_the_default_detector_finds_einstein(fan1_h5, tmp_path):
    # As a new user runs it: no --detector. dlib's HOG, the default before, found only a man in
    # the background of this photo; the annotated face (einstein.pts) must be among the boxes.
    result = run_tool("model_inference.py", "--model", fan1_h5, *CPU, "--backend", "nnabla",
                      "--test-image", os.path.join(SHARED, "data", "faces", "einstein.jpg"),
                      "--save-json", tmp_path / "out.json")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.json") as f:
        boxes = np.array([face["box"] for face in json.load(f)["images"][0]["faces"]])
    truth = annotated_box("einstein")
    assert len(boxes) >= 1 and box_iou(truth, boxes).max() > 0.5
