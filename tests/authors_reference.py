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


def package_root(folder):
    """The whole package, unpacked into ``folder``: put ``folder`` first on a subprocess's
    PYTHONPATH and its ``import face_alignment`` is the authors' (the comparisons of our
    face-alignment API against theirs run the same user code in two processes)."""
    with zipfile.ZipFile(_wheel()) as wheel:
        wheel.extractall(folder, [n for n in wheel.namelist() if n.startswith("face_alignment/")])
    return str(folder)
