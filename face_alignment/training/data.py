"""Training data: samples as ibug's ``LandmarkDataset`` makes them, from any source, in
batches from worker processes.

    config = DataConfig(augment=False)
    training_set = open_training_set("300w.tsv", config, partitions=["helen/trainset"])
    for batch in batches(training_set, order, batch_size=8, seed=0, workers=2):
        batch["crop"], batch["heatmaps"], batch["weight"] / training_set.weight_norm ...

A sample is deterministic in (index, seed), whichever process makes it, so a resumed run sees
the data an uninterrupted one would.
"""
import multiprocessing
import os
import random
import signal
from collections import deque
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import ImageReadError, TrainingDataError
from . import augment, crops, sources
from .heatmaps import encode_heatmaps

IBUG_LANDMARKS = 68


@dataclass(frozen=True)
class DataConfig:
    """ibug's ``LandmarkDataset.create_config`` fields with its defaults, then the switches."""

    image_size: int = 256
    heatmap_size: int = 64
    gaussian_size: int = 5
    gaussian_sigma: float = 1.0
    crop_ratio: float = 0.55
    temp_padding_factor: float = 1.0
    num_landmarks: int = IBUG_LANDMARKS
    symmetry: Optional[str] = None  # file of mirror pairs "i j" (0-based), needed to flip other counts
    # Augmentation. ``augment`` switches off everything below but the flip, which has its own.
    augment: bool = True
    flip: bool = True
    flip_probability: float = 0.5
    shift_scale_rotate: bool = True
    shift_scale_rotate_p: float = 0.5
    shift_limit: float = 0.0625  # of the padded crop's side, as ShiftScaleRotate's default
    scale_limit: float = 0.2
    rotate_limit: float = 50.0
    blur: bool = True
    color_jitter: float = 0.3  # brightness, contrast and saturation; 0 switches it off
    jpeg: bool = True
    jpeg_quality_min: int = 30
    coarse_dropout: bool = True
    coarse_dropout_holes: int = 8
    # Decode a JPEG at 1/2, 1/4 or 1/8 of its size (libjpeg's scaled decoding) when the crop
    # samples it at least that coarsely: large photos decode several times faster, and the
    # crop is resampled from fewer pixels, so it is no longer ibug's to the pixel.
    reduced_decode: bool = False


