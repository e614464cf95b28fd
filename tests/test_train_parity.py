"""Training parity with ibug's trainer (../shared/reference/ibug-fan-training, run as it is in a
process of its own): same random initialisation (their .pth, converted by our converter), same
batches (their LandmarkDataset's, augmentation off, tsv order), 3 RMSprop steps with momentum.
A small FAN (2 hourglasses of depth 2, 64 features, 128 px) stands for FAN-2: size is not what
is tested, and a FAN-2 step at 256 px takes tens of seconds here. Weights are random.

Limits are the issue's: rounding alone (PyTorch with 1 thread against 2) moves the third loss by
4e-4 and the update's relative L2 by about 1 %; no per-element limit on trained weights."""
import dataclasses

import numpy as np
import pytest

from train_reference import architecture, ibug_batches, run_ibug, write_tsv


@pytest.fixture(scope="session")
def ibug_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ibug-train")
    tsv = write_tsv(folder)
    result, pth = run_ibug(folder, tsv, optimizer="rmsprop", lr=5e-4, momentum=0.9, batch_size=3, steps=3,
                           heatmap_weight=1.0, distance_weight=0.01)
    return result, pth


@pytest.fixture(scope="session")
def our_run(ibug_run):
    from face_alignment.weights.convert import read_torch_checkpoint, torch_to_nnabla
    from face_alignment.training.graph import TrainingGraph
    from face_alignment.training.solvers import make_solver

    result, pth = ibug_run
    arch = architecture()
    state, _ = read_torch_checkpoint(pth)
    params = torch_to_nnabla(state, "fan", arch.num_modules, pth, arch)
    graph = TrainingGraph(arch, params, 3, heatmap_weight=1.0, distance_weight=0.01)
    solver = make_solver("rmsprop", 5e-4, 0.9)
    solver.set_parameters(graph.learnable)
    initial = graph.parameters()
    losses = []
    for batch in ibug_batches(result):
        graph.feed(batch, float(result["weight_norm"]))
        losses.append(graph.forward_backward())
        solver.update()
    return initial, graph.parameters(), np.array(losses), graph


def theirs(result, prefix, name):
    from face_alignment.weights.layout import to_nnabla, torch_key

    return to_nnabla(name, result[prefix + torch_key(name)])


def test_first_step_loss_equals_ibugs(ibug_run, our_run):
    result, _ = ibug_run
    losses = our_run[2]
    for column, key in enumerate(("losses", "heatmap_losses", "distance_losses")):
        assert losses[0, column] == pytest.approx(result[key][0], rel=1e-4), key
    # The total is the weighted mean (1 * heatmap + 0.01 * distance) / 1.01, as ibug's compute_losses.
    assert losses[0, 0] == pytest.approx((losses[0, 1] + 0.01 * losses[0, 2]) / 1.01, rel=1e-6)


def test_three_rmsprop_steps_follow_ibugs(ibug_run, our_run):
    result, _ = ibug_run
    initial, final, losses, graph = our_run
    # Each step's loss within 2e-3; its distance part (weight 0.01), a centroid of maps whose peaks
    # move, is the most sensitive to rounding (measured 6e-3 at step 3).
    for column, key, limit in ((0, "losses", 2e-3), (1, "heatmap_losses", 2e-3), (2, "distance_losses", 2e-2)):
        np.testing.assert_allclose(losses[:, column], result[key], rtol=limit, err_msg=key)
    assert losses[2, 0] < 0.5 * losses[0, 0]  # it learns: measured 0.118 -> 0.031 on both sides
    learnable = list(graph.learnable)
    ours = np.concatenate([(final[k] - initial[k]).ravel() for k in learnable])
    reference = np.concatenate([(theirs(result, "final/", k) - theirs(result, "initial/", k)).ravel()
                                for k in learnable])
    assert np.linalg.norm(ours - reference) / np.linalg.norm(reference) < 0.05  # measured 3.4 %


def test_batchnorm_running_statistics_follow_ibugs(ibug_run, our_run):
    """After 3 training-mode steps the running means and variances are PyTorch's (momentum 0.1,
    unbiased variance), up to what the 3 updates' rounding moves them."""
    result, _ = ibug_run
    initial, final = our_run[0], our_run[1]
    stats = [k for k in final if k.endswith(("/bn/mean", "/bn/var"))]
    assert stats
    ours = np.concatenate([final[k].ravel() for k in stats])
    reference = np.concatenate([theirs(result, "final/", k).ravel() for k in stats])
    moved = np.concatenate([(theirs(result, "final/", k) - initial[k]).ravel() for k in stats])
    assert np.linalg.norm(ours - reference) < 0.05 * np.linalg.norm(moved)


