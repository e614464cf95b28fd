"""Weights of face-alignment's PyTorch detectors (SFD, RetinaFace) as NNabla ``.h5`` files.

A detector's graph (a function over a parameter scope, in :mod:`face_alignment.nets`) says
which parameters it has; a converter maps each tensor of the ``.pth`` state dict onto one of
them, using every tensor exactly once. The ``.h5`` records which detector it holds and the
file and sha256 it was converted from. A detector given the ``.pth`` itself converts it on
first use and keeps the ``.h5`` beside it (or in :func:`face_alignment.home.home_dir`), named
by the ``.pth``'s sha256 so that a changed file is never served stale.
"""
import functools
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import nnabla as nn
import numpy as np

from ..errors import CheckpointMismatchError, WeightsFileError
from ..files import check_not_there, sha256_of
from ..home import home_dir, writable_folder
from ..weights.h5 import read_h5, write_h5
from ..weights.layout import IGNORED_SUFFIX

log = logging.getLogger(__name__)
ATTR_DETECTOR = "detector"
ATTR_SOURCE = "source_file"
ATTR_SOURCE_SHA256 = "source_sha256"
H5 = ".h5"
# A frame size every detector graph here can be built at, to read its parameters off it.
_PROBE_SHAPE = (1, 3, 256, 256)
_KEY_DIGITS = 16  # of the source's sha256 in the cached .h5's name


@dataclass(frozen=True)
class TorchDetector:
    """What converting and loading one detector's weights needs.

    ``name``: what the ``.h5`` records; ``build``: the graph; ``parameter``: (PyTorch key,
    tensor) -> (our parameter name, array in our layout); ``file_name``, ``url``: the
    published ``.pth`` (torch.hub style: the hex after the dash starts its sha256)."""

    name: str
    build: Callable
    parameter: Callable[[str, np.ndarray], Tuple[str, np.ndarray]]
    file_name: str
    url: str

    @property
    def sha256_prefix(self) -> Optional[str]:
        stem = self.file_name.split(".", 1)[0]
        return stem.rsplit("-", 1)[1] if "-" in stem else None


@functools.lru_cache(maxsize=None)
def graph_parameters(build: Callable) -> "OrderedDict[str, Tuple[int, ...]]":
    """The graph's parameter names and shapes, read off it built once in a throwaway scope."""
    scope = OrderedDict()
    with nn.parameter_scope("", scope), nn.auto_forward(False):
        build(nn.Variable(_PROBE_SHAPE))
        return OrderedDict((k, tuple(v.shape)) for k, v in nn.get_parameters(grad_only=False).items())


def _listed(items: Sequence[str]) -> str:
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return ", ".join(items[:3]) + more


def check_parameters(params: Dict[str, np.ndarray], detector: TorchDetector, source: str):
    """CheckpointMismatchError unless ``params`` are exactly the graph's names and shapes, all finite."""
    expected = graph_parameters(detector.build)
    problems = []
    for label, items in (("missing", [k for k in expected if k not in params]),
                         ("unexpected", [k for k in params if k not in expected]),
                         ("wrong shape", [f"{k} {tuple(params[k].shape)} (expected {expected[k]})"
                                          for k in expected if k in params and tuple(params[k].shape) != expected[k]])):
        if items:
            problems.append(f"{label}: {_listed(items)}")
    if problems:
        raise CheckpointMismatchError(f"{source}: not {detector.name} weights ({'; '.join(problems)})")
    broken = [k for k, v in params.items() if not np.isfinite(v).all()]
    if broken:
        raise CheckpointMismatchError(f"{source}: NaN or infinite values in {_listed(broken)}")


def convert_torch_detector(detector: TorchDetector, source: str, destination: str, force: bool = False,
                           allow_pickle: bool = False) -> str:
    """Convert the detector's PyTorch state dict ``source`` to the NNabla ``.h5`` ``destination``."""
    from ..weights.convert import read_torch_checkpoint

    check_not_there(destination, force)
    state, _ = read_torch_checkpoint(source, allow_pickle)
    params = OrderedDict()
    for key, value in state.items():
        if key.endswith(IGNORED_SUFFIX):
            continue
        name, array = detector.parameter(key, value)
        params[name] = array
    check_parameters(params, detector, source)
    order = list(graph_parameters(detector.build))
    params = OrderedDict((k, params[k]) for k in order)
    attrs = {ATTR_DETECTOR: detector.name, ATTR_SOURCE: os.path.basename(source),
             ATTR_SOURCE_SHA256: sha256_of(source)}
    write_h5(destination, params, attrs, force=force)
    return destination


def load_detector_h5(detector: TorchDetector, path: str) -> "OrderedDict[str, np.ndarray]":
    """The parameters of a converted ``.h5``, checked to be this detector's."""
    params, attrs = read_h5(path)
    recorded = attrs.get(ATTR_DETECTOR)
    if recorded is not None and recorded != detector.name:
        raise CheckpointMismatchError(f"{path}: holds {recorded} weights, not {detector.name}")
    check_parameters(params, detector, path)
    return params


def _cache_target(source: str, key: str) -> str:
    stem = os.path.basename(source).split(".", 1)[0]
    name = f"{stem}.{key}{H5}"
    beside = os.path.dirname(os.path.abspath(source))
    if os.access(beside, os.W_OK):
        return os.path.join(beside, name)
    return os.path.join(home_dir(), name)


def detector_weights(detector: TorchDetector, weights: Optional[str] = None, allow_pickle: bool = False) -> str:
    """The ``.h5`` to load: ``weights`` if it is one; the ``.h5`` converted from ``weights``
    (a ``.pth``), converting it now if it never was; with no ``weights`` the converted
    published file in the home folder (converted from its ``.pth`` there if need be)."""
    source, target = _conversion(detector, weights)
    if source is not None and not os.path.isfile(target):
        writable_folder(os.path.dirname(target), f"the conversion of {source}")
        convert_torch_detector(detector, source, target, force=True, allow_pickle=allow_pickle)
    return target


def load_detector_weights(detector: TorchDetector, weights: Optional[str] = None, allow_pickle: bool = False
                          ) -> Tuple[str, "OrderedDict[str, np.ndarray]"]:
    """(the ``.h5`` :func:`detector_weights` gives, its checked parameters). A conversion that
    cannot be read (cut short by a killed process or a full disk) is a cache file: converted
    again from its ``.pth``, once; a given ``.h5`` that cannot be read is an error naming it."""
    source, _ = _conversion(detector, weights)
    path = detector_weights(detector, weights, allow_pickle)
    try:
        return path, load_detector_h5(detector, path)
    except WeightsFileError as e:
        if source is None:
            raise
        log.warning("%s: unreadable conversion of %s (%s); converting it again", path, source, e)
    convert_torch_detector(detector, source, path, force=True, allow_pickle=allow_pickle)
    return path, load_detector_h5(detector, path)


def _conversion(detector: TorchDetector, weights: Optional[str]) -> Tuple[Optional[str], str]:
    """(the ``.pth`` to convert, or None for an ``.h5`` given; the ``.h5`` to load)."""
    if weights is None:
        published = os.path.join(home_dir(), detector.file_name)
        if os.path.isfile(published):
            weights = published
        else:
            raise WeightsFileError(
                f"{published}: not found; download {detector.url} there (or pass its path as the "
                f"{detector.name} weights; it is converted to NNabla on first use)")
    if not os.path.isfile(weights):
        raise WeightsFileError(f"{weights}: no such file")
    if weights.lower().endswith(H5):
        return None, weights
    return weights, _cache_target(weights, sha256_of(weights)[:_KEY_DIGITS])
