"""The export cache's rules, by hand: its bound ``$FACE_ALIGNMENT_CACHE_MB`` counts megabytes of
2^20 bytes."""
import os

from test_onnx_backend import _planted
from face_alignment.backends import onnx_cache


def test_the_bound_counts_megabytes_of_2_to_the_20_bytes(tmp_path, monkeypatch):
    """Three models of 1,030,000 bytes, 3,090,000 in all, under a bound of 3 MB: 3 * 2^20 =
    3,145,728 bytes hold them all; read as 3 * 10^6 bytes, the oldest would go."""
    folder = str(tmp_path)
    for age, name in enumerate(("c.onnx", "b.onnx", "a.onnx")):
        _planted(folder, name, 1_030_000, 100 * (age + 1))
    monkeypatch.setenv(onnx_cache.SIZE_VARIABLE, "3")
    assert onnx_cache.evict(folder) == 0
    assert sorted(os.listdir(folder)) == ["a.onnx", "b.onnx", "c.onnx"]
    # A fourth model, 4,090,000 bytes in all: the oldest goes, and the other three fit.
    _planted(folder, "d.onnx", 1_000_000, 0)
    assert onnx_cache.evict(folder) == 1
    assert sorted(os.listdir(folder)) == ["b.onnx", "c.onnx", "d.onnx"]
