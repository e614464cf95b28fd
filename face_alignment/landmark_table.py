"""The landmark table: one row per face per frame of a video (or per face of a photo, in a
dataset job's output), and the layout of a dataset job's output folder, which the video
command, the dataset job and evaluation all read or write. It is written as Parquet (any length:
row groups are written as rows come, so memory stays bounded) or, for short clips, as JSON.

THE schema (``schema(dims)``; ``dims`` is 2 or 3, the same for every row of a file)::

    video      string                                        the video's path
    frame      int64                                         VideoFrame.index
    time       float64                                       VideoFrame.time, seconds
    track      int64                                         track id, -1 when untracked
    box        fixed_size_list<float64>[4]                   left, top, right, bottom
    landmarks  fixed_size_list<fixed_size_list<float64>[dims]>[68]
                                                             (x, y) or (x, y, z) per point
    scores     fixed_size_list<float32>[68]                  each point's heatmap peak
    source     dictionary<int8, string>                      "detector", "tracking" or "given"

No column is nullable. Coordinates are in the upright frame's pixels, as floats. A video in
which no face was found gives a valid file with zero rows and this schema.

Reading it::

    table = read_landmark_table("faces.parquet")   # pyarrow.Table, checked against the schema
    points = to_numpy(table)                        # (rows, 68, dims) float64

    import pandas as pd                             # or with pandas, from the file itself:
    df = pd.read_parquet("faces.parquet")           # box, landmarks, scores: arrays per cell;
    points = np.stack(df["landmarks"].map(np.stack))  # source: a categorical
    boxes = np.stack(df["box"])                     # (rows, 4)

The JSON document has the same fields, nested as the image results' (face_alignment.document)::

    {"landmark_dims": 2,
     "faces": [{"video": str, "frame": int, "time": float, "track": int,
                "box": [l, t, r, b], "landmarks": [[x, y] x 68], "scores": [68 floats],
                "source": "detector"}]}
"""
import json
import os
import re
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import LandmarkTableError
from .files import abandon_atomic_write, atomic_write, checked_extension

PathLike = Union[str, "os.PathLike[str]"]

POINTS = 68
SOURCES = ("detector", "tracking", "given")
UNTRACKED = -1
# Rows buffered before a row group is written: about 16 MB of 3D rows (2 kB each), twice
# that while a group is converted.
ROWS_PER_GROUP = 8192
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".json": "json"}


def schema(dims: int) -> pa.Schema:
    """The landmark table's schema for 2D or 3D landmarks."""
    if dims not in (2, 3):
        raise LandmarkTableError(f"landmark dimension {dims!r}: expected 2 or 3")
    return pa.schema([
        pa.field("video", pa.string(), nullable=False),
        pa.field("frame", pa.int64(), nullable=False),
        pa.field("time", pa.float64(), nullable=False),
        pa.field("track", pa.int64(), nullable=False),
        pa.field("box", pa.list_(pa.float64(), 4), nullable=False),
        pa.field("landmarks", pa.list_(pa.list_(pa.float64(), dims), POINTS), nullable=False),
        pa.field("scores", pa.list_(pa.float32(), POINTS), nullable=False),
        pa.field("source", pa.dictionary(pa.int8(), pa.string()), nullable=False),
    ])


def to_numpy(table: pa.Table) -> np.ndarray:
    """The ``landmarks`` column as a (rows, 68, dims) float64 array."""
    column = table.column("landmarks")
    dims = column.type.value_type.list_size
    if len(column) == 0:
        return np.zeros((0, POINTS, dims))
    values = column.combine_chunks().flatten().flatten()  # flatten() honours slices
    return values.to_numpy(zero_copy_only=False).reshape(len(column), POINTS, dims)


