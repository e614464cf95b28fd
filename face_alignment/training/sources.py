"""Where training samples come from: each source read into the same :class:`Record` list.

- ibug's tsv index (``subset, split, aug_idx, im_path, pts_path`` and the face box's left,
  top, right, bottom, after a header line), paths relative to the tsv's folder, rows chosen by
  (subset, split) partitions as ibug's ``LandmarkDataset`` chooses them;
- a folder of images with a ``.pts`` of the same name beside each (300W, iBUG), searched
  recursively; the face box is the box around the landmarks;
- a landmark table written by the project's dataset job (a ``.parquet``/``.json`` file, or
  the job's output folder): a teacher's landmarks and its detector's box per face.

Landmarks are 0-based as :mod:`face_alignment.evaluation.pts` reads them, which is also
ibug's ``load_pts``. Rows whose image or annotation file is missing are left out and listed
(``skipped``), as ibug leaves them out; everything else wrong stops with one line naming the
file and what was expected.
"""
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import AnnotationError, FaceAlignmentError, ImageReadError, TrainingDataError
from ..evaluation.pts import read_pts

SAMPLE_WEIGHT_CAP = 5.0  # ibug: a sample of augmentation index a weighs ceil(5 * 0.8 ** a)
SAMPLE_WEIGHT_DECAY = 0.8
TSV_FIELDS = 9  # subset, split, aug_idx, im_path, pts_path, left, top, right, bottom


@dataclass(frozen=True, eq=False)  # array fields: no element-wise ==
class Record:
    image: str
    landmarks: np.ndarray  # (n, 2) float64, 0-based image pixels
    box: np.ndarray  # (4,) left, top, right, bottom
    weight: float = 1.0
    origin: str = ""  # where the record was read from, for messages: "index.tsv:12", a .pts path


@dataclass
class Source:
    records: List[Record]
    skipped: List[Tuple[str, str]]  # (path, reason)
    weight_total: float  # sum of the weights of every chosen row, skipped ones included (ibug's weight_norm)


def sample_weight(aug_idx: int) -> float:
    """ibug's weight of a row of augmentation index ``aug_idx`` (negative: 1)."""
    return float(np.ceil(SAMPLE_WEIGHT_CAP * SAMPLE_WEIGHT_DECAY ** aug_idx)) if aug_idx >= 0 else 1.0


def parse_partitions(partitions: Optional[Sequence]) -> Optional[List[Tuple[str, str]]]:
    """(subset, split) pairs from pairs or ``"SUBSET"`` / ``"SUBSET/SPLIT"`` strings; None: all."""
    if partitions is None:
        return None
    pairs = []
    for partition in partitions:
        if isinstance(partition, str):
            subset, _, split = partition.partition("/")
            pairs.append((subset, split))
        else:
            subset, split = partition
            pairs.append((str(subset), str(split)))
    return pairs


def read_tsv(path: str, num_landmarks: int, partitions: Optional[Sequence] = None) -> Source:
    chosen = parse_partitions(partitions)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TrainingDataError(f"{path}: cannot read the training index ({e})") from None
    folder = os.path.dirname(path)
    records, skipped, total, seen = [], [], 0.0, set()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{path}:{number}"
        if len(fields) < TSV_FIELDS:
            raise TrainingDataError(f"{where}: {len(fields)} tab-separated fields; expected {TSV_FIELDS} "
                                    "(subset, split, aug_idx, im_path, pts_path, left, top, right, bottom)")
        subset, split = fields[:2]
        seen.add((subset, split))
        if chosen is not None and (subset, split) not in chosen:
            continue
        try:
            weight = sample_weight(int(fields[2]))
            box = np.array([float(x) for x in fields[5:9]])
        except ValueError:
            raise TrainingDataError(f"{where}: aug_idx {fields[2]!r} and face box {fields[5:9]}: expected an "
                                    "integer and four numbers") from None
        total += weight
        image, pts = (p if os.path.isabs(p) else os.path.abspath(os.path.join(folder, p)) for p in fields[3:5])
        missing = [p for p in (image, pts) if not os.path.exists(p)]
        if missing:
            skipped.append((missing[0], f"{where}: no such file {missing[0]}"))
            continue
        records.append(Record(image, read_landmarks(pts, num_landmarks), box, weight, where))
    unknown = [p for p in chosen or () if p not in seen]
    if unknown:
        raise TrainingDataError(f"{path}: no row of partition {'/'.join(unknown[0])!r}; its partitions are "
                                f"{', '.join(sorted('/'.join(p).rstrip('/') for p in seen))}")
    return Source(records, skipped, total)


