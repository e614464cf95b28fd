"""``python -m face_alignment.dataset --engine ray``: each test starts a local Ray (the command
does, and shuts it down) on this machine's cores. Checked against the local engine's output
on the same inputs: the same rows, and a Ray worker killed mid-job retried with nothing lost.
Two workers on this 2-core machine also show that the job's sizing lets it progress.
"""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import CPU, ROOT
from test_dataset import assert_same_rows, clip_frames, make_photos, run_dataset, sorted_rows, write_clip

TIMEOUT = 600  # seconds: a bound on a hang, not a speed claim


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray") / "data"
    root.mkdir()
    make_photos(str(root), 6)
    write_clip(root / "clip.mp4", clip_frames(6))
    (root / "broken.png").write_bytes(b"not a PNG")
    return str(root)


@pytest.fixture(scope="module")
def local_output(small_dataset, fan1_h5, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("local") / "out")
    result = run_dataset("--input", small_dataset, "--output", out, "--model", fan1_h5, "--photos-per-unit", 2)
    assert result.returncode == 0, result.stderr
    return out


def _ray_command(data, out, model, workers):
    return [sys.executable, "-m", "face_alignment.dataset", "--input", data, "--output", out, "--model", model,
            "--photos-per-unit", "2", "--engine", "ray", "--workers", str(workers), "--no-progress", *CPU]


def test_ray_with_two_workers_on_two_cores_writes_the_local_engines_rows(small_dataset, fan1_h5, local_output,
                                                                           tmp_path):
    out = str(tmp_path / "out")
    result = subprocess.run(_ray_command(small_dataset, out, fan1_h5, 2), cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT), timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    # Our call uses Ray Data's current API: no RayDeprecationWarning (ray_remote_args such as
    # max_restarts) nor deprecation of concurrency=.
    assert "deprecated" not in result.stderr, result.stderr[-3000:]
    assert_same_rows(sorted_rows(out), sorted_rows(local_output))
    assert pd.read_parquet(os.path.join(out, "errors.parquet")).equals(
        pd.read_parquet(os.path.join(local_output, "errors.parquet")))
    assert sorted(os.listdir(os.path.join(out, "landmarks"))) == sorted(os.listdir(os.path.join(local_output, "landmarks")))
    assert len(os.listdir(os.path.join(out, "_workers"))) == 2  # both workers took part


def test_a_killed_ray_worker_is_retried_and_nothing_is_lost(small_dataset, fan1_h5, local_output, tmp_path):
    out = str(tmp_path / "out")
    process = subprocess.Popen(_ray_command(small_dataset, out, fan1_h5, 1), cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    workers, shards = os.path.join(out, "_workers"), os.path.join(out, "landmarks")
    total = len(os.listdir(os.path.join(local_output, "landmarks")))
    deadline = time.monotonic() + TIMEOUT
    victim = None
    while time.monotonic() < deadline and process.poll() is None:
        done = [n for n in os.listdir(shards) if n.startswith("part-")] if os.path.isdir(shards) else []
        if os.path.isdir(workers) and os.listdir(workers) and done:
            victim = int(os.listdir(workers)[0])
            os.kill(victim, signal.SIGKILL)
            break
        time.sleep(0.05)
    assert victim is not None, "the job ended before a worker could be killed"
    killed_with = len([n for n in os.listdir(shards) if n.startswith("part-")])
    assert killed_with < total  # mid-job
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr[-3000:]
    assert victim not in map(int, os.listdir(workers)) or len(os.listdir(workers)) >= 2  # a new worker took over
    assert len(os.listdir(workers)) >= 2
    assert_same_rows(sorted_rows(out), sorted_rows(local_output))
    assert pd.read_parquet(os.path.join(out, "errors.parquet")).equals(
        pd.read_parquet(os.path.join(local_output, "errors.parquet")))
