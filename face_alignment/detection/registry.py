"""Every face detector the package knows, as data in one place, and :func:`load_detector`.

A :class:`DetectorSpec` names the class that implements a detector (imported only when it is
built, so that listing detectors loads no model code), what it is, and where its published
weights come from. Adding a detector is one module with a :class:`~.base.Detector` subclass
and one entry in :data:`DETECTORS`. A detector of the user's own needs no entry: it is named
``"package.module:Class"`` (or passed to FaceAlignment as an object or a callable).
"""
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import FaceAlignmentError
from .base import CallableDetector, Detector


@dataclass(frozen=True)
class DetectorWeights:
    """A detector's published weight file: its name, where it is published, and its sha256."""

    file_name: str
    url: str
    sha256: Optional[str] = None


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    factory: str  # "module:attribute" of a class taking (weights=None, threshold=..., **options)
    description: str
    weights: Optional[DetectorWeights] = None  # None: the model is built in, or needs no file


_DLIB = "face_alignment.detection.dlib_detectors"

DETECTORS: Dict[str, DetectorSpec] = {
    d.name: d
    for d in (
        DetectorSpec("hog", f"{_DLIB}:HogDetector", "dlib's HOG + linear SVM: frontal faces, CPU"),
        DetectorSpec("cnn", f"{_DLIB}:CnnDetector", "dlib's CNN (MMOD): turned faces too; slow on a CPU",
                     DetectorWeights("mmod_human_face_detector.dat",
                                     "http://dlib.net/files/mmod_human_face_detector.dat.bz2",
                                     "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6")),
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


def default_detector(context: Optional[str] = None) -> str:
    """The detector used when none is named: dlib's CNN on a GPU context, HOG on the CPU."""
    return "cnn" if context == "cudnn" else "hog"


def is_detector_name(name: str) -> bool:
    """A registry name, or a ``module:Class`` reference (checked when it is loaded)."""
    return name in DETECTORS or _is_reference(name)


def _is_reference(name: str) -> bool:
    module, _, attribute = name.partition(":")
    return bool(module) and bool(attribute) and all(part.isidentifier() for part in module.split(".")) \
        and attribute.isidentifier()


def detector_class(name: str):
    """The class (or factory) a detector name stands for, imported now."""
    if name in DETECTORS:
        reference = DETECTORS[name].factory
    elif _is_reference(name):
        reference = name
    else:
        raise FaceAlignmentError(f"detector {name!r}: expected one of {', '.join(DETECTORS)}, "
                                 "or a class of your own as 'package.module:Class'")
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise FaceAlignmentError(f"detector {name!r}: cannot import {module_name} ({e})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise FaceAlignmentError(f"detector {name!r}: {module_name} has no {attribute}") from None


def load_detector(name: str, weights: Optional[str] = None, **options: Any) -> Detector:
    """The detector ``name`` (a :data:`DETECTORS` name or ``"package.module:Class"``), built with
    its ``weights`` (None: its default) and ``options`` (e.g. ``threshold``). Options left at
    None are not passed, so each detector's own defaults apply."""
    factory = detector_class(name)
    given = {k: v for k, v in dict(options, weights=weights).items() if v is not None}
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin: let the call itself say
        accepted = None
    if accepted is not None and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise FaceAlignmentError(f"detector {name!r} takes no {', '.join(unknown)} option")
    return _as_instance(factory(**given), name)


def as_detector(detector, context: Optional[str] = None, weights: Optional[str] = None, **options) -> Detector:
    """What FaceAlignment takes as its detector, as a Detector: None (the default for
    ``context``), a name, a Detector, or any callable ``image -> boxes``."""
    if detector is None:
        detector = default_detector(context)
    if isinstance(detector, str):
        return load_detector(detector, weights, **options)
    return _as_instance(detector, type(detector).__name__)


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
