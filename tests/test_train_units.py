"""The training pieces against PyTorch on given values: the solvers' updates (RMSprop, Adam, SGD), BatchNorm's training
mode (statistics, gradient, running averages), and the distance loss's gradient (ibug's loss,
autograd, in a process of its own)."""
import nnabla as nn
import numpy as np
import pytest
import torch

from train_reference import run_reference


# Each optimizer and torch's own, as ibug's trainer would build it with those settings.
SOLVERS = {"rmsprop": (0.9, lambda p, lr, m, wd: torch.optim.RMSprop(p, lr=lr, momentum=m, weight_decay=wd)),
           "adam": (0.0, lambda p, lr, m, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd)),
           "sgd": (0.9, lambda p, lr, m, wd: torch.optim.SGD(p, lr=lr, momentum=m, weight_decay=wd))}


@pytest.mark.parametrize("optimizer", sorted(SOLVERS))
def test_solver_update_equals_torchs(optimizer):
    from face_alignment.training.solvers import load_solver_state, make_solver, solver_state

    momentum, torch_optimizer = SOLVERS[optimizer]
    rng = np.random.RandomState(0)
    start = rng.randn(4, 5).astype(np.float32)
    grads = [rng.randn(4, 5).astype(np.float32) * 10 ** rng.uniform(-4, 1) for _ in range(6)]
    variable = nn.Variable.from_numpy_array(start.copy(), need_grad=True)
    solver = make_solver(optimizer, lr=5e-3, momentum=momentum)
    solver.set_parameters({"w": variable})
    weight = torch.nn.Parameter(torch.from_numpy(start.copy()))
    reference = torch_optimizer([weight], 5e-3, momentum, 1e-3)
    for i, grad in enumerate(grads):
        if i == 3:  # a solver restored from the state of another continues identically
            restored = make_solver(optimizer, lr=5e-3, momentum=momentum)
            restored.set_parameters({"w": variable})
            load_solver_state(restored, solver_state(solver))
            solver = restored
        if i == 4:  # the schedule's step: a new rate applies from this update on
            solver.set_learning_rate(2e-3)
            for group in reference.param_groups:
                group["lr"] = 2e-3
        variable.g = grad
        solver.weight_decay(1e-3)
        solver.update()
        weight.grad = torch.from_numpy(grad.copy())
        reference.step()
        np.testing.assert_allclose(variable.d, weight.detach().numpy(), rtol=0, atol=1e-6, err_msg=f"step {i}")
    assert np.abs(variable.d - start).max() > 0.01


@pytest.mark.parametrize("offset", [0.1, 30.0])
def test_batchnorm_training_mode_equals_torchs(offset):
    """Normalised values, gradient (measured against float64: nnabla's own batch_normalization
    is 8e-3 off at offset 30, ours 1e-6) and 3 updates of the running statistics."""
    import nnabla.functions as F
    from face_alignment.nets.layers import batch_norm, running_statistics, update_running_statistics

    rng = np.random.RandomState(1)
    xs = [(rng.randn(3, 8, 6, 6) * 0.3 + offset).astype(np.float32) for _ in range(3)]
    dy = rng.randn(3, 8, 6, 6).astype(np.float32)
    store = {}
    with nn.parameter_scope("", store), running_statistics() as running:
        x = nn.Variable((3, 8, 6, 6), need_grad=True)
        y = batch_norm(x, "bn1", training=True)
        params = nn.get_parameters(grad_only=False)
    params["bn1/bn/gamma"].d = np.linspace(0.5, 1.5, 8).reshape(1, 8, 1, 1)
    reference = torch.nn.BatchNorm2d(8).double().train()
    reference.weight.data = torch.linspace(0.5, 1.5, 8, dtype=torch.float64)
    for batch in xs:
        x.d = batch
        y.forward()
        update_running_statistics(running)
        x.grad.zero()
        y.backward(dy)
        xt = torch.from_numpy(batch.astype(np.float64)).requires_grad_()
        yt = reference(xt)
        yt.backward(torch.from_numpy(dy.astype(np.float64)))
        np.testing.assert_allclose(y.d, yt.detach().numpy(), atol=2e-5)
        grad = xt.grad.numpy()
        assert np.linalg.norm(x.g - grad) / np.linalg.norm(grad) < 1e-5
    np.testing.assert_allclose(params["bn1/bn/mean"].d.ravel(), reference.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(params["bn1/bn/var"].d.ravel(), reference.running_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("gamma,radius", [(1.0, 0.1), (2.0, 0.2)])
def test_distance_loss_and_gradient_equal_ibugs_autograd(tmp_path, gamma, radius):
    from face_alignment.training import losses

    rng = np.random.RandomState(2)
    b, n, size = 2, 5, 16
    peaks = rng.uniform(2, 14, (2, b, n, 2))
    grid = np.arange(size) + 0.5
    heatmaps = np.exp(-((grid[None, None, None, None, :] - peaks[..., 0, None, None]) ** 2 +
                        (grid[None, None, None, :, None] - peaks[..., 1, None, None]) ** 2) / 4.0)
    heatmaps = (heatmaps + 0.05 * rng.randn(*heatmaps.shape)).astype(np.float32)  # negatives get clipped
    landmarks = rng.uniform(10, 54, (b, n, 2)).astype(np.float32)
    corners = np.array([[[5, 6], [60, 6], [60, 58], [5, 58]], [[9, 3], [50, 3], [50, 61], [9, 61]]], np.float32)
    weights = np.array([0.7, 1.6], np.float32)
    np.savez(tmp_path / "inputs.npz", heatmaps=heatmaps, landmarks=landmarks, corners=corners, weights=weights)
    theirs = run_reference("distance", dict(inputs=str(tmp_path / "inputs.npz"), size=64, gamma=gamma,
                                            radius=radius), str(tmp_path))

    predicted = [nn.Variable.from_numpy_array(h, need_grad=True) for h in heatmaps]
    loss = losses.landmark_distance(predicted, nn.Variable.from_numpy_array(landmarks),
                                    nn.Variable.from_numpy_array(losses.box_sizes(corners).astype(np.float32)),
                                    nn.Variable.from_numpy_array(weights), 64, gamma, radius)
    loss.forward()
    for p in predicted:
        p.grad.zero()
    loss.backward()
    assert float(loss.d) == pytest.approx(float(theirs["loss"]), rel=1e-5)
    grad = np.stack([p.g for p in predicted])
    assert np.abs(grad).max() > 0
    np.testing.assert_allclose(grad, theirs["grad"], rtol=1e-3, atol=1e-5 * np.abs(theirs["grad"]).max())


def test_new_parameters_depend_on_the_seed_alone():
    """A run's initial weights are its seed's, whatever the process drew before: nnabla's
    initialisers draw from nnabla.random.prng, which an earlier graph (another test, another
    model) moves on."""
    import dataclasses

    from nnabla import random as nnabla_random

    from face_alignment.registry import ARCHITECTURES
    from face_alignment.training.graph import new_parameters

    arch = dataclasses.replace(ARCHITECTURES["ibug-2dfan2"], name="tiny", num_modules=1, hg_features=16,
                               hg_depth=1, input_size=32)
    first = new_parameters(arch, 3)
    nnabla_random.prng.rand(1000)  # what other code in this process drew meanwhile
    np.random.rand(1000)
    again = new_parameters(arch, 3)
    other = new_parameters(arch, 4)
    assert list(first) == list(again)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not all(np.array_equal(first[k], other[k]) for k in first)