class LandmarkTableWriter:
    """Rows added frame by frame, written to a temporary file beside ``path`` and renamed to
    ``path`` by ``close()`` (or the end of a ``with`` block); an exception in the block, or
    one while writing, leaves nothing. ``.parquet``/``.pq``: Parquet, a row group every
    ``rows_per_group`` rows; ``.json``: the JSON document, kept in memory until the end."""

    def __init__(self, path: PathLike, dims: int = 2, *, rows_per_group: int = ROWS_PER_GROUP,
                 force: bool = True):
        self.path = os.fspath(path)
        extension = checked_extension(self.path, _FORMATS, "landmark table format", LandmarkTableError)
        if rows_per_group < 1:
            raise LandmarkTableError(f"rows_per_group {rows_per_group!r}: expected at least 1")
        self.dims = dims
        self.schema = schema(dims)
        self.rows = 0
        self._format = _FORMATS[extension]
        self._rows_per_group = rows_per_group
        self._buffer: Dict[str, List[np.ndarray]] = {name: [] for name in self.schema.names}
        self._buffered = 0
        self._atomic = atomic_write(self.path, force=force)
        self._temporary = self._atomic.__enter__()
        self._parquet: Optional[pq.ParquetWriter] = None
        if self._format == "parquet":
            try:
                self._parquet = pq.ParquetWriter(self._temporary, self.schema)
            except BaseException as error:
                self._abandon(error)
                raise

    def add(self, video: str, frame: int, time: float, tracks: Optional[Sequence[int]],
            boxes: np.ndarray, landmarks: np.ndarray, scores: np.ndarray,
            sources: Union[str, Sequence[str]]) -> None:
        """The faces of one frame: ``boxes`` (n, 4), ``landmarks`` (n, 68, dims), ``scores``
        (n, 68), ``tracks`` (n,) or None (untracked), ``sources`` one of SOURCES for all or
        one per face. n = 0 adds nothing."""
        if self._atomic is None:
            raise LandmarkTableError(f"{self.path}: add() after the table was closed")
        boxes = np.asarray(boxes, dtype=np.float64)
        count = len(boxes)
        if count == 0:
            return
        landmarks = np.asarray(landmarks, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float32)
        tracks = (np.full(count, UNTRACKED, dtype=np.int64) if tracks is None
                  else np.asarray(tracks, dtype=np.int64))
        if isinstance(sources, str):
            sources = [sources] * count
        codes = np.array([SOURCES.index(s) if s in SOURCES else -1 for s in sources], dtype=np.int8)
        for name, array, shape in (("boxes", boxes, (count, 4)),
                                   ("landmarks", landmarks, (count, POINTS, self.dims)),
                                   ("scores", scores, (count, POINTS)),
                                   ("tracks", tracks, (count,)),
                                   ("sources", codes, (count,))):
            if array.shape != shape:
                raise LandmarkTableError(f"{self.path}: frame {frame}: {name} of shape {array.shape}; "
                                         f"expected {shape}")
        if (codes < 0).any():
            raise LandmarkTableError(f"{self.path}: frame {frame}: source {list(sources)!r}; "
                                     f"expected each one of {', '.join(SOURCES)}")
        columns = {"video": np.full(count, str(video), dtype=object),
                   "frame": np.full(count, frame, dtype=np.int64),
                   "time": np.full(count, time, dtype=np.float64),
                   "track": tracks, "box": boxes, "landmarks": landmarks, "scores": scores,
                   "source": codes}
        for name, array in columns.items():
            self._buffer[name].append(array)
        self._buffered += count
        self.rows += count
        if self._parquet is not None and self._buffered >= self._rows_per_group:
            self._flush()

    def close(self, metadata: Optional[Dict[str, str]] = None) -> None:
        """Write what is buffered and rename the file into place; Parquet: with ``metadata``
        (key-value pairs) in its footer."""
        if self._atomic is None:
            return
        try:
            if self._parquet is not None:
                self._flush()
                if metadata:
                    self._parquet.add_key_value_metadata(metadata)
                self._parquet.close()
                self._parquet = None
            else:
                with open(self._temporary, "w") as f:
                    json.dump(_document(self._take(), self.dims), f)
        except BaseException as error:
            self._abandon(error)
            raise
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)

    def __enter__(self) -> "LandmarkTableWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc is None:
            self.close()
        else:
            self._abandon(exc)
        return False

    def _take(self) -> Dict[str, np.ndarray]:
        """The buffered rows as one array per column; empties the buffer."""
        empty = {"video": np.zeros(0, object), "frame": np.zeros(0, np.int64),
                 "time": np.zeros(0), "track": np.zeros(0, np.int64), "box": np.zeros((0, 4)),
                 "landmarks": np.zeros((0, POINTS, self.dims)),
                 "scores": np.zeros((0, POINTS), np.float32), "source": np.zeros(0, np.int8)}
        columns = {name: np.concatenate(arrays) if arrays else empty[name]
                   for name, arrays in self._buffer.items()}
        self._buffer = {name: [] for name in self.schema.names}
        self._buffered = 0
        return columns

    def _flush(self) -> None:
        if self._buffered:
            self._parquet.write_table(_table(self._take(), self.schema))

    def _abandon(self, error: BaseException) -> None:
        if self._parquet is not None:
            try:
                self._parquet.close()
            except Exception:
                pass  # the file is being removed
            self._parquet = None
        atomic, self._atomic = self._atomic, None
        abandon_atomic_write(atomic, error)


