"""benchmarks/benchmark.py --quick runs end to end: a readable chart and a JSON of positive timings.

Nothing here judges speed: the machine is shared and the quick case is too small to mean anything.
So the authors' numba functions run as the plain Python they are written in (NUMBA_DISABLE_JIT,
inherited by every process a benchmark starts): the same steps and the same landmarks, without
the 8 s of compilation each of their processes would pay (three in the quick benchmark).
"""
import json
import math

import cv2

from conftest import run_tool

# What these tests time is the benchmarks' plumbing, not the authors' code: see above.
NO_NUMBA = {"NUMBA_DISABLE_JIT": "1"}
SECTIONS = ("bare_forward", "steady_state", "batch_job", "startup")


def _timings(section):
    """Every number the section reports, with where it came from."""
    yield "authors", section["authors"]
    for backend, values in section["ours"].items():
        yield backend, values


def test_quick_benchmark_writes_chart_and_numbers(tmp_path):
    out_dir = tmp_path / "out"
    result = run_tool("benchmarks/benchmark.py", "--quick", "--out-dir", out_dir, env=NO_NUMBA)
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


VIDEO_CONFIGS = ("ours_tracking", "ours_detect_every_frame", "authors_every_frame")
VIDEO_STAGES = ("decoding", "detection", "fan", "writing", "other")


def test_quick_video_benchmark_times_every_stage_of_the_three_configurations(tmp_path):
    out_dir = tmp_path / "out"
    result = run_tool("benchmarks/video.py", "--quick", "--frames", 6, "--out-dir", out_dir, env=NO_NUMBA)
    assert result.returncode == 0, result.stderr[-3000:]

    results = json.loads((out_dir / "video_benchmark_random-weights.json").read_text())
    config = results["config"]
    assert config["quick"] is True and config["weights"] == "random" and config["backend"] == "onnxruntime"
    frames = config["frames"]
    assert frames == 6  # --frames, not --quick's 12
    for name in VIDEO_CONFIGS:
        [run] = results["runs"][name]  # --quick: one round
        assert run["frames"] == frames and run["faces"] >= 1, (name, run)
        assert math.isfinite(run["fps"]) and run["fps"] > 0, (name, run)
        seconds = run["seconds"]
        # The stages are timed apart inside the loop, so they never add up to more than it.
        assert all(math.isfinite(seconds[s]) and seconds[s] >= 0 for s in VIDEO_STAGES if s != "other"), seconds
        assert seconds["other"] > -1e-6 and seconds["fan"] > 0 and seconds["detection"] > 0, seconds
        assert math.isclose(sum(seconds[s] for s in VIDEO_STAGES), run["wall_s"]), seconds
        share = results["summary"][name]["share"]
        assert math.isclose(sum(share[s] for s in VIDEO_STAGES), 1.0), share
    tracking, every_frame = results["runs"]["ours_tracking"][0], results["runs"]["ours_detect_every_frame"][0]
    # Tracking detects now and then; the others on every frame.
    assert 1 <= tracking["detections"] < frames and tracking["sources"].get("tracking", 0) > 0, tracking
    assert every_frame["detections"] == frames == results["runs"]["authors_every_frame"][0]["detections"]
    assert set(results["summary"]["ratios"]) == {"tracking_over_detect_every_frame", "tracking_over_authors",
                                                 "detect_every_frame_over_authors"}
    assert isinstance(results["summary"]["target"]["met"], bool)
    for title in ("(a) ours, tracking", "(b) ours, detection every frame", "(c) authors'", "RANDOM weights"):
        assert title in result.stdout, title

    # A saved result prints the same table again without measuring.
    again = run_tool("benchmarks/video.py", "--report", out_dir / "video_benchmark_random-weights.json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip() == result.stdout.strip()


def test_video_benchmark_writes_its_clip(tmp_path):
    from face_alignment.video.reader import probe_video

    clip = tmp_path / "clip.mp4"
    result = run_tool("benchmarks/video.py", "--write-clip", clip, "--frames", 6, "--size", "320x180")
    assert result.returncode == 0, result.stderr[-3000:]
    info = probe_video(clip)
    assert (info.width, info.height, info.frame_count, info.fps) == (320, 180, 6, 25.0)
