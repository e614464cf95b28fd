"""Which parameters a network has, and how their names map to PyTorch state-dict keys.

The graph functions in ``face_alignment.nets`` are the single source of truth: the expected
layout is read off a graph built once in a throwaway parameter scope.
"""
import functools
import re
from collections import OrderedDict
from typing import Dict, Iterable, Optional, Tuple

import nnabla as nn
import numpy as np

from ..errors import CheckpointMismatchError, WeightsFileError
from ..nets import build_graph, input_channels
from ..registry import FAN, RESNET_DEPTH, Architecture
from ..shapes import CROP_SIZE

# BatchNorm's step counter is training state, absent from nnabla-examples' layout.
IGNORED_SUFFIX = "num_batches_tracked"

Shape = Tuple[int, ...]
_LEAF_ORDER = ("W", "b", "gamma", "beta", "mean", "var")


@functools.lru_cache(maxsize=None)
def expected_parameters(kind: str, num_modules: int = Architecture.num_modules, arch: Optional[Architecture] = None) -> Dict[str, Shape]:
    """Parameter names and shapes, in creation order (the order of the published files); those
    of ``arch`` if given (its sizes), else of the published ``kind`` with ``num_modules``."""
    options = {"num_modules": num_modules} if arch is None else arch.graph_options()
    size = CROP_SIZE if arch is None else arch.input_size
    scope = OrderedDict()
    with nn.parameter_scope("", scope), nn.auto_forward(False):
        x = nn.Variable((1, input_channels(kind), size, size))
        build_graph(kind, x, **options)
        params = nn.get_parameters(grad_only=False)
    # Layers in graph order; within a layer, PyTorch's order (weight, bias, running stats),
    # which is the order of the published files.
    layers = OrderedDict()
    for name, v in params.items():
        layer, leaf = name.rsplit("/", 1)
        layers.setdefault(layer, []).append((_LEAF_ORDER.index(leaf), name, tuple(v.shape)))
    return OrderedDict((name, shape) for group in layers.values() for _, name, shape in sorted(group))


def describe(kind: str, num_modules: Optional[int]) -> str:
    if kind == RESNET_DEPTH:
        return "a ResNetDepth"
    return "a FAN" if num_modules is None else f"a {num_modules}-module FAN"


def infer_network(names: Iterable[str], separator: str, source: str) -> Tuple[str, Optional[int]]:
    """(kind, number of hourglass modules) from parameter names, whichever naming they use."""
    names = list(names)
    sep = re.escape(separator)
    modules = {int(m.group(1)) for n in names for m in [re.match(r"l(\d+)" + sep, n)] if m}
    if any(n.startswith("layer1" + separator) for n in names) and any(
            n.startswith("fc" + separator) for n in names):
        return RESNET_DEPTH, None
    if any(n.startswith("m0" + separator) for n in names) and modules:
        if modules != set(range(len(modules))):
            raise CheckpointMismatchError(
                f"{source}: hourglass heads {sorted(modules)} are not numbered 0..N-1")
        return FAN, len(modules)
    sample = ", ".join(names[:4]) if names else "nothing"
    raise CheckpointMismatchError(
        f"{source}: not a FAN or ResNetDepth checkpoint (holds {len(names)} tensors, e.g. {sample})")


def check_layout(params: Dict[str, np.ndarray], kind: str, num_modules: Optional[int], source: str,
                 arch: Optional[Architecture] = None):
    """Raise CheckpointMismatchError unless ``params`` holds exactly the expected names and shapes
    (of ``arch`` if given)."""
    expected = expected_parameters(kind, num_modules or 4, arch)
    given = {k: v for k, v in params.items() if not k.endswith(IGNORED_SUFFIX)}
    missing = [k for k in expected if k not in given]
    unused = [k for k in given if k not in expected]
    wrong = [f"{k} {tuple(given[k].shape)} (expected {expected[k]})"
             for k in expected if k in given and tuple(given[k].shape) != expected[k]]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unused), ("wrong shape", wrong)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointMismatchError(
            f"{source}: does not fit {describe(kind, num_modules)} ({'; '.join(problems)})")


def check_values(params: Dict[str, np.ndarray], source: str):
    """Raise WeightsFileError for values no trained network holds: NaN or infinity anywhere,
    a negative BatchNorm variance. Either would make every output NaN."""
    for name, value in params.items():
        if not np.isfinite(value).all():
            raise WeightsFileError(f"{source}: parameter {name} holds NaN or infinite values; the weights are broken")
        if name.rsplit("/", 2)[-2:] == ["bn", "var"] and value.size and value.min() < 0:
            raise WeightsFileError(f"{source}: parameter {name} (a BatchNorm variance) holds negative values "
                                   f"(down to {value.min():.3g}); the weights are broken")


# nnabla (layer, leaf) -> PyTorch parameter or buffer name
_TORCH_LEAF = {
    ("conv", "W"): "weight", ("conv", "b"): "bias",
    ("bn", "gamma"): "weight", ("bn", "beta"): "bias",
    ("bn", "mean"): "running_mean", ("bn", "var"): "running_var",
    ("affine", "W"): "weight", ("affine", "b"): "bias",
}


def torch_key(name: str) -> str:
    """``conv2/downsample/0/bn/gamma`` -> ``conv2.downsample.0.weight``."""
    scope, layer, leaf = name.rsplit("/", 2)
    return f"{scope.replace('/', '.')}.{_TORCH_LEAF[(layer, leaf)]}"


def to_torch(name: str, array: np.ndarray) -> np.ndarray:
    """An nnabla parameter in the layout PyTorch keeps it in (the inverse of to_nnabla)."""
    layer = name.rsplit("/", 2)[1]
    if layer == "bn":
        return array.reshape(-1)
    if layer == "affine" and name.endswith("/W"):
        return array.T
    return array


def to_nnabla(name: str, tensor: np.ndarray) -> np.ndarray:
    """A PyTorch tensor in the layout nnabla keeps it in."""
    layer = name.rsplit("/", 2)[1]
    if layer == "bn":
        return tensor.reshape(1, -1, 1, 1)
    if layer == "affine" and name.endswith("/W"):
        return tensor.T  # torch.nn.Linear keeps (out, in); PF.affine keeps (in, out)
    return tensor
