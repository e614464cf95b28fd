"""S3FD (Zhang et al., ICCV 2017), the face detector face-alignment uses by default, as an
NNabla graph.

A VGG-16 trunk, without resizing the image, feeds six detection heads whose strides are 4,
8, ..., 128 pixels. Each head gives, per cell, a face/background probability pair and four
box regressors for one square anchor four strides wide. The first head's background score is
the maximum of three background channels ("max-out"); the features of the first three heads
are L2-normalised per position and multiplied by a learnt scale per channel. Parameter names
follow face-alignment's module names (``conv1_1`` -> ``conv1_1/conv/{W,b}``, ``conv3_3_norm``
-> ``conv3_3_norm/scale``).
"""
import nnabla as nn
import nnabla.functions as F
from nnabla.initializer import ConstantInitializer

from .layers import conv

# (block, output channels, convolutions): VGG-16's five 3x3 blocks, each followed by a 2x2 max pool.
VGG_BLOCKS = (("conv1", 64, 2), ("conv2", 128, 2), ("conv3", 256, 3), ("conv4", 512, 3), ("conv5", 512, 3))
# Feature maps the heads read, finest first, and whether they are L2-normalised first.
HEAD_SOURCES = (("conv3_3", True), ("conv4_3", True), ("conv5_3", True), ("fc7", False), ("conv6_2", False),
                ("conv7_2", False))
STRIDES = (4, 8, 16, 32, 64, 128)  # pixels between anchors of each head
MAXOUT_BACKGROUND = 3  # background channels of the first head, reduced by their maximum
L2_EPS = 1e-10  # added to the norm, as face-alignment's L2Norm does


def l2_norm(x, scope):
    """``x`` divided by its L2 norm across channels, times a learnt scale per channel."""
    with nn.parameter_scope(scope):
        scale = nn.parameter.get_parameter_or_create("scale", (1, x.shape[1], 1, 1), ConstantInitializer(1.0),
                                                     need_grad=False)
    norm = F.pow_scalar(F.sum(x * x, axis=1, keepdims=True), 0.5) + L2_EPS
    return x / norm * scale


def _max_out(scores):
    """The first head's four channels (3 background, 1 face) as two: max background, face.
    Split rather than slices, so that no constant in the exported graph holds the map's size."""
    *background, face = F.split(scores, axis=1)
    best = background[0]
    for b in background[1:]:
        best = F.maximum2(best, b)
    return F.stack(best, face, axis=1)


def s3fd(x):
    """For a BGR image batch ``x`` (B, 3, H, W) with face-alignment's means already subtracted,
    the list ``[scores1, boxes1, ..., scores6, boxes6]``: per head, face/background
    probabilities (B, 2, h, w) with channel 1 the face, and box regressors (B, 4, h, w)."""
    features = {}
    h = x
    for block, channels, count in VGG_BLOCKS:
        for i in range(1, count + 1):
            h = F.relu(conv(h, f"{block}_{i}", channels, 3, pad=1))
        features[f"{block}_{count}"] = h
        h = F.max_pooling(h, (2, 2))
    # fc6 pads by 3 with no dilation, as face-alignment's port does: its map is 4 cells wider.
    h = F.relu(conv(h, "fc6", 1024, 3, pad=3))
    h = features["fc7"] = F.relu(conv(h, "fc7", 1024, 1))
    h = F.relu(conv(h, "conv6_1", 256, 1))
    h = features["conv6_2"] = F.relu(conv(h, "conv6_2", 512, 3, stride=2, pad=1))
    h = F.relu(conv(h, "conv7_1", 128, 1))
    features["conv7_2"] = F.relu(conv(h, "conv7_2", 256, 3, stride=2, pad=1))

    outputs = []
    for i, (name, normalised) in enumerate(HEAD_SOURCES):
        f = l2_norm(features[name], f"{name}_norm") if normalised else features[name]
        head = f"{name}_norm" if normalised else name
        scores = conv(f, f"{head}_mbox_conf", MAXOUT_BACKGROUND + 1 if i == 0 else 2, 3, pad=1)
        if i == 0:
            scores = _max_out(scores)
        outputs += [F.softmax(scores, axis=1), conv(f, f"{head}_mbox_loc", 4, 3, pad=1)]
    return outputs
