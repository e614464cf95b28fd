"""MediaPipe's BlazeFace face detectors (Bazarevsky et al., 2019) as NNabla graphs.

Three variants, each a network of "BlazeBlocks" (3x3 depthwise convolution, 1x1 convolution,
residual, ReLU) that predicts, for every SSD anchor, one score logit and 16 regressors (box
centre offset and size, then six keypoints):

- ``short_range``: 128x128 input, 896 anchors on 16x16 and 8x8 grids (MediaPipe's "front"
  model: the same file);
- ``back``: 256x256 input, 896 anchors, a deeper backbone for smaller faces;
- ``full_range``: 192x192 input, 2304 anchors on one 48x48 grid fed by a feature pyramid;
  its blocks are "double" (depthwise, 1x1 down, ReLU, depthwise, 1x1 up).

Parameter scopes are the layer names of MediaPipe's ``.tflite`` files (``conv2d_5``,
``depthwise_conv2d_3``, ``regressor_8``...), numbered in the order the layers are made here,
which is the order Keras numbered them in. Convolutions pad as TensorFlow's "SAME" does
(for stride 2 on an even size: nothing before, one pixel after). The graph runs NCHW on
inputs in [-1, 1] and returns the model's own outputs: regressors (B, anchors, 16) and score
logits (B, anchors, 1), anchors in the order of the ``.tflite`` (row, column, anchor).
"""
from collections import OrderedDict
from typing import Tuple

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF

# Input side in pixels, per variant.
INPUT_SIZES = {"short_range": 128, "full_range": 192, "back": 256}
NUM_COORDS = 16


class _LayerNames:
    """Keras's automatic layer names: ``conv2d``, ``conv2d_1``, ... counted per kind."""

    def __init__(self):
        self._counts = {}

    def __call__(self, kind: str) -> str:
        n = self._counts.get(kind, 0)
        self._counts[kind] = n + 1
        return kind if n == 0 else f"{kind}_{n}"


def _same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after) of one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _padded(x, kernel: int, stride: int):
    """(x padded where TensorFlow pads asymmetrically, symmetric pad left to the convolution)."""
    (top, bottom), (left, right) = (_same_padding(s, kernel, stride) for s in x.shape[2:])
    if top == bottom and left == right:
        return x, (top, left)
    return F.pad(x, (top, bottom, left, right)), (0, 0)


def conv(x, scope: str, out_channels: int, kernel: int = 1, stride: int = 1):
    x, pad = _padded(x, kernel, stride)
    with nn.parameter_scope(scope):
        return PF.convolution(x, out_channels, (kernel, kernel), pad=pad, stride=(stride, stride),
                              fix_parameters=True)


def depthwise(x, scope: str, stride: int = 1):
    x, pad = _padded(x, 3, stride)
    with nn.parameter_scope(scope):
        return PF.depthwise_convolution(x, (3, 3), pad=pad, stride=(stride, stride), fix_parameters=True)


def _shortcut(x, out_channels: int, stride: int):
    """The residual path: 2x2 max pooling when the block halves the size, zero channels
    appended when it widens."""
    if stride == 2:
        x = F.max_pooling(x, (2, 2))
    extra = out_channels - x.shape[1]
    return F.pad(x, (0, extra, 0, 0, 0, 0)) if extra else x


def blaze_block(x, names, out_channels: int, stride: int = 1, mid_channels: int = 0):
    """One BlazeBlock; with ``mid_channels`` the double form (squeeze to mid, ReLU, expand)."""
    h = depthwise(x, names("depthwise_conv2d"), stride)
    if mid_channels:
        h = F.relu(conv(h, names("conv2d"), mid_channels))
        h = depthwise(h, names("depthwise_conv2d"))
    h = conv(h, names("conv2d"), out_channels)
    # In place: the sum and its ReLU are fresh buffers (NNabla's CPU element-wise ops are slow).
    return F.relu(F.add2(h, _shortcut(x, out_channels, stride), inplace=True), inplace=True)


def _anchor_major(x, coords: int):
    """(B, anchors*coords, H, W) -> (B, H*W*anchors, coords), the .tflite's NHWC order."""
    b = x.shape[0]
    return F.reshape(F.transpose(x, (0, 2, 3, 1)), (b, -1, coords))


