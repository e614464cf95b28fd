"""The training loop: batches in a reproducible order, one solver update per batch, metrics in
CSV and TensorBoard, validation with top-k snapshots, and a checkpoint from which a stopped run
carries on exactly as if it had not stopped.

Every source of randomness is derived from the run's seed and the step: the data order of an
epoch from (seed, epoch), a sample's augmentation from (the epoch's seed, its position). So a checkpoint needs no
random-generator state, and a resumed run sees exactly the batches an uninterrupted one sees.
"""
import csv
import dataclasses
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import FaceAlignmentError
from ..evaluation.metrics import interpolated_auc, mean_accuracy
from ..files import atomic_write
from ..registry import Architecture
from ..weights.h5 import write_h5
from ..weights.layout import expected_parameters
from ..weights.loading import architecture_attrs
from ..pipeline.decode import decode_centroid
from . import losses
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .graph import InferenceGraph, TrainingGraph
from .solvers import load_solver_state, make_solver, solver_state, step_lr

log = logging.getLogger("face_alignment")

LAST, BEST, METRICS, VALIDATION, CONFIG = "last.h5", "best.h5", "metrics.csv", "validation.csv", "config.json"
METRIC_COLUMNS = ("step", "epoch", "lr", "loss", "heatmap_loss", "distance_loss")
VALIDATION_COLUMNS = ("step", "nme", "auc", "macc")
# Validation: AUC and mAcc up to this normalised error (ibug's err_th), mAcc over this many thresholds.
ERROR_THRESHOLD = 0.07
MACC_TICKS = 100
RANK_BY = {"auc": True, "macc": True, "nme": False}  # metric -> higher is better


@dataclass
class Settings:
    """What a run is: every field but :data:`FREE_ON_RESUME` must match when it is resumed."""
    arch: dict  # the Architecture's fields
    data: str = ""
    partitions: List[str] = field(default_factory=list)
    boxes_from: str = ""
    init: str = ""
    optimizer: str = "rmsprop"
    lr: float = 5e-4
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_step_epochs: int = 0  # StepLR's step_size in epochs (0: constant rate)
    lr_gamma: float = 0.7
    batch_size: int = 8
    steps: int = 0
    epochs: int = 0
    shuffle: bool = True
    augment: bool = True
    flip: bool = True
    reduced_decode: bool = False
    seed: int = 0
    heatmap_loss_weight: float = 1.0
    distance_loss_weight: float = 0.0
    distance_loss_gamma: float = losses.GAMMA
    distance_loss_radius: float = losses.RADIUS
    freeze: List[str] = field(default_factory=list)
    val_data: str = ""
    val_every: int = 0
    top_k: int = 1
    rank_by: str = "auc"
    checkpoint_every: int = 100


FREE_ON_RESUME = ("steps", "epochs", "checkpoint_every", "val_every", "top_k")


def differences(old: dict, new: dict) -> List[str]:
    """"field old -> new" for each setting that would change what a resumed run computes."""
    changed = []
    for key in sorted(set(old) | set(new)):
        if key in FREE_ON_RESUME or old.get(key) == new.get(key):
            continue
        if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
            changed += [f"{key}.{k} {old[key].get(k)!r} -> {new[key].get(k)!r}" for k in sorted(set(old[key]) | set(new[key]))
                        if old[key].get(k) != new[key].get(k)]
        else:
            changed.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    return changed


def epoch_order(size: int, epoch: int, seed: int, shuffle: bool) -> np.ndarray:
    return np.random.RandomState([seed, epoch]).permutation(size) if shuffle else np.arange(size)


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.RandomState([seed, epoch, 1]).randint(0, 2 ** 31 - 1))


def write_weights(path: str, arch: Architecture, params: Dict[str, np.ndarray]) -> None:
    ordered = {name: params[name] for name in expected_parameters(arch.kind, arch.num_modules, arch)}
    write_h5(path, ordered, architecture_attrs(arch), force=True)


