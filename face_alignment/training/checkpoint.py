"""A training run's resumable state in one file, written atomically: the parameters (BatchNorm's
running statistics included), the solver's state, and what the loop needs to carry on (step,
learning rate, the kept snapshots, the settings it ran with). A failed write (a full disk)
leaves the previous checkpoint as it was."""
import json
import os
from typing import Dict, Tuple

import numpy as np

from ..errors import FaceAlignmentError
from ..files import atomic_write

CHECKPOINT = "checkpoint.npz"
_PARAM, _SOLVER, _META = "param/", "solver/", "meta"


def save_checkpoint(path: str, params: Dict[str, np.ndarray], solver_arrays: Dict[str, np.ndarray],
                    meta: dict) -> None:
    arrays = {_PARAM + k: v for k, v in params.items()}
    arrays.update({_SOLVER + k: v for k, v in solver_arrays.items()})
    arrays[_META] = np.array(json.dumps(meta))
    try:
        with atomic_write(path, force=True) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:  # a full disk: the temporary file is gone, the previous checkpoint untouched
        raise FaceAlignmentError(f"{path}: could not write the checkpoint ({e.strerror or e}); "
                                 "the previous one is kept") from None


def load_checkpoint(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], dict]:
    """(parameters, solver arrays, meta) of the checkpoint at ``path``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            params = {k[len(_PARAM):]: f[k] for k in f.files if k.startswith(_PARAM)}
            solver = {k[len(_SOLVER):]: f[k] for k in f.files if k.startswith(_SOLVER)}
            meta = json.loads(str(f[_META]))
    except (OSError, ValueError, KeyError) as e:
        raise FaceAlignmentError(f"{path}: not a readable training checkpoint ({e})") from None
    return params, solver, meta
