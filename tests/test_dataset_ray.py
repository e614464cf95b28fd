"""``python -m face_alignment.dataset --engine ray`` on a local Ray on this machine's cores.
The SIGTERM test's command starts its own (and shuts it down), as a user's does; the others
join one started once for the module as the command starts its own (its ``ray.init``
arguments), through ``--ray-address``: a start is seconds. Checked against the local engine's
output on the same inputs: the same rows, and a Ray worker killed mid-job retried with nothing
lost. Two workers on this 2-core machine also show that the job's sizing lets it progress.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import CPU, ROOT
from test_dataset import assert_same_rows, clip_frames, make_photos, run_dataset, sorted_rows, write_clip

TIMEOUT = 600  # seconds: a bound on a hang, not a speed claim
# A process holding a local Ray started as run_ray starts one: prints a line of the address to
# join and the authentication mode Ray chose for it (drivers that join need the same), then
# sends its output nowhere (nobody reads it after that line) and keeps Ray up until its stdin
# closes.
HOLDER_LINE = "ray holder:"
RAY_HOLDER = f"""
import os, sys
import ray
from face_alignment.dataset.ray_engine import local_ray_options
ray.init(**local_ray_options(), log_to_driver=False)
print({HOLDER_LINE!r}, ray.get_runtime_context().gcs_address, os.environ.get("RAY_AUTH_MODE", ""), flush=True)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
sys.stdin.read()
ray.shutdown()
"""


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray") / "data"
    root.mkdir()
    photos = make_photos(str(root), 6)
    write_clip(root / "clip.mp4", clip_frames(6))
    (root / "broken.png").write_bytes(b"not a PNG")
    # Names that Ray once lost (split at the line break) or stopped on (not UTF-8).
    shutil.copy(photos[1], root / "two\nlines.jpg")
    shutil.copy(photos[3], os.fsdecode(os.path.join(os.fsencode(str(root)), b"caf\xe9.jpg")))
    return str(root)


class RayHolder:
    """The process holding the module's local Ray (RAY_HOLDER), started at once; :meth:`join`
    waits for its Ray, so that it starts while the local engine's run is made."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", RAY_HOLDER], cwd=ROOT,
                                        env=dict(os.environ, PYTHONPATH=ROOT), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self._joined = None

    def join(self):
        """(address, environment) for a command to join the module's local Ray."""
        if self._joined is None:
            line = ""
            while not line.startswith(HOLDER_LINE):
                line = self.process.stdout.readline()
                assert line, "the Ray holder ended before it started Ray"
            address, mode = (line[len(HOLDER_LINE):].split() + [""])[:2]
            self._joined = address, dict(os.environ, PYTHONPATH=ROOT, **({"RAY_AUTH_MODE": mode} if mode else {}))
        return self._joined

    def stop(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def ray_cluster():
    holder = RayHolder()
    try:
        yield holder
    finally:
        holder.stop()


@pytest.fixture(scope="module")
def local_output(small_dataset, fan1_h5, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("local") / "out")
    result = run_dataset("--input", small_dataset, "--output", out, "--model", fan1_h5, "--photos-per-unit", 2)
    assert result.returncode == 0, result.stderr
    return out


def _ray_command(data, out, model, workers, address=None):
    """The command line; with ``address``, joining that Ray instead of starting one."""
    return [sys.executable, "-m", "face_alignment.dataset", "--input", data, "--output", out, "--model", model,
            "--photos-per-unit", "2", "--engine", "ray", "--workers", str(workers),
            *(["--ray-address", address] if address else []), "--no-progress", *CPU]


def test_ray_with_two_workers_on_two_cores_writes_the_local_engines_rows(ray_cluster, small_dataset, fan1_h5,
                                                                           local_output, tmp_path):
    out = str(tmp_path / "out")
    address, env = ray_cluster.join()
    result = subprocess.run(_ray_command(small_dataset, out, fan1_h5, 2, address), cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    # Our call uses Ray Data's current API: no RayDeprecationWarning (ray_remote_args such as
    # max_restarts) nor deprecation of concurrency=.
    assert "deprecated" not in result.stderr, result.stderr[-3000:]
    # Ray's own lines (a progress block every 10 s) only with -v.
    assert "logging_progress" not in result.stderr and "Running Dataset" not in result.stderr, result.stderr[-3000:]
    assert_same_rows(sorted_rows(out), sorted_rows(local_output))
    assert pd.read_parquet(os.path.join(out, "_errors.parquet")).equals(
        pd.read_parquet(os.path.join(local_output, "_errors.parquet")))
    assert sorted(os.listdir(os.path.join(out, "landmarks"))) == sorted(os.listdir(os.path.join(local_output, "landmarks")))
    assert len(os.listdir(os.path.join(out, "_workers"))) == 2  # both workers took part
    # The two odd names: one done, one an errors row, by both engines alike.
    assert (sorted_rows(out)["video"] == os.path.join(small_dataset, "two\nlines.jpg")).sum() > 0
    failed = set(pd.read_parquet(os.path.join(out, "_errors.parquet"))["path"])
    assert os.path.join(small_dataset, "caf\\xe9.jpg") in failed


def test_a_killed_ray_worker_is_retried_and_nothing_is_lost(ray_cluster, small_dataset, fan1_h5, local_output,
                                                           tmp_path):
    out = str(tmp_path / "out")
    address, env = ray_cluster.join()
    process = subprocess.Popen(_ray_command(small_dataset, out, fan1_h5, 1, address), cwd=ROOT, env=env,
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
    assert pd.read_parquet(os.path.join(out, "_errors.parquet")).equals(
        pd.read_parquet(os.path.join(local_output, "_errors.parquet")))


def test_sigterm_under_ray_exits_143_with_one_line_and_leaves_no_temporary_file(small_dataset, fan1_h5, tmp_path):
    """The command starts its own Ray here (the only test where it does): ray.init puts its own
    SIGTERM handler in place, which the command replaces with ours."""
    out = str(tmp_path / "out")
    process = subprocess.Popen(_ray_command(small_dataset, out, fan1_h5, 1), cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    workers = os.path.join(out, "_workers")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and process.poll() is None and not (os.path.isdir(workers)
                                                                          and os.listdir(workers)):
        time.sleep(0.05)
    assert process.poll() is None, "the job ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "error: terminated" and "Traceback" not in stderr
    for folder in ("landmarks", "_errors"):
        assert not [n for n in os.listdir(os.path.join(out, folder)) if n.startswith(".fa-")]


def test_worker_sizing_keeps_a_cpu_for_ray_data():
    from face_alignment.dataset.ray_engine import worker_resources

    assert worker_resources(2, 2, False) == {"num_cpus": 0.5, "num_gpus": 0, "threads": 1}
    assert worker_resources(2, 1, False) == {"num_cpus": 1.0, "num_gpus": 0, "threads": 2}
    assert worker_resources(8, 4, True) == {"num_cpus": 1.0, "num_gpus": 1, "threads": 2}
    assert worker_resources(1, 1, False) == {"num_cpus": 0.5, "num_gpus": 0, "threads": 1}
    assert worker_resources(4, 6, False)["num_cpus"] == pytest.approx(0.5)


def _as_ray_data_raises(cause):
    """``cause`` raised in a Ray Data worker, as the driver receives it (Ray 2.60): a
    RayTaskError(UserCodeException) whose text holds the worker's traceback, the cause itself
    not reaching the driver."""
    from ray.data.exceptions import UserCodeException
    from ray.exceptions import RayTaskError

    name = type(cause).__name__ if type(cause).__module__ == "builtins" else \
        f"{type(cause).__module__}.{type(cause).__name__}"
    trace = (f"Traceback (most recent call last):\n  File \"job.py\", line 1, in run_unit\n    raise it\n"
             f"{name}: {cause}\n\n"
             "The above exception was the direct cause of the following exception:\n\n"
             "ray::MapWorker(MapBatches(UnitWorker)).submit() (pid=1, ip=10.0.0.1)\n"
             "ray.exceptions.UserCodeException: UDF failed to process a data block.")
    return RayTaskError("MapWorker.submit", trace, UserCodeException("UDF failed to process a data block.")) \
        .as_instanceof_cause()


def test_a_workers_error_reaches_the_user_as_one_line():
    from face_alignment.dataset.job import MachineFault
    from face_alignment.dataset.ray_engine import worker_error

    fault = MachineFault("out/landmarks/part-0.parquet: cannot write it (No space left on device)")
    assert str(worker_error(_as_ray_data_raises(fault))) == str(fault)
    unexpected = worker_error(_as_ray_data_raises(KeyError("landmarks")))
    assert str(unexpected) == "a Ray worker failed: KeyError: 'landmarks'"


def test_run_ray_raises_what_the_worker_raised(fan1_h5, monkeypatch, tmp_path):
    """run_ray itself unwraps (a Ray that is already running, whose dataset fails as Ray Data's does)."""
    import argparse

    import ray

    from face_alignment.dataset import ray_engine
    from face_alignment.config import ModelConfig
    from face_alignment.dataset.job import MachineFault
    from face_alignment.errors import FaceAlignmentError

    fault = MachineFault("out/landmarks/part-0.parquet: cannot write it (No space left on device)")

    class Failing:
        def map_batches(self, *args, **kwargs):
            return self

        def iter_rows(self):
            raise _as_ray_data_raises(fault)

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(ray.data, "from_items", lambda *args, **kwargs: Failing())
    args = argparse.Namespace(workers=1, no_progress=True, ray_address=None, cache_dir=None)
    (tmp_path / "landmarks").mkdir()
    (tmp_path / "_errors").mkdir()
    (tmp_path / "landmarks" / ".fa-0123abcd.tmp.parquet").write_bytes(b"a stopped worker's")
    with pytest.raises(FaceAlignmentError) as raised:
        ray_engine.run_ray(args, ModelConfig.build(fan1_h5, context="cpu"),
                           [{"id": "0", "kind": "photo", "members": [["a.jpg", 1, 1]]}], str(tmp_path), {})
    assert str(raised.value) == str(fault) and os.listdir(tmp_path / "landmarks") == []
