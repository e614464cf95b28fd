"""BlazeFace weights for :mod:`face_alignment.nets.blazeface`, from the files they ship in:

- MediaPipe's ``.tflite`` models (read with the pure-Python ``tflite`` flatbuffer package: no
  TensorFlow). Their kernels are fp16 constants behind DEQUANTIZE ops; the input size tells
  the variant (128: short range, 192: full range, 256: back);
- face-alignment 1.5.0's ``blazeface.pth`` / ``blazefaceback.pth``: hollance's PyTorch
  conversion of MediaPipe's front (= short range) and back models (needs torch);
- our own ``.h5``, which :func:`convert_blazeface` writes from either.

Loading is strict: every tensor of the source fills one parameter of the graph, with the
graph's shape, or the file is refused with a one-line error naming it.
"""
import functools
import os
import re
import struct
from collections import OrderedDict
from typing import Dict, List, Tuple

import numpy as np

from ..errors import CheckpointMismatchError, WeightsFileError
from ..files import check_not_there, sha256_of
from ..nets.blazeface import INPUT_SIZES, parameter_shapes
from ..weights.h5 import read_h5, write_h5
from ..weights.sniff import not_weights

NETWORK = "blazeface"
# Root attributes of our .h5: which network and variant it holds, and from which file.
ATTR_NETWORK = "network"
ATTR_VARIANT = "variant"
ATTR_SOURCE = "source_file"
ATTR_SOURCE_SHA256 = "source_sha256"

Params = "OrderedDict[str, np.ndarray]"

_TFLITE_IDENTIFIER = b"TFL3"  # a .tflite flatbuffer's file identifier, bytes 4-8
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_tflite(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8)[4:8] == _TFLITE_IDENTIFIER


