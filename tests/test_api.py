"""FaceAlignment's contract: any iterable of images, memory bounded by the batch size, and
bad arguments refused by name."""
import os

import numpy as np
import pytest

from conftest import SHARED, peak_memory
from face_alignment.api import FaceAlignment
from face_alignment.errors import FaceAlignmentError, UnreadableImageWarning
from face_alignment.pipeline.image import read_image

FACES = os.path.join(SHARED, "data", "faces")
EINSTEIN, BREAKINGBAD = os.path.join(FACES, "einstein.jpg"), os.path.join(FACES, "breakingbad.jpg")


@pytest.fixture(scope="module")
def fa(fan1_h5):
    return FaceAlignment(fan1_h5, backend="onnxruntime", batch_size=4)


def test_predict_files_pairs_each_path_with_its_own_image_from_any_iterable(fa):
    paths = [EINSTEIN, BREAKINGBAD, EINSTEIN]
    boxes = [np.array([[300.0, 300, 500, 520]]), np.array([[10.0, 10, 120, 140], [20, 20, 200, 200]]),
             np.array([[100.0, 100, 400, 400]])]
    for given in (paths, iter(paths), (p for p in paths)):
        results = list(fa.predict_files(given, boxes))
        assert [path for path, _, _ in results] == paths
        for (path, image, predictions), expected_boxes in zip(results, boxes):
            assert image.shape == read_image(path).shape
            np.testing.assert_array_equal(predictions.boxes, expected_boxes)
            assert predictions.landmarks.shape == (len(expected_boxes), 68, 2)


def test_memory_is_bounded_by_the_batch_not_by_faces_per_image(fa):
    """60 faces in one photo cost what 12 do: crops, heatmaps and decoding live one batch at
    a time. Before, every face held ~10 MB until the whole photo was done: the 48 more faces
    would have held ~480 MB, a hundred times the bound asserted (more faces only took longer)."""
    image = read_image(BREAKINGBAD)
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 800, (60, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(80, 200, (60, 1))], axis=1)

    def peak(n):
        [prediction], top = peak_memory(lambda: list(fa.get_landmarks_from_images([image], [boxes[:n]])))
        assert prediction.landmarks.shape == (n, 68, 2)
        return top

    few, many = peak(12), peak(60)
    # One batch of 4 FAN crops is 3 MB; the 48 more faces may add only their results (~2 KB each).
    assert many - few < 4e6, (few, many)


def test_memory_is_bounded_by_the_batch_not_by_images_without_faces(fa):
    """Images without a face (landscapes in a folder of photos, or boxes given as []) used to
    wait, decoded, until a batch's worth of faces came: 30 faceless 12-megapixel photos held
    1.3 GB, a thousand would hold 36 GB. Now a batch holds at most batch_size images too."""
    def peak(n):
        images = (np.zeros((1000, 1000, 3), np.uint8) for _ in range(n))  # 3 MB each, made as asked for
        faceless, top = peak_memory(lambda: sum(len(p.boxes) == 0
                                                for p in fa.get_landmarks_from_images(images, [[]] * n)))
        assert faceless == n
        return top

    few, many = peak(4), peak(40)
    assert many - few < 12e6, (few, many)


