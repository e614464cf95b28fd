"""NNabla ``.h5`` parameter files: read, validate, and write atomically.

The files we write are exactly what ``nn.save_parameters`` writes (one dataset per parameter
with ``need_grad`` and ``index`` attributes), so ``nn.load_parameters`` reads them; the
architecture they fit is recorded as attributes of the file's root.
"""
import os
from collections import OrderedDict
from typing import Dict, Tuple

import numpy as np

from ..errors import WeightsFileError
from ..files import atomic_write


def read_h5(path: str) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, object]]:
    """(parameters in file order, root attributes)."""
    import h5py

    if not os.path.isfile(path):
        raise WeightsFileError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            found = []
            f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
            order = {name: f[name].attrs.get("index", i) for i, name in enumerate(found)}
            params = OrderedDict(
                (name, np.asarray(f[name][...], dtype=np.float32)) for name in sorted(found, key=order.get))
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    except OSError as e:
        raise WeightsFileError(f"{path}: not a readable HDF5 weight file ({e})") from None
    return params, {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}


def write_h5(path: str, params: Dict[str, np.ndarray], attrs: Dict[str, object], force: bool = False):
    import h5py

    with atomic_write(path, force) as tmp, h5py.File(tmp, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for index, (name, value) in enumerate(params.items()):
            ds = f.create_dataset(name, data=np.ascontiguousarray(value, dtype=np.float32))
            ds.attrs["need_grad"] = False
            ds.attrs["index"] = index