def _is_h5(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == _HDF5_SIGNATURE


def _variant_of_size(path: str, size: int) -> str:
    for variant, side in INPUT_SIZES.items():
        if side == size:
            return variant
    known = ", ".join(f"{v} {s}x{s}" for v, s in INPUT_SIZES.items())
    raise WeightsFileError(f"{path}: a {size}x{size} input is no BlazeFace variant known here ({known})")


def _checked(params: Dict[str, np.ndarray], variant: str, path: str) -> Params:
    """``params`` in the graph's order, if they are exactly the graph's parameters."""
    expected = parameter_shapes(variant)
    missing = [name for name in expected if name not in params]
    unused = [name for name in params if name not in expected]
    if missing or unused:
        what = f"missing {missing[0]}" if missing else f"unused {unused[0]}"
        count = len(missing) + len(unused)
        raise CheckpointMismatchError(f"{path}: does not fit BlazeFace {variant} ({what}"
                                      f"{f' and {count - 1} more differences' if count > 1 else ''})")
    for name, shape in expected.items():
        if tuple(params[name].shape) != shape:
            raise CheckpointMismatchError(f"{path}: {name} has shape {tuple(params[name].shape)}, "
                                          f"BlazeFace {variant} needs {shape}")
        if not np.all(np.isfinite(params[name])):
            raise WeightsFileError(f"{path}: {name} holds NaN or infinite values")
    return OrderedDict((name, np.asarray(params[name], dtype=np.float32)) for name in expected)


def _layers(variant: str) -> List[Tuple[str, str]]:
    """(layer scope, "conv" or "depthwise_conv") of the graph, in the order they are made."""
    layers = []
    for name in parameter_shapes(variant):
        scope, kind, _ = name.rsplit("/", 2)
        if (scope, kind) not in layers:
            layers.append((scope, kind))
    return layers


# --- MediaPipe's .tflite ---------------------------------------------------------------------

def _tflite_model(path: str):
    import tflite

    with open(path, "rb") as f:
        data = f.read()
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
    except Exception as e:  # noqa: BLE001 - a damaged flatbuffer fails in many ways
        raise _damaged(path, e) from None
    return model, graph


def _damaged(path: str, error: Exception) -> WeightsFileError:
    """What is wrong with a .tflite whose flatbuffer could not be read: most often a file cut
    short (a download or copy broken off), whose offsets point past its end."""
    size = os.path.getsize(path)
    if isinstance(error, struct.error):
        needed = re.search(r"at least (\d+) bytes", str(error))  # struct's words for an offset past the end
        detail = f"reading it needs {needed.group(1)} bytes, it has {size}" if needed else str(error)
        return WeightsFileError(f"{path}: a TFLite model cut short or damaged ({detail}); "
                                "download or extract it again")
    return WeightsFileError(f"{path}: a TFLite model that cannot be read ({type(error).__name__}: {error})")


@functools.lru_cache(maxsize=None)
def _builtin_names() -> Dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {value: name for name, value in vars(BuiltinOperator).items() if not name.startswith("_")}


def _op_name(model, op) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    # Newer files keep the code in BuiltinCode, older ones in the deprecated byte.
    return _builtin_names().get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")


def _constant(model, graph, tensor_index: int, producers: Dict[int, object], path: str) -> np.ndarray:
    """The value of a constant tensor as float32: stored in the file, or the fp16 constant a
    DEQUANTIZE op turns into it."""
    from tflite.TensorType import TensorType

    tensor = graph.Tensors(tensor_index)
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    if isinstance(data, np.ndarray) and data.size:
        dtypes = {TensorType.FLOAT32: np.float32, TensorType.FLOAT16: np.float16}
        if tensor.Type() not in dtypes:
            raise WeightsFileError(f"{path}: tensor {tensor.Name().decode()} is stored as type "
                                   f"{tensor.Type()}, expected float32 or float16")
        shape = tuple(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        return np.frombuffer(data.tobytes(), dtype=dtypes[tensor.Type()]).reshape(shape).astype(np.float32)
    op = producers.get(tensor_index)
    if op is None or _op_name(model, op) != "DEQUANTIZE":
        raise WeightsFileError(f"{path}: weight tensor {tensor.Name().decode()} is neither stored nor dequantized")
    return _constant(model, graph, int(op.InputsAsNumpy()[0]), producers, path)


def _conv_options(model, op):
    import tflite

    table = op.BuiltinOptions()
    options = tflite.Conv2DOptions() if _op_name(model, op) == "CONV_2D" else tflite.DepthwiseConv2DOptions()
    options.Init(table.Bytes, table.Pos)
    return options


def read_tflite(path: str) -> Tuple[str, Params]:
    """(variant, parameters) of one of MediaPipe's BlazeFace ``.tflite`` models."""
    if not os.path.isfile(path):
        raise WeightsFileError(f"{path}: no such file")
    if not _is_tflite(path):
        raise WeightsFileError(not_weights(path, "a TFLite model")
                               or f"{path}: not a TFLite model (no TFL3 identifier)")
    model, graph = _tflite_model(path)
    try:
        return _tflite_params(path, model, graph)
    except struct.error as e:  # an offset past the end, met further in
        raise _damaged(path, e) from None


def _tflite_params(path: str, model, graph) -> Tuple[str, Params]:
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    names = {_op_name(model, op) for op in ops}
    if "DENSIFY" in names:
        raise WeightsFileError(f"{path}: a sparse model (DENSIFY ops), which this graph does not run; "
                               "use face_detection_full_range.tflite")
    input_shape = graph.Tensors(int(graph.InputsAsNumpy()[0])).ShapeAsNumpy()
    variant = _variant_of_size(path, int(input_shape[1]))
    producers = {int(out): op for op in ops for out in op.OutputsAsNumpy()}
    params = {}
    for op in ops:
        kind = _op_name(model, op)
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        options = _conv_options(model, op)
        layer = graph.Tensors(int(op.OutputsAsNumpy()[0])).Name().decode()
        # The graph applies its ReLUs as separate ops, as these files do, and no dilation.
        if options.FusedActivationFunction() != 0 or options.DilationHFactor() != 1 or options.DilationWFactor() != 1:
            raise WeightsFileError(f"{path}: layer {layer} has a fused activation or dilation, "
                                   "which no BlazeFace model known here has")
        _, kernel_index, bias_index = (int(i) for i in op.InputsAsNumpy())
        kernel = _constant(model, graph, kernel_index, producers, path)
        bias = _constant(model, graph, bias_index, producers, path)
        if kind == "CONV_2D":  # (out, kh, kw, in) -> NNabla's (out, in, kh, kw)
            params[f"{layer}/conv/W"] = kernel.transpose(0, 3, 1, 2)
            params[f"{layer}/conv/b"] = bias
        else:  # (1, kh, kw, channels) -> (channels, kh, kw)
            params[f"{layer}/depthwise_conv/W"] = kernel[0].transpose(2, 0, 1)
            params[f"{layer}/depthwise_conv/b"] = bias
    return variant, _checked(params, variant, path)


# --- face-alignment 1.5.0's blazeface.pth / blazefaceback.pth --------------------------------

def _authors_variant(state: Dict[str, np.ndarray], path: str) -> str:
    """Their front model has two backbones, their back model one and a final block."""
    if any(k.startswith("backbone1.") for k in state):
        return "short_range"
    if any(k.startswith("final.") for k in state):
        return "back"
    raise CheckpointMismatchError(f"{path}: not face-alignment's BlazeFace state dict "
                                  "(no backbone1.* nor final.* tensors)")


def read_authors_pth(path: str) -> Tuple[str, Params]:
    """(variant, parameters) of face-alignment's ``blazeface.pth`` or ``blazefaceback.pth``.

    Their modules are hollance's layers in the order the data flows through them (stem,
    blocks, final block, then classifier_8, classifier_16, regressor_8, regressor_16), which
    is the order this graph makes its layers in; each pairs with the next of ours."""
    from ..weights.convert import read_torch_checkpoint

    state, _ = read_torch_checkpoint(path)
    variant = _authors_variant(state, path)
    modules = list(OrderedDict.fromkeys(key.rsplit(".", 1)[0] for key in state))
    layers = _layers(variant)
    if len(modules) != len(layers) or len(state) != 2 * len(modules):
        raise CheckpointMismatchError(f"{path}: {len(modules)} layers, BlazeFace {variant} has {len(layers)}")
    params = {}
    for module, (scope, kind) in zip(modules, layers):
        weight, bias = state.get(f"{module}.weight"), state.get(f"{module}.bias")
        if weight is None or bias is None:
            raise CheckpointMismatchError(f"{path}: layer {module} is not one weight and one bias")
        if kind == "depthwise_conv":  # torch's grouped (channels, 1, kh, kw) -> (channels, kh, kw)
            weight = weight[:, 0] if weight.ndim == 4 and weight.shape[1] == 1 else weight
        params[f"{scope}/{kind}/W"] = weight
        params[f"{scope}/{kind}/b"] = bias
    return variant, _checked(params, variant, path)


# --- our .h5 -----------------------------------------------------------------------------------

def read_h5_weights(path: str) -> Tuple[str, Params]:
    params, attrs = read_h5(path)
    if attrs.get(ATTR_NETWORK) != NETWORK or attrs.get(ATTR_VARIANT) not in INPUT_SIZES:
        raise WeightsFileError(f"{path}: not a BlazeFace .h5 (no {ATTR_NETWORK}={NETWORK!r} and known "
                               f"{ATTR_VARIANT} attributes); convert a .tflite or .pth with fan-convert-detector")
    variant = attrs[ATTR_VARIANT]
    return variant, _checked(params, variant, path)


def read_blazeface_weights(path: str) -> Tuple[str, Params]:
    """(variant, parameters) from our ``.h5``, a MediaPipe ``.tflite`` or face-alignment's
    ``.pth``, told apart by their first bytes."""
    if not os.path.isfile(path):
        raise WeightsFileError(f"{path}: no such file")
    if _is_h5(path):
        return read_h5_weights(path)
    if _is_tflite(path):
        return read_tflite(path)
    complaint = not_weights(path, "BlazeFace weights (.h5, .tflite or .pth)")
    if complaint:
        raise WeightsFileError(complaint)
    return read_authors_pth(path)


def convert_blazeface(source: str, destination: str, force: bool = False) -> str:
    """Write the BlazeFace weights of ``source`` (.tflite or .pth) as our ``.h5``; returns the variant."""
    check_not_there(destination, force)
    variant, params = read_blazeface_weights(source)
    attrs = {ATTR_NETWORK: NETWORK, ATTR_VARIANT: variant,
             ATTR_SOURCE: os.path.basename(source), ATTR_SOURCE_SHA256: sha256_of(source)}
    write_h5(destination, params, attrs, force=force)
    return variant
