"""Weights on first use (face_alignment.hub): our cache, then face-alignment's
$TORCH_HOME checkpoints (converted once), then a download with its sha256 checked."""
import dataclasses
import functools
import http.server
import logging
import os
import subprocess
import sys
import threading

import pytest
import torch

from conftest import ROOT
from face_alignment import hub, registry
from face_alignment.errors import DownloadError, FaceAlignmentError, WeightsNotFoundError
from face_alignment.files import sha256_of
from face_alignment.hub import find_model
from face_alignment.weights import load_weights
from weight_files import STAND_IN_2DFAN4, link

PUBLISHED = "2DFAN4-11f355bf06.pth.tar"
CLOSED = "http://127.0.0.1:9/"  # the discard port: connections are refused
# What is tested here is where weights are looked for, converted and kept, not the network:
# 2DFAN4 is a one-hourglass FAN in these tests (weight_files.STAND_IN_2DFAN4).
MODULES = STAND_IN_2DFAN4.modules
ONE_HOURGLASS_2DFAN4 = ("import dataclasses; from face_alignment import registry; "
                        "registry.ARCHITECTURES['2DFAN4'] = dataclasses.replace("
                        f"registry.ARCHITECTURES['2DFAN4'], num_modules={MODULES})")
pytestmark = pytest.mark.usefixtures("one_hourglass_2dfan4")


@pytest.fixture(scope="module")
def checkpoint(weight_files):
    """Random 2DFAN4 weights in the authors' format (not the published file: its own sha256)."""
    return weight_files.checkpoint(STAND_IN_2DFAN4, "legacy", PUBLISHED)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty cache and TORCH_HOME, and no network: (cache folder, torch checkpoints folder)."""
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(hub.MIRROR_VARIABLE, CLOSED)
    theirs = tmp_path / "torch" / "hub" / "checkpoints"
    theirs.mkdir(parents=True)
    return tmp_path / "home", theirs


def published_as(monkeypatch, path):
    """Make the registry publish ``path``'s own sha256 prefix for 2DFAN4 (as if it were the
    authors' file); returns the file name that goes with it."""
    sha = sha256_of(str(path))
    name = f"2DFAN4-{sha[:10]}.pth.tar"
    known = registry.KNOWN_WEIGHTS["2DFAN4"]
    monkeypatch.setitem(registry.KNOWN_WEIGHTS, "2DFAN4",
                        dataclasses.replace(known, file_name=name, url=known.url.replace(PUBLISHED, name)))
    return name


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the folder it returns (with its URL)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_torch_home_default_is_torchs():
    assert torch.hub._hub_dir is None  # else get_dir() would not read the environment
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_HOME", "XDG_CACHE_HOME")}
    for extra in ({}, {"XDG_CACHE_HOME": "/x/cache"}, {"TORCH_HOME": "/t", "XDG_CACHE_HOME": "/x/cache"}):
        old = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update({**env, **extra})
            # torch's own answer, read from the environment as a new process would (no
            # torch.hub.set_dir in this one).
            torchs = torch.hub.get_dir()
            assert hub.torch_checkpoints_dir() == os.path.join(torchs, "checkpoints")
        finally:
            os.environ.clear()
            os.environ.update(old)


def test_cache_hit_comes_first_and_needs_no_network(places, checkpoint):
    cache, theirs = places
    cache.mkdir()
    cached = cache / "2DFAN4-11f355bf06c0ffee.h5"  # a converted published file
    cached.write_bytes(b"")  # its content is not read here
    assert hub.weights_path("2DFAN4") == str(cached)
    link(checkpoint, theirs / PUBLISHED)  # face-alignment's file is looked at only after
    assert hub.weights_path("2DFAN4") == str(cached)
    assert os.listdir(cache) == [cached.name]


def test_torch_home_checkpoint_is_converted_once_then_reused(places, checkpoint, monkeypatch, caplog):
    cache, theirs = places
    link(checkpoint, theirs / PUBLISHED)
    with caplog.at_level(logging.WARNING, logger="face_alignment"):
        first = hub.weights_path("2DFAN4")
    sha = sha256_of(str(checkpoint))
    assert first == str(cache / f"2DFAN4-{sha[:16]}.h5")
    assert load_weights(first, kind="fan", num_modules=MODULES).arch.name == "2DFAN4"
    # Not the published file: used, with one warning line that names it.
    warned = [r.getMessage() for r in caplog.records if str(theirs / PUBLISHED) in r.getMessage()]
    assert len(warned) == 1 and "sha256" in warned[0] and "11f355bf06" in warned[0], caplog.text
    made = os.stat(first).st_mtime_ns
    monkeypatch.setattr("face_alignment.weights.convert.convert_checkpoint",
                        lambda *a, **k: pytest.fail("converted twice"))
    assert hub.weights_path("2DFAN4") == first
    assert os.stat(first).st_mtime_ns == made
    assert sorted(os.listdir(cache)) == [os.path.basename(first)]


def test_a_checkpoint_with_the_published_hash_gets_no_warning(places, checkpoint, monkeypatch, caplog):
    _, theirs = places
    link(checkpoint, theirs / published_as(monkeypatch, checkpoint))
    with caplog.at_level(logging.WARNING, logger="face_alignment"):
        hub.weights_path("2DFAN4")
    assert not caplog.records, caplog.text


