"""Training data against ibug's trainer: its LandmarkDataset, run from
../shared/reference/ibug-fan-training as it is (in a subprocess, that folder first on sys.path,
torch and albumentations 1.4.18 from the venv), on the shared annotated photos, with
augmentation off, with and without its flip; then our other sources, the bad-input cases,
the augmentation's geometry, and the batches' determinism across worker processes."""
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
import os, random, sys
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
sys.path.insert(0, sys.argv[1])
import numpy as np
from datasets import LandmarkDataset
from utils import get_landmark_symmetry

tsv, out, partitions = sys.argv[2], sys.argv[3], [tuple(p.split("/", 1)) for p in sys.argv[4:]]
result = {"symmetry": np.array(get_landmark_symmetry())}
real_random = random.random
for name, flip in (("plain", False), ("flipped", True)):
    random.random = (lambda: 0.0) if flip else real_random  # LandmarkDataset flips when random.random() < 0.5
    dataset = LandmarkDataset(tsv, partitions, random_flip=flip)
    items = [dataset[i] for i in range(len(dataset))]
    result[name + "_crop"] = np.stack([item[0].numpy() for item in items])
    result[name + "_heatmaps"] = np.stack([item[1].numpy() for item in items])
    result[name + "_landmarks"] = np.stack([item[2].numpy() for item in items])
    result[name + "_corners"] = np.stack([item[4].numpy() for item in items])
    result[name + "_weight"] = np.array([item[5]["weight"] for item in items])
    result[name + "_weight_norm"] = np.array(dataset.weight_norm)
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
def reference(index, tmp_path_factory):
    """ibug's LandmarkDataset on every partition of ``index``: crops, heatmaps, landmarks,
    landmark box corners, weights and weight_norm, without and with its flip."""
    out = tmp_path_factory.mktemp("ibug-reference") / "reference.npz"
    partitions = sorted({f"{subset}/{split}" for subset, split, *_ in ROWS + [MISSING_ROW]})
    done = subprocess.run([sys.executable, "-c", REFERENCE, IBUG_TRAINING, index, str(out), *partitions],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return dict(np.load(out))


def our_samples(training_set):
    samples = [training_set.sample(i, seed=0) for i in range(len(training_set))]
    return {key: np.stack([s[key] for s in samples]) for key in samples[0]}


@pytest.mark.parametrize("name, config", [("plain", OFF), ("flipped", FLIPPED)])
def test_samples_equal_ibugs(index, reference, name, config):
    training_set = open_training_set(index, config)
    ours = our_samples(training_set)
    assert len(training_set) == len(ROWS)
    np.testing.assert_allclose(ours["landmarks"], reference[name + "_landmarks"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours["landmark_box_corners"], reference[name + "_corners"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours["crop"], reference[name + "_crop"], atol=1 / 255 + 1e-7, rtol=0)
    np.testing.assert_allclose(ours["heatmaps"], reference[name + "_heatmaps"], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(ours["weight"], reference[name + "_weight"])
    assert training_set.weight_norm == pytest.approx(float(reference[name + "_weight_norm"]), abs=1e-12)
    assert training_set.weight_norm == pytest.approx((5 + 3 + 4 + 1 + 2) / 4)  # ibug counts the missing row's
    [(path, reason)] = training_set.skipped
    assert path.endswith("nobody.jpg") and "index.tsv:4" in reason


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