def _two_grid_heads(fine, coarse, classifiers, regressors):
    """Scores and regressors of the 896-anchor models: 2 anchors per cell of the fine grid,
    6 per cell of the coarse one."""
    c1 = conv(fine, classifiers[0], 2)
    c2 = conv(coarse, classifiers[1], 6)
    r1 = conv(fine, regressors[0], 2 * NUM_COORDS)
    r2 = conv(coarse, regressors[1], 6 * NUM_COORDS)
    scores = F.concatenate(_anchor_major(c1, 1), _anchor_major(c2, 1), axis=1)
    boxes = F.concatenate(_anchor_major(r1, NUM_COORDS), _anchor_major(r2, NUM_COORDS), axis=1)
    return boxes, scores


def short_range(x):
    names = _LayerNames()
    h = F.relu(conv(x, names("conv2d"), 24, kernel=5, stride=2))
    for out, stride in ((24, 1), (28, 1), (32, 2), (36, 1), (42, 1), (48, 2),
                        (56, 1), (64, 1), (72, 1), (80, 1), (88, 1)):
        h = blaze_block(h, names, out, stride)
    fine = h  # 16x16x88
    for out, stride in ((96, 2), (96, 1), (96, 1), (96, 1), (96, 1)):
        h = blaze_block(h, names, out, stride)
    return _two_grid_heads(fine, h, ("classificator_8", "classificator_16"), ("regressor_8", "regressor_16"))


def back(x):
    names = _LayerNames()
    h = F.relu(conv(x, names("conv2d"), 24, kernel=5, stride=2))
    for out, stride in ((24, 1),) * 7 + ((24, 2),) + ((24, 1),) * 7 + ((48, 2),) + ((48, 1),) * 7 \
            + ((96, 2),) + ((96, 1),) * 7:
        h = blaze_block(h, names, out, stride)
    fine = h  # 16x16x96
    # The last block has no residual.
    coarse = depthwise(h, "separable_conv2d__xeno_compat__depthwise", stride=2)
    coarse = F.relu(conv(coarse, "separable_conv2d", 96))
    return _two_grid_heads(fine, coarse, ("classificator_16", "classificator_32"),
                           ("regressor_16", "regressor_32"))


def _top_down(top, lateral, names, channels: int):
    """Feature pyramid step: the coarser map, reduced and upsampled 2x (bilinear, half-pixel
    centres as TFLite's RESIZE_BILINEAR), plus the finer map reduced; no ReLU after the sum."""
    top = F.relu(conv(top, names("conv2d"), channels))
    lateral = F.relu(conv(lateral, names("conv2d"), channels))
    up = F.interpolate(top, output_size=lateral.shape[2:], mode="linear", align_corners=False, half_pixel=True)
    return lateral + up


def full_range(x):
    names = _LayerNames()
    h = F.relu(conv(x, names("conv2d"), 32, kernel=3, stride=2))
    features = []
    # (mid, out, stride) per double block; a feature map is kept after each 48, 24 and 12 px stage.
    stages = (((8, 32, 1), (8, 32, 1), (12, 48, 2), (12, 48, 1), (16, 64, 1)),
              ((24, 96, 2), (32, 128, 1), (32, 128, 1)),
              ((36, 144, 2), (48, 192, 1), (64, 256, 1)),
              ((96, 384, 2), (96, 384, 1), (96, 384, 1), (96, 384, 1)))
    for stage in stages:
        for mid, out, stride in stage:
            h = blaze_block(h, names, out, stride, mid)
        features.append(h)
    for lateral, channels, blocks in ((features[2], 96, 2), (features[1], 64, 2), (features[0], 48, 1)):
        h = _top_down(h, lateral, names, channels)
        for _ in range(blocks):
            h = blaze_block(h, names, channels, 1, channels // 2)
    scores = _anchor_major(conv(h, "classifier_face_4", 1), 1)
    boxes = _anchor_major(conv(h, "regressor_face_4", NUM_COORDS), NUM_COORDS)
    return boxes, scores


_BUILDERS = {"short_range": short_range, "full_range": full_range, "back": back}


def blazeface(x, variant: str):
    """(regressors (B, N, 16), score logits (B, N, 1)) for inputs ``x`` (B, 3, S, S) in [-1, 1],
    S = INPUT_SIZES[variant]."""
    return _BUILDERS[variant](x)


def parameter_shapes(variant: str) -> "OrderedDict[str, Tuple[int, ...]]":
    """Every parameter the graph of ``variant`` reads, in the order its layers are made."""
    size = INPUT_SIZES[variant]
    with nn.parameter_scope("", OrderedDict()), nn.auto_forward(False):
        blazeface(nn.Variable((1, 3, size, size)), variant)
        made = nn.get_parameters(grad_only=False)
    return OrderedDict((name, tuple(v.shape)) for name, v in made.items())
