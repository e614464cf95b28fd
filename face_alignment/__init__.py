"""Face Alignment Network (2D-FAN, 3D-FAN, ResNetDepth) in NNabla."""
import logging as _logging

# nnabla logs "Initializing CPU extension..." at INFO on import, which would land in every
# command line's stderr. Quieten it unless the application has set a level itself.
if _logging.getLogger("nnabla").level == _logging.NOTSET:
    _logging.getLogger("nnabla").setLevel(_logging.WARNING)

# A library's logging: no output of its own (NullHandler), and its INFO lines do not reach a
# handler an import put on the root logger (nnabla's, timestamped) unless the application asks
# for them; the command lines choose the level (-v / -q).
_logging.getLogger("face_alignment").addHandler(_logging.NullHandler())
if _logging.getLogger("face_alignment").level == _logging.NOTSET:
    _logging.getLogger("face_alignment").setLevel(_logging.WARNING)

__version__ = "0.1.0"

# face-alignment's top level (see compat.py), loaded on first use: ``import face_alignment``
# imports neither nnabla nor OpenCV.
_COMPAT_NAMES = ("FaceAlignment", "LandmarksType", "NetworkSize", "FACE_ALIGNMENT_API_VERSION")


def __getattr__(name):
    if name in _COMPAT_NAMES:
        from . import compat

        return getattr(compat, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_COMPAT_NAMES))
