"""The one rule for boxes, wherever they come from: the API, --boxes files, the crop."""
import numpy as np
import pytest

from face_alignment.boxes import as_boxes
from face_alignment.errors import FaceAlignmentError


def test_boxes_in_every_accepted_form():
    np.testing.assert_array_equal(as_boxes([1, 2, 30, 40]), [[1, 2, 30, 40]])
    np.testing.assert_array_equal(as_boxes([[1, 2, 30, 40], [5, 6, 7, 8]]), [[1, 2, 30, 40], [5, 6, 7, 8]])
    # dlib / face-alignment detections carry a score in a fifth column: it is dropped.
    np.testing.assert_array_equal(as_boxes([[1, 2, 30, 40, 0.99]]), [[1, 2, 30, 40]])
    assert as_boxes([]).shape == (0, 4) and as_boxes(np.zeros((0, 4))).shape == (0, 4)
    assert as_boxes([[1, 2, 30, 40]]).dtype == np.float64


@pytest.mark.parametrize("value, fragment", [
    ([1, 2, 3, 4, 5, 6, 7, 8], "shape (8,)"),  # never silently two boxes
    ([[1, 2, 3]], "shape (1, 3)"),
    ([[1, 2, 3, 4, 5, 6]], "shape (1, 6)"),
    ("1 2 3 4", "text"),
    ([[1, 2, 3, 4], [1, 2]], "not a rectangular array"),
    ([["a", "b", "c", "d"]], "not a rectangular array"),
    ([[0, 0, float("inf"), 10]], "infinite"),
    ([[0, float("nan"), 10, 10]], "NaN"),
    ([[10, 0, 10, 20]], "no area"),
    ([[0, 20, 10, 5]], "no area"),
])
def test_what_is_not_a_box_is_refused_naming_the_source(value, fragment):
    with pytest.raises(FaceAlignmentError) as caught:
        as_boxes(value, "faces.json: 'a.jpg'")
    message = str(caught.value)
    assert message.startswith("faces.json: 'a.jpg': ") and fragment in message and "\n" not in message