class Trainer:
    """One run in ``output``: ``run()`` trains until the settings' steps (or epochs) are done,
    saving a checkpoint every ``checkpoint_every`` steps, at the end and when interrupted."""

    def __init__(self, settings: Settings, arch: Architecture, training_set, batches: Callable, output: str,
                 init_params: Dict[str, np.ndarray], validation_set=None, workers: int = 0, context=None,
                 resume: bool = False, progress: bool = True):
        self.s, self.arch, self.training_set, self.batches = settings, arch, training_set, batches
        self.output, self.validation_set, self.workers, self.progress = output, validation_set, workers, progress
        self.per_epoch = len(training_set) // settings.batch_size
        if self.per_epoch == 0:
            raise FaceAlignmentError(f"{settings.data}: {len(training_set)} samples, fewer than one batch of "
                                     f"{settings.batch_size}")
        self.total_steps = settings.steps or settings.epochs * self.per_epoch
        self.graph = TrainingGraph(arch, init_params, settings.batch_size, settings.heatmap_loss_weight,
                                   settings.distance_loss_weight, settings.distance_loss_gamma,
                                   settings.distance_loss_radius, settings.freeze, context)
        self.solver = make_solver(settings.optimizer, settings.lr, settings.momentum)
        self.solver.set_parameters(self.graph.learnable)
        self._epoch_batches = None  # [(epoch, next position), iterator of its batches]
        self.step, self.snapshots = 0, []  # snapshots: [{"step", "file", metric: value}], best first
        self._validated_step = None  # the step last validated in this process
        os.makedirs(output, exist_ok=True)
        if resume:
            self._resume()
        else:
            self._start()
        self._inference = None

    # -- files ---------------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return os.path.join(self.output, name)

    def _start(self):
        with atomic_write(self.path(CONFIG), force=True) as tmp, open(tmp, "w") as f:
            json.dump(dataclasses.asdict(self.s), f, indent=1)
        for name, columns in ((METRICS, METRIC_COLUMNS), (VALIDATION, VALIDATION_COLUMNS)):
            with open(self.path(name), "w", newline="") as f:
                csv.writer(f).writerow(columns)

    def _resume(self):
        checkpoint = self.path(CHECKPOINT)
        if not os.path.isfile(checkpoint):
            raise FaceAlignmentError(f"{checkpoint}: no checkpoint to resume from")
        params, solver_arrays, meta = load_checkpoint(checkpoint)
        changed = differences(meta["settings"], dataclasses.asdict(self.s))
        if changed:
            raise FaceAlignmentError(f"{self.output}: was trained with other settings ({'; '.join(changed[:3])}); "
                                     "resume with the same ones, or choose another --output")
        self.graph.set_parameters(params)
        load_solver_state(self.solver, solver_arrays)
        self.step, self.snapshots = meta["step"], meta["snapshots"]
        # Rows written after the checkpoint are written again by the resumed run: drop them.
        for name in (METRICS, VALIDATION):
            with open(self.path(name), newline="") as f:
                rows = list(csv.reader(f))
            kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= self.step]
            with atomic_write(self.path(name), force=True) as tmp, open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(kept)

    def save_checkpoint(self):
        meta = {"step": self.step, "snapshots": self.snapshots, "settings": dataclasses.asdict(self.s)}
        save_checkpoint(self.path(CHECKPOINT), self.graph.parameters(), solver_state(self.solver), meta)
        write_weights(self.path(LAST), self.arch, self.graph.parameters())

    # -- steps ---------------------------------------------------------------------------------
    def batch_for(self, step: int) -> dict:
        """The batch of ``step``: position ``step`` mod batches-per-epoch in the epoch's order, its
        samples seeded from (the epoch's seed, their position), whether or not the run stopped
        in between. One iterator per epoch, so that workers make batches ahead."""
        epoch, position = divmod(step, self.per_epoch)
        if self._epoch_batches is None or self._epoch_batches[0] != (epoch, position):
            order = epoch_order(len(self.training_set), epoch, self.s.seed, self.s.shuffle)
            iterator = self.batches(self.training_set, order, self.s.batch_size, epoch_seed(self.s.seed, epoch),
                                    workers=self.workers, drop_last=True, start=position * self.s.batch_size)
            self._epoch_batches = [(epoch, position), iterator]
        batch = next(self._epoch_batches[1])
        self._epoch_batches[0] = (epoch, position + 1)
        return batch

    def learning_rate(self, step: int) -> float:
        return step_lr(self.s.lr, step // self.per_epoch, self.s.lr_step_epochs, self.s.lr_gamma)

    def train_step(self, metrics, tensorboard):
        lr = self.learning_rate(self.step)
        self.solver.set_learning_rate(lr)
        self.graph.feed(self.batch_for(self.step), getattr(self.training_set, "weight_norm", None))
        loss, heatmap_loss, distance_loss = self.graph.forward_backward()
        if not all(math.isfinite(v) for v in (loss, heatmap_loss, distance_loss)):
            raise FaceAlignmentError(
                f"step {self.step + 1}: the loss is {loss} (heatmap {heatmap_loss}, distance {distance_loss}); "
                f"stopped without updating, {self.path(CHECKPOINT)} keeps step {self._saved_step}")
        if self.s.weight_decay:
            self.solver.weight_decay(self.s.weight_decay)
        self.solver.update()
        epoch = self.step // self.per_epoch
        self.step += 1
        metrics.writerow([self.step, epoch, lr, loss, heatmap_loss, distance_loss])
        if tensorboard is not None:
            for name, value in (("train/loss", loss), ("train/heatmap_loss", heatmap_loss),
                                ("train/distance_loss", distance_loss), ("train/lr", lr)):
                tensorboard.add_scalar(name, value, self.step)
        return loss

    def run(self) -> dict:
        from tqdm import tqdm

        tensorboard = _tensorboard(self.output)
        self._saved_step = self.step
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, unit="step")
        try:
            with open(self.path(METRICS), "a", newline="") as f:
                metrics = csv.writer(f)
                while self.step < self.total_steps:
                    loss = self.train_step(metrics, tensorboard)
                    f.flush()
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}")
                    if self.s.val_every and self.step % self.s.val_every == 0 and self.validation_set is not None:
                        self.validate(tensorboard)
                    if self.step % self.s.checkpoint_every == 0 and self.step < self.total_steps:
                        self.save_checkpoint()
                        self._saved_step = self.step
        except KeyboardInterrupt:  # Ctrl-C and SIGTERM (cli_support): keep what was done, then stop
            bar.close()
            self._close_batches()
            self.save_checkpoint()
            log.info("%s: stopped at step %d; --resume carries on", self.output, self.step)
            raise
        bar.close()
        self._close_batches()
        if self.validation_set is not None and self._validated_step != self.step \
                and not any(s["step"] == self.step for s in self.snapshots):  # validated before a resume
            self.validate(tensorboard)
        self.save_checkpoint()
        self._write_best()
        if tensorboard is not None:
            tensorboard.close()
        return {"step": self.step, "snapshots": self.snapshots}

    def _close_batches(self):
        if self._epoch_batches is not None and hasattr(self._epoch_batches[1], "close"):
            self._epoch_batches[1].close()  # stops a data pipeline's workers
        self._epoch_batches = None

    # -- validation ----------------------------------------------------------------------------
    def evaluate(self, dataset) -> Dict[str, float]:
        """NME (by the landmarks' box size), AUC@0.07 and mAcc (ibug's) of the un-augmented ``dataset``,
        without ibug's flipped second prediction of each face."""
        batch_size = self.s.batch_size
        if self._inference is None:
            self._inference = InferenceGraph(self.graph, batch_size)
        errors = []
        for start in range(0, len(dataset), batch_size):
            indices = list(range(start, min(start + batch_size, len(dataset))))
            batch = next(iter(self.batches(dataset, indices, len(indices), 0)))
            crops = np.zeros((batch_size,) + batch["crop"].shape[1:], np.float32)
            crops[:len(indices)] = batch["crop"]
            heatmaps = self._inference(crops)[:len(indices)]
            points, _ = decode_centroid(heatmaps, self.s.distance_loss_radius, self.s.distance_loss_gamma)
            points = points * (self.arch.input_size / heatmaps.shape[-1])
            distances = np.linalg.norm(points - batch["landmarks"], axis=-1)
            sizes = np.maximum(losses.box_sizes(batch["landmark_box_corners"]), losses.EPS)
            errors.append(distances / sizes[:, None])
        errors = np.concatenate(errors)  # (faces, landmarks), normalised
        # As ibug's train.py: AUC over each face's mean error, mAcc over every landmark's error.
        return {"nme": float(errors.mean()), "auc": interpolated_auc(errors.mean(axis=1), ERROR_THRESHOLD),
                "macc": mean_accuracy(errors, ERROR_THRESHOLD, MACC_TICKS)}

    def validate(self, tensorboard):
        results = self.evaluate(self.validation_set)
        self._validated_step = self.step
        with open(self.path(VALIDATION), "a", newline="") as f:
            csv.writer(f).writerow([self.step] + [results[c] for c in VALIDATION_COLUMNS[1:]])
        if tensorboard is not None:
            for name, value in results.items():
                tensorboard.add_scalar(f"validation/{name}", value, self.step)
        higher = RANK_BY[self.s.rank_by]
        snapshot = dict(results, step=self.step, file=f"snapshot-step{self.step}.h5")
        ranked = sorted(self.snapshots + [snapshot], key=lambda s: -s[self.s.rank_by] if higher else s[self.s.rank_by])
        kept = ranked[:self.s.top_k]
        if snapshot in kept:
            write_weights(self.path(snapshot["file"]), self.arch, self.graph.parameters())
        for dropped in ranked[self.s.top_k:]:
            if os.path.exists(self.path(dropped["file"])):
                os.remove(self.path(dropped["file"]))
        self.snapshots = kept
        self._write_best()

    def _write_best(self):
        """best.h5: the best snapshot by the ranking metric; without validation, the last weights."""
        source = self.path(self.snapshots[0]["file"]) if self.snapshots else self.path(LAST)
        if os.path.exists(source):
            with atomic_write(self.path(BEST), force=True) as tmp:
                shutil.copyfile(source, tmp)


def _tensorboard(output: str):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        log.warning("note: tensorboardX is not installed, so no TensorBoard events are written "
                    "(pip install -e '.[train]')")
        return None
    return SummaryWriter(os.path.join(output, "tensorboard"))
