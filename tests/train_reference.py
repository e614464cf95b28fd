"""Shared material for the training tests: a small tsv over the shared annotated photos, a
small FAN configuration, and ibug's trainer run on them in a process of its own
(tests/ibug_training_reference.py)."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np

from conftest import SHARED, TESTS

IBUG_TRAINING = os.path.normpath(os.path.join(SHARED, "reference", "ibug-fan-training"))
FACES = os.path.normpath(os.path.join(SHARED, "data", "faces"))
# A small FAN (where size is not what is tested): 2 hourglasses of depth 2, 64 features, 128 px.
SMALL = dict(input_size=128, num_modules=2, hg_num_features=64, hg_depth=2, use_avg_pool=False,
             use_instance_norm=False, stem_conv_kernel_size=7, stem_conv_stride=2, stem_pool_kernel_size=2,
             num_landmarks=68)


def architecture(config=SMALL, name="test-small"):
    """Our Architecture for ibug's ``FAN.create_config`` fields ``config``."""
    from face_alignment.registry import ARCHITECTURES

    return dataclasses.replace(
        ARCHITECTURES["ibug-2dfan2"], name=name, num_modules=config["num_modules"],
        pooling="avg" if config["use_avg_pool"] else "max", input_size=config["input_size"],
        hg_features=config["hg_num_features"], hg_depth=config["hg_depth"],
        instance_norm=config["use_instance_norm"], stem_kernel=config["stem_conv_kernel_size"],
        stem_stride=config["stem_conv_stride"], stem_pool=config["stem_pool_kernel_size"],
        num_landmarks=config["num_landmarks"])


def read_pts(path):
    with open(path) as f:
        text = f.read()
    return np.array(text.split("{")[1].split("}")[0].split(), dtype=float).reshape(-1, 2) - 1


def write_tsv(folder, rows=(("einstein", 0), ("breakingbad", -1), ("einstein", 2))):
    """An ibug tsv in ``folder`` over the shared photos (paths relative to it), one row per
    (photo, aug_idx), the face box the landmarks' box grown by 10 %."""
    lines = ["subset\tsplit\taug_idx\tim_path\tpts_path\tface_box_left\tface_box_top\tface_box_right\t"
             "face_box_bottom"]
    for name, aug_idx in rows:
        image, pts = os.path.join(FACES, name + ".jpg"), os.path.join(FACES, name + ".pts")
        points = read_pts(pts)
        low, high = points.min(axis=0), points.max(axis=0)
        margin = 0.05 * (high - low)
        box = np.concatenate([low - margin, high + margin])
        lines.append("\t".join(["test", "", str(aug_idx), os.path.relpath(image, folder),
                                os.path.relpath(pts, folder)] + [f"{v:.3f}" for v in box]))
    path = os.path.join(str(folder), "faces.tsv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_ibug(folder, tsv, config=SMALL, optimizer="rmsprop", lr=5e-4, momentum=0.9, batch_size=3, steps=3,
             heatmap_weight=1.0, distance_weight=0.01, seed=0, threads=1):
    """Run ibug's trainer; returns (its outputs as a dict of arrays, the path of its initial .pth)."""
    folder = str(folder)
    spec = dict(reference=IBUG_TRAINING, tsv=tsv, partitions=[["test", ""]], config=config, optimizer=optimizer,
                lr=lr, momentum=momentum, batch_size=batch_size, steps=steps, heatmap_weight=heatmap_weight,
                distance_weight=distance_weight, seed=seed, threads=threads,
                init_pth=os.path.join(folder, "init.pth"))
    return run_reference("train", spec, folder), spec["init_pth"]


def run_reference(mode, spec, folder):
    """Run tests/ibug_training_reference.py in ``mode`` on ``spec`` (a dict); its output arrays."""
    spec = dict(spec, reference=IBUG_TRAINING)
    spec_path, out_path = os.path.join(folder, f"{mode}-spec.json"), os.path.join(folder, f"{mode}-out.npz")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    done = subprocess.run([sys.executable, os.path.join(TESTS, "ibug_training_reference.py"), mode, spec_path,
                           out_path], capture_output=True, text=True, cwd=folder,
                          env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=""))
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out_path) as f:
        return {k: f[k] for k in f.files}


def ibug_batches(result):
    """ibug's batches as the data pipeline's dicts (TRAINING-INTERFACE.md)."""
    keys = ("crop", "heatmaps", "landmarks", "landmark_box_corners", "weight")
    return [{k: result[f"batch/{k}"][i].astype(np.float32) for k in keys} for i in range(len(result["losses"]))]
