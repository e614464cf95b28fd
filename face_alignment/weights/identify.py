"""Which architecture a weight file holds: one answer for converting a checkpoint and for
loading an ``.h5``.

The weights themselves tell the network (FAN or ResNetDepth) and the number of hourglass
modules, not the pooling nor the crop convention. Those come, first to last, from the
architecture the caller names (``--arch``), from what the file records about itself (our
``.h5`` files do), from its name (:func:`~face_alignment.registry.weights_for_file`), and
otherwise from :func:`~face_alignment.registry.default_architecture`, with a note on stderr
saying which was assumed.
"""
import logging
import os
from typing import Optional

from ..errors import CheckpointMismatchError
from ..registry import FAN, RESNET_DEPTH, Architecture, architecture, default_architecture, weights_for_file
from .layout import describe

log = logging.getLogger("face_alignment")


def _fits(arch: Architecture, kind: str, num_modules: Optional[int]) -> bool:
    return arch.kind == kind and (kind != FAN or arch.num_modules == num_modules)


def resolve_architecture(path: str, kind: str, num_modules: Optional[int], arch: Optional[str] = None,
                         recorded: Optional[Architecture] = None, doing: str = "reading") -> Architecture:
    """The architecture of the weights in ``path``, which hold ``kind`` with ``num_modules``
    hourglasses: ``arch`` if given, else ``recorded`` (what the file says about itself), else
    what the file name says, else the default for such weights. ``doing`` ("converting",
    "loading") words the note. Raises CheckpointMismatchError if the answer does not fit."""
    if arch is not None:
        resolved, said_by = architecture(arch), ""
    elif recorded is not None:
        resolved, said_by = recorded, " it records"
    else:
        known = weights_for_file(os.path.basename(path))
        if known is None:
            resolved = default_architecture(kind, num_modules)
            if kind != RESNET_DEPTH:  # one ResNetDepth exists: nothing was assumed
                log.warning("%s: name does not say which FAN; %s its %d-module FAN as %s "
                            "(use --arch to choose another)", path, doing, num_modules, resolved.name)
            return resolved
        resolved, said_by = known.architecture, " its name says (use --arch to choose another)"
    if not _fits(resolved, kind, num_modules):
        raise CheckpointMismatchError(
            f"{path}: holds {describe(kind, num_modules)}, not the {resolved.name} "
            f"({describe(resolved.kind, resolved.num_modules)}){said_by}")
    return resolved