def _table(columns: Dict[str, np.ndarray], table_schema: pa.Schema) -> pa.Table:
    """A table of the schema from one array per column (landmarks (n, 68, dims))."""
    def fixed(values: np.ndarray, field: str) -> pa.Array:
        kind = table_schema.field(field).type
        if pa.types.is_fixed_size_list(kind.value_type):  # landmarks: a list of points
            inner = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), type=kind.value_type)
            return pa.FixedSizeListArray.from_arrays(inner, type=kind)
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), type=kind)

    arrays = [
        pa.array(columns["video"], type=pa.string()),
        pa.array(columns["frame"], type=pa.int64()),
        pa.array(columns["time"], type=pa.float64()),
        pa.array(columns["track"], type=pa.int64()),
        fixed(columns["box"], "box"),
        fixed(columns["landmarks"], "landmarks"),
        fixed(columns["scores"], "scores"),
        pa.DictionaryArray.from_arrays(pa.array(columns["source"], type=pa.int8()),
                                       pa.array(SOURCES, type=pa.string())),
    ]
    return pa.Table.from_arrays(arrays, schema=table_schema)


def _document(columns: Dict[str, np.ndarray], dims: int) -> Dict:
    fields = zip(columns["video"].tolist(), columns["frame"].tolist(), columns["time"].tolist(),
                 columns["track"].tolist(), columns["box"].tolist(), columns["landmarks"].tolist(),
                 columns["scores"].astype(np.float64).tolist(), columns["source"].tolist())
    return {"landmark_dims": dims,
            "faces": [{"video": video, "frame": frame, "time": time, "track": track, "box": box,
                       "landmarks": landmarks, "scores": scores, "source": SOURCES[source]}
                      for video, frame, time, track, box, landmarks, scores, source in fields]}