def read_symmetry(path: str, num_landmarks: int) -> np.ndarray:
    """Each landmark's mirror partner from a file of pairs ``i j`` (0-based, one pair a line,
    ``#`` comments); points in no pair are their own mirror image."""
    mirrored = np.arange(num_landmarks)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TrainingDataError(f"{path}: cannot read the symmetry file ({e})") from None
    paired = set()
    for number, line in enumerate(lines, start=1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        try:
            first, second = (int(v) for v in text.split())
        except ValueError:
            raise TrainingDataError(f"{path}:{number}: expected a pair of landmark indices 'i j', "
                                    f"got {text!r}") from None
        if not (0 <= first < num_landmarks and 0 <= second < num_landmarks) or {first, second} & paired:
            raise TrainingDataError(f"{path}:{number}: pair {first} {second}: expected two indices below "
                                    f"{num_landmarks}, each in one pair at most")
        paired |= {first, second}
        mirrored[first], mirrored[second] = second, first
    return mirrored


def mirror_permutation(config: DataConfig) -> Optional[np.ndarray]:
    """The flip's landmark permutation, None when flipping is off."""
    if not config.flip or config.flip_probability <= 0:
        return None
    if config.symmetry is not None:
        return read_symmetry(config.symmetry, config.num_landmarks)
    if config.num_landmarks == IBUG_LANDMARKS:
        from ..pipeline.flip import MIRRORED_LANDMARKS
        return MIRRORED_LANDMARKS
    raise TrainingDataError(f"{config.num_landmarks} landmarks: flipping needs a symmetry file of mirror pairs "
                            f"(DataConfig.symmetry); expected one, or flipping off")


class TrainingSet:
    """The chosen samples of a source; ``sample(index, seed)`` makes one."""

    def __init__(self, records: List[sources.Record], config: DataConfig, skipped, weight_norm: float):
        self.records = records
        self.config = config
        self.skipped = list(skipped)
        self.weight_norm = weight_norm
        self.num_landmarks = config.num_landmarks
        self._mirror = mirror_permutation(config)
        self._content = None  # built on first use: albumentations objects stay out of pickles

    def __len__(self) -> int:
        return len(self.records)

    def __getstate__(self):
        return dict(self.__dict__, _content=None)

    @staticmethod
    def _read(record: sources.Record, factor: int) -> np.ndarray:
        image = cv2.imread(record.image, crops.REDUCED_FLAGS[factor])
        if image is None:
            raise ImageReadError(f"{record.image}: not a readable image ({record.origin})")
        return image

    @staticmethod
    def _width(record: sources.Record) -> int:
        """The photo's width from its header (a reduced decode rounds it)."""
        from PIL import Image

        try:
            with Image.open(record.image) as image:
                return image.size[0]
        except (OSError, ValueError):
            raise ImageReadError(f"{record.image}: not a readable image ({record.origin})") from None

    def sample(self, index: int, seed: int) -> Dict[str, np.ndarray]:
        saved = random.getstate(), np.random.get_state()
        state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(index)]).generate_state(2)
        random.seed(int(state[0]))
        np.random.seed(int(state[1]))
        try:
            return self._make(int(index))
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])

    def _make(self, index: int) -> Dict[str, np.ndarray]:
        config, record = self.config, self.records[index]
        image = None
        if config.reduced_decode and crops.decodes_reduced(record.image):
            width = self._width(record)  # decoded once the sample's geometry says how coarsely
        else:
            image = self._read(record, 1)
            width = image.shape[1]
        landmarks, box = record.landmarks, record.box
        landmark_box = np.concatenate((landmarks.min(axis=0), landmarks.max(axis=0)))
        mirrored = self._mirror is not None and random.random() < config.flip_probability
        if mirrored:
            landmarks = crops.apply(crops.mirror_matrix(width), landmarks[self._mirror])
            box = np.array([width - box[2], box[1], width - box[0], box[3]])
            landmark_box = np.array([width - landmark_box[2], landmark_box[1], width - landmark_box[0],
                                     landmark_box[3]])
        (left, top), (right, bottom) = landmark_box[:2], landmark_box[2:]
        corners = np.array([[left, top], [right, top], [right, bottom], [left, bottom]])

        window = crops.crop_window(box, config)
        to_crop = window.matrix()
        geometry = augment.draw_geometry(config)
        if geometry is not None:
            to_crop = augment.geometry_matrix(geometry, window.canvas) @ to_crop
        to_crop = np.array([[1.0, 0, -window.margin], [0, 1.0, -window.margin], [0, 0, 1.0]]) @ to_crop
        factor = 1
        if image is None:
            zoom = 1.0 if geometry is None else geometry[1]
            factor = crops.decode_factor(window.side / (window.canvas * zoom))
            image = self._read(record, factor)
        if geometry is None and factor == 1:
            crop = crops.resized_crop(image, window, config.image_size, mirrored)
        else:
            from_image = to_crop @ crops.mirror_matrix(width) if mirrored else to_crop
            # A pixel of the reduced image covers factor x factor pixels of the photo.
            crop = crops.warped_crop(image, from_image @ np.diag([factor, factor, 1.0]), config.image_size)
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        if config.augment:
            if self._content is None:
                self._content = augment.content_transform(config)
            if self._content is not None:
                crop = augment.apply_content(self._content, crop)

        if geometry is None:
            points = crops.window_points(landmarks, window)
            corners = crops.window_points(corners, window)
        else:
            points, corners = crops.apply(to_crop, landmarks), crops.apply(to_crop, corners)
        heatmaps = encode_heatmaps(points * (config.heatmap_size / config.image_size), config.heatmap_size,
                                   config.gaussian_size, config.gaussian_sigma)
        # As ibug: float32 pixels divided by 255, channels first.
        crop = np.divide(np.ascontiguousarray(crop.transpose(2, 0, 1)), np.float32(255.0), dtype=np.float32)
        return {"crop": crop,
                "heatmaps": heatmaps,
                "landmarks": points.astype(np.float32),
                "landmark_box_corners": corners.astype(np.float32),
                "weight": np.float32(record.weight)}


