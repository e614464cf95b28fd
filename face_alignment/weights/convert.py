"""Convert the authors' (and ibug's) PyTorch weights to NNabla ``.h5`` files.

Reads every form the weights were shipped in: legacy pre-zip ``torch.save`` state dicts
(``.pth.tar``), the depth checkpoint ``{"state_dict": {"module.…": …}}``, TorchScript archives
(``.zip``, face-alignment 1.3.x) and plain state dicts (ibug's ``.pth``). Conversion is strict:
every source tensor is used exactly once and every parameter of the graph is filled.
Needs torch, which inference does not.
"""
import os
import tarfile
import zipfile
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import CheckpointMismatchError, FaceAlignmentError, WeightsFileError
from ..files import check_not_there, not_a_file, sha256_of
from ..registry import FORMAT_TORCH, FORMAT_TORCH_DEPTH, FORMAT_TORCH_LEGACY, FORMAT_TORCHSCRIPT, Architecture
from .h5 import write_h5
from .identify import resolve_architecture
from .layout import IGNORED_SUFFIX, check_layout, check_values, describe, expected_parameters, infer_network, \
    to_nnabla, torch_key
from .loading import ATTR_SOURCE, ATTR_SOURCE_SHA256, architecture_attrs
from .sniff import not_weights


def _torch():
    try:
        import torch
    except ImportError:
        raise FaceAlignmentError(
            "reading PyTorch checkpoints needs torch: pip install -e '.[convert]'") from None
    return torch


# torch.save's pre-zip format starts with this number, pickled: after the pickle protocol
# (and, from protocol 4, a frame header) come LONG1, its length and its 10 bytes.
_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _is_torchscript(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n for n in z.namelist())


def _container(path: str) -> Optional[str]:
    """The format the file's first bytes say, for torch to read; None if they are none of torch's."""
    if _is_torchscript(path):
        return FORMAT_TORCHSCRIPT
    with open(path, "rb") as f:
        head = f.read(32)
    if head.startswith(b"PK"):  # a zip archive, maybe cut short: torch says what is wrong
        return FORMAT_TORCH
    if (head.startswith(b"\x80") and _LEGACY_MAGIC in head) or tarfile.is_tarfile(path):
        return FORMAT_TORCH_LEGACY  # the tar form is torch's oldest, which torch.load still reads
    return None


def is_torch_checkpoint(path: str) -> bool:
    """Whether the file at ``path`` is in one of torch's formats (by its first bytes)."""
    return os.path.isfile(path) and _container(path) is not None


def read_torch_checkpoint(path: str, allow_pickle: bool = False) -> Tuple["OrderedDict[str, np.ndarray]", str]:
    """(state dict as float32 arrays with ``module.`` prefixes removed, format name)."""
    if not os.path.isfile(path):
        raise WeightsFileError(not_a_file(path, "file"))
    # Only a file in one of torch's formats reaches torch.load: anything else would fail its
    # weights-only check and be taken for a checkpoint holding Python objects.
    fmt = _container(path)
    if fmt is None:
        raise WeightsFileError(not_weights(path, "a PyTorch checkpoint") or
                               f"{path}: not a PyTorch checkpoint (neither a zip archive nor torch's legacy format)")
    torch = _torch()
    try:
        if fmt == FORMAT_TORCHSCRIPT:
            loaded = torch.jit.load(path, map_location="cpu").state_dict()
        else:
            try:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - torch raises many types for arbitrary objects
                if "weights_only" not in str(e) and "Weights only" not in str(e):
                    raise
                if not allow_pickle:
                    raise WeightsFileError(
                        f"{path}: holds Python objects besides tensors; if you trust the file, "
                        "convert it with --allow-pickle") from None
                loaded = torch.load(path, map_location="cpu", weights_only=False)
    except FaceAlignmentError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file fails in many ways
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsFileError(f"{path}: not a readable PyTorch checkpoint ({detail})") from None

    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded, fmt = loaded["state_dict"], (FORMAT_TORCH_DEPTH if fmt == FORMAT_TORCH_LEGACY else fmt)
    if not isinstance(loaded, dict):
        raise WeightsFileError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    state = OrderedDict()
    for key, value in loaded.items():
        if not torch.is_tensor(value):
            raise WeightsFileError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key[len("module."):] if key.startswith("module.") else key] = \
            value.detach().cpu().float().numpy()
    return state, fmt


def torch_to_nnabla(state: Dict[str, np.ndarray], kind: str, num_modules: Optional[int],
                    source: str) -> "OrderedDict[str, np.ndarray]":
    """Map a PyTorch state dict onto the graph's parameters, using each tensor exactly once."""
    unused = {k for k in state if not k.endswith(IGNORED_SUFFIX)}
    params = OrderedDict()
    for name in expected_parameters(kind, num_modules or 4):
        key = torch_key(name)
        if key in state:
            params[name] = to_nnabla(name, state[key])
            unused.discard(key)
    if unused:
        listed = sorted(unused)
        more = f" and {len(listed) - 3} more" if len(listed) > 3 else ""
        raise CheckpointMismatchError(
            f"{source}: tensors unused by {describe(kind, num_modules)}: {', '.join(listed[:3])}{more}")
    check_layout(params, kind, num_modules, source)  # names anything missing or misshapen
    check_values(params, source)
    return params


def convert_checkpoint(source: str, destination: str, arch: Optional[str] = None, force: bool = False,
                       allow_pickle: bool = False, expect_kind: Optional[str] = None) -> Architecture:
    """Convert ``source`` to the NNabla ``.h5`` ``destination``; returns its architecture."""
    check_not_there(destination, force)
    state, _ = read_torch_checkpoint(source, allow_pickle)
    kind, num_modules = infer_network(state, ".", source)
    if expect_kind is not None and kind != expect_kind:
        raise CheckpointMismatchError(
            f"{source}: holds {describe(kind, num_modules)}, but {describe(expect_kind, 4)} was expected")
    resolved = resolve_architecture(source, kind, num_modules, arch, doing="converting")
    params = torch_to_nnabla(state, kind, num_modules, source)
    attrs = architecture_attrs(resolved)
    attrs[ATTR_SOURCE] = os.path.basename(source)
    attrs[ATTR_SOURCE_SHA256] = sha256_of(source)
    write_h5(destination, params, attrs, force=force)
    return resolved