def read_landmark_table(path: PathLike) -> pa.Table:
    """The landmark table at ``path`` (.parquet/.pq or .json) as a pyarrow.Table of
    ``schema(dims)``; LandmarkTableError, one line, if it is missing or not such a table."""
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in _FORMATS:
        raise LandmarkTableError(f"{path}: unknown landmark table format {extension or '(no extension)'!r}; "
                                 f"expected one of {', '.join(sorted(_FORMATS))}")
    if not os.path.isfile(path):
        raise LandmarkTableError(f"{path}: no such landmark table")
    if _FORMATS[extension] == "json":
        return _read_json(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise LandmarkTableError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
    _check_schema(path, table.schema)
    return table


def _check_schema(path: str, found: pa.Schema) -> None:
    # The landmarks' type says the dimension; anything else is reported against 2D.
    dims = 2
    if "landmarks" in found.names:
        kind = found.field("landmarks").type
        if pa.types.is_fixed_size_list(kind) and pa.types.is_fixed_size_list(kind.value_type):
            dims = kind.value_type.list_size if kind.value_type.list_size in (2, 3) else 2
    expected = schema(dims)
    if found.names != expected.names:
        raise LandmarkTableError(f"{path}: not a landmark table: columns {', '.join(found.names)}; "
                                 f"expected {', '.join(expected.names)}")
    for field in expected:
        if not found.field(field.name).type.equals(field.type):
            raise LandmarkTableError(f"{path}: not a landmark table: column {field.name} is "
                                     f"{found.field(field.name).type}; expected {field.type}")


def _column(faces: List[Dict], name: str, dtype, tail=()) -> np.ndarray:
    """One field of every face as an array of shape (faces,) + tail; ValueError if not."""
    values = np.array([face[name] for face in faces], dtype=dtype) if faces else np.zeros((0,) + tail, dtype)
    if values.shape != (len(faces),) + tail:
        raise ValueError(f"{name}: expected {list(tail) or 'one value'} per face, "
                         f"found an array of shape {values.shape}")
    return values


def _read_json(path: str) -> pa.Table:
    try:
        with open(path) as f:
            document = json.load(f)
        dims = document["landmark_dims"]
        if dims not in (2, 3):
            raise ValueError(f"landmark_dims {dims!r}: expected 2 or 3")
        faces = document["faces"]
        sources = _column(faces, "source", object)
        unknown = set(sources) - set(SOURCES)
        if unknown:
            raise ValueError(f"source {sorted(unknown)[0]!r}: expected one of {', '.join(SOURCES)}")
        columns = {
            "video": _column(faces, "video", object),
            "frame": _column(faces, "frame", np.int64),
            "time": _column(faces, "time", np.float64),
            "track": _column(faces, "track", np.int64),
            "box": _column(faces, "box", np.float64, (4,)),
            "landmarks": _column(faces, "landmarks", np.float64, (POINTS, dims)),
            "scores": _column(faces, "scores", np.float32, (POINTS,)),
            "source": np.array([SOURCES.index(source) for source in sources], dtype=np.int8),
        }
        # pyarrow's ArrowInvalid and ArrowTypeError (a video that is not a string) are
        # ValueError and TypeError.
        return _table(columns, schema(dims))
    except (OSError, ValueError, KeyError, TypeError) as e:
        detail = f"no field {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        raise LandmarkTableError(f"{path}: not a landmark table document ({detail})") from None


# A dataset job's output folder (python -m face_alignment.dataset): OUT_DIR/_manifest.json and
# OUT_DIR/landmarks/part-<unit id>.parquet, landmark tables of this schema (see
# face_alignment.dataset for the rest). The job writes it; evaluation reads its photos. Every
# other name in it starts with "_" or ".", which pyarrow (pandas, Ray Data) skips, so that the
# folder read as a Parquet dataset is exactly the landmark rows.
MANIFEST = "_manifest.json"
LANDMARKS = "landmarks"
SHARD_NAME = re.compile(r"part-([0-9a-f]{16})\.parquet")  # a unit id is 16 hex digits


def shard_name(unit_id: str) -> str:
    return f"part-{unit_id}.parquet"


def is_dataset_output(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, MANIFEST)) and os.path.isdir(os.path.join(folder, LANDMARKS))


def dataset_shards(folder: str) -> List[str]:
    """The landmark shards of a dataset job's output ``folder``, sorted (temporary files and
    anything else in ``landmarks/`` left out)."""
    shards = os.path.join(folder, LANDMARKS)
    return [os.path.join(shards, name) for name in sorted(os.listdir(shards)) if SHARD_NAME.fullmatch(name)]
