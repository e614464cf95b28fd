"""What every command line shares: errors become one line on stderr and exit status 2, and
SIGTERM cleans up as Ctrl-C does."""
import argparse
import contextlib
import difflib
import functools
import logging
import signal
import sys
import threading
from typing import Sequence, Tuple

from . import interrupts
from .errors import FaceAlignmentError
from .validation import is_whole_number, whole_number_expected

EXIT_BAD_INPUT = 2
# What a shell reports for a process that SIGTERM ended: a supervisor (timeout, a job queue)
# sees that it was stopped, not that its input was bad.
EXIT_TERMINATED = 128 + signal.SIGTERM
# And for Ctrl-C what a shell reports for SIGINT, so that a script running us stops too.
EXIT_INTERRUPTED = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that the same
    ``finally`` and ``with`` blocks remove temporary files and folders."""


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises :class:`Terminated` within the block (Python handles signals in the main
    thread only: elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def whole_number(minimum: int):
    """argparse type: a whole number, ``minimum`` or more (validation's rule)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = text
        if not is_whole_number(value, minimum):
            raise argparse.ArgumentTypeError(f"{text!r}: {whole_number_expected(minimum)}")
        return value

    return parse


positive_int = whole_number(1)  # a count
non_negative_int = whole_number(0)  # a GPU's number


def one_line(text: str) -> str:
    """``text`` with its line breaks (from a file name that holds one, say) escaped as repr
    shows them, so that an error stays one line."""
    return "".join(repr(c)[1:-1] if c.splitlines() != [c] else c for c in text)


def some_names(names: Sequence[str], shown: int = 3) -> str:
    """The first few of ``names``, quoted, and how many more there are."""
    return ", ".join(map(repr, names[:shown])) + (f" (and {len(names) - shown} more)" if len(names) > shown else "")


def reason(path: str, error: Exception) -> str:
    """What is wrong with ``path``, from an error whose one-line message names it first."""
    message = str(error)
    return message[len(path) + 2:] if message.startswith(f"{path}: ") else message


def inputs_failed(failures: Sequence[Tuple[str, str]], total: int, what: str = "images",
                  done: str = "processed") -> FaceAlignmentError:
    """The error that ends a run which went on past the ``failures`` ((path, reason) each) among
    ``total`` inputs: one failure is told whole; several are counted and the first named (each
    was named on a line of its own as it happened)."""
    left = total - len(failures)
    others = f"the other one was {done}" if left == 1 else f"the other {left} were {done}"
    if len(failures) == 1:
        path, why = failures[0]
        return FaceAlignmentError(f"{path}: {why}" + (f" ({others})" if total > 1 else ""))
    return FaceAlignmentError(f"{len(failures)} of {total} {what} could not be read "
                              f"({some_names([p for p, _ in failures])}, each named above); {others}")


# Libraries whose lines (NNCF's statistics, Ray's progress block every 10 s, torch's warning
# "No CUDA runtime is found") are noise in a command's output unless -v asks for them.
NOISY_LOGGERS = ("nncf", "torch", "ray", "ray.data", "openvino")


class _LevelPrefix(logging.Formatter):
    """Command-line messages as "message", "warning: message", "error: message": the
    library's messages carry no prefix of their own, so none is doubled."""

    def format(self, record):
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def set_verbosity(level: int) -> None:
    """The command line's messages: ``level`` 0 (default) info and up, 1 (-v) debug and the
    noisy libraries' info, -1 (-q) warnings and errors, -2 (-qq) errors only."""
    ours = {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}.get(max(level, -2), logging.ERROR)
    logging.getLogger("face_alignment").setLevel(ours)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if level > 0 else logging.ERROR)


class ArgumentParser(argparse.ArgumentParser):
    """Usage mistakes are reported like every other error: one line, status 2. Flags are
    never abbreviated (``--test-imag`` is no flag), and an unknown one is named first, with
    the closest real one (argparse would first report a required flag as missing)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.add_argument("-v", "--verbose", action="count", default=0,
                          help="more messages: -v adds debug lines and those of NNCF, torch and Ray")
        self.add_argument("-q", "--quiet", action="count", default=0,
                          help="fewer messages: -q only warnings and errors, -qq only errors")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        set_verbosity(parsed.verbose - parsed.quiet)
        return parsed

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        for token in args:
            if token == "--":
                break
            flag = token.split("=", 1)[0]
            if (not token.startswith("-") or token == "-" or flag in self._option_string_actions
                    or self._negative_number_matcher.match(token)
                    or (not token.startswith("--") and token[:2] in self._option_string_actions)):  # -m1
                continue
            closest = difflib.get_close_matches(flag, [o for o in self._option_string_actions if o.startswith("--")],
                                                n=1, cutoff=0.6)
            self.error(f"unknown flag {flag}" + (f"; did you mean {closest[0]}?" if closest else ""))
        return super().parse_known_args(args, namespace)

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {one_line(message)} (see --help)\n")


def command_line(main):
    """Wrap ``main(argv) -> int``: a FaceAlignmentError (or OSError, or MemoryError) prints
    ``error: <message>`` and returns 2 instead of a traceback; Ctrl-C prints ``error:
    interrupted`` and returns :data:`EXIT_INTERRUPTED` (130); SIGTERM unwinds like Ctrl-C,
    prints ``error: terminated`` and returns :data:`EXIT_TERMINATED` (143)."""

    @functools.wraps(main)
    def wrapper(argv=None):
        # force: nnabla configures the root logger on import with a timestamped format.
        logging.basicConfig(level=logging.INFO, force=True)
        logging.getLogger().handlers[0].setFormatter(_LevelPrefix("%(message)s"))
        set_verbosity(0)
        # torch (through NNCF, in the gate) logs its caches' statistics at exit, at INFO.
        logging.getLogger("torch").setLevel(logging.WARNING)
        try:
            with _sigterm_raises(), interrupts.remembered():
                status = main(argv)
                interrupts.check()  # a Ctrl-C some library swallowed on the way
                return status
        except Terminated:
            print("error: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        except FaceAlignmentError as e:
            print(f"error: {one_line(str(e))}", file=sys.stderr)
        except OSError as e:
            print(one_line(f"error: {e.filename or ''}: {e.strerror or e}".replace(": : ", ": ")), file=sys.stderr)
        except MemoryError as e:  # e.g. numpy refusing a huge array: say so, without a traceback
            print(f"error: out of memory{f' ({e})' if str(e) else ''}", file=sys.stderr)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        return EXIT_BAD_INPUT

    return wrapper
