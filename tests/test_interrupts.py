"""Ctrl-C that a library swallows (a KeyboardInterrupt raised in a destructor is printed as
"Exception ignored" and lost, as happened inside torch or NNCF during the precision gate) still
stops the command: it exits 130 with ``error: interrupted`` and writes nothing."""
import os
import shutil
import signal

import pytest

from conftest import SHARED, annotated_box, fresh_home


# The KeyboardInterrupt each test has dropped on purpose, which pytest reports as unraisable.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class _SwallowsCtrlC:
    """Ctrl-C arriving while a destructor runs: Python prints and drops its KeyboardInterrupt."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


def _swallowed_ctrl_c():
    _SwallowsCtrlC()  # dropped at once: its __del__ runs here


def test_a_swallowed_ctrl_c_still_ends_the_command_as_interrupted(tmp_path, capsys):
    from face_alignment.cli_support import EXIT_INTERRUPTED, command_line

    went_on = []
    # What this process had (pytest started in the background inherits SIGINT ignored).
    handler_before = signal.getsignal(signal.SIGINT)

    @command_line
    def main(argv):
        _swallowed_ctrl_c()
        went_on.append(True)  # the command did not see it
        return 0

    assert main([]) == EXIT_INTERRUPTED == 130
    assert went_on == [True]
    err = capsys.readouterr().err
    assert "error: interrupted" in err.splitlines()[-1]
    assert signal.getsignal(signal.SIGINT) is handler_before  # put back


def test_the_gate_writes_no_int8_model_after_a_swallowed_ctrl_c(fan1_h5, tmp_path, monkeypatch, capsys):
    from face_alignment.precision import cli

    monkeypatch.setenv("FACE_ALIGNMENT_HOME", fresh_home(tmp_path / "home", shared_exports=True))
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(os.path.join(SHARED, "data", "faces", "einstein.jpg"), photos)
    boxes = tmp_path / "boxes.json"
    boxes.write_text('{"einstein.jpg": [%s]}' % ", ".join(map(str, annotated_box("einstein"))))
    quantize = cli.quantize_int8

    def quantize_then_ctrl_c(*args, **kwargs):
        model = quantize(*args, **kwargs)
        _swallowed_ctrl_c()  # as inside NNCF or torch
        return model

    monkeypatch.setattr(cli, "quantize_int8", quantize_then_ctrl_c)
    (tmp_path / "out").mkdir()
    output = tmp_path / "out" / "fan1.int8.xml"
    status = cli.main(["--model", fan1_h5, "--images", str(photos), "--boxes", str(boxes), "--precision", "int8",
                       "--max-mean-px", "1e9", "--output", str(output)])
    assert status == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted"
    assert not output.exists() and not output.with_suffix(".bin").exists()
    assert os.listdir(output.parent) == []
