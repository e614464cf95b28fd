"""Predicted landmarks: reading and checking the document that ``model_inference.py
--save-json`` writes, whose shape :mod:`face_alignment.document` defines (coordinates in the
original image's pixels, 0-based as in :mod:`.pts`). Only x and y are used; z, if present,
is ignored.
"""
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import numpy as np

from ..errors import AnnotationError
from .pts import N_POINTS


@dataclass(frozen=True, eq=False)  # array fields: no element-wise ==
class PredictedImage:
    name: str  # file name of ``path``, the key that ground truth is matched by
    path: str
    boxes: np.ndarray  # (faces, 4) left, top, right, bottom
    landmarks: np.ndarray  # (faces, 68, 2) x, y


def read_predictions(path: str) -> Dict[str, Any]:
    """The JSON document in ``path``, unchecked (see :func:`parse_predictions`)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: cannot read the predictions file ({e})") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: not valid JSON ({e})") from None


def _finite_array(value: Any, shape_ok: Callable[[Tuple[int, ...]], bool], source: str,
                  where: str, expected: str) -> np.ndarray:
    """``value`` as a float array if it has an acceptable shape and only finite numbers."""
    try:
        # No dtype: strings, nulls and booleans keep a non-numeric dtype and are refused.
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        array = None
    if (array is None or array.dtype.kind not in "iuf" or not shape_ok(array.shape)
            or not np.isfinite(array).all()):
        raise AnnotationError(f"{source}: {where}: expected {expected}")
    return array.astype(np.float64)


def _field(entry: Any, key: str, source: str, where: str) -> Any:
    if not isinstance(entry, dict) or key not in entry:
        raise AnnotationError(f"{source}: {where}: expected an object with a {key!r} field")
    return entry[key]


def _positive_int(value: Any, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise AnnotationError(f"{source}: {where}: expected a positive integer, got {value!r}")
    return value


def _parse_face(face: Any, source: str, where: str) -> Tuple[np.ndarray, np.ndarray]:
    box = _finite_array(_field(face, "box", source, where), lambda s: s == (4,), source,
                        f"{where}.box", "[left, top, right, bottom] (4 finite numbers)")
    if box[2] < box[0] or box[3] < box[1]:
        raise AnnotationError(f"{source}: {where}.box: expected left <= right and top <= bottom, "
                              f"got {box.tolist()}")
    landmarks = _finite_array(
        _field(face, "landmarks", source, where),
        lambda s: len(s) == 2 and s[0] == N_POINTS and s[1] in (2, 3), source,
        f"{where}.landmarks", f"{N_POINTS} points [x, y] or [x, y, z] of finite numbers")
    _finite_array(_field(face, "scores", source, where), lambda s: s == (N_POINTS,), source,
                  f"{where}.scores", f"{N_POINTS} finite numbers")
    return box, landmarks[:, :2]


def parse_predictions(document: Any, source: str = "predictions") -> Dict[str, PredictedImage]:
    """Check that ``document`` has the shape above and index its images by file name.
    ``source`` names the document in error messages (usually its file)."""
    images = _field(document, "images", source, "top level")
    if not isinstance(images, list):
        raise AnnotationError(f"{source}: images: expected a list, got {type(images).__name__}")
    parsed: Dict[str, PredictedImage] = {}
    for i, image in enumerate(images):
        where = f"images[{i}]"
        path = _field(image, "path", source, where)
        if not isinstance(path, str) or not path:
            raise AnnotationError(f"{source}: {where}.path: expected a file path, got {path!r}")
        _positive_int(_field(image, "width", source, where), source, f"{where}.width")
        _positive_int(_field(image, "height", source, where), source, f"{where}.height")
        faces = _field(image, "faces", source, where)
        if not isinstance(faces, list):
            raise AnnotationError(f"{source}: {where}.faces: expected a list, "
                                  f"got {type(faces).__name__}")
        parsed_faces = [_parse_face(face, source, f"{where}.faces[{j}]")
                        for j, face in enumerate(faces)]
        name = os.path.basename(path)
        if name in parsed:
            raise AnnotationError(f"{source}: {where}.path: file name {name!r} appears twice "
                                  f"(images are matched to ground truth by file name)")
        parsed[name] = PredictedImage(
            name=name, path=path,
            boxes=np.array([box for box, _ in parsed_faces]).reshape(-1, 4),
            landmarks=np.array([marks for _, marks in parsed_faces]).reshape(-1, N_POINTS, 2))
    return parsed
