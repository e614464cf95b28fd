"""NNabla graphs of FAN and ResNetDepth: plain functions over nn.parameter_scope."""
from .fan import fan
from .resnet_depth import resnet_depth

__all__ = ["fan", "resnet_depth"]
