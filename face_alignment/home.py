"""The one folder this package keeps what it makes for a user: converted weights (FAN,
ResNetDepth, face detectors) and exported models. ``$FACE_ALIGNMENT_HOME`` moves it; the
default is ``~/.cache/face_alignment``, beside face-alignment's ``$TORCH_HOME`` checkpoints."""
import os

from .errors import FaceAlignmentError

HOME_VARIABLE = "FACE_ALIGNMENT_HOME"


def home_dir() -> str:
    """Where converted weights are cached (not created here: writers make it when they write)."""
    given = os.environ.get(HOME_VARIABLE)
    if given:
        return os.path.abspath(os.path.expanduser(given))
    return os.path.join(os.path.expanduser("~"), ".cache", "face_alignment")


def writable_folder(folder: str, what: str) -> str:
    """``folder`` (in the home), made if need be, for writing ``what`` there; a one-line
    FaceAlignmentError naming both if it cannot be made or written in (a read-only file
    system, a file in the way)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        reason = e.strerror or str(e)
    else:
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
        reason = "not writable"
    raise FaceAlignmentError(f"{folder}: cannot write {what} there ({reason}); set {HOME_VARIABLE} "
                             "to a writable folder")
