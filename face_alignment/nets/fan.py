"""The Face Alignment Network (Bulat & Tzimiropoulos, ICCV 2017) as an NNabla graph.

A stem brings a 256x256 crop down to 64x64x256 features; each of ``num_modules`` stacked
hourglasses then predicts 68 heatmaps, and all but the last feed their prediction back into
the next one. The authors' 2D/3D-FAN use average pooling; ibug's 2-module variants use max.
The other sizes (hourglass features and depth, stem convolution and pooling, number of
landmarks, instance instead of batch normalisation) are the fields of ibug's trainable FAN
(``FAN.create_config``); their defaults give the published networks.
"""
from functools import partial

import nnabla.functions as F

from ..registry import Architecture
from .layers import batch_norm, conv, instance_norm, pool

STEM_FEATURES = 64


def _norm(x, scope, instance, training):
    return instance_norm(x) if instance else batch_norm(x, scope, training)


def conv_block(x, scope, in_channels, out_channels, instance=False, training=False):
    """Pre-activation block whose three 3x3 convolutions (out/2, out/4, out/4 channels) are
    concatenated, plus a residual (through BN-ReLU-1x1 conv when the width changes)."""
    half, quarter = out_channels // 2, out_channels // 4

    def norm_relu_conv(h, n, channels):
        h = F.relu(_norm(h, f"{scope}/bn{n}", instance, training))
        return conv(h, f"{scope}/conv{n}", channels, 3, pad=1, bias=False, training=training)

    out1 = norm_relu_conv(x, 1, half)
    out2 = norm_relu_conv(out1, 2, quarter)
    out3 = norm_relu_conv(out2, 3, quarter)
    residual = x
    if in_channels != out_channels:
        residual = conv(F.relu(_norm(x, f"{scope}/downsample/0", instance, training)), f"{scope}/downsample/2",
                        out_channels, 1, bias=False, training=training)
    return F.concatenate(out1, out2, out3, axis=1) + residual


def hourglass(x, scope, level, pooling, features=Architecture.hg_features, instance=False, training=False):
    def block(name, h):
        return conv_block(h, f"{scope}/{name}_{level}", features, features, instance, training)

    upper = block("b1", x)
    lower = block("b2", pool(x, pooling))
    lower = (hourglass(lower, scope, level - 1, pooling, features, instance, training) if level > 1
             else block("b2_plus", lower))
    lower = block("b3", lower)
    return upper + F.interpolate(lower, scale=(2, 2), mode="nearest")


# The defaults are the published networks' sizes, whose one home is Architecture's defaults.
def fan(x, num_modules=Architecture.num_modules, pooling=Architecture.pooling, all_outputs=False, training=False,
        hg_features=Architecture.hg_features, hg_depth=Architecture.hg_depth, instance_norm=Architecture.instance_norm,
        stem_kernel=Architecture.stem_kernel, stem_stride=Architecture.stem_stride, stem_pool=Architecture.stem_pool,
        num_landmarks=Architecture.num_landmarks):
    """Heatmaps (B, 68, 64, 64) of the last hourglass for crops ``x`` (B, 3, 256, 256) in [0, 1];
    with ``all_outputs`` the list of every hourglass's heatmaps. ``training`` makes the
    parameters learnable and BatchNorm use (and update) batch statistics."""
    block = partial(conv_block, instance=instance_norm, training=training)
    conv_ = partial(conv, training=training)
    h = conv_(x, "conv1", STEM_FEATURES, stem_kernel, stride=stem_stride, pad=stem_kernel // 2)
    h = F.relu(_norm(h, "bn1", instance_norm, training))
    h = block(h, "conv2", STEM_FEATURES, 128)
    if stem_pool > 1:
        h = pool(h, pooling, stem_pool)
    h = block(h, "conv3", 128, 128)
    previous = block(h, "conv4", 128, hg_features)

    outputs = []
    for i in range(num_modules):
        ll = hourglass(previous, f"m{i}", hg_depth, pooling, hg_features, instance_norm, training)
        ll = block(ll, f"top_m_{i}", hg_features, hg_features)
        ll = F.relu(_norm(conv_(ll, f"conv_last{i}", hg_features, 1), f"bn_end{i}", instance_norm, training))
        heatmaps = conv_(ll, f"l{i}", num_landmarks, 1)
        outputs.append(heatmaps)
        if i < num_modules - 1:
            previous = previous + conv_(ll, f"bl{i}", hg_features, 1) + conv_(heatmaps, f"al{i}", hg_features, 1)
    return outputs if all_outputs else outputs[-1]
