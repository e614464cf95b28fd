"""What every command line shares: errors become one line on stderr and exit status 2."""
import argparse
import functools
import logging
import sys

from .errors import FaceAlignmentError

EXIT_BAD_INPUT = 2


class ArgumentParser(argparse.ArgumentParser):
    """Usage mistakes are reported like every other error: one line, status 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def command_line(main):
    """Wrap ``main(argv) -> int``: a FaceAlignmentError (or OSError, MemoryError, or Ctrl-C) prints
    ``error: <message>`` and returns 2 instead of a traceback."""

    @functools.wraps(main)
    def wrapper(argv=None):
        # force: nnabla configures the root logger on import with a timestamped format.
        logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
        try:
            return main(argv)
        except FaceAlignmentError as e:
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:
            print(f"error: {e.filename or ''}: {e.strerror or e}".replace(": : ", ": "), file=sys.stderr)
        except MemoryError as e:  # e.g. numpy refusing a huge array: say so, without a traceback
            print(f"error: out of memory{f' ({e})' if str(e) else ''}", file=sys.stderr)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
        return EXIT_BAD_INPUT

    return wrapper
