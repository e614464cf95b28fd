"""The authors' own code (face-alignment 1.5.0), loaded from its wheel for parity tests.

That package imports as ``face_alignment``, like this project, so it is never installed:
`scripts/setup.sh` keeps its wheel in ``.reference/`` and the files we compare against
(``models/fan.py``, ``models/resnet.py``, ``utils.py``) are executed from the wheel under
module names of their own.
"""
import functools
import glob
import os
import sys
import types
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEEL_PATTERN = os.path.join(ROOT, ".reference", "face_alignment-1.5.0-*.whl")


def _wheel():
    found = sorted(glob.glob(WHEEL_PATTERN))
    if not found:
        raise FileNotFoundError(
            f"no {WHEEL_PATTERN}: run scripts/setup.sh, which downloads the authors' wheel")
    return found[0]


def _load(member, module_name, patch=None):
    with zipfile.ZipFile(_wheel()) as wheel:
        source = wheel.read(member).decode("utf-8")
    module = types.ModuleType(module_name)
    module.__file__ = f"{_wheel()}/{member}"
    if patch:
        source = patch(source)
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    sys.modules[module_name] = module
    return module


@functools.lru_cache(maxsize=None)
def fan_module(pooling="avg"):
    """``models/fan.py``; with ``pooling="max"`` every average pooling is swapped for max
    pooling, which is ibug's ``use_avg_pool=False`` variant of the same network."""
    patch = None
    if pooling == "max":
        def patch(source):
            return source.replace("F.avg_pool2d(", "F.max_pool2d(")
    return _load("face_alignment/models/fan.py", f"authors_fan_{pooling}", patch)


@functools.lru_cache(maxsize=None)
def resnet_module():
    return _load("face_alignment/models/resnet.py", "authors_resnet")


@functools.lru_cache(maxsize=None)
def utils_module():
    return _load("face_alignment/utils.py", "authors_utils")


@functools.lru_cache(maxsize=None)
def package_module(dotted):
    """A module of the authors' package by its dotted name inside it ("detection.sfd"),
    imported from the wheel with its relative imports working: the wheel's
    ``face_alignment/`` folder becomes the package ``authors_face_alignment``."""
    import importlib

    name = "authors_face_alignment"
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(_wheel(), "face_alignment")]  # zipimport reads inside the wheel
        sys.modules[name] = package
    return importlib.import_module(f"{name}.{dotted}")


def _stand_in_for_torchvision():
    """face-alignment's RetinaFace imports torchvision only for ``IntermediateLayerGetter``
    (which is not installed here, and would pin torch). This stand-in does what that class
    does, for a backbone used as RetinaFace uses it: keep the children up to the last
    requested one (so the state dict has exactly their keys), run them in order and return
    the requested ones' outputs under their new names."""
    from collections import OrderedDict

    import torch.nn as nn

    class IntermediateLayerGetter(nn.ModuleDict):
        def __init__(self, model, return_layers):
            wanted, layers = dict(return_layers), OrderedDict()
            for name, child in model.named_children():
                layers[name] = child
                wanted.pop(name, None)
                if not wanted:
                    break
            super().__init__(layers)
            self.return_layers = dict(return_layers)

        def forward(self, x):
            out = OrderedDict()
            for name, child in self.items():
                x = child(x)
                if name in self.return_layers:
                    out[self.return_layers[name]] = x
            return out

    names = ("torchvision", "torchvision.models", "torchvision.models._utils")
    modules = [types.ModuleType(n) for n in names]
    modules[0].models, modules[1]._utils = modules[1], modules[2]
    modules[2].IntermediateLayerGetter = IntermediateLayerGetter
    for name, module in zip(names, modules):
        sys.modules.setdefault(name, module)


def retinaface_module(name):
    """``detection.retinaface.<name>`` of the authors' package (torchvision stood in for)."""
    try:
        import torchvision.models._utils  # noqa: F401
    except ImportError:
        _stand_in_for_torchvision()
    return package_module(f"detection.retinaface.{name}")


def package_root(folder):
    """The whole package, unpacked into ``folder``: put ``folder`` first on a subprocess's
    PYTHONPATH and its ``import face_alignment`` is the authors' (the comparisons of our
    face-alignment API against theirs run the same user code in two processes)."""
    with zipfile.ZipFile(_wheel()) as wheel:
        wheel.extractall(folder, [n for n in wheel.namelist() if n.startswith("face_alignment/")])
    return str(folder)
