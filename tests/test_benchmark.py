"""benchmarks/benchmark.py --quick runs end to end: a readable chart and a JSON of positive timings.

Nothing here judges speed: the machine is shared and the quick case is too small to mean anything.
"""
import json
import math

import cv2

from conftest import run_tool

SECTIONS = ("bare_forward", "steady_state", "batch_job", "startup")


def _timings(section):
    """Every number the section reports, with where it came from."""
    yield "authors", section["authors"]
    for backend, values in section["ours"].items():
        yield backend, values


def test_quick_benchmark_writes_chart_and_numbers(tmp_path):
    out_dir = tmp_path / "out"
    result = run_tool("benchmarks/benchmark.py", "--quick", "--out-dir", out_dir)
    assert result.returncode == 0, result.stderr[-3000:]

    picture = cv2.imread(str(out_dir / "benchmark.png"))
    assert picture is not None and picture.shape[0] > 400 and picture.shape[1] > 400

    results = json.loads((out_dir / "benchmark.json").read_text())
    assert {*SECTIONS, "targets", "config", "machine", "date"} <= set(results)
    assert results["config"]["quick"] is True and results["config"]["weights"] == "random"
    backends = results["config"]["backends"]
    assert "nnabla" in backends
    expected_groups = {"bare_forward": {"1", "8"}, "steady_state": {"2D"}, "batch_job": {"2D"}, "startup": {"2D"}}
    for key in SECTIONS:
        section = results[key]
        assert set(section["ours"]) == set(backends), key
        for name, values in _timings(section):
            assert set(values) == expected_groups[key], (key, name)
            assert all(math.isfinite(v) and v > 0 for v in values.values()), (key, name, values)
        for backend in backends:
            assert all(math.isfinite(v) and v > 0 for v in section["speedup"][backend].values()), (key, backend)
        for samples in section["samples_s"].values():
            assert all(t > 0 for times in samples.values() for t in times), key

    assert results["targets"], "no target was judged"
    for target in results["targets"]:
        assert isinstance(target["met"], bool) and math.isfinite(target["measured"]), target
    # The table printed for people names every section and the verdicts.
    for title in ("(a) bare FAN-1 forward", "(b) steady-state", "(c) batch job", "(d) start-up", "targets:"):
        assert title in result.stdout, title

    # A saved document draws the same table and chart again without measuring.
    redrawn = run_tool("benchmarks/benchmark.py", "--redraw", out_dir / "benchmark.json",
                       "--out-dir", tmp_path / "again")
    assert redrawn.returncode == 0, redrawn.stderr[-3000:]
    assert redrawn.stdout.strip() == result.stdout.strip()
    assert cv2.imread(str(tmp_path / "again" / "benchmark.png")).shape == picture.shape