def test_train_command_follows_ibugs_trainer(ibug_run, tmp_path):
    """The issue's command (on the small FAN: its sizes given as options) with our data pipeline
    on ibug's tsv: metrics.csv holds ibug's losses before each update, last.h5 its update, and
    the architecture travels in last.h5 to every loader."""
    import csv
    import os

    from conftest import run_tool
    from face_alignment.weights import load_weights

    result, pth = ibug_run
    tsv = os.path.join(os.path.dirname(pth), "faces.tsv")
    run = tmp_path / "RUN"
    done = run_tool("-m face_alignment.train", "--data", tsv, "--arch", "ibug-2dfan2", "--hg-features", 64,
                    "--hg-depth", 2, "--input-size", 128, "--init", pth, "--optimizer", "rmsprop", "--lr", 5e-4,
                    "--momentum", 0.9, "--batch-size", 3, "--steps", 3, "--no-augment", "--no-flip", "--no-shuffle",
                    "--heatmap-loss-weight", 1, "--distance-loss-weight", 0.01, "--output", run, "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], result["losses"], rtol=2e-3)
    np.testing.assert_allclose([float(r["heatmap_loss"]) for r in rows], result["heatmap_losses"], rtol=2e-3)
    for name in ("best.h5", "config.json", "checkpoint.npz"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())

    weights = load_weights(str(run / "last.h5"))  # no flag: the file says what it is
    arch = architecture()
    for field in ("num_modules", "pooling", "input_size", "hg_features", "hg_depth", "stem_pool", "num_landmarks"):
        assert getattr(weights.arch, field) == getattr(arch, field), field
    learnable = [k for k in weights.params if not k.endswith(("/bn/mean", "/bn/var"))]
    ours = np.concatenate([(weights.params[k] - theirs(result, "initial/", k)).ravel() for k in learnable])
    reference = np.concatenate([(theirs(result, "final/", k) - theirs(result, "initial/", k)).ravel()
                                for k in learnable])
    assert np.linalg.norm(ours - reference) / np.linalg.norm(reference) < 0.05


def test_trained_weights_run_in_inference_and_onnx(ibug_run, tmp_path):
    """A trained variant of other sizes loads by its file alone, and NNabla's inference network and
    the ONNX export of it give ibug's evaluation-mode heatmaps for the same weights."""
    import torch
    from face_alignment.backends.export import export_onnx
    from face_alignment.backends.nnabla_net import NNablaNetwork
    from face_alignment.training.loop import write_weights
    from face_alignment.weights import load_weights
    from face_alignment.weights.convert import read_torch_checkpoint, torch_to_nnabla

    result, pth = ibug_run
    arch = architecture()
    state, _ = read_torch_checkpoint(pth)
    write_weights(str(tmp_path / "trained.h5"), arch, torch_to_nnabla(state, "fan", arch.num_modules, pth, arch))
    weights = load_weights(str(tmp_path / "trained.h5"))
    assert weights.arch == dataclasses.replace(arch, description="")  # what a name outside the registry records
    crops = result["batch/crop"][0][:2]
    ours = NNablaNetwork(weights.arch, weights.params)(crops)
    assert ours.shape == (2, 68, 32, 32)

    import onnxruntime

    export_onnx(weights.arch, weights.params, str(tmp_path / "trained.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "trained.onnx"), providers=["CPUExecutionProvider"])
    from_onnx = session.run(None, {"x": crops})[0]
    np.testing.assert_allclose(from_onnx, ours, atol=1e-4 * np.abs(ours).max())
    # ibug's own network in evaluation mode on the same weights, its running statistics included.
    import subprocess
    import sys
    import json
    from train_reference import IBUG_TRAINING, SMALL

    np.save(tmp_path / "crops.npy", crops)
    script = ("import sys, json, numpy as np, torch; sys.path.insert(0, sys.argv[1]); from models import FAN; "
              "m = FAN(FAN.create_config(**json.loads(sys.argv[2]))); m.load_state_dict(torch.load(sys.argv[3])); "
              "m.eval(); np.save(sys.argv[5], m(torch.from_numpy(np.load(sys.argv[4])))[-1].detach().numpy())")
    done = subprocess.run([sys.executable, "-c", script, IBUG_TRAINING, json.dumps(SMALL), pth,
                           str(tmp_path / "crops.npy"), str(tmp_path / "ibug.npy")], capture_output=True, text=True,
                          env=dict(__import__("os").environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=""))
    assert done.returncode == 0, done.stderr[-2000:]
    reference = np.load(tmp_path / "ibug.npy")
    np.testing.assert_allclose(ours, reference, atol=1e-4 * np.abs(reference).max())
