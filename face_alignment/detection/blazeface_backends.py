"""Where BlazeFace runs: NNabla (one graph per batch size), or ONNX Runtime on the same graph
exported once to ONNX with a symbolic batch size (about 20x faster on a CPU: NNabla's CPU
kernels for these small depthwise and 1x1 convolutions and element-wise ops are slow).
Both take inputs (B, 3, S, S) in [-1, 1] and return (regressors (B, N, 16), logits (B, N, 1))."""
import contextlib
import io
import os
import tempfile
from collections import OrderedDict
from typing import Dict, Tuple

import numpy as np

from ..errors import BackendUnavailableError
from ..nets.blazeface import INPUT_SIZES, blazeface

BACKENDS = ("nnabla", "onnxruntime")
_INPUT, _BOXES, _LOGITS = "x", "regressors", "logits"


class NNablaBlazeFace:
    def __init__(self, variant: str, params: Dict[str, np.ndarray], context=None):
        import nnabla as nn

        if context is None:
            from ..backends.context import make_context

            context = make_context("cpu")
        self.variant, self.context = variant, context
        self._scope = OrderedDict()
        with nn.parameter_scope("", self._scope), nn.context_scope(context):
            for name, value in params.items():
                nn.parameter.get_parameter_or_create(name, value.shape, value, need_grad=False)
        self._graphs = {}  # batch size -> (input, regressors, logits, both)

    def graph(self, batch_size: int):
        import nnabla as nn
        import nnabla.functions as F

        if batch_size not in self._graphs:
            size = INPUT_SIZES[self.variant]
            with nn.parameter_scope("", self._scope), nn.context_scope(self.context), nn.auto_forward(False):
                x = nn.Variable((batch_size, 3, size, size))
                boxes, logits = blazeface(x, self.variant)
                for y in (boxes, logits):
                    y.persistent = True
                self._graphs[batch_size] = (x, boxes, logits, F.sink(boxes, logits))
        return self._graphs[batch_size]

    def parameter_scope(self):
        import nnabla as nn

        return nn.parameter_scope("", self._scope)

    def __call__(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        x, boxes, logits, both = self.graph(len(batch))
        x.d = batch
        both.forward(clear_no_need_grad=True)
        return np.array(boxes.d, copy=True), np.array(logits.d, copy=True)


def onnx_model(network: NNablaBlazeFace):
    """The ONNX ``ModelProto`` of the network's graph, any batch size (through nnabla's .nnp
    and nnabla-converter's ONNX exporter, as FAN's export)."""
    from ..backends.export import CONVERTER_PACKAGE, ONNX_OPSET, _make_batch_symbolic, onnx_exporter_available

    if not onnx_exporter_available():
        raise BackendUnavailableError(f"BlazeFace on onnxruntime needs nnabla-converter and onnx to export it: "
                                      f"pip install {CONVERTER_PACKAGE} onnx")
    import nnabla as nn
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter, exporter
    from nnabla.utils.save import save

    exporter.random_seed = 0  # the same weights give the same bytes
    x, boxes, logits, _ = network.graph(1)
    name = f"blazeface_{network.variant}"
    contents = {"networks": [{"name": name, "batch_size": 1, "names": {_INPUT: x},
                              "outputs": {_BOXES: boxes, _LOGITS: logits}}],
                "executors": [{"name": "runtime", "network": name, "data": [_INPUT], "output": [_BOXES, _LOGITS]}]}
    with tempfile.TemporaryDirectory(prefix="blazeface-export-") as folder:
        nnp = os.path.join(folder, "model.nnp")
        with network.parameter_scope():
            save(nnp, contents, variable_batch_size=False, parameters=nn.get_parameters(grad_only=False))
        with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its progress
            imported = NnpImporter(nnp, expand_network=True, executor_index=None).execute()
            model = OnnxExporter(imported, 1, -1, opset=str(ONNX_OPSET)).export_model_proto()
    _make_batch_symbolic(model, name)
    return model


class OnnxBlazeFace:
    def __init__(self, variant: str, params: Dict[str, np.ndarray], threads=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("BlazeFace on onnxruntime needs it: pip install onnxruntime") from None
        from ..backends.onnx_net import session_options

        self.variant = variant
        model = onnx_model(NNablaBlazeFace(variant, params))
        self._session = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                             providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        boxes, logits = self._session.run([_BOXES, _LOGITS], {_INPUT: np.ascontiguousarray(batch, dtype=np.float32)})
        return boxes, logits


def make_runner(backend: str, variant: str, params: Dict[str, np.ndarray], context=None):
    if backend == "onnxruntime":
        return OnnxBlazeFace(variant, params)
    return NNablaBlazeFace(variant, params, context)
