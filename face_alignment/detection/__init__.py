"""Face detectors behind one small interface (:class:`Detector`), loaded by name::

    from face_alignment.detection import load_detector
    detector = load_detector("hog")
    boxes = detector.detect(rgb_uint8)  # (N, 5): left, top, right, bottom, score; best first

The names and their classes are in :mod:`.registry`; a detector of your own is any
:class:`Detector` subclass, named ``"package.module:Class"``."""
from .base import BoxRelation, CallableDetector, Detector, check_rgb
from .registry import DETECTORS, DetectorSpec, DetectorWeights, as_detector, default_detector, load_detector

__all__ = ["BoxRelation", "CallableDetector", "DETECTORS", "Detector", "DetectorSpec", "DetectorWeights",
           "as_detector", "check_rgb", "default_detector", "load_detector"]
