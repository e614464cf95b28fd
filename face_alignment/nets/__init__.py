"""NNabla graphs of FAN and ResNetDepth: plain functions over nn.parameter_scope."""
from ..registry import FAN, RESNET_DEPTH
from ..shapes import RGB_CHANNELS
from .fan import fan
from .resnet_depth import IN_CHANNELS, resnet_depth


def build_graph(kind: str, x, **fan_options):
    """The output variable of network ``kind`` (registry.FAN or RESNET_DEPTH) for input ``x``,
    with parameters from the current parameter scope; ``fan_options`` are :func:`fan`'s
    (an Architecture's ``graph_options()``, ``training``, ``all_outputs``)."""
    if kind == FAN:
        return fan(x, **fan_options)
    if kind == RESNET_DEPTH:
        return resnet_depth(x)
    raise ValueError(f"unknown network kind {kind!r}")


def input_channels(kind: str) -> int:
    """Channels of the network's input: RGB for FAN, RGB plus landmark maps for ResNetDepth."""
    return IN_CHANNELS if kind == RESNET_DEPTH else RGB_CHANNELS


__all__ = ["build_graph", "fan", "input_channels", "resnet_depth"]
