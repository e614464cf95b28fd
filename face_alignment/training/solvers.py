"""Solvers and the learning-rate schedule, with their state as plain arrays for checkpoints.

``rmsprop`` is PyTorch's ``torch.optim.RMSprop`` as ibug trains with it: a running mean of the
squared gradient (``alpha``), ``eps`` added after the square root, and a momentum buffer of the
normalised gradient. ``nnabla.solvers.RMSprop`` has no momentum, so :class:`TorchRMSprop` makes
that update from NdArray arithmetic (which runs in whatever context the parameters live in).
``adam`` and ``sgd`` are nnabla's own ``Adam`` and ``Momentum`` (``Sgd`` without momentum).
Weight decay is the solvers' ``weight_decay`` (the gradient plus ``decay`` times the weight,
as torch's ``weight_decay`` does), applied before each update.
"""
from collections import OrderedDict
from typing import Dict

import nnabla as nn
import nnabla.solvers as S
import numpy as np

OPTIMIZERS = ("rmsprop", "adam", "sgd")


class TorchRMSprop:
    """``torch.optim.RMSprop(params, lr, alpha, eps, momentum=momentum)`` (not centred), with
    the part of an nnabla solver's interface the training loop uses."""

    name = "TorchRMSprop"

    def __init__(self, lr: float, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0):
        self.lr, self.alpha, self.eps, self.momentum = lr, alpha, eps, momentum
        self._params = OrderedDict()
        self._state = OrderedDict()  # name -> {"square_avg": NdArray, "momentum_buffer": NdArray}

    def set_parameters(self, params: Dict[str, nn.Variable]):
        for name, variable in params.items():
            self._params[name] = variable
            state = {"square_avg": nn.NdArray.from_numpy_array(np.zeros(variable.shape, np.float32))}
            if self.momentum > 0:
                state["momentum_buffer"] = nn.NdArray.from_numpy_array(np.zeros(variable.shape, np.float32))
            self._state[name] = state

    def get_parameters(self):
        return self._params

    def zero_grad(self):
        for variable in self._params.values():
            variable.grad.zero()

    def weight_decay(self, decay: float):
        if decay:
            for variable in self._params.values():
                variable.grad.copy_from(variable.grad + decay * variable.data)

    def learning_rate(self) -> float:
        return self.lr

    def set_learning_rate(self, lr: float):
        self.lr = lr

    def update(self):
        for name, variable in self._params.items():
            state, grad = self._state[name], variable.grad
            square_avg = state["square_avg"]
            square_avg.copy_from(square_avg * self.alpha + grad * grad * (1 - self.alpha))
            step = grad / (square_avg ** 0.5 + self.eps)
            if self.momentum > 0:
                buffer = state["momentum_buffer"]
                buffer.copy_from(buffer * self.momentum + step)
                step = buffer
            variable.data.copy_from(variable.data - step * self.lr)

    def state_arrays(self) -> Dict[str, np.ndarray]:
        return {f"{name}/{key}": array.data.copy() for name, state in self._state.items()
                for key, array in state.items()}

    def load_state_arrays(self, arrays: Dict[str, np.ndarray]):
        for name, state in self._state.items():
            for key, array in state.items():
                array.data = arrays[f"{name}/{key}"]


def make_solver(optimizer: str, lr: float, momentum: float = 0.0):
    """The solver ``optimizer`` (one of :data:`OPTIMIZERS`) with torch's defaults for the rest."""
    if optimizer == "rmsprop":
        return TorchRMSprop(lr, momentum=momentum)
    if optimizer == "adam":
        return S.Adam(alpha=lr, beta1=0.9, beta2=0.999, eps=1e-8)
    if optimizer == "sgd":
        return S.Momentum(lr, momentum) if momentum > 0 else S.Sgd(lr)
    raise ValueError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")


def solver_state(solver) -> Dict[str, np.ndarray]:
    """Every array of ``solver``'s state (and each parameter's step count), by name."""
    if isinstance(solver, TorchRMSprop):
        return solver.state_arrays()
    arrays = {}
    for name, state in solver.get_states().items():
        arrays[f"{name}/t"] = np.array(state.t, dtype=np.int64)
        for key, array in state.pstate.items():
            arrays[f"{name}/{key}"] = array.data.copy()
    return arrays


def load_solver_state(solver, arrays: Dict[str, np.ndarray]):
    """Give ``solver`` (with its parameters set) the state :func:`solver_state` returned."""
    if isinstance(solver, TorchRMSprop):
        solver.load_state_arrays(arrays)
        return
    states = solver.get_states()
    for name, state in states.items():
        state.t = int(arrays[f"{name}/t"])
        for key, array in state.pstate.items():
            array.data = arrays[f"{name}/{key}"]
    solver.set_states(states)


def step_lr(base_lr: float, epoch: int, step_size: int, gamma: float) -> float:
    """torch's ``StepLR``: the learning rate for ``epoch`` (0-based), multiplied by ``gamma``
    every ``step_size`` epochs (ibug trains with step 8, gamma 0.7)."""
    return base_lr * gamma ** (epoch // step_size) if step_size > 0 else base_lr
