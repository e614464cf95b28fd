"""Face boxes: the one rule for what counts as a list of boxes, wherever boxes come from
(the API, ``--boxes`` files, the crop, the tracker).

A box is ``[left, top, right, bottom]`` in image pixels, finite, with right > left and
bottom > top. A fifth column (a detector's score, as dlib and face-alignment give) is
accepted and dropped.
"""
from typing import Any

import numpy as np

from .errors import FaceAlignmentError

BOX_COLUMNS = 4
EXPECTED = "(N, 4) [left, top, right, bottom] boxes (a fifth column, a score, may follow)"


def as_boxes(value: Any, name: str = "boxes") -> np.ndarray:
    """``value`` as a float64 (N, 4) array of valid boxes; one box may be given flat.
    Raises FaceAlignmentError naming ``name`` for anything else."""
    if isinstance(value, (str, bytes)):
        raise FaceAlignmentError(f"{name}: got text {value!r}; expected {EXPECTED}")
    try:
        boxes = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FaceAlignmentError(f"{name}: not a rectangular array of numbers; expected {EXPECTED}") from None
    if boxes.size == 0:
        return np.zeros((0, BOX_COLUMNS))
    if boxes.ndim == 1:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] not in (BOX_COLUMNS, BOX_COLUMNS + 1):
        shape = np.shape(value)
        raise FaceAlignmentError(f"{name}: shape {shape}; expected {EXPECTED}")
    boxes = boxes[:, :BOX_COLUMNS]
    if not np.all(np.isfinite(boxes)):
        raise FaceAlignmentError(f"{name}: NaN or infinite coordinates; expected finite pixels")
    empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if np.any(empty):
        raise FaceAlignmentError(f"{name}: box {boxes[np.argmax(empty)].tolist()} has no area; "
                                 "expected right > left and bottom > top")
    return boxes