def read_landmarks(pts: str, num_landmarks: int) -> np.ndarray:
    try:
        return read_pts(pts, num_landmarks)
    except AnnotationError as e:
        raise TrainingDataError(str(e)) from None


def read_pts_folder(folder: str, num_landmarks: int) -> Source:
    from ..matching import points_box
    from ..pipeline.image import list_images

    records, skipped = [], []
    for image in list_images(folder, recursive=True):
        pts = os.path.splitext(image)[0] + ".pts"
        if not os.path.isfile(pts):
            skipped.append((image, f"{image}: no annotation {os.path.basename(pts)} beside it"))
            continue
        landmarks = read_landmarks(pts, num_landmarks)
        records.append(Record(image, landmarks, points_box(landmarks), 1.0, pts))
    return Source(records, skipped, float(len(records)))


def read_table(path: str, num_landmarks: int) -> Source:
    """The photos of a landmark table (or of every shard of a dataset job's output folder);
    video frames are listed as skipped: training reads still images."""
    from ..landmark_table import dataset_shards, is_dataset_output, read_landmark_table
    from ..pipeline.image import IMAGE_EXTENSIONS

    if num_landmarks != 68:
        raise TrainingDataError(f"{path}: a landmark table holds 68 landmarks a face; expected {num_landmarks}")
    tables = dataset_shards(path) if os.path.isdir(path) and is_dataset_output(path) else [path]
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    records, skipped = [], []
    for table_path in tables:
        try:
            rows = read_landmark_table(table_path).to_pydict()
        except FaceAlignmentError as e:
            raise TrainingDataError(str(e)) from None
        for number, (video, frame, box, landmarks) in enumerate(
                zip(rows["video"], rows["frame"], rows["box"], rows["landmarks"])):
            where = f"{table_path}: row {number}"
            if frame != 0 or os.path.splitext(video)[1].lower() not in IMAGE_EXTENSIONS:
                skipped.append((video, f"{where}: frame {frame} of a video; training reads photos"))
                continue
            image = video if os.path.isabs(video) or os.path.exists(video) else os.path.join(folder, video)
            if not os.path.exists(image):
                skipped.append((image, f"{where}: no such file {image}"))
                continue
            points = np.asarray(landmarks, dtype=np.float64)[:, :2]
            records.append(Record(image, points, np.asarray(box, dtype=np.float64), 1.0, where))
    return Source(records, skipped, float(len(records)))


def image_size(path: str) -> Tuple[int, int]:
    """(width, height) from the image's header, decoding nothing."""
    from ..pipeline.image_headers import read_header

    try:
        with open(path, "rb") as f:
            _, width, height = read_header(path, f)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read the image file ({e.strerror or e})") from None
    return width, height


def check_box(record: Record, width: int, height: int) -> None:
    """A face box must be finite, of positive size and overlap its image."""
    left, top, right, bottom = record.box
    if not (all(math.isfinite(v) for v in record.box) and right > left and bottom > top
            and right > 0 and bottom > 0 and left < width and top < height):
        raise TrainingDataError(f"{record.origin}: face box {[round(float(v), 2) for v in record.box]} "
                                f"(left, top, right, bottom) is outside the {width} x {height} image "
                                f"{record.image} or empty; expected a box on the face")
