"""ibug's own FAN code (hhj1897/face_alignment), loaded by path for parity tests.

``../shared/reference/ibug-face-alignment/`` holds their ``fan.py``, ``fan_predictor.py`` and
``utils.py`` (MIT), which are never copied into the project. ``fan_predictor.py`` imports
``.fan``, so the folder is loaded as a package of a name of its own, ``ibug_reference_code``,
which cannot be confused with this project's ``face_alignment`` or with this helper.
"""
import functools
import importlib
import os
import sys
import types
from types import SimpleNamespace

import torch

from conftest import SHARED

FOLDER = os.path.normpath(os.path.join(SHARED, "reference", "ibug-face-alignment"))
PACKAGE = "ibug_reference_code"
CONFIGURATIONS = ("2dfan2", "2dfan2_alt", "2dfan4")


@functools.lru_cache(maxsize=None)
def package() -> types.ModuleType:
    """The folder as a package (it has no ``__init__.py``): its modules import one another."""
    if not os.path.isfile(os.path.join(FOLDER, "fan_predictor.py")):
        raise FileNotFoundError(f"no ibug reference code in {FOLDER}")
    module = types.ModuleType(PACKAGE)
    module.__path__ = [FOLDER]
    module.__file__ = os.path.join(FOLDER, "fan_predictor.py")
    sys.modules[PACKAGE] = module
    return module


def fan_module() -> types.ModuleType:
    package()
    return importlib.import_module(PACKAGE + ".fan")


def predictor_module() -> types.ModuleType:
    package()
    return importlib.import_module(PACKAGE + ".fan_predictor")


def model_config(name: str) -> SimpleNamespace:
    """The network configuration ibug ships for ``name`` (2dfan2, 2dfan2_alt, 2dfan4)."""
    return predictor_module().FANPredictor.get_model(name).config


def fan(name: str) -> torch.nn.Module:
    """An untrained FAN in ibug's configuration ``name``, built by their fan.py."""
    return fan_module().FAN(config=model_config(name))


def predictor(name: str, weights: str):
    """Their FANPredictor on the CPU for the state dict at ``weights``, with their decoding
    defaults; not traced, so that hooks on its network see every call."""
    cls = predictor_module().FANPredictor
    return cls(device="cpu", model=SimpleNamespace(weights=weights, config=model_config(name)),
               config=cls.create_config(use_jit=False))