@pytest.mark.parametrize("call, fragment", [
    (lambda fa: list(fa.get_landmarks_from_images(EINSTEIN)), "images: got a single image"),
    (lambda fa: list(fa.get_landmarks_from_images(read_image(EINSTEIN))), "images: got a single image"),
    (lambda fa: list(fa.get_landmarks_from_images(42)), "images: got int"),
    (lambda fa: list(fa.predict([EINSTEIN], decodes=["a"])), "decodes: 'a' is not one of argmax, centroid"),
    # One name alone: refused, as the README says, rather than taken for a one-method tuple.
    (lambda fa: list(fa.predict([EINSTEIN], decodes="argmax")), "decodes: got 'argmax', a single name"),
    (lambda fa: list(fa.predict([EINSTEIN], decodes=())), "decodes: empty"),
    (lambda fa: fa.get_landmarks_from_image(EINSTEIN, boxes="1 2 3 4"), "boxes of image 0: got text"),
    (lambda fa: fa.get_landmarks_from_image(EINSTEIN, boxes=[[1, 2, 3, 4], [1, 2]]),
     "boxes of image 0: not a rectangular array"),
    (lambda fa: list(fa.get_landmarks_from_images([EINSTEIN], iter([None]))), "boxes: got list_iterator"),
])
def test_bad_calls_are_refused_naming_the_argument(fa, call, fragment):
    with pytest.raises(FaceAlignmentError) as caught:
        call(fa)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_box_that_cannot_be_cropped_is_named_with_its_file(fa):
    """In a folder of hundreds, which image's box (or annotation) was wrong matters."""
    with pytest.raises(FaceAlignmentError) as caught:
        list(fa.predict_files([BREAKINGBAD, EINSTEIN], [np.array([[10.0, 10, 120, 140]]), [[0, 0, 1e12, 1e12]]]))
    assert str(caught.value).startswith(f"{EINSTEIN}: box [0.0, 0.0, 1000000000000.0, 1000000000000.0] is too large")


def test_one_decoding_in_a_tuple_is_one_decoding(fa):
    [result] = list(fa.predict([EINSTEIN], [np.array([[300.0, 300, 500, 520]])], decodes=("argmax",)))
    assert list(result) == ["argmax"]


@pytest.mark.parametrize("options, fragment", [
    (dict(model=None), "model: got None"),
    (dict(model=3), "model: got 3"),
    (dict(batch_size="8"), "batch_size: got '8'"),
    (dict(batch_size=0), "batch_size: got 0"),
    (dict(batch_size=True), "batch_size: got True"),
    (dict(depth_model=5), "depth_model: got 5"),
    (dict(max_pixels=-1), "max_pixels: got -1"),
    (dict(max_pixels="many"), "max_pixels: got 'many'"),
    (dict(detector="mtcnn"), "detector 'mtcnn': expected one of hog, cnn"),
    (dict(device_id=-5), "device_id: got -5; expected a whole number, 0 or more"),
    (dict(device_id="0"), "device_id: got '0'"),
    (dict(detector_max_side="big"), "detector_max_side: got 'big'"),  # was a TypeError at the first detection
    (dict(detector_max_side=0), "detector_max_side: got 0"),
    (dict(reference_scale="abc"), "reference_scale 'abc': expected a positive finite number"),
    (dict(reference_scale=float("nan")), "reference_scale nan"),
    (dict(reference_scale=0), "reference_scale 0"),
])
def test_bad_options_are_refused_naming_the_argument(fan1_h5, options, fragment):
    options = dict(dict(model=fan1_h5, backend="nnabla", context="cpu"), **options)
    with pytest.raises(FaceAlignmentError) as caught:
        FaceAlignment(options.pop("model"), **options)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_max_pixels_is_the_limit_images_are_read_with(fan1_h5):
    """einstein.jpg is 817 x 1024 = 836608 pixels (its JPEG header, read by hand)."""
    box = [np.array([[300.0, 300, 500, 520]])]
    at_limit = FaceAlignment(fan1_h5, backend="onnxruntime", max_pixels=817 * 1024)
    assert len(next(at_limit.get_landmarks_from_images([EINSTEIN], box)).boxes) == 1
    below = FaceAlignment(fan1_h5, backend="onnxruntime", max_pixels=817 * 1024 - 1)
    # Asked to raise (by default a refused image is a warning naming it, and None in its place).
    with pytest.raises(FaceAlignmentError, match="817 x 1024 pixels"):
        next(below.get_landmarks_from_images([EINSTEIN], box, on_error="raise"))
    with pytest.warns(UnreadableImageWarning, match="817 x 1024 pixels"):
        assert next(below.get_landmarks_from_images([EINSTEIN], box)) is None
