"""Open an NNabla ``.h5`` weight file, decide which network it fits from its parameter names
alone, and read (and check) its values when they are first needed.

Files written by our converter carry their architecture as root attributes. Files without
them (nnabla-examples' published ones) are recognised as :mod:`.identify` says, by name and
otherwise by what their parameters hold, as the converter recognises checkpoints.
"""
import dataclasses
import functools
import hashlib
from collections import OrderedDict
from typing import Dict, Optional

import numpy as np

from ..errors import CheckpointMismatchError
from ..files import sha256_of
from ..registry import ARCHITECTURES, CROP_CONVENTIONS, FAN, FAN_SIZES, KINDS, LANDMARK_TYPES, MODULE_COUNTS, POOLINGS, \
    RESNET_DEPTH, Architecture
from .h5 import read_h5, read_h5_names
from .identify import resolve_architecture
from .layout import IGNORED_SUFFIX, check_layout, check_values, describe, infer_network

ATTR_ARCH = "arch"
ATTR_KIND = "kind"
ATTR_MODULES = "num_modules"
ATTR_POOLING = "pooling"
ATTR_LANDMARKS = "landmarks"
ATTR_CROP = "crop"
ATTR_SOURCE = "source_file"
ATTR_SOURCE_SHA256 = "source_sha256"
# What messages call weights given as arrays, which have no file to name.
GIVEN_WEIGHTS = "the given weights"

# What each recorded attribute may hold (its type, its values): the registry's values for the
# Architecture field of the same name.
_RECORDED = {ATTR_KIND: (str, KINDS), ATTR_MODULES: (int, MODULE_COUNTS), ATTR_POOLING: (str, POOLINGS),
             ATTR_LANDMARKS: (str, LANDMARK_TYPES), ATTR_CROP: (str, CROP_CONVENTIONS)}
# A FAN's sizes (registry.FAN_SIZES), recorded under their field names; files without them
# (written before they existed) hold the published sizes, the fields' defaults.
_POSITIVE = range(1, 4097)
_SIZES = {name: (bool, (False, True)) if name == "instance_norm" else (int, _POSITIVE) for name in FAN_SIZES}


class Weights:
    """A network's architecture and its parameters: given, or in a file.

    From a file, the parameters are read and checked against the architecture on first use
    of ``params``: a backend that finds a model already made from this very file (by its
    ``sha256``) never needs them. Either ``params`` or ``path``, so that what ``sha256``
    names is always what ``params`` holds.
    """

    def __init__(self, arch: Architecture, params: Optional[Dict[str, np.ndarray]] = None,
                 path: Optional[str] = None):
        if (params is None) == (path is None):
            raise ValueError("Weights take parameters or a file, not both or neither")
        self.arch = arch
        self.path = path
        self._params = None if params is None else OrderedDict(params)

    @property
    def source(self) -> str:
        """What messages name these weights by: their file, or :data:`GIVEN_WEIGHTS`."""
        return self.path if self.path is not None else GIVEN_WEIGHTS

    @property
    def params(self) -> "OrderedDict[str, np.ndarray]":
        if self._params is None:
            params, _ = read_h5(self.path)
            params = OrderedDict((k, v) for k, v in params.items() if not k.endswith(IGNORED_SUFFIX))
            check_layout(params, self.arch.kind, self.arch.num_modules, self.path, self.arch)
            check_values(params, self.path)
            self._params = params
        return self._params

    @functools.cached_property
    def sha256(self) -> str:
        """The file's sha256; without a file, a digest of the parameters' names, shapes and values."""
        if self.path is not None:
            return sha256_of(self.path)
        digest = hashlib.sha256()
        for name, value in self.params.items():
            value = np.ascontiguousarray(value, dtype=np.float32)
            digest.update(f"{name}{value.shape}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()


def architecture_attrs(arch: Architecture) -> dict:
    attrs = {ATTR_ARCH: arch.name, ATTR_KIND: arch.kind, ATTR_MODULES: arch.num_modules,
             ATTR_POOLING: arch.pooling, ATTR_LANDMARKS: arch.landmarks, ATTR_CROP: arch.crop}
    attrs.update(arch.custom_sizes())  # files without them hold the published sizes
    return attrs


def _shown(value) -> str:
    """A recorded value as one short line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _architecture_from_attrs(attrs: dict, path: str) -> Optional[Architecture]:
    """The architecture the file's root attributes record, every one of them checked; None if
    it records none. A name the registry does not know must come with the fields to build it."""
    if ATTR_ARCH not in attrs:
        return None
    name = attrs[ATTR_ARCH]
    if not isinstance(name, str) or not name.strip():
        raise CheckpointMismatchError(f"{path}: attribute {ATTR_ARCH}={_shown(name)}: expected an architecture name")
    recorded = {}
    for key, (expected_type, allowed) in {**_RECORDED, **_SIZES}.items():
        if key not in attrs:
            continue
        value = attrs[key]
        if type(value) is not expected_type or value not in allowed:  # type() so that True is no module count
            expected = (f"a whole number from {allowed.start} to {allowed.stop - 1}" if isinstance(allowed, range)
                        else f"one of {', '.join(map(str, allowed))}")
            raise CheckpointMismatchError(f"{path}: attribute {key}={_shown(value)}: expected {expected}")
        recorded[key] = value
    known = ARCHITECTURES.get(name)
    if known is not None:
        return dataclasses.replace(known, **recorded)
    needed = [ATTR_KIND] if recorded.get(ATTR_KIND) == RESNET_DEPTH else list(_RECORDED)
    missing = [key for key in needed if key not in recorded]
    if missing:
        raise CheckpointMismatchError(
            f"{path}: records architecture {name!r}, which is not one of {', '.join(ARCHITECTURES)}, "
            f"without {', '.join(missing)} to build it (pass --arch to choose one)")
    return Architecture(name=name, **recorded)


def open_weights(path: str, kind: Optional[str] = None, num_modules: Optional[int] = None,
                 arch: Optional[str] = None) -> Weights:
    """The weights in ``path``, checked to be the network the caller needs from their names
    alone; their values are read on first use. ``kind`` (FAN or RESNET_DEPTH) and
    ``num_modules`` are what the caller needs; ``arch`` overrides what the file says about itself."""
    names, attrs = read_h5_names(path)
    names = [n for n in names if not n.endswith(IGNORED_SUFFIX)]
    found_kind, found_modules = infer_network(names, "/", path)

    # What the caller needs is checked first: no note on an assumed architecture precedes
    # the error that the file holds another network.
    wanted_modules = num_modules if found_kind == FAN else None
    if (kind is not None and found_kind != kind) or (wanted_modules is not None and found_modules != wanted_modules):
        raise CheckpointMismatchError(
            f"{path}: holds {describe(found_kind, found_modules)}, "
            f"but {describe(kind or found_kind, num_modules)} was asked for")
    # An architecture the caller names replaces what the file records, unread.
    recorded = None if arch is not None else _architecture_from_attrs(attrs, path)
    resolved = resolve_architecture(path, found_kind, found_modules, arch, recorded, doing="loading")
    return Weights(resolved, path=path)


def load_weights(path: str, kind: Optional[str] = None, num_modules: Optional[int] = None,
                 arch: Optional[str] = None) -> Weights:
    """Like :func:`open_weights`, with every value read and checked now."""
    weights = open_weights(path, kind, num_modules, arch)
    _ = weights.params
    return weights
