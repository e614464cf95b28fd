"""Where landmarks are written: one small interface for every output, used by photos, videos
and datasets alike, so that a new format is one class and one registry entry.

A writer is opened on a path (``open_writer``), takes one image's or one video frame's faces
at a time (``write(Faces)``), and puts its output in place when closed (``close()``, or the
end of a ``with`` block); an error before that (``abandon(error)``, or an exception in the
block) leaves nothing. Every file goes through files.atomic_write: written beside its place,
renamed there when whole.

``WRITERS``: for each kind of output, which writer each extension means::

    "results"    .json                  the photo results document (document.py): --save-json
    "landmarks"  .parquet .pq .json     the landmark table, a row per face (landmark_table.py):
                                        --save-landmarks, the dataset command's shards
    "pts"        a folder               iBUG .pts files, one per image and face (evaluation/pts.py):
                                        --save-pts
"""
import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np

from .errors import FaceAlignmentError
from .files import checked_extension


@dataclass(frozen=True)
class Faces:
    """One image's or one video frame's faces, as every writer takes them. Coordinates in
    the image's (upright frame's) pixels, 0-based as everywhere in this package."""

    source: str  # the image's or the video's path
    size: Tuple[int, int]  # (width, height)
    boxes: np.ndarray  # (n, 4) left, top, right, bottom
    landmarks: np.ndarray  # (n, 68, 2 or 3)
    scores: np.ndarray  # (n, 68)
    frame: int = 0  # a video frame's index; 0 for a photo
    time: float = 0.0  # its presentation time, seconds
    tracks: Optional[Sequence[int]] = None  # each face's track; None: untracked
    sources: Union[str, Sequence[str]] = "detector"  # where each box came from (landmark_table.SOURCES)

    @classmethod
    def of_photo(cls, path: str, image_shape: Sequence[int], prediction,
                 sources: Union[str, Sequence[str]] = "detector") -> "Faces":
        """From a photo's api.Prediction and its image's shape."""
        return cls(path, (int(image_shape[1]), int(image_shape[0])), prediction.boxes,
                   prediction.landmarks, prediction.scores, sources=sources)

    @classmethod
    def of_frame(cls, video: str, result) -> "Faces":
        """From an api.VideoLandmarks (one frame's faces)."""
        p = result.prediction
        return cls(video, (int(result.image.shape[1]), int(result.image.shape[0])), p.boxes, p.landmarks,
                   p.scores, frame=result.index, time=result.time, tracks=result.tracks,
                   sources=result.sources)


class Writer:
    """The interface. Subclasses set ``extensions`` (lower case; empty for a folder) and
    implement write, close and abandon."""

    extensions: Tuple[str, ...] = ()

    def __init__(self, path: str, dims: int = 2, force: bool = True):
        self.path, self.dims, self.force = path, dims, force

    def write(self, faces: Faces) -> None:
        raise NotImplementedError

    def failed(self, source: str, reason: str) -> None:
        """An input that could not be read (``reason``: one line); formats that list failures
        record it, the others have nothing to write for it."""

    def close(self) -> None:
        """Put the output in place."""
        raise NotImplementedError

    def abandon(self, error: BaseException) -> None:
        """Leave nothing, after ``error``."""
        raise NotImplementedError

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc is None:
            self.close()
        else:
            self.abandon(exc)
        return False


class ResultsDocument(Writer):
    """The photo results document (``{"images": [...]}``, document.py), written when closed."""

    extensions = (".json",)

    def __init__(self, path: str, dims: int = 2, force: bool = True):
        super().__init__(path, dims, force)
        self._records = []
        self._errors = []

    def write(self, faces: Faces) -> None:
        from .document import image_record

        self._records.append(image_record(faces))

    def failed(self, source: str, reason: str) -> None:
        self._errors.append((source, reason))

    def close(self) -> None:
        from .document import write_document

        if self._records is not None:
            records, self._records = self._records, None
            write_document(self.path, records, self._errors, force=self.force)

    def abandon(self, error: BaseException) -> None:
        self._records = None


