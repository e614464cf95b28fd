"""ResNetDepth: the authors' regressor of the 68 landmarks' depth for 3D-FAN.

A ResNet-152 layout (bottleneck blocks [3, 8, 36, 3], stride on the 3x3 convolution) whose
input is the 256x256 crop stacked with 68 heatmaps rendered at the 2D landmarks.
"""
import nnabla.functions as F

from ..shapes import NUM_LANDMARKS, RGB_CHANNELS
from .layers import affine, batch_norm, conv

LAYERS = (3, 8, 36, 3)
EXPANSION = 4
IN_CHANNELS = RGB_CHANNELS + NUM_LANDMARKS  # the crop, then one Gaussian map per landmark


def bottleneck(x, scope, in_channels, planes, stride):
    out = F.relu(batch_norm(conv(x, f"{scope}/conv1", planes, 1, bias=False), f"{scope}/bn1"))
    out = F.relu(batch_norm(conv(out, f"{scope}/conv2", planes, 3, stride=stride, pad=1, bias=False),
                            f"{scope}/bn2"))
    out = batch_norm(conv(out, f"{scope}/conv3", planes * EXPANSION, 1, bias=False), f"{scope}/bn3")
    residual = x
    if stride != 1 or in_channels != planes * EXPANSION:
        residual = batch_norm(conv(x, f"{scope}/downsample/0", planes * EXPANSION, 1, stride=stride, bias=False),
                              f"{scope}/downsample/1")
    return F.relu(out + residual)


def resnet_depth(x):
    """Depth (B, 68) for inputs ``x`` (B, 71, 256, 256): crop in [0, 1] then heatmaps."""
    h = F.relu(batch_norm(conv(x, "conv1", 64, 7, stride=2, pad=3, bias=False), "bn1"))
    # Zero padding equals torch's -inf padding here: the input is a ReLU output.
    h = F.max_pooling(h, (3, 3), stride=(2, 2), pad=(1, 1))
    channels = 64
    for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), LAYERS), start=1):
        for b in range(blocks):
            stride = 2 if (b == 0 and layer > 1) else 1
            h = bottleneck(h, f"layer{layer}/{b}", channels, planes, stride)
            channels = planes * EXPANSION
    h = F.average_pooling(h, (7, 7))
    return affine(F.reshape(h, (h.shape[0], -1)), "fc", NUM_LANDMARKS)
