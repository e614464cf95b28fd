"""The export cache's rules, by hand: its bound ``$FACE_ALIGNMENT_CACHE_MB`` counts megabytes of
2^20 bytes, and the key of an export changes with what shapes it (export code, opset)."""
import os
import types

from engine_fixtures import FAN1
from test_onnx_backend import _planted
from face_alignment.backends import onnx_cache
from face_alignment.backends.export import ONNX_OPSET

SHA256 = "ab" * 32


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


def test_the_cache_key_changes_with_the_export_code_and_the_opset(tmp_path, monkeypatch):
    weights = types.SimpleNamespace(arch=FAN1, sha256=SHA256)
    path = onnx_cache.cached_model_path(weights, str(tmp_path))
    assert onnx_cache.cache_key(FAN1, SHA256) == onnx_cache.cache_key(FAN1, SHA256, opset=ONNX_OPSET)
    assert onnx_cache.cache_key(FAN1, SHA256, opset=ONNX_OPSET + 1) != onnx_cache.cache_key(FAN1, SHA256)
    monkeypatch.setattr(onnx_cache, "EXPORT_VERSION", onnx_cache.EXPORT_VERSION + 1)
    assert onnx_cache.cached_model_path(weights, str(tmp_path)) != path
