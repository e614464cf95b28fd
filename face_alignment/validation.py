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


def is_whole_number(value, minimum: int) -> bool:
    """A whole number, ``minimum`` or more (not a bool, not a float, not text)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= minimum


def whole_number_expected(minimum: int) -> str:
    """How messages say what :func:`is_whole_number` takes."""
    return f"expected a whole number, {minimum} or more"


def check_whole_number(name: str, value, minimum: int) -> int:
    """``value`` as an int if :func:`is_whole_number`."""
    if not is_whole_number(value, minimum):
        raise FaceAlignmentError(f"{name}: got {value!r}; {whole_number_expected(minimum)}")
    return int(value)


def check_positive_int(name: str, value) -> int:
    """A count such as a batch size or a pixel limit: a whole number, 1 or more."""
    return check_whole_number(name, value, 1)
