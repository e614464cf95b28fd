"""Post-training static int8 quantization with NNCF, of the OpenVINO model read from the
project's ONNX export, calibrated on face crops.

NNCF quantizes the OpenVINO model itself, so nothing here needs a newer ``onnx`` than the one
nnabla-converter holds the environment to (ONNX Runtime's ``quantize_static`` does). Layers are
named by their parameters' scopes (``l3``, ``conv_last3``, ``m3``): the exported convolutions'
own names are the converter's numbering, but their weights keep the parameter names.
"""
import os
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import FaceAlignmentError
from ..registry import FAN, Architecture
from ..backends.export import append_digest
from ..backends.openvino_net import RT_INFO_SECTION, RT_WEIGHTS_SHA256

# The heads of the last hourglass stay in float: the 1x1 convolutions that turn its features
# into heatmaps. Measured on the peaked FAN-4 test network (README, "Precision and the accuracy
# gate"): quantizing them moved landmarks most.
LAST_HEADS = ("conv_last{last}", "l{last}")


def float_scopes(arch: Architecture, patterns: Sequence[str] = LAST_HEADS) -> List[str]:
    """Parameter scopes to keep in float for ``arch``: ``{last}`` is the last hourglass's index.
    ResNetDepth has no hourglass: nothing is kept in float by default there."""
    if arch.kind != FAN:
        return []
    return [p.format(last=arch.num_modules - 1) for p in patterns]


def _weight_name(port) -> str:
    """The name of the constant a convolution's weights come from, through any conversions."""
    node = port.get_source_output().get_node()
    while node.get_type_name() == "Convert":
        node = node.input(0).get_source_output().get_node()
    return node.get_friendly_name()


def convolutions(model) -> Dict[str, str]:
    """{parameter name of the weights (``l3/conv/W``): friendly name of the Convolution}."""
    return {_weight_name(op.input(1)): op.get_friendly_name()
            for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"}


def layers_in_scopes(model, scopes: Sequence[str]) -> List[str]:
    """Friendly names of the convolutions whose weights lie in any of ``scopes``; a scope that
    matches no convolution is an error (a typo would otherwise quantize everything)."""
    convs = convolutions(model)
    names = []
    for scope in scopes:
        found = [layer for weight, layer in convs.items() if weight.startswith(scope.rstrip("/") + "/")]
        if not found:
            raise FaceAlignmentError(f"layer scope {scope!r} matches no convolution of the model")
        names += found
    return sorted(set(names))


def quantize_int8(model_path: str, crops: np.ndarray, keep_in_float: Sequence[str] = (),
                  fast_bias_correction: bool = True):
    """The int8 OpenVINO model of the float model at ``model_path`` (ONNX or IR), calibrated
    on ``crops`` (N, C, 256, 256), with the convolutions in ``keep_in_float`` scopes left in float."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(model_path)
    ignored = layers_in_scopes(model, keep_in_float)
    batches = [np.ascontiguousarray(c[None], dtype=np.float32) for c in crops]
    return nncf.quantize(model, nncf.Dataset(batches), preset=nncf.QuantizationPreset.PERFORMANCE,
                         subset_size=len(batches), fast_bias_correction=fast_bias_correction,
                         ignored_scope=nncf.IgnoredScope(names=ignored) if ignored else None)


def record(model, weights_sha256: str, facts: Optional[Dict[str, str]] = None) -> None:
    """Write into the model's rt_info what it was made from (and the gate's numbers)."""
    model.set_rt_info(weights_sha256, [RT_INFO_SECTION, RT_WEIGHTS_SHA256])
    for key, value in (facts or {}).items():
        model.set_rt_info(str(value), [RT_INFO_SECTION, key])


def save_ir(model, path: str) -> str:
    """Write ``model`` as OpenVINO IR (``path`` .xml and its .bin), both or neither: written in
    a temporary folder beside them, the .bin moved first, the .xml (what is looked for) last.
    The .bin ends with the digest of both, which inference checks before it reads them."""
    import openvino as ov

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".int8-", dir=folder)
    try:
        tmp = os.path.join(scratch, "model.xml")
        ov.save_model(model, tmp, compress_to_fp16=False)
        append_digest(os.path.splitext(tmp)[0] + ".bin", covering=(tmp,))
        os.replace(os.path.splitext(tmp)[0] + ".bin", os.path.splitext(path)[0] + ".bin")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path
