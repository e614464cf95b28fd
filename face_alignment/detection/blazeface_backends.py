"""Where BlazeFace runs: NNabla (one graph per batch size), or ONNX Runtime on the same graph
exported to ONNX once, with a symbolic batch size, and cached (about 20x faster on a CPU:
NNabla's CPU kernels for these small depthwise and 1x1 convolutions and element-wise ops are
slow). Both take inputs (B, 3, S, S) in [-1, 1] and return (regressors (B, N, 16), logits (B, N, 1))."""
import contextlib
import hashlib
import io
import logging
import os
import tempfile
from typing import Dict, Tuple

import numpy as np

from ..errors import BackendUnavailableError
from ..files import atomic_write, sha256_of
from ..nets.blazeface import INPUT_SIZES, blazeface

log = logging.getLogger(__name__)
BACKENDS = ("nnabla", "onnxruntime")
# Part of the ONNX cache key: bump it whenever nets/blazeface.py changes the graph.
GRAPH_VERSION = 1
_INPUT, _BOXES, _LOGITS = "x", "regressors", "logits"


class NNablaBlazeFace:
    def __init__(self, variant: str, params: Dict[str, np.ndarray], context=None):
        if context is None:
            from ..backends.context import make_context

            context = make_context("cpu")
        from ..backends.nnabla_net import parameter_store

        self.variant, self.context = variant, context
        self._scope = parameter_store(params, context)
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
    """The exported model is kept in the shared export cache (backends/onnx_cache.py) as
    ``blazeface_<variant>-<key>.onnx``; the key digests the weight file's sha256, the variant
    and the exporter's versions."""

    def __init__(self, variant: str, params: Dict[str, np.ndarray], weights_path: str, threads=None,
                 cache_dir=None):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BackendUnavailableError("BlazeFace on onnxruntime needs it: pip install onnxruntime") from None
        from ..backends.onnx_cache import cached_export
        from ..backends.onnx_net import session_options

        self.variant = variant
        self._options = session_options(threads)
        path = cached_model_path(weights_path, variant, cache_dir)
        self.model_path = cached_export(path, lambda target: self._export(params, target), f"BlazeFace {variant}")
        self._session = self._load(self.model_path)
        if self._session is None:
            cached_export(path, lambda target: self._export(params, target), f"BlazeFace {variant}", rebuild=True)
            self._session = self._load(self.model_path)

    def _load(self, path: str):
        import onnxruntime as ort

        try:
            return ort.InferenceSession(path, self._options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors share no base class
            log.warning("%s: unreadable cached ONNX model (%s); exporting it again", path,
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
            return None

    def _export(self, params: Dict[str, np.ndarray], target: str) -> None:
        model = onnx_model(NNablaBlazeFace(self.variant, params))
        with atomic_write(target, force=True) as tmp, open(tmp, "wb") as f:
            f.write(model.SerializeToString())

    def __call__(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        boxes, logits = self._session.run([_BOXES, _LOGITS], {_INPUT: np.ascontiguousarray(batch, dtype=np.float32)})
        return boxes, logits


def cached_model_path(weights_path: str, variant: str, cache_dir=None) -> str:
    """Where the ONNX model of these weights is kept in the export cache."""
    from ..backends.export import EXPORT_VERSION, ONNX_OPSET
    from ..backends.onnx_cache import graph_model_path

    graph = f"blazeface/{variant}/graph{GRAPH_VERSION}/opset{ONNX_OPSET}/export{EXPORT_VERSION}"
    key = hashlib.sha256(f"{sha256_of(weights_path)}/{graph}".encode()).hexdigest()[:16]
    return graph_model_path(f"blazeface_{variant}", key, cache_dir)


def make_runner(backend: str, variant: str, params: Dict[str, np.ndarray], weights_path: str, context=None,
                cache_dir=None):
    if backend == "onnxruntime":
        return OnnxBlazeFace(variant, params, weights_path, cache_dir=cache_dir)
    return NNablaBlazeFace(variant, params, context)
