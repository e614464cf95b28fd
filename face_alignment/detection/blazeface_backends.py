"""BlazeFace as the runtime takes it: its graph (:mod:`face_alignment.nets.blazeface`) described
once (:func:`blazeface_description`), run on the model's backend like every other network
(:mod:`.runtime`). Inputs (B, 3, S, S) in [-1, 1]; outputs (regressors (B, N, 16), logits
(B, N, 1)). On a CPU, ONNX Runtime runs it much faster than NNabla, whose kernels for these
small depthwise and 1x1 convolutions and element-wise ops are slow (docs/detectors.md)."""
from typing import Dict

import numpy as np

from ..backends.description import BATCH, NetworkDescription
from ..backends.export import onnx_model  # noqa: F401 - the one exporter, as this module has always offered
from ..files import sha256_of
from ..nets.blazeface import INPUT_SIZES, blazeface

OUTPUTS = ("regressors", "logits")


def blazeface_description(variant: str, params: Dict[str, np.ndarray], weights_path: str) -> NetworkDescription:
    """BlazeFace ``variant`` with ``params`` (read from ``weights_path``, whose sha256 names its export)."""
    size = INPUT_SIZES[variant]

    def build(x):
        return blazeface(x, variant)

    return NetworkDescription(f"blazeface_{variant}", build, lambda: params, sha256_of(weights_path),
                              (1, 3, size, size), BATCH, OUTPUTS, graph=variant, source=weights_path)
