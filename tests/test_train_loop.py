"""The training loop's promises on a tiny FAN (1 hourglass of depth 1, 32 features, 64 px, random
weights) and a stand-in data set of seeded random samples (the interface of
face_alignment.training.data): a stopped and resumed run equals a straight one, a NaN loss or a
full disk loses nothing, a resume with other settings is refused naming the field."""
import csv
import dataclasses
import errno
import os

import numpy as np
import pytest

from conftest import CPU, run_tool

N = 68


class StandIn:
    """Samples deterministic in (index, seed), like the real TrainingSet; ``poison`` (index) gives NaN
    target heatmaps (NaN crops would not do: ReLU maps NaN to 0 in nnabla)."""

    def __init__(self, size=5, image_size=64, poison=None):
        self.size, self.image_size, self.poison, self.weight_norm = size, image_size, poison, 2.0

    def __len__(self):
        return self.size

    def sample(self, index, seed):
        rng = np.random.RandomState([index, seed % 2 ** 31])
        s, h = self.image_size, self.image_size // 4
        landmarks = rng.uniform(8, s - 8, (N, 2)).astype(np.float32)
        crop = rng.uniform(0, 1, (3, s, s)).astype(np.float32)
        grid = np.arange(h) + 0.5
        centres = landmarks / 4
        heatmaps = np.exp(-((grid[None, None, :] - centres[:, 0, None, None]) ** 2 +
                            (grid[None, :, None] - centres[:, 1, None, None]) ** 2) / 2).astype(np.float32)
        if index == self.poison:
            heatmaps[:] = np.nan
        low, high = landmarks.min(0), landmarks.max(0)
        corners = np.array([low, [high[0], low[1]], high, [low[0], high[1]]], np.float32)
        return {"crop": crop, "heatmaps": heatmaps, "landmarks": landmarks, "landmark_box_corners": corners,
                "weight": np.float32(1 + index % 3)}


def stand_in_batches(training_set, order, batch_size, seed, workers=0, drop_last=False, start=0, stop_at=None):
    for first in range(start, len(order), batch_size):
        items = list(range(first, min(first + batch_size, len(order))))
        if len(items) < batch_size and drop_last:
            return
        samples = [training_set.sample(order[k], seed * 1000 + k) for k in items]
        yield {key: np.stack([s[key] for s in samples]) for key in samples[0]}


@pytest.fixture(scope="module")
def tiny():
    from face_alignment.registry import ARCHITECTURES
    from face_alignment.training.graph import new_parameters

    arch = dataclasses.replace(ARCHITECTURES["ibug-2dfan2"], name="tiny", num_modules=1, hg_features=32, hg_depth=1,
                               input_size=64)
    return arch, new_parameters(arch, seed=3)


def trainer(tiny, output, steps=6, resume=False, data=None, **changes):
    from face_alignment.training.loop import Settings, Trainer

    arch, params = tiny
    settings = Settings(arch=dataclasses.asdict(arch), optimizer="rmsprop", lr=1e-3, momentum=0.9, batch_size=2,
                        steps=steps, heatmap_loss_weight=1.0, distance_loss_weight=0.01, checkpoint_every=2,
                        lr_step_epochs=1, lr_gamma=0.5, weight_decay=1e-4)
    settings = dataclasses.replace(settings, **changes)
    return Trainer(settings, arch, data or StandIn(), stand_in_batches, str(output), params, resume=resume,
                   progress=False)


def weights(path):
    from face_alignment.weights.h5 import read_h5

    return read_h5(str(path))[0]


def rows(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_stopped_and_resumed_run_equals_a_straight_one(tiny, tmp_path):
    trainer(tiny, tmp_path / "straight").run()

    class Stop(KeyboardInterrupt):
        pass

    stopped = trainer(tiny, tmp_path / "stopped")
    batch_for = stopped.batch_for

    def stop_at_step_5(step):  # Ctrl-C in the 5th step (mid-epoch: 2 batches an epoch), before its update
        if step == 4:
            raise Stop()
        return batch_for(step)

    stopped.batch_for = stop_at_step_5
    with pytest.raises(Stop):
        stopped.run()
    assert len(rows(tmp_path / "stopped" / "metrics.csv")) == 1 + 4
    trainer(tiny, tmp_path / "stopped", resume=True).run()

    straight, resumed = weights(tmp_path / "straight" / "last.h5"), weights(tmp_path / "stopped" / "last.h5")
    assert list(straight) == list(resumed)
    moved = max(np.abs(straight[k] - tiny[1][k]).max() for k in straight)
    assert moved > 1e-3
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)
    assert rows(tmp_path / "stopped" / "metrics.csv") == rows(tmp_path / "straight" / "metrics.csv")
    learning_rates = [float(r[2]) for r in rows(tmp_path / "straight" / "metrics.csv")[1:]]
    assert learning_rates == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]  # StepLR(1 epoch, 0.5)


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny, tmp_path):
    """Killed between checkpoints (no chance to save): the rows after the checkpoint are dropped
    and made again, never written twice, and the weights are a straight run's."""
    trainer(tiny, tmp_path / "straight").run()
    killed = trainer(tiny, tmp_path / "killed", steps=3)
    killed.run()  # as if killed after step 3: its checkpoint is step 2's
    from face_alignment.training.checkpoint import load_checkpoint, save_checkpoint

    # The checkpoint a kill after step 3 leaves is step 2's: make it so, then resume.
    straight_two = trainer(tiny, tmp_path / "two", steps=2)
    straight_two.run()
    os.replace(tmp_path / "two" / "checkpoint.npz", tmp_path / "killed" / "checkpoint.npz")
    assert len(rows(tmp_path / "killed" / "metrics.csv")) == 1 + 3
    trainer(tiny, tmp_path / "killed", resume=True).run()
    assert rows(tmp_path / "killed" / "metrics.csv") == rows(tmp_path / "straight" / "metrics.csv")
    straight, resumed = weights(tmp_path / "straight" / "last.h5"), weights(tmp_path / "killed" / "last.h5")
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    from face_alignment.errors import FaceAlignmentError
    from face_alignment.training.checkpoint import load_checkpoint

    run = tmp_path / "run"
    # Sample 4's targets are NaN; without shuffle the batches are (0, 1), (2, 3), (4, 5): step 3.
    with pytest.raises(FaceAlignmentError, match=r"step 3\b.*step 2"):
        trainer(tiny, run, data=StandIn(size=6, poison=4), shuffle=False).run()
    _, _, meta = load_checkpoint(str(run / "checkpoint.npz"))
    assert meta["step"] == 2
    params = weights(run / "last.h5")
    assert all(np.isfinite(v).all() for v in params.values())
    assert len(rows(run / "metrics.csv")) == 1 + 2


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tiny, tmp_path, monkeypatch):
    from face_alignment.errors import FaceAlignmentError
    from face_alignment.training import checkpoint

    run = tmp_path / "run"
    t = trainer(tiny, run)
    real_savez = np.savez
    calls = []

    def savez_fills_disk(f, **arrays):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint: half written, then the disk is full
            f.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(f, **arrays)

    monkeypatch.setattr(checkpoint.np, "savez", savez_fills_disk)
    with pytest.raises(FaceAlignmentError) as raised:
        t.run()
    assert "No space left" in str(raised.value) and str(run / "checkpoint.npz") in str(raised.value)
    _, _, meta = checkpoint.load_checkpoint(str(run / "checkpoint.npz"))
    assert meta["step"] == 2
    assert sorted(os.listdir(run)) == sorted(["checkpoint.npz", "config.json", "last.h5", "metrics.csv",
                                              "validation.csv", "tensorboard"])