@pytest.mark.parametrize("content", ["text", "other tensors"])
def test_a_file_that_is_no_fan_checkpoint_is_refused(places, content):
    cache, theirs = places
    bad = theirs / PUBLISHED
    if content == "text":
        bad.write_text("<html>404 Not Found</html>\n")
    else:
        torch.save({"fc.weight": torch.zeros(3, 4)}, bad)
    with pytest.raises(FaceAlignmentError, match=str(bad)):
        hub.weights_path("2DFAN4")
    assert not cache.exists() or not any(n.endswith(".h5") for n in os.listdir(cache))


def test_download_with_a_wrong_sha256_is_refused_naming_the_file(places, checkpoint, server, monkeypatch):
    cache, _ = places
    served, url = server
    link(checkpoint, served / PUBLISHED)
    monkeypatch.setenv(hub.MIRROR_VARIABLE, url)
    with pytest.raises(DownloadError, match=rf"{PUBLISHED}: .*11f355bf06") as caught:
        hub.weights_path("2DFAN4")
    assert "\n" not in str(caught.value) and hub.MIRROR_VARIABLE in str(caught.value)
    assert os.listdir(cache) == []  # nothing kept, not even the download


def test_download_with_the_published_sha256_is_converted_then_found_in_the_cache(
        places, checkpoint, server, monkeypatch):
    cache, _ = places
    served, url = server
    link(checkpoint, served / published_as(monkeypatch, checkpoint))
    monkeypatch.setenv(hub.MIRROR_VARIABLE, url)
    path = hub.weights_path("2DFAN4")
    assert os.listdir(cache) == [os.path.basename(path)]
    assert load_weights(path, kind="fan", num_modules=MODULES).arch.name == "2DFAN4"
    monkeypatch.setenv(hub.MIRROR_VARIABLE, CLOSED)
    assert hub.weights_path("2DFAN4") == path


def test_a_mirror_is_named_by_its_variable_and_a_local_one_is_not_taken_for_no_network(places, tmp_path,
                                                                                       monkeypatch):
    """Issue 25, item 20: the mirror's errors never named the variable that set it, and a
    file:// mirror that does not exist was met with "(no network?)"."""
    with pytest.raises(WeightsNotFoundError) as closed:
        hub.weights_path("2DFAN4")
    assert f"{CLOSED}2DFAN4-11f355bf06.pth.tar (${hub.MIRROR_VARIABLE})" in str(closed.value)
    nowhere = (tmp_path / "nowhere").as_uri()
    monkeypatch.setenv(hub.MIRROR_VARIABLE, nowhere)
    with pytest.raises(WeightsNotFoundError) as missing:
        hub.weights_path("2DFAN4")
    message = str(missing.value)
    assert f"{nowhere}/2DFAN4-11f355bf06.pth.tar (${hub.MIRROR_VARIABLE})" in message
    assert "no such file" in message and "no network" not in message and "\n" not in message


def test_offline_with_nothing_found_is_one_line_naming_every_place(places):
    cache, theirs = places
    with pytest.raises(WeightsNotFoundError) as caught:
        hub.weights_path("3DFAN4")
    message = str(caught.value)
    assert "\n" not in message
    for part in ("3DFAN4-7835d9f11d.pth.tar", str(cache), str(theirs), CLOSED, "could not reach"):
        assert part in message, (part, message)


def test_the_command_lines_fall_back_to_the_same_lookup(places, checkpoint, tmp_path, monkeypatch):
    _, theirs = places
    monkeypatch.chdir(tmp_path)  # none of the published .h5 names here
    with pytest.raises(WeightsNotFoundError, match="2DFAN4_NNabla_model.h5.*2DFAN4-11f355bf06.pth.tar"):
        find_model(None, "2D")
    link(checkpoint, theirs / PUBLISHED)
    assert find_model(None, "2D") == hub.weights_path("2DFAN4")
    (tmp_path / "2DFAN4_NNabla_model.h5").write_bytes(b"")
    assert find_model(None, "2D") == "2DFAN4_NNabla_model.h5"  # nnabla-examples' name comes first


def test_two_first_uses_at_once_do_not_collide(places, checkpoint):
    cache, theirs = places
    link(checkpoint, theirs / PUBLISHED)
    code = ONE_HOURGLASS_2DFAN4 + "; from face_alignment.hub import weights_path; print(weights_path('2DFAN4'))"
    env = dict(os.environ, PYTHONPATH=ROOT)
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    path = paths.pop()
    assert sorted(os.listdir(cache)) == [os.path.basename(path)]  # no temporary file left behind
    assert load_weights(path, kind="fan", num_modules=MODULES).arch.name == "2DFAN4"


def test_a_home_that_cannot_be_made_is_named_with_what_was_being_written(places, tmp_path, monkeypatch):
    """Issue 25, item 18: a raw OSError from FaceAlignment before. A file in the way of the home
    fails as a read-only file system does, whoever runs the tests (root included)."""
    from face_alignment import compat

    _, theirs = places
    (tmp_path / "a file").write_text("")
    blocked = tmp_path / "a file" / "home"
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(blocked))
    with pytest.raises(FaceAlignmentError) as download:
        compat.FaceAlignment(compat.LandmarksType.TWO_D, device="cpu", face_detector="folder")
    (theirs / PUBLISHED).write_bytes(b"their checkpoint")
    with pytest.raises(FaceAlignmentError) as conversion:
        hub.weights_path("2DFAN4")
    for caught, what in ((download, f"the download of {PUBLISHED}"),
                         (conversion, f"the conversion of {theirs / PUBLISHED}")):
        message = str(caught.value)
        assert message.startswith(f"{blocked}: cannot write {what} there") and "FACE_ALIGNMENT_HOME" in message
