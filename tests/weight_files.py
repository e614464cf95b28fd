"""Random weights as files, each made once a test session: FAN-4 is 95 MB and ResNetDepth
235 MB, and tests that wrote, converted and exported them again each time made the suite slow
and filled the disk.

A file is keyed by what it holds: a network (:class:`Net`: which one, and the seed of its
random weights) and a format. The first test that asks writes it; later ones get the same
path. A test that needs it under a name of its own, or in a folder of its own, hard-links it
there with :func:`link`: no bytes are copied. The files are shared, so a test must never
change one in place (one that damages weights copies them first). The torch models are
shared too, and must not be changed either.
"""
import dataclasses
import fcntl
import hashlib
import os
import shutil
from typing import Dict, Optional

import torch

import checkpoints

# What each format's writer is (tests/checkpoints.py), and the file name it is written under
# when the test does not name it.
_FORMATS = {
    "legacy": (checkpoints.save_legacy, "model.pth.tar"),  # the authors' 2DFAN4-….pth.tar
    "depth": (checkpoints.save_depth_checkpoint, "depth.pth.tar"),  # the authors' depth-….pth.tar
    "plain": (checkpoints.save_plain, "model.pth"),  # ibug's 2dfan2.pth
}


@dataclasses.dataclass(frozen=True)
class Net:
    """A network with random weights: the authors' FAN (``modules``, ``pooling``) or their
    ResNetDepth (``kind="depth"``), from ``seed``. ``landmark_gain`` scales ResNetDepth's
    conv1 weights for its 68 landmark channels, so that random weights look at them."""
    kind: str = "fan"
    modules: int = 4
    pooling: str = "avg"
    seed: int = 0
    landmark_gain: float = 1.0


FAN4 = Net("fan", 4, "avg", seed=4)
DEPTH = Net("depth", seed=7)
SEEING_DEPTH = Net("depth", seed=7, landmark_gain=300.0)
# The published 2DFAN4 (its name, its lookup, its conversion) where what is tested is how
# weights are found, fetched and converted, not the network: a one-hourglass FAN, four times
# smaller and faster than FAN-4. The fixture one_hourglass_2dfan4 (conftest.py) makes the
# registry's 2DFAN4 one to match.
STAND_IN_2DFAN4 = Net("fan", 1, "avg", seed=4)


def link(path, destination) -> str:
    """A hard link to ``path`` at ``destination`` (a file name, or a folder to link into under
    the same name); returns its path. Falls back to a copy across file systems."""
    destination = str(destination)
    if os.path.isdir(destination):
        destination = os.path.join(destination, os.path.basename(str(path)))
    try:
        os.link(path, destination)
    except OSError:
        shutil.copyfile(path, destination)
    return destination


class WeightFiles:
    """The session's random weight files, in ``folder`` (see the module's docstring)."""

    def __init__(self, folder):
        self.folder = str(folder)
        self._models: Dict[Net, torch.nn.Module] = {}
        self._files: Dict[tuple, str] = {}

    def model(self, net: Net) -> torch.nn.Module:
        if net not in self._models:
            if net.kind == "depth":
                model = checkpoints.authors_depth(seed=net.seed)
                with torch.no_grad():
                    model.conv1.weight[:, 3:] *= net.landmark_gain
            else:
                model = checkpoints.authors_fan(net.modules, net.pooling, seed=net.seed)
            self._models[net] = model
        return self._models[net]

    def _file(self, key, name, write) -> str:
        """The path of the file ``key`` describes, ``name`` in a folder of its own, written by
        ``write(path)`` the first time any test process asks for it (pytest-xdist's workers
        share the folder: one writes, under a lock, the others wait and read)."""
        if key not in self._files:
            folder = os.path.join(self.folder, hashlib.sha256(repr(key).encode()).hexdigest()[:16])
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, name)
            with open(os.path.join(folder, ".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                done = os.path.join(folder, ".written")
                if not os.path.exists(done):
                    write(path)
                    open(done, "w").close()
            self._files[key] = path
        return self._files[key]

    def checkpoint(self, net: Net, form: str = "legacy", name: Optional[str] = None) -> str:
        """``net`` saved in the checkpoint format ``form`` (legacy, depth, plain), as ``name`` if
        given (a name only matters to what reads it by name)."""
        save, default = _FORMATS[form]
        return self._file(("checkpoint", net, form, name), name or default, lambda path: save(self.model(net), path))

    def converted(self, net: Net, name: str, form: str = "legacy") -> str:
        """Our converter's .h5 of ``net``'s checkpoint in ``form`` named ``name`` (the name
        chooses the architecture it records)."""
        from face_alignment.weights.convert import convert_checkpoint

        def write(path):
            source = link(self.checkpoint(net, form), os.path.join(os.path.dirname(path), name))
            convert_checkpoint(source, path)

        return self._file(("converted", net, form, name), name.split(".", 1)[0] + ".h5", write)

    def h5(self, net: Net, attrs: Optional[dict] = None, name: str = "weights.h5") -> str:
        """``net``'s parameters as an NNabla .h5 with the root attributes ``attrs`` (none: as
        nnabla-examples published theirs), as ``name``."""
        from face_alignment.registry import FAN, RESNET_DEPTH
        from face_alignment.weights.h5 import write_h5

        def write(path):
            kind, modules = (RESNET_DEPTH, None) if net.kind == "depth" else (FAN, net.modules)
            write_h5(path, checkpoints.nnabla_params(self.model(net), kind, modules), dict(attrs or {}))

        return self._file(("h5", net, tuple(sorted((attrs or {}).items())), name), name, write)