def test_resume_with_other_settings_names_the_field(tiny, tmp_path):
    from face_alignment.errors import FaceAlignmentError

    trainer(tiny, tmp_path / "run", steps=2).run()
    with pytest.raises(FaceAlignmentError, match=r"\blr 0\.001 -> 0\.002"):
        trainer(tiny, tmp_path / "run", resume=True, lr=2e-3)
    with pytest.raises(FaceAlignmentError, match=r"arch\.hg_features 32 -> 64"):
        arch, params = tiny
        from face_alignment.training.graph import new_parameters
        wider = dataclasses.replace(arch, hg_features=64)
        trainer((wider, new_parameters(wider, 0)), tmp_path / "run", resume=True)
    trainer(tiny, tmp_path / "run", resume=True, steps=4).run()  # more steps: the same run, carried on
    assert len(rows(tmp_path / "run" / "metrics.csv")) == 1 + 4


@pytest.mark.parametrize("option", [("--context", "cudnn"), ("--type-config", "half")])
def test_cuda_options_without_nnabla_ext_cuda_are_refused_in_one_line(tmp_path, option):
    done = run_tool("-m face_alignment.train", "--data", tmp_path / "none.tsv", "--steps", 1, "--output",
                    tmp_path / "RUN", *option)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and ("cudnn" in done.stderr)
    assert not (tmp_path / "RUN").exists()


def test_bad_training_options_are_refused_in_one_line(tmp_path):
    tsv = tmp_path / "none.tsv"
    for args, named in ((("--freeze", "hg3"), "hg3"), (("--distance-loss-weight", "-1"), "--distance-loss-weight"),
                        (("--init", tmp_path / "missing.pth"), "missing.pth")):
        done = run_tool("-m face_alignment.train", "--data", tsv, "--steps", 1, "--output", tmp_path / "RUN",
                        *args, *CPU)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and named in done.stderr, done.stderr


def test_freeze_keeps_the_named_parts_fixed(tiny, tmp_path):
    """--freeze stem,hg0: nothing of the stem or of hourglass 0 and its head moves, BatchNorm's
    running statistics aside (they follow the batches, as in PyTorch with frozen weights)."""
    arch, params = tiny
    trainer(tiny, tmp_path / "run", steps=2, freeze=["stem"]).run()
    trained = weights(tmp_path / "run" / "last.h5")
    stem = [k for k in trained if k.startswith(("conv1/", "bn1/", "conv2/", "conv3/", "conv4/"))
            and not k.endswith(("/bn/mean", "/bn/var"))]
    assert stem
    for name in stem:
        np.testing.assert_array_equal(trained[name], params[name], err_msg=name)
    assert any(np.abs(trained[k] - params[k]).max() > 0 for k in trained if k.startswith("m0/"))


def test_the_last_step_is_validated_once_whether_or_not_its_snapshot_is_kept(tiny, tmp_path, monkeypatch):
    """val_every dividing the steps: the last step's validation is the run's last one, also when
    its snapshot ranks below the kept ones (validation.csv has no row twice)."""
    from face_alignment.training.loop import Trainer

    scores = iter([0.9, 0.5, 0.1])  # AUC falling: only step 1's snapshot is kept
    monkeypatch.setattr(Trainer, "evaluate", lambda self, dataset: {"nme": 0.1, "auc": next(scores), "macc": 0.5})
    run = trainer(tiny, tmp_path / "RUN", steps=3, val_every=1, top_k=1)
    run.validation_set = StandIn()
    run.run()
    assert [r[0] for r in rows(tmp_path / "RUN" / "validation.csv")] == ["step", "1", "2", "3"]
    assert [s["step"] for s in run.snapshots] == [1]
    assert (tmp_path / "RUN" / "best.h5").read_bytes() == (tmp_path / "RUN" / "snapshot-step1.h5").read_bytes()
