"""RetinaFace with a MobileNet-0.25 backbone (Deng et al., 2019; biubug6's PyTorch port, as
face-alignment 1.5.0 ships it), as an NNabla graph.

The backbone's three stages (strides 8, 16, 32) feed a feature pyramid: each stage is brought
to 64 channels, the coarser level is upsampled (nearest) onto the finer one, added and merged
by a 3x3 convolution. An SSH context module per level then feeds 1x1 heads: two anchors per
cell, each with face/background logits and four box regressors. Every convolution but the
heads' is followed by batch normalisation. Parameter names follow face-alignment's module
paths (``body.stage1.0.0`` -> ``body/stage1/0/0/conv/W``, its BatchNorm ``.../0/1/bn/...``).
"""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

from .layers import batch_norm, conv

ANCHORS_PER_CELL = 2
STEPS = (8, 16, 32)  # strides of the three pyramid levels
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))  # pixels, per level, per anchor of a cell
FEATURES = 64  # channels of the pyramid and of the SSH modules
BACKBONE_SLOPE = 0.1  # of the backbone's leaky ReLUs; the pyramid's and SSH's too (64 channels or fewer)
# (input channels, output channels, stride) of MobileNet-0.25's depthwise-separable blocks, per
# stage; stage 1 starts with a plain 3x3 convolution to 8 channels at stride 2.
STAGES = (
    ((8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1)),
    ((64, 128, 2),) + ((128, 128, 1),) * 5,
    ((128, 256, 2), (256, 256, 1)),
)


def _depthwise(x, scope, stride):
    with nn.parameter_scope(scope):
        return PF.convolution(x, x.shape[1], (3, 3), pad=(1, 1), stride=(stride, stride), group=x.shape[1],
                              with_bias=False, fix_parameters=True)


def _activate(x, slope):
    return F.leaky_relu(x, alpha=slope) if slope else F.relu(x)


def conv_bn(x, scope, channels, kernel=3, stride=1, slope=None):
    """face-alignment's conv-BN(-leaky ReLU) sequence ``scope`` (modules 0, 1); no
    activation when ``slope`` is None."""
    h = batch_norm(conv(x, f"{scope}/0", channels, kernel, stride=stride, pad=kernel // 2, bias=False),
                   f"{scope}/1")
    return h if slope is None else _activate(h, slope)


def _separable(x, scope, channels, stride):
    h = _activate(batch_norm(_depthwise(x, f"{scope}/0", stride), f"{scope}/1"), BACKBONE_SLOPE)
    h = batch_norm(conv(h, f"{scope}/3", channels, 1, bias=False), f"{scope}/4")
    return _activate(h, BACKBONE_SLOPE)


def _upsample_onto(coarse, fine):
    """``coarse`` upsampled to ``fine``'s size, nearest: each level is half its finer one
    rounded up, so doubling and dropping the extra row or column is exactly PyTorch's
    nearest interpolation to that size."""
    up = F.interpolate(coarse, scale=(2, 2), mode="nearest")
    if up.shape[2:] == fine.shape[2:]:
        return up
    return F.slice(up, start=(0, 0, 0, 0), stop=up.shape[:2] + fine.shape[2:])


def _ssh(x, scope):
    half, quarter = FEATURES // 2, FEATURES // 4
    branch3 = conv_bn(x, f"{scope}/conv3X3", half)
    h5 = conv_bn(x, f"{scope}/conv5X5_1", quarter, slope=BACKBONE_SLOPE)
    branch5 = conv_bn(h5, f"{scope}/conv5X5_2", quarter)
    h7 = conv_bn(h5, f"{scope}/conv7X7_2", quarter, slope=BACKBONE_SLOPE)
    branch7 = conv_bn(h7, f"{scope}/conv7x7_3", quarter)
    return F.relu(F.concatenate(branch3, branch5, branch7, axis=1))


def retinaface(x, landmarks: bool = False):
    """For a batch ``x`` (B, 3, H, W) with face-alignment's means already subtracted, the list
    ``[logits1, boxes1, logits2, boxes2, logits3, boxes3]``: per pyramid level (strides 8,
    16, 32), face/background logits (B, 2 anchors x 2, h, w), channels anchor-major with the
    face second, and box regressors (B, 2 anchors x 4, h, w). The landmark heads' parameters
    are part of the graph (the published file has them); their output only with ``landmarks``."""
    h = conv_bn(x, "body/stage1/0", 8, stride=2, slope=BACKBONE_SLOPE)
    stages = []
    for s, blocks in enumerate(STAGES, start=1):
        first = 1 if s == 1 else 0
        for i, (_, channels, stride) in enumerate(blocks, start=first):
            h = _separable(h, f"body/stage{s}/{i}", channels, stride)
        stages.append(h)

    levels = [conv_bn(f, f"fpn/output{i}", FEATURES, kernel=1, slope=BACKBONE_SLOPE)
              for i, f in enumerate(stages, start=1)]
    levels[1] = conv_bn(levels[1] + _upsample_onto(levels[2], levels[1]), "fpn/merge2", FEATURES,
                        slope=BACKBONE_SLOPE)
    levels[0] = conv_bn(levels[0] + _upsample_onto(levels[1], levels[0]), "fpn/merge1", FEATURES,
                        slope=BACKBONE_SLOPE)
    features = [_ssh(f, f"ssh{i}") for i, f in enumerate(levels, start=1)]

    outputs, points = [], []
    for i, f in enumerate(features):
        outputs += [conv(f, f"ClassHead/{i}/conv1x1", ANCHORS_PER_CELL * 2, 1),
                    conv(f, f"BboxHead/{i}/conv1x1", ANCHORS_PER_CELL * 4, 1)]
        points.append(conv(f, f"LandmarkHead/{i}/conv1x1", ANCHORS_PER_CELL * 10, 1))
    return outputs + points if landmarks else outputs
