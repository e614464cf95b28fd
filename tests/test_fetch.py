"""Fetching known models, against a small HTTP server on 127.0.0.1 serving fixture files."""
import functools
import http.server
import os
import socket
import threading

import h5py
import pytest

from conftest import assert_one_line_error, run_tool
from face_alignment.errors import DownloadError
from face_alignment.weights import load_weights
from face_alignment.weights.fetch import fetch
from weight_files import FAN4, STAND_IN_2DFAN4, link

FETCH = "converters/fetch_weights.py"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(module_folder, weight_files):
    """Serves: a good published-layout .h5, an authors'-named checkpoint whose sha256 does
    not start with the hash in its name, and nothing else (so other names are 404)."""
    root = module_folder("served")
    # The session's random FAN-4 in the published layout (no attributes), as nnabla-examples serve it.
    link(weight_files.h5(FAN4), root / "2DFAN4_NNabla_model.h5")
    link(weight_files.checkpoint(STAND_IN_2DFAN4), root / "2DFAN4-11f355bf06.pth.tar")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


def test_good_file_is_fetched_and_validated(tmp_path, server):
    url, root = server
    path = fetch("2DFAN4-nnabla", str(tmp_path), mirror=url)
    assert path == str(tmp_path / "2DFAN4_NNabla_model.h5")
    assert open(path, "rb").read() == (root / "2DFAN4_NNabla_model.h5").read_bytes()
    assert load_weights(path, kind="fan").arch.name == "2DFAN4"
    assert sorted(os.listdir(tmp_path)) == ["2DFAN4_NNabla_model.h5"]


def test_hash_mismatch_stops_and_the_flag_skips_the_check(tmp_path, server, one_hourglass_2dfan4):
    url, _ = server
    line = assert_one_line_error(run_tool(FETCH, "2DFAN4", "--dest", tmp_path, "--mirror", url),
                                 "2DFAN4-11f355bf06.pth.tar", "11f355bf06", "--no-check-hash")
    assert os.listdir(tmp_path) == [], line  # nothing half-written
    result = run_tool(FETCH, "2DFAN4", "--dest", tmp_path, "--mirror", url, "--no-check-hash")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["2DFAN4.h5"]
    loaded = load_weights(str(tmp_path / "2DFAN4.h5"), kind="fan", num_modules=STAND_IN_2DFAN4.modules)
    assert loaded.arch.name == "2DFAN4"
    with h5py.File(tmp_path / "2DFAN4.h5", "r") as f:
        assert f.attrs["source_file"] == "2DFAN4-11f355bf06.pth.tar"


def test_404_and_no_network(tmp_path, server):
    url, _ = server
    with pytest.raises(DownloadError, match=r"3DFAN4-7835d9f11d\.pth\.tar: HTTP 404"):
        fetch("3DFAN4", str(tmp_path), mirror=url)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    assert_one_line_error(run_tool(FETCH, "ibug-2dfan4", "--dest", tmp_path, "--mirror", closed),
                          "could not reach 127.0.0.1", "no network")
    assert os.listdir(tmp_path) == []


def test_unknown_name_lists_the_known_ones(tmp_path):
    result = run_tool(FETCH, "5DFAN9", "--dest", tmp_path)
    assert result.returncode == 2 and "2DFAN4" in result.stderr
    listing = run_tool(FETCH, "--list")
    assert listing.returncode == 0
    assert "https://www.adrianbulat.com/downloads/python-fan/depth-2a464da4ea.pth.tar" in listing.stdout


def test_a_mirror_that_is_no_url_and_a_dest_that_is_a_file(tmp_path):
    assert_one_line_error(run_tool(FETCH, "2DFAN4", "--dest", tmp_path, "--mirror", "my mirror"),
                          "my mirror/2DFAN4-11f355bf06.pth.tar: not a URL (unknown url type")
    (tmp_path / "weights").write_text("notes")
    assert_one_line_error(run_tool(FETCH, "2DFAN4", "--dest", tmp_path / "weights"),
                          f"{tmp_path / 'weights'}: not a folder; expected the folder to put the weights in")
    assert sorted(os.listdir(tmp_path)) == ["weights"]