class LandmarkTable(Writer):
    """The landmark table (landmark_table.py): Parquet (.parquet, .pq), written a row group at a
    time, or JSON (.json)."""

    extensions = (".parquet", ".pq", ".json")

    def __init__(self, path: str, dims: int = 2, force: bool = True, **options):
        from .landmark_table import LandmarkTableWriter

        super().__init__(path, dims, force)
        self._table = LandmarkTableWriter(path, dims=dims, force=force, **options)

    @property
    def rows(self) -> int:
        return self._table.rows

    def write(self, faces: Faces) -> None:
        self._table.add(faces.source, faces.frame, faces.time, faces.tracks, faces.boxes, faces.landmarks,
                        faces.scores, faces.sources)

    def close(self, metadata: Optional[Dict[str, str]] = None) -> None:
        """Put the table in place; ``metadata``: key-value pairs for a Parquet file's footer
        (the dataset command records there what a shard holds)."""
        self._table.close(metadata)

    def abandon(self, error: BaseException) -> None:
        self._table.__exit__(type(error), error, error.__traceback__)


class PtsFolder(Writer):
    """iBUG ``.pts`` files in the folder ``path``, as 300W ships them: ``NAME.pts`` for an
    image of one face, ``NAME_1.pts``, ``NAME_2.pts``... for several (in the order of its
    boxes), none for an image without faces; 1-based x, y (z is dropped). NAME is
    ``names[source]`` if given (the caller's names, unique among its images), else the
    image's stem. Files are written when closed, each replacing any of its name."""

    extensions = ()

    def __init__(self, path: str, dims: int = 2, force: bool = True, names: Optional[Mapping[str, str]] = None):
        super().__init__(path, dims, force)
        self._names = dict(names or {})
        self._points: Optional[Dict[str, Tuple[str, np.ndarray]]] = {}

    def file_names(self, source: str, faces: int):
        name = self._names.get(source) or os.path.splitext(os.path.basename(source))[0]
        return [f"{name}.pts"] if faces == 1 else [f"{name}_{i}.pts" for i in range(1, faces + 1)]

    def write(self, faces: Faces) -> None:
        for file_name, landmarks in zip(self.file_names(faces.source, len(faces.landmarks)), faces.landmarks):
            if file_name in self._points and self._points[file_name][0] != faces.source:
                raise FaceAlignmentError(
                    f"{os.path.join(self.path, file_name)}: --save-pts would write the landmarks of both "
                    f"{self._points[file_name][0]} and {faces.source} there; expected images whose names "
                    f"do not clash (NAME_1.pts is the first face of NAME when it has several)")
            self._points[file_name] = (faces.source, np.asarray(landmarks)[:, :2])

    def close(self) -> None:
        from .evaluation.pts import write_pts

        if self._points is None:
            return
        points, self._points = self._points, None
        os.makedirs(self.path, exist_ok=True)
        for file_name, (_, landmarks) in sorted(points.items()):
            write_pts(os.path.join(self.path, file_name), landmarks, force=self.force)

    def abandon(self, error: BaseException) -> None:
        self._points = None


# For each kind of output, which writer each extension means ("" : a folder).
WRITERS: Dict[str, Dict[str, Type[Writer]]] = {
    "results": {extension: ResultsDocument for extension in ResultsDocument.extensions},
    "landmarks": {extension: LandmarkTable for extension in LandmarkTable.extensions},
    "pts": {"": PtsFolder},
}


def writer_class(kind: str, path: str) -> Type[Writer]:
    """The writer ``path``'s extension means for outputs of ``kind``; FaceAlignmentError,
    naming the path and the extensions known, if none."""
    formats = WRITERS[kind]
    if "" in formats:  # a folder, whatever its name
        return formats[""]
    return formats[checked_extension(path, formats, f"{kind} format")]


def open_writer(kind: str, path: str, dims: int = 2, force: bool = True, **options) -> Writer:
    """A writer of ``kind`` (a key of WRITERS) for ``path``, chosen by its extension."""
    return writer_class(kind, path)(path, dims, force=force, **options)
