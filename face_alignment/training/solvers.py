"""Solvers and the learning-rate schedule, with their state as plain arrays for checkpoints.

``rmsprop`` is PyTorch's ``torch.optim.RMSprop`` as ibug trains with it: a running mean of the
squared gradient (``alpha``), ``eps`` added after the square root, and a momentum buffer of the
normalised gradient. ``nnabla.solvers.RMSprop`` has no momentum, so :class:`TorchRMSprop` makes
that update from NdArray arithmetic (which runs in whatever context the parameters live in);
``adam`` and ``sgd`` are made the same way, as torch's: nnabla's ``Adam`` adds ``eps`` before the
bias correction, and its ``Momentum`` keeps steps rather than gradients, so a new learning rate
would reach its updates late.
Weight decay is the solvers' ``weight_decay`` (the gradient plus ``decay`` times the weight,
as torch's ``weight_decay`` does), applied before each update.
"""
from collections import OrderedDict
from typing import Dict

import nnabla as nn
import numpy as np

OPTIMIZERS = ("rmsprop", "adam", "sgd")


class _TorchSolver:
    """The part of an nnabla solver's interface the training loop uses, for an update written
    in NdArray arithmetic (which runs in whatever context the parameters live in): each
    parameter's state is named NdArrays, plus a step count."""

    name = "TorchSolver"
    state_names = ()

    def __init__(self, lr: float):
        self.lr = lr
        self._params = OrderedDict()
        self._state = OrderedDict()  # name -> {state name: NdArray}
        self._steps = 0

    def set_parameters(self, params: Dict[str, nn.Variable]):
        for name, variable in params.items():
            self._params[name] = variable
            self._state[name] = {key: nn.NdArray.from_numpy_array(np.zeros(variable.shape, np.float32))
                                 for key in self.state_names}

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
        self._steps += 1
        for name, variable in self._params.items():
            variable.data.copy_from(variable.data - self._step(self._state[name], variable.grad) * self.lr)

    def _step(self, state, grad):
        """The update of one parameter before the learning rate, its state updated."""
        raise NotImplementedError

    def state_arrays(self) -> Dict[str, np.ndarray]:
        arrays = {f"{name}/{key}": array.data.copy() for name, state in self._state.items()
                  for key, array in state.items()}
        return dict(arrays, steps=np.array(self._steps, dtype=np.int64))

    def load_state_arrays(self, arrays: Dict[str, np.ndarray]):
        for name, state in self._state.items():
            for key, array in state.items():
                array.data = arrays[f"{name}/{key}"]
        self._steps = int(arrays.get("steps", 0))


class TorchRMSprop(_TorchSolver):
    """``torch.optim.RMSprop(params, lr, alpha, eps, momentum=momentum)`` (not centred)."""

    name = "TorchRMSprop"

    def __init__(self, lr: float, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0):
        super().__init__(lr)
        self.alpha, self.eps, self.momentum = alpha, eps, momentum
        self.state_names = ("square_avg", "momentum_buffer") if momentum > 0 else ("square_avg",)

    def _step(self, state, grad):
        square_avg = state["square_avg"]
        square_avg.copy_from(square_avg * self.alpha + grad * grad * (1 - self.alpha))
        step = grad / (square_avg ** 0.5 + self.eps)
        if self.momentum > 0:
            buffer = state["momentum_buffer"]
            buffer.copy_from(buffer * self.momentum + step)
            step = buffer
        return step


class TorchSGD(_TorchSolver):
    """``torch.optim.SGD(params, lr, momentum)``: the buffer holds gradients, not steps, so a
    new learning rate (the schedule's) applies to all of it at once, unlike nnabla's Momentum."""

    name = "TorchSGD"

    def __init__(self, lr: float, momentum: float = 0.0):
        super().__init__(lr)
        self.momentum = momentum
        self.state_names = ("momentum_buffer",) if momentum > 0 else ()

    def _step(self, state, grad):
        if self.momentum <= 0:
            return grad
        buffer = state["momentum_buffer"]  # zero at first: torch's first buffer is the gradient
        buffer.copy_from(buffer * self.momentum + grad)
        return buffer


class TorchAdam(_TorchSolver):
    """``torch.optim.Adam(params, lr, betas, eps)``: ``eps`` added to the bias-corrected root
    of the second moment. (``nnabla.solvers.Adam`` adds it before that correction, which
    moves updates of gradients under about 1e-3.)"""

    name = "TorchAdam"
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _step(self, state, grad):
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.copy_from(exp_avg * self.beta1 + grad * (1 - self.beta1))
        exp_avg_sq.copy_from(exp_avg_sq * self.beta2 + grad * grad * (1 - self.beta2))
        first = 1 - self.beta1 ** self._steps
        second = 1 - self.beta2 ** self._steps
        return exp_avg / ((exp_avg_sq / second) ** 0.5 + self.eps) / first


def make_solver(optimizer: str, lr: float, momentum: float = 0.0):
    """The solver ``optimizer`` (one of :data:`OPTIMIZERS`) with torch's defaults for the rest."""
    if optimizer == "rmsprop":
        return TorchRMSprop(lr, momentum=momentum)
    if optimizer == "adam":
        return TorchAdam(lr)
    if optimizer == "sgd":
        return TorchSGD(lr, momentum)
    raise ValueError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")


def solver_state(solver: _TorchSolver) -> Dict[str, np.ndarray]:
    """Every array of ``solver``'s state, by name (for a checkpoint)."""
    return solver.state_arrays()


def load_solver_state(solver: _TorchSolver, arrays: Dict[str, np.ndarray]):
    """Give ``solver`` (with its parameters set) the state :func:`solver_state` returned."""
    solver.load_state_arrays(arrays)


def step_lr(base_lr: float, epoch: int, step_size: int, gamma: float) -> float:
    """torch's ``StepLR``: the learning rate for ``epoch`` (0-based), multiplied by ``gamma``
    every ``step_size`` epochs (ibug trains with step 8, gamma 0.7)."""
    return base_lr * gamma ** (epoch // step_size) if step_size > 0 else base_lr
