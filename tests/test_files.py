"""files.atomic_write: errors name the user's file, never our temporary one, and any name
the file system takes can be written."""
import errno
import json
import os

import pytest

from face_alignment.cli_support import command_line
from face_alignment.document import write_document
from face_alignment.errors import FaceAlignmentError
from face_alignment.files import atomic_write

NAME_MAX = 255  # bytes in one file name on Linux file systems (ext4, tmpfs, overlayfs)


def test_the_longest_name_the_file_system_takes_can_be_written(tmp_path):
    name = "r" * (NAME_MAX - len(".json")) + ".json"
    path = tmp_path / name
    write_document(str(path), [{"path": "a.jpg", "width": 1, "height": 2, "faces": []}])
    assert json.loads(path.read_text()) == {"images": [{"path": "a.jpg", "width": 1, "height": 2, "faces": []}],
                                            "errors": []}
    assert os.listdir(tmp_path) == [name]  # no temporary file left


def _kernel_refuses(monkeypatch, function, *, only_if):
    """Make ``os.<function>`` fail as the kernel does for a user without the right to write:
    PermissionError naming the file(s) it was given."""
    real = getattr(os, function)

    def refuse(*args, **kwargs):
        if only_if(*args):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), *args[:1],
                                  *([None, args[1]] if function == "replace" else []))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, function, refuse)


def _error_line(capsys, function, *args):
    """What a command line prints when ``function(*args)`` fails."""
    assert command_line(lambda argv: function(*args))([]) == 2
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("function", ["open", "replace"])
def test_a_refused_write_names_the_output_not_the_temporary_file(tmp_path, monkeypatch, capsys, function):
    path = str(tmp_path / "result.json")
    _kernel_refuses(monkeypatch, function, only_if=lambda target, *rest: os.path.basename(str(target)) != "result.json"
                    and str(target).startswith(str(tmp_path)))
    with pytest.raises(PermissionError) as raised:
        write_document(path, [])
    assert raised.value.filename == path
    assert _error_line(capsys, write_document, path, []) == f"error: {path}: Permission denied"
    assert os.listdir(tmp_path) == []


def test_a_failed_write_into_the_temporary_file_names_the_output(tmp_path, capsys):
    path = str(tmp_path / "picture.png")

    def write_fails():
        with atomic_write(path) as tmp:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)

    assert _error_line(capsys, write_fails) == f"error: {path}: No space left on device"
    assert os.listdir(tmp_path) == []


def test_an_error_about_another_file_is_left_as_it_is(tmp_path):
    source = str(tmp_path / "weights.h5")

    with pytest.raises(FileNotFoundError) as raised:
        with atomic_write(str(tmp_path / "out.onnx")) as tmp:
            open(source)
    assert raised.value.filename == source
    assert os.listdir(tmp_path) == []


def test_a_pipe_or_device_is_never_replaced_by_a_regular_file(tmp_path):
    """An output is renamed into place: over a named pipe (or, for root, over /dev/null or
    /dev/full) that would leave a regular file where the pipe or device was."""
    import stat

    pipe = tmp_path / "results.fifo"
    os.mkfifo(pipe)
    with pytest.raises(FaceAlignmentError, match="results.fifo: .*pipe"):
        write_document(str(pipe), [])
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert os.listdir(tmp_path) == ["results.fifo"]