def _source_kind(source: str) -> str:
    if os.path.isdir(source):
        from ..landmark_table import is_dataset_output
        return "table" if is_dataset_output(source) else "folder"
    extension = os.path.splitext(source)[1].lower()
    if extension == ".tsv":
        return "tsv"
    if extension in (".parquet", ".pq", ".json"):
        return "table"
    raise TrainingDataError(f"{source}: unknown training data; expected an ibug .tsv index, a folder of "
                            "images with .pts beside them, or a landmark table (.parquet, .json, a dataset "
                            "job's output folder)")


def open_training_set(source: str, config: DataConfig, partitions=None, boxes_from: Optional[str] = None,
                      calibrate_boxes: bool = True) -> TrainingSet:
    """The samples of ``source`` (an ibug .tsv, a folder of images with .pts beside them, or a
    landmark table): every row, or the rows of ``partitions`` ((subset, split) pairs or
    "SUBSET/SPLIT" strings; tsv only). ``boxes_from``: a detector's name, whose box that best
    overlaps each annotation replaces the given one (mapped onto the crop's boxes as inference
    maps them unless ``calibrate_boxes`` is False). Bad input raises a one-line
    TrainingDataError (or another FaceAlignmentError) naming the file or value."""
    source = os.fspath(source)
    if not os.path.exists(source):
        raise TrainingDataError(f"{source}: no such training data")
    mirror_permutation(config)  # refuse a flip without symmetry before reading anything
    kind = _source_kind(source)
    if partitions is not None and kind != "tsv":
        raise TrainingDataError(f"{source}: partitions select rows of an ibug .tsv index; expected no partition")
    if kind == "tsv":
        found = sources.read_tsv(source, config.num_landmarks, partitions)
    elif kind == "folder":
        found = sources.read_pts_folder(source, config.num_landmarks)
    else:
        found = sources.read_table(source, config.num_landmarks)
    records, skipped = found.records, list(found.skipped)
    sizes = {}
    for record in records:
        if record.image not in sizes:
            sizes[record.image] = sources.image_size(record.image)
        sources.check_box(record, *sizes[record.image])
    if boxes_from is not None:
        from .detected_boxes import detected_records
        records, missed = detected_records(records, boxes_from, calibrate_boxes)
        skipped.extend(missed)
    if not records:
        reasons = "; ".join(reason for _, reason in skipped[:3])
        raise TrainingDataError(f"{source}: no training sample left" + (f" ({len(skipped)} left out: {reasons})"
                                                                        if skipped else ""))
    return TrainingSet(records, config, skipped, found.weight_total / len(records))


# -- batches ---------------------------------------------------------------------------

