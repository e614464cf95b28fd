"""A command line run inside the test process as ``python script args`` would run it, without
the seconds a new interpreter takes to import nnabla, torch and OpenCV.

What the command sees is what a process of its own would: ``sys.argv``, the working folder, the
environment, ``sys.path`` (the script's folder first, then PYTHONPATH), Python's default warning
filters, and stdout and stderr as files that also catch what C libraries (libjpeg, OpenCV) write
to file descriptors 1 and 2. What it changes (the root logger, signal handlers, the working
folder, the environment) is put back afterwards. A test about the process itself (an exit on a
signal, which modules an import pulls in) starts a real one instead.
"""
import contextlib
import logging
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings


def _python_warning_filters():
    """The filters a fresh interpreter starts with (no -W, no PYTHONWARNINGS)."""
    warnings.resetwarnings()
    warnings.filterwarnings("ignore", category=ResourceWarning)
    warnings.filterwarnings("ignore", category=ImportWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    # runpy's note that ``-m`` runs a module this process imported before: a new process has not.
    warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package",
                            category=RuntimeWarning)

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


@contextlib.contextmanager
def _standard_streams(out, err):
    """fd 1 and 2, and sys.stdout and sys.stderr over them, into the files ``out`` and ``err``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors=sys.__stdout__.errors)
    sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="backslashreplace")
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            finally:
                stream.close()
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in zip((1, 2), saved_fds):
            os.dup2(saved, fd)
            os.close(saved)


@contextlib.contextmanager
def _process_state(argv, cwd, env, path):
    root = logging.getLogger()
    saved = (os.getcwd(), dict(os.environ), sys.path[:], sys.argv[:], root.handlers[:], root.level,
             {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)})
    try:
        os.chdir(cwd)
        os.environ.update(env)
        sys.path[:0] = path
        sys.argv[:] = argv
        with warnings.catch_warnings():
            _python_warning_filters()
            yield
    finally:
        cwd_before, environ, sys.path[:], sys.argv[:], root.handlers[:], level, handlers = saved
        root.setLevel(level)
        for number, handler in handlers.items():
            signal.signal(number, handler)
        os.chdir(cwd_before)
        os.environ.clear()
        os.environ.update(environ)


def run(command, args, cwd, env, path):
    """``command`` (a script's path, or ``["-m", module]``) on ``args``, with ``env`` added to
    the environment and ``path`` put first on sys.path: a CompletedProcess, as subprocess.run
    with capture_output=True and text=True gives."""
    module = command[1] if command[0] == "-m" else None
    script = None if module else command[0]
    if script:
        path = [os.path.dirname(script), *path]
    argv = [script or module, *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with _process_state(argv, cwd, env, path), _standard_streams(out, err):
            try:
                if module:
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
                else:
                    runpy.run_path(script, run_name="__main__")
                status = 0
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    status = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
                    status = 1
            except KeyboardInterrupt:
                traceback.print_exc()
                status = -signal.SIGINT
            except BaseException:  # noqa: BLE001 - what an uncaught exception does to a process
                traceback.print_exc()
                status = 1
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", errors="replace"))
    return subprocess.CompletedProcess([sys.executable, *command, *args], status, *texts)
