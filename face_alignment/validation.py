"""Rules for option values that more than one entry point takes (the API and the command
lines), each in one place. Every check returns the value as used and raises
FaceAlignmentError with a one-line message naming it otherwise."""
import math
import numbers

from .errors import FaceAlignmentError


def check_reference_scale(value) -> float:
    """The authors' crop divides the box size by ``reference_scale``: a positive finite number."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and value > 0):
        raise FaceAlignmentError(f"reference_scale {value!r}: expected a positive finite number")
    return float(value)


def check_whole_number(name: str, value, minimum: int) -> int:
    """A whole number, ``minimum`` or more (not a bool, not a float, not text)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise FaceAlignmentError(f"{name}: got {value!r}; expected a whole number, {minimum} or more")
    return int(value)


def check_positive_int(name: str, value) -> int:
    """A count such as a batch size or a pixel limit: a whole number, 1 or more."""
    return check_whole_number(name, value, 1)
