"""Layers named the way nnabla-examples' FAN names its parameters.

A PyTorch module path ``conv2.downsample.2`` becomes the parameter scope
``conv2/downsample/2``; inside it a convolution's parameters are ``conv/W`` and ``conv/b``,
a batch normalisation's ``bn/{beta,gamma,mean,var}`` and a linear layer's ``affine/{W,b}``.
Everything here is inference-only: fixed parameters and running statistics.
"""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

from ..registry import POOLINGS


def conv(x, scope, out_channels, kernel, stride=1, pad=0, bias=True):
    with nn.parameter_scope(scope):
        return PF.convolution(x, out_channels, (kernel, kernel), pad=(pad, pad), stride=(stride, stride),
                              with_bias=bias, fix_parameters=True)


def batch_norm(x, scope):
    # eps matches torch.nn.BatchNorm2d's default.
    with nn.parameter_scope(scope):
        return PF.batch_normalization(x, batch_stat=False, eps=1e-5, fix_parameters=True)


def affine(x, scope, out_features):
    with nn.parameter_scope(scope):
        return PF.affine(x, out_features, fix_parameters=True)


def pool2x2(x, pooling):
    if pooling == "avg":
        return F.average_pooling(x, (2, 2))
    if pooling == "max":
        return F.max_pooling(x, (2, 2))
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
