"""Ctrl-C that a library swallowed still stops a command line.

A KeyboardInterrupt raised inside a destructor or a callback (torch's and NNCF's, during the
precision gate) is printed as ``Exception ignored ...`` and lost: the command went on and wrote
its output. Within :func:`remembered` (installed by ``cli_support.command_line``), Ctrl-C raises
KeyboardInterrupt as usual and is also remembered; :func:`check` raises it again where a command
is about to put a result in place, and the command exits as interrupted.
"""
import contextlib
import signal
import threading

_interrupted = False


def _on_sigint(signum, frame):
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def remembered():
    """Remember Ctrl-C within the block (signals reach the main thread only: elsewhere this
    does nothing)."""
    global _interrupted
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _interrupted = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted() -> bool:
    """Whether Ctrl-C came within :func:`remembered`, caught by someone or not."""
    return _interrupted


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came, even if something swallowed it."""
    if _interrupted:
        raise KeyboardInterrupt
