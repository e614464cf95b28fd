"""Layers named the way nnabla-examples' FAN names its parameters.

A PyTorch module path ``conv2.downsample.2`` becomes the parameter scope
``conv2/downsample/2``; inside it a convolution's parameters are ``conv/W`` and ``conv/b``,
a batch normalisation's ``bn/{beta,gamma,mean,var}`` and a linear layer's ``affine/{W,b}``.

One graph serves inference and training: with ``training`` off (the default) parameters are
constants and BatchNorm uses its running statistics; with it on, parameters take gradients and
BatchNorm normalises by the batch's statistics, whose running averages the trainer updates after
each forward pass as torch.nn.BatchNorm2d does in ``train()`` mode (momentum 0.1, unbiased batch
variance).
"""
import contextlib

import nnabla as nn
import nnabla.functions as F
from nnabla.initializer import ConstantInitializer
import nnabla.parametric_functions as PF

from ..registry import POOLINGS

# torch.nn.BatchNorm2d's and InstanceNorm2d's defaults: eps 1e-5, running = 0.9 running + 0.1 batch.
NORM_EPS = 1e-5
BN_DECAY = 0.9


def conv(x, scope, out_channels, kernel, stride=1, pad=0, bias=True, training=False):
    with nn.parameter_scope(scope):
        return PF.convolution(x, out_channels, (kernel, kernel), pad=(pad, pad), stride=(stride, stride),
                              with_bias=bias, fix_parameters=not training)


# The running-statistics updates of the training graphs being built (see running_statistics).
_RUNNING_UPDATES = []


@contextlib.contextmanager
def running_statistics():
    """Collect the BatchNorm layers of the training graphs built within: a list of (running
    mean, running variance, batch mean, batch variance, values per channel) variables, for
    :func:`update_running_statistics` after each forward pass."""
    collected = []
    _RUNNING_UPDATES.append(collected)
    try:
        yield collected
    finally:
        _RUNNING_UPDATES.remove(collected)


def update_running_statistics(collected):
    """running = 0.9 running + 0.1 batch, with the batch's unbiased variance (torch's update)."""
    for mean, var, batch_mean, batch_var, count in collected:
        mean.data.copy_from(mean.data * BN_DECAY + batch_mean.data * (1 - BN_DECAY))
        var.data.copy_from(var.data * BN_DECAY + batch_var.data * ((1 - BN_DECAY) * count / max(count - 1, 1)))


def batch_norm(x, scope, training=False):
    with nn.parameter_scope(scope):
        if not training:
            return PF.batch_normalization(x, batch_stat=False, eps=NORM_EPS, fix_parameters=True)
        # In training, the batch statistics from the centred values: nnabla's batch_normalization
        # loses the gradient's precision when a channel's mean is large against its spread (as
        # after a convolution's bias), which torch does not.
        shape = (1, x.shape[1], 1, 1)
        with nn.parameter_scope("bn"):
            beta = nn.parameter.get_parameter_or_create("beta", shape, ConstantInitializer(0), True)
            gamma = nn.parameter.get_parameter_or_create("gamma", shape, ConstantInitializer(1), True)
            mean = nn.parameter.get_parameter_or_create("mean", shape, ConstantInitializer(0), False)
            var = nn.parameter.get_parameter_or_create("var", shape, ConstantInitializer(1), False)
        axes = (0, 2, 3)
        batch_mean = F.mean(x, axis=axes, keepdims=True)
        centred = x - batch_mean
        batch_var = F.mean(centred * centred, axis=axes, keepdims=True)
        for statistic in (batch_mean, batch_var):
            statistic.persistent = True
        if _RUNNING_UPDATES:
            _RUNNING_UPDATES[-1].append((mean, var, batch_mean, batch_var, x.size // x.shape[1]))
        return centred * (gamma / (batch_var + NORM_EPS) ** 0.5) + beta


def instance_norm(x):
    """torch.nn.InstanceNorm2d's default: no affine parameters, no running statistics, so the
    same in training and inference."""
    return F.instance_normalization(x, None, None, channel_axis=1, batch_axis=0, eps=NORM_EPS)


def affine(x, scope, out_features):
    with nn.parameter_scope(scope):
        return PF.affine(x, out_features, fix_parameters=True)


def pool(x, pooling, kernel=2):
    if pooling == "avg":
        return F.average_pooling(x, (kernel, kernel))
    if pooling == "max":
        return F.max_pooling(x, (kernel, kernel))
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
