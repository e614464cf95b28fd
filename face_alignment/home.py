"""The one folder this package keeps what it makes for a user: converted weights (FAN,
ResNetDepth, face detectors) and exported models. ``$FACE_ALIGNMENT_HOME`` moves it; the
default is ``~/.cache/face_alignment``, beside face-alignment's ``$TORCH_HOME`` checkpoints."""
import os

HOME_VARIABLE = "FACE_ALIGNMENT_HOME"


def home_dir() -> str:
    """Where converted weights are cached (not created here: writers make it when they write)."""
    given = os.environ.get(HOME_VARIABLE)
    if given:
        return os.path.abspath(os.path.expanduser(given))
    return os.path.join(os.path.expanduser("~"), ".cache", "face_alignment")