def position_seed(seed: int, position: int) -> int:
    """The seed of the sample at ``position`` of a run's data order."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(position)]).generate_state(1)[0])


def _collate(samples: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def _make_batch(training_set: TrainingSet, items: Sequence[Tuple[int, int]], seed: int) -> Dict[str, np.ndarray]:
    return _collate([training_set.sample(index, position_seed(seed, position)) for index, position in items])


_WORKER_SET: Optional[TrainingSet] = None


def _start_worker(training_set: TrainingSet) -> None:
    global _WORKER_SET
    _WORKER_SET = training_set
    cv2.setNumThreads(1)  # the workers are the parallelism
    # Ctrl-C reaches the whole process group: the parent stops the workers, which would
    # otherwise each print a KeyboardInterrupt traceback. worker_signals, preloaded, does this
    # from a worker's birth; it is done here too for a fork server that was already running
    # before our preload was set (preloads are read when it starts).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_batch(items, seed, slot: str):
    """Make a batch and write it into the shared-memory block ``slot`` (the parent's: it
    creates and removes every block); returns where each array lies, or the batch itself if
    it does not fit."""
    from multiprocessing import shared_memory

    batch = _make_batch(_WORKER_SET, items, seed)
    if sum(a.nbytes for a in batch.values()) > _SLOT_BYTES[slot]:
        return batch
    # Attaching registers the block with the parent's resource tracker (the fork server
    # shares it), which already holds it: the parent's unlink settles both.
    block = shared_memory.SharedMemory(name=slot)
    layout, offset = [], 0
    try:
        for key, array in batch.items():
            np.ndarray(array.shape, array.dtype, buffer=block.buf, offset=offset)[...] = array
            layout.append((key, array.shape, array.dtype.str, offset))
            offset += array.nbytes
    finally:
        block.close()
    return layout


_SLOT_BYTES: Dict[str, int] = {}  # a worker's copy: filled by its initializer


def _start_worker_with_slots(training_set: TrainingSet, slot_bytes: Dict[str, int]) -> None:
    _SLOT_BYTES.update(slot_bytes)
    _start_worker(training_set)


def sample_bytes(config: DataConfig) -> int:
    """Bytes of one sample's arrays."""
    floats = (3 * config.image_size ** 2 + config.num_landmarks * config.heatmap_size ** 2
              + config.num_landmarks * 2 + 4 * 2 + 1)
    return 4 * floats


def batches(training_set: TrainingSet, order: Sequence[int], batch_size: int, seed: int, workers: int = 0,
            drop_last: bool = False, start: int = 0) -> Iterator[Dict[str, np.ndarray]]:
    """Batches (dicts of stacked arrays, the keys of ``TrainingSet.sample``) of the samples
    ``order`` lists, in that order; the sample at position k of ``order`` seeded from
    (``seed``, k). ``start``: the position to begin at (a resumed run), a multiple of
    ``batch_size`` keeping the batches of a run that began at 0. ``workers`` > 0: made in that
    many worker processes (started by a fork server: a script that calls this needs the
    ``if __name__ == "__main__":`` guard), a few batches ahead, in order; they hand batches
    back through shared memory."""
    if batch_size < 1:
        raise TrainingDataError(f"batch size {batch_size}: expected at least 1")
    order = [int(i) for i in order]
    for index in order:
        if not 0 <= index < len(training_set):
            raise TrainingDataError(f"sample index {index}: expected 0 to {len(training_set) - 1}")
    groups = []
    for first in range(start, len(order), batch_size):
        items = [(order[k], k) for k in range(first, min(first + batch_size, len(order)))]
        if len(items) == batch_size or not drop_last:
            groups.append(items)
    if workers <= 0:
        for items in groups:
            yield _make_batch(training_set, items, seed)
        return
    yield from _from_workers(training_set, groups, seed, workers, batch_size)


def _from_workers(training_set, groups, seed, workers, batch_size):
    from multiprocessing import shared_memory

    ahead = 2 * workers
    size = batch_size * sample_bytes(training_set.config)
    slots = [shared_memory.SharedMemory(create=True, size=size) for _ in range(ahead)]
    pool = None
    try:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["face_alignment.training.data", "face_alignment.training.worker_signals"])
        pool = context.Pool(workers, initializer=_start_worker_with_slots,
                            initargs=(training_set, {slot.name: size for slot in slots}))
        free = deque(slots)
        pending = deque()
        groups_left = iter(groups)

        def submit():
            items = next(groups_left, None)
            if items is not None:
                slot = free.popleft()
                pending.append((slot, pool.apply_async(_worker_batch, (items, seed, slot.name))))

        for _ in range(ahead):
            submit()
        while pending:
            slot, result = pending.popleft()
            layout = result.get()
            if isinstance(layout, dict):
                batch = layout
            else:
                batch = {key: np.ndarray(shape, np.dtype(dtype), buffer=slot.buf, offset=offset).copy()
                         for key, shape, dtype, offset in layout}
            free.append(slot)
            submit()
            yield batch
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        for slot in slots:
            slot.close()
            slot.unlink()
