"""Keep the thread's alternate signal stack pointing at live memory after OpenVINO models go.

OpenVINO's CPU plugin gives the thread that compiles a model an alternate signal stack of its
own and, when the model is destroyed, frees it and puts back the stack it found. Two models
dropped in another order than they were made (the precision gate's reference, then its
candidate) leave the thread on the first one's freed stack. Python's handlers run on that stack
(``SA_ONSTACK``), so the next Ctrl-C or SIGTERM crashed the process with a segmentation fault
instead of stopping it cleanly. :func:`repair` puts the thread on a stack of ours when that
happened; it is called after an OpenVINO model is released. Linux only (elsewhere, nothing).
"""
import ctypes
import sys
from typing import Optional, Tuple

_SS_DISABLE = 2
_OWN_STACK_BYTES = 64 * 1024
_own_stack = None  # allocated once, never freed: a stack the thread may be left on


class _Stack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def current() -> Optional[Tuple[int, int]]:
    """(address, size) of the calling thread's alternate signal stack, or None if it has none."""
    stack = _Stack()
    if _libc().sigaltstack(None, ctypes.byref(stack)) != 0 or stack.ss_flags & _SS_DISABLE:
        return None
    return stack.ss_sp or 0, stack.ss_size


def _mapped(address: int, size: int) -> bool:
    """Whether [address, address + size) lies in one mapping of this process, by /proc/self/maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
            if start <= address and address + size <= end:
                return True
    return False


def repair() -> bool:
    """If the calling thread's alternate signal stack is no longer mapped, give it one that is;
    returns whether it had to."""
    global _own_stack
    if not sys.platform.startswith("linux"):
        return False
    stack = current()
    if stack is None or _mapped(*stack):
        return False
    if _own_stack is None:
        _own_stack = ctypes.create_string_buffer(_OWN_STACK_BYTES)
    replacement = _Stack(ctypes.cast(_own_stack, ctypes.c_void_p), 0, _OWN_STACK_BYTES)
    if _libc().sigaltstack(ctypes.byref(replacement), None) != 0:
        # Still better than a freed stack: handlers then run on the thread's own stack.
        _libc().sigaltstack(ctypes.byref(_Stack(None, _SS_DISABLE, 0)), None)
    return True
