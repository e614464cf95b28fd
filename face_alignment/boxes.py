"""Face boxes: the one rule for what counts as a list of boxes, wherever boxes come from
(the API, ``--boxes`` files, the crop, the tracker).

A box is ``[left, top, right, bottom]`` in image pixels, finite, with right > left and
bottom > top. A fifth column (a detector's score, as dlib and face-alignment give) is
accepted and dropped.
"""
import json
import os
import stat
from typing import Any, List, Optional

import numpy as np

from .cli_support import some_names
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


BOXES_JSON = "a list of boxes or an object mapping file names to boxes"
# A --boxes file larger than this is refused unread: a million images' boxes take about 60 MB,
# and parsing JSON costs several times its size in memory.
MAX_BOXES_BYTES = 256 * 2**20


def read_boxes(path: str, images: List[str]) -> List[Optional[np.ndarray]]:
    """Boxes for each image from a JSON file; images it does not mention are detected. A name
    that is none of the images' is refused: most likely misspelt, it would silently leave its
    image to the detector, or its boxes unused."""
    try:
        # Checked before opening: opening a pipe would wait for a writer, and a device such as
        # /dev/zero never ends.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise FaceAlignmentError(f"{path}: --boxes is not a regular file (a device, pipe or folder); "
                                     f"expected a JSON file of {BOXES_JSON}")
        with open(path, "rb") as f:
            text = f.read(MAX_BOXES_BYTES + 1)
        if len(text) > MAX_BOXES_BYTES:
            raise FaceAlignmentError(f"{path}: --boxes file of more than {MAX_BOXES_BYTES // 2**20} MiB; expected "
                                     f"a JSON file of {BOXES_JSON}, at most that size")
        data = json.loads(text)
    except OSError as e:
        raise FaceAlignmentError(f"{path}: cannot read boxes ({e.strerror})") from None
    except ValueError as e:
        raise FaceAlignmentError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise FaceAlignmentError(f"{path}: JSON nested too deeply; expected {BOXES_JSON}") from None

    def parse(value, where):
        return as_boxes(value, f"{path}: {where}")

    if isinstance(data, list):
        boxes = parse(data, "the list")
        return [boxes for _ in images]
    if isinstance(data, dict):
        by_name = {name: parse(value, repr(name)) for name, value in data.items()}
        known = set(images) | {os.path.basename(p) for p in images}
        unknown = [name for name in by_name if name not in known]
        unnamed = [p for p in images if os.path.basename(p) not in by_name and p not in by_name]
        if unknown:
            detected = f", and {some_names(unnamed)} would be detected" if unnamed else ""
            raise FaceAlignmentError(
                f"{path}: {some_names(unknown)} {'names' if len(unknown) == 1 else 'name'} none of the images"
                f"{detected}; expected the file name or path of each image to give boxes for")
        return [by_name.get(os.path.basename(p), by_name.get(p)) for p in images]
    raise FaceAlignmentError(f"{path}: expected {BOXES_JSON}")
