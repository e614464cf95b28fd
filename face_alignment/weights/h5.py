"""NNabla ``.h5`` parameter files: read, validate, and write atomically.

The files we write are exactly what ``nn.save_parameters`` writes (one dataset per parameter
with ``need_grad`` and ``index`` attributes), so ``nn.load_parameters`` reads them; the
architecture they fit is recorded as attributes of the file's root.
"""
import os
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, List, Tuple

import numpy as np

from ..errors import WeightsFileError
from ..files import atomic_write, not_a_file
from .sniff import not_weights


@contextmanager
def _reading(path: str):
    """The open HDF5 file; any failure to read it, on opening or later, is one WeightsFileError."""
    import h5py

    if not os.path.isfile(path):
        raise WeightsFileError(not_a_file(path, "file"))
    try:
        with h5py.File(path, "r") as f:
            yield f
    except OSError as e:
        raise WeightsFileError(not_weights(path, "a readable HDF5 weight file") or
                               f"{path}: not a readable HDF5 weight file ({e})") from None


def _datasets(f) -> List[str]:
    import h5py

    found = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


def _root_attrs(f) -> Dict[str, object]:
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}


def read_h5_names(path: str) -> Tuple[List[str], Dict[str, object]]:
    """(parameter names, root attributes), reading no parameter values: enough to tell which
    network a file holds."""
    with _reading(path) as f:
        return _datasets(f), _root_attrs(f)


def read_h5(path: str) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, object]]:
    """(parameters in file order, as float32, root attributes)."""
    with _reading(path) as f:
        found = _datasets(f)
        for name in found:
            if f[name].dtype.kind not in "iuf":  # integers too: BatchNorm's step counter is one
                raise WeightsFileError(f"{path}: parameter {name} is stored as {f[name].dtype}, expected numbers")
        order = {name: f[name].attrs.get("index", i) for i, name in enumerate(found)}
        params = OrderedDict(
            (name, np.asarray(f[name][...], dtype=np.float32)) for name in sorted(found, key=order.get))
        return params, _root_attrs(f)


def write_h5(path: str, params: Dict[str, np.ndarray], attrs: Dict[str, object], force: bool = False):
    import h5py

    with atomic_write(path, force) as tmp, h5py.File(tmp, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for index, (name, value) in enumerate(params.items()):
            ds = f.create_dataset(name, data=np.ascontiguousarray(value, dtype=np.float32))
            ds.attrs["need_grad"] = False
            ds.attrs["index"] = index
