"""Training parity with ibug's trainer (../shared/reference/ibug-fan-training, run as it is in a
process of its own): same random initialisation (their .pth, converted by our converter), same
batches (their LandmarkDataset's, augmentation off, tsv order), 3 RMSprop steps with momentum.
A small FAN (2 hourglasses of depth 2, 64 features, 128 px) stands for FAN-2: size is not what
is tested, and a FAN-2 step at 256 px takes tens of seconds here. Weights are random.

Limits are the issue's: rounding alone (PyTorch with 1 thread against 2) moves the third loss by
4e-4 and the update's relative L2 by about 1 %; no per-element limit on trained weights."""
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
