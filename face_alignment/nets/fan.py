"""The Face Alignment Network (Bulat & Tzimiropoulos, ICCV 2017) as an NNabla graph.

A stem brings a 256x256 crop down to 64x64x256 features; each of ``num_modules`` stacked
hourglasses then predicts 68 heatmaps, and all but the last feed their prediction back into
the next one. The authors' 2D/3D-FAN use average pooling; ibug's 2-module variants use max.
"""
import nnabla.functions as F

from ..shapes import NUM_LANDMARKS
from .layers import batch_norm, conv, pool2x2

HOURGLASS_DEPTH = 4
FEATURES = 256


def conv_block(x, scope, in_channels, out_channels):
    """Pre-activation block whose three 3x3 convolutions (out/2, out/4, out/4 channels) are
    concatenated, plus a residual (through BN-ReLU-1x1 conv when the width changes)."""
    half, quarter = out_channels // 2, out_channels // 4
    out1 = conv(F.relu(batch_norm(x, f"{scope}/bn1")), f"{scope}/conv1", half, 3, pad=1, bias=False)
    out2 = conv(F.relu(batch_norm(out1, f"{scope}/bn2")), f"{scope}/conv2", quarter, 3, pad=1, bias=False)
    out3 = conv(F.relu(batch_norm(out2, f"{scope}/bn3")), f"{scope}/conv3", quarter, 3, pad=1, bias=False)
    residual = x
    if in_channels != out_channels:
        residual = conv(F.relu(batch_norm(x, f"{scope}/downsample/0")), f"{scope}/downsample/2",
                        out_channels, 1, bias=False)
    return F.concatenate(out1, out2, out3, axis=1) + residual


def hourglass(x, scope, level, pooling):
    def block(name, h):
        return conv_block(h, f"{scope}/{name}_{level}", FEATURES, FEATURES)

    upper = block("b1", x)
    lower = block("b2", pool2x2(x, pooling))
    lower = hourglass(lower, scope, level - 1, pooling) if level > 1 else block("b2_plus", lower)
    lower = block("b3", lower)
    return upper + F.interpolate(lower, scale=(2, 2), mode="nearest")


def fan(x, num_modules=4, pooling="avg", all_outputs=False):
    """Heatmaps (B, 68, 64, 64) of the last hourglass for crops ``x`` (B, 3, 256, 256) in [0, 1];
    with ``all_outputs`` the list of every hourglass's heatmaps."""
    h = F.relu(batch_norm(conv(x, "conv1", 64, 7, stride=2, pad=3), "bn1"))
    h = pool2x2(conv_block(h, "conv2", 64, 128), pooling)
    h = conv_block(h, "conv3", 128, 128)
    previous = conv_block(h, "conv4", 128, FEATURES)

    outputs = []
    for i in range(num_modules):
        ll = hourglass(previous, f"m{i}", HOURGLASS_DEPTH, pooling)
        ll = conv_block(ll, f"top_m_{i}", FEATURES, FEATURES)
        ll = F.relu(batch_norm(conv(ll, f"conv_last{i}", FEATURES, 1), f"bn_end{i}"))
        heatmaps = conv(ll, f"l{i}", NUM_LANDMARKS, 1)
        outputs.append(heatmaps)
        if i < num_modules - 1:
            previous = previous + conv(ll, f"bl{i}", FEATURES, 1) + conv(heatmaps, f"al{i}", FEATURES, 1)
    return outputs if all_outputs else outputs[-1]
