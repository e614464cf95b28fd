"""Load an NNabla ``.h5`` weight file and decide which network it fits.

Files written by our converter carry their architecture as root attributes. Files without
them (nnabla-examples' published ones) are recognised by file name, and otherwise by their
parameter names: the number of hourglass modules can be counted, the pooling cannot, so such
files are taken to follow the authors' FAN (average pooling, authors' crop).
"""
import dataclasses
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import CheckpointMismatchError
from ..registry import ARCHITECTURES, FAN, RESNET_DEPTH, Architecture, architecture, weights_for_file
from .h5 import read_h5
from .layout import IGNORED_SUFFIX, check_layout, describe, infer_network

ATTR_ARCH = "arch"
ATTR_KIND = "kind"
ATTR_MODULES = "num_modules"
ATTR_POOLING = "pooling"
ATTR_LANDMARKS = "landmarks"
ATTR_CROP = "crop"
ATTR_SOURCE = "source_file"
ATTR_SOURCE_SHA256 = "source_sha256"


@dataclass
class LoadedWeights:
    path: str
    arch: Architecture
    params: "OrderedDict[str, np.ndarray]"


def architecture_attrs(arch: Architecture) -> dict:
    return {ATTR_ARCH: arch.name, ATTR_KIND: arch.kind, ATTR_MODULES: arch.num_modules,
            ATTR_POOLING: arch.pooling, ATTR_LANDMARKS: arch.landmarks, ATTR_CROP: arch.crop}


def _architecture_from_attrs(attrs: dict) -> Optional[Architecture]:
    if ATTR_ARCH not in attrs:
        return None
    known = ARCHITECTURES.get(attrs[ATTR_ARCH])
    fields = {f.name for f in dataclasses.fields(Architecture)}
    recorded = {k: attrs[k] for k in (ATTR_KIND, ATTR_MODULES, ATTR_POOLING, ATTR_LANDMARKS, ATTR_CROP)
                if k in attrs and k in fields}
    if ATTR_MODULES in recorded:
        recorded[ATTR_MODULES] = int(recorded[ATTR_MODULES])
    if known is not None:
        return dataclasses.replace(known, **recorded)
    return Architecture(name=str(attrs[ATTR_ARCH]), **recorded)


def load_weights(path: str, kind: Optional[str] = None, num_modules: Optional[int] = None,
                 arch: Optional[str] = None) -> LoadedWeights:
    """Read and validate ``path``. ``kind`` (FAN or RESNET_DEPTH) and ``num_modules`` are what
    the caller needs; ``arch`` overrides what the file says about itself."""
    params, attrs = read_h5(path)
    params = OrderedDict((k, v) for k, v in params.items() if not k.endswith(IGNORED_SUFFIX))
    found_kind, found_modules = infer_network(params, "/", path)

    if arch is not None:
        resolved = architecture(arch)
    else:
        resolved = _architecture_from_attrs(attrs)
        if resolved is None:
            known = weights_for_file(os.path.basename(path))
            if known is not None and known.architecture.kind == found_kind:
                resolved = known.architecture
            elif found_kind == RESNET_DEPTH:
                resolved = ARCHITECTURES["ResNetDepth"]
            else:
                resolved = dataclasses.replace(ARCHITECTURES["2DFAN4"], name=f"FAN{found_modules}",
                                               num_modules=found_modules, description="")

    wanted_kind = kind or resolved.kind
    wanted_modules = num_modules if num_modules is not None else resolved.num_modules
    if found_kind != wanted_kind or (found_kind == FAN and found_modules != wanted_modules):
        raise CheckpointMismatchError(
            f"{path}: holds {describe(found_kind, found_modules)}, "
            f"but {describe(wanted_kind, wanted_modules)} was asked for")
    if resolved.kind != found_kind or (found_kind == FAN and resolved.num_modules != found_modules):
        raise CheckpointMismatchError(
            f"{path}: holds {describe(found_kind, found_modules)}, not the {resolved.name} "
            f"({describe(resolved.kind, resolved.num_modules)})")
    check_layout(params, found_kind, found_modules, path)
    return LoadedWeights(path, resolved, params)
