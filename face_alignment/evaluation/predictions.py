"""Predicted landmarks: reading and checking the document that ``model_inference.py
--save-json`` writes, whose shape :mod:`face_alignment.document` defines (coordinates in the
original image's pixels, 0-based as in :mod:`.pts`).

Evaluation needs only each image's ``path`` and ``faces``, and each face's ``landmarks``
(x and y; z, if present, is ignored): documents converted from other tools may leave out
everything else, and only those fields are refused if missing or malformed. A face's
``box``, if given (not null), is checked and used to pair it with an annotated face; without
one the box around its landmarks is used. ``width``, ``height`` and ``scores`` are not read.
"""
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import numpy as np

from ..errors import AnnotationError
from ..shapes import NUM_LANDMARKS
from ..matching import points_box


@dataclass(frozen=True, eq=False)  # array fields: no element-wise ==
class PredictedImage:
    name: str  # file name of ``path``, the key that ground truth is matched by
    path: str
    boxes: np.ndarray  # (faces, 4) left, top, right, bottom: as given, or around the landmarks
    landmarks: np.ndarray  # (faces, 68, 2) x, y


def read_predictions(path: str) -> Dict[str, Any]:
    """The JSON document in ``path``, unchecked (see :func:`parse_predictions`); or, for a
    folder, the photos of a dataset job's output (``python -m face_alignment.dataset``) as
    such a document: :func:`dataset_document`."""
    if os.path.isdir(path):
        return dataset_document(path)
    if os.path.splitext(path)[1].lower() in PARQUET_EXTENSIONS:
        return table_document(path)
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        if isinstance(document, dict) and "landmark_dims" in document and "images" not in document:
            return table_document(path)  # a landmark table written as JSON (--save-landmarks x.json)
        return document
    except OSError as e:
        raise AnnotationError(f"{path}: cannot read the predictions file ({e})") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a text file; expected {ACCEPTED}") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise AnnotationError(f"{path}: JSON nested too deeply; expected a predictions document") from None


PARQUET_EXTENSIONS = (".parquet", ".pq")
ACCEPTED = ("a --save-json document, a landmark table of photos (.parquet, .pq or .json) or a dataset job's "
            "output folder")


def table_document(path: str) -> Dict[str, Any]:
    """The photos of a landmark table (``--save-landmarks``, a dataset shard) as a predictions
    document; a table of video frames only is refused, naming what is accepted."""
    from ..landmark_table import read_landmark_table

    try:
        document = _photos_document([read_landmark_table(path)])
    except Exception as e:  # noqa: BLE001 - LandmarkTableError and pyarrow's: one line naming the file
        raise AnnotationError(f"{str(e).splitlines()[0]}; expected {ACCEPTED}") from None
    if not document["images"]:
        raise AnnotationError(f"{path}: a landmark table with no photo rows (video frames?); evaluation scores "
                              f"annotated photos: expected {ACCEPTED}")
    return document


def dataset_document(folder: str) -> Dict[str, Any]:
    """The rows of a dataset job's output folder that are photos (frame 0 of a file with one
    of ``IMAGE_EXTENSIONS``), as a predictions document: one image per path, its faces'
    ``box``, ``landmarks`` and ``scores``. Photos without a face have no rows, and are missed."""
    from ..landmark_table import LANDMARKS, MANIFEST, dataset_shards, is_dataset_output, read_landmark_table

    if not is_dataset_output(folder):
        raise AnnotationError(f"{folder}: not a dataset job's output (expected {MANIFEST} and {LANDMARKS}/ in it)")
    tables = []
    for shard in dataset_shards(folder):
        try:
            tables.append(read_landmark_table(shard))
        except Exception as e:
            raise AnnotationError(str(e)) from None
    return _photos_document(tables)


def _photos_document(tables) -> Dict[str, Any]:
    """The photo rows (frame 0 of a file with one of ``IMAGE_EXTENSIONS``) of landmark tables,
    as a predictions document."""
    from ..pipeline.image import IMAGE_EXTENSIONS

    images: Dict[str, list] = {}
    for table in tables:
        rows = table.to_pydict()
        for video, frame, box, landmarks, scores in zip(rows["video"], rows["frame"], rows["box"],
                                                        rows["landmarks"], rows["scores"]):
            if frame == 0 and os.path.splitext(video)[1].lower() in IMAGE_EXTENSIONS:
                images.setdefault(video, []).append({"box": box, "landmarks": landmarks, "scores": scores})
    return {"images": [{"path": path, "faces": faces} for path, faces in sorted(images.items())]}


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


def _parse_face(face: Any, source: str, where: str) -> Tuple[np.ndarray, np.ndarray]:
    landmarks = _finite_array(
        _field(face, "landmarks", source, where),
        lambda s: len(s) == 2 and s[0] == NUM_LANDMARKS and s[1] in (2, 3), source,
        f"{where}.landmarks", f"{NUM_LANDMARKS} points [x, y] or [x, y, z] of finite numbers")[:, :2]
    if face.get("box") is None:  # absent, or null as some tools write it
        return points_box(landmarks), landmarks
    box = _finite_array(face["box"], lambda s: s == (4,), source,
                        f"{where}.box", "[left, top, right, bottom] (4 finite numbers)")
    if box[2] < box[0] or box[3] < box[1]:
        raise AnnotationError(f"{source}: {where}.box: expected left <= right and top <= bottom, "
                              f"got {box.tolist()}")
    return box, landmarks


def parse_predictions(document: Any, source: str = "predictions") -> Dict[str, PredictedImage]:
    """Check what evaluation needs of ``document`` (see above) and index its images by file name.
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
            landmarks=np.array([marks for _, marks in parsed_faces]).reshape(-1, NUM_LANDMARKS, 2))
    return parsed
