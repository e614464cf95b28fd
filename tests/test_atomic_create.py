"""Without --force an output is made only if it does not exist at the moment it is made: the
check and the creation are one step, so of two writers racing for one name, one is refused
and the other's file is untouched."""
import errno
import os
import re

import pytest

import checkpoints
from face_alignment.backends import export
from face_alignment.errors import OutputExistsError
from face_alignment.files import atomic_write
from face_alignment.registry import FAN
from face_alignment.weights import convert
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.loading import architecture_attrs
from test_weight_safety import FAN1

THEIRS = b"written by the other writer meanwhile"


def no_hard_links(monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")  # what vfat says
    monkeypatch.setattr(os, "link", refuse)


@pytest.fixture(params=["hard links", "no hard links"])
def file_system(request, monkeypatch):
    if request.param == "no hard links":
        no_hard_links(monkeypatch)


def test_an_output_that_appears_while_writing_is_kept(tmp_path, file_system):
    path = tmp_path / "out.txt"
    with pytest.raises(OutputExistsError, match=f"^{re.escape(str(path))}: .*--force"):
        with atomic_write(str(path), force=False) as tmp:
            with open(tmp, "w") as f:
                f.write("ours")
            path.write_bytes(THEIRS)
    assert path.read_bytes() == THEIRS
    assert os.listdir(tmp_path) == ["out.txt"]


def test_without_a_rival_the_output_is_made_and_force_replaces(tmp_path, file_system):
    path = tmp_path / "out.txt"
    with atomic_write(str(path), force=False) as tmp:
        with open(tmp, "w") as f:
            f.write("ours")
    assert path.read_text() == "ours"
    with atomic_write(str(path), force=True) as tmp:
        with open(tmp, "w") as f:
            f.write("forced")
        path.write_bytes(THEIRS)
    assert path.read_text() == "forced"
    assert os.listdir(tmp_path) == ["out.txt"]


def rival_finishes_first(monkeypatch, path):
    """Another writer makes ``path`` at the last moment: after every check before writing, as
    our temporary file is about to be renamed (atomic_write's chmod of it)."""
    chmod = os.chmod

    def rival_then_chmod(target, mode, *args, **kwargs):
        if os.path.dirname(str(target)) == str(path.parent) and not path.exists():
            path.write_bytes(THEIRS)
        return chmod(target, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", rival_then_chmod)


def test_two_conversions_to_one_path_one_is_refused(tmp_path, monkeypatch):
    source = tmp_path / "fan1.pth.tar"
    checkpoints.save_legacy(checkpoints.authors_fan(1, "avg", seed=3), source)
    destination = tmp_path / "fan1.h5"
    rival_finishes_first(monkeypatch, destination)
    with pytest.raises(OutputExistsError, match="fan1.h5: already exists"):
        convert.convert_checkpoint(str(source), str(destination))
    assert destination.read_bytes() == THEIRS
    assert sorted(os.listdir(tmp_path)) == ["fan1.h5", "fan1.pth.tar"]


@pytest.mark.parametrize("extension", [".nnp", ".onnx"])
def test_two_exports_to_one_path_one_is_refused(tmp_path, monkeypatch, extension):
    weights = tmp_path / "fan1.h5"
    write_h5(str(weights), checkpoints.nnabla_params(checkpoints.authors_fan(1, "avg", seed=3), FAN, 1),
             architecture_attrs(FAN1))
    output = tmp_path / f"fan1{extension}"
    rival_finishes_first(monkeypatch, output)
    with pytest.raises(OutputExistsError, match=f"fan1{extension}: already exists"):
        export.export_model(str(weights), str(output))
    assert output.read_bytes() == THEIRS
    assert sorted(os.listdir(tmp_path)) == sorted(["fan1.h5", f"fan1{extension}"])
