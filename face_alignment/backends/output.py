"""What every network's output is checked for before anyone uses it."""
import numpy as np

from ..errors import NonFiniteOutputError


def checked_output(out: np.ndarray, source: str) -> np.ndarray:
    """``out``, unless it holds NaN or infinity: then a NonFiniteOutputError naming ``source``,
    the weights that gave it. No input in [0, 1] makes sound weights do that."""
    if not np.isfinite(out).all():
        raise NonFiniteOutputError(
            f"{source}: the network gave NaN or infinite values; the weights are broken "
            "(NaN or infinite parameters, a negative BatchNorm variance, or values too large)")
    return out
