"""``--engine ray``: the missing units as a Ray Data dataset, ``map_batches`` over an actor
class that builds FaceAlignment once per worker process, from the driver's ModelConfig, and runs :func:`.job.run_unit` (the
local engine's function: the same rows) on one unit per batch.

Sizing. Ray Data's own tasks need CPU too: the issue reports that on 2 cores two actors
asking for one CPU each left none for its read tasks and the job never finished (not seen
here with Ray 2.60 and ``from_items``, which has no read tasks). So a worker asks for
``min(1, (cpus - reserve) / workers)`` CPUs, ``reserve`` being one CPU (half of a 1-CPU
machine) kept for Ray Data, and ONNX Runtime runs ``max(1, cpus // workers)`` threads per
worker, so that workers together do not oversubscribe the cores. ``--context cudnn``:
``num_gpus=1`` per worker (untested here: no GPU).

Fault tolerance. Ray Data restarts its actors when their process dies and runs their unit
again (its defaults, ``max_restarts=-1`` and task retries: passing them ourselves is
deprecated); a unit run twice writes the same shard twice, renamed into place: still once.
Ray 2.60's driver then logs an ``E ... core_worker.cc`` line about actor arguments in the
object store: Ray Data puts its own transformer there for every restartable actor pool
(ray-project/ray#57733), not anything this call passes. Each worker writes its pid to
``OUT_DIR/_workers/``.

Units reach the workers as JSON text (ASCII): a path holding a line break, or bytes that are
not UTF-8 (which Arrow's strings cannot hold), arrives as it was listed. A fault of the
machine in a worker (:class:`.job.MachineFault`), or an error nobody expected, ends the job
with one line; so do SIGTERM (exit status 143) and Ctrl-C, after which the temporary files of
the stopped workers are removed.
"""
import json
import logging
import os
import re
import signal
from typing import Dict, List

import numpy as np

from ..cli_support import set_verbosity
from ..errors import FaceAlignmentError
from .job import LANDMARKS, ERRORS, WORKERS, remove_temporary_files, run_unit

log = logging.getLogger("face_alignment")
OBJECT_STORE_BYTES = 256 * 1024 * 1024  # units and summaries are small: a local Ray's store stays small


def worker_resources(cpus: float, workers: int, gpu: bool) -> Dict:
    """Ray resources per worker, and ONNX Runtime's threads, for ``workers`` on ``cpus``."""
    reserve = 1.0 if cpus >= 2 else cpus / 2
    return {"num_cpus": max(0.01, min(1.0, (cpus - reserve) / workers)), "num_gpus": 1 if gpu else 0,
            "threads": max(1, int(cpus // workers))}


class UnitWorker:
    """One per Ray worker process: the model, built once; called with a batch of one unit."""

    def __init__(self, config: str, cache_dir: str, out_dir: str, video_options: Dict, threads: int):
        """``config``: the driver's ModelConfig as JSON; ``cache_dir``: its export cache."""
        from ..api import FaceAlignment
        from ..backends.onnx_net import THREADS_VARIABLE
        from ..config import ModelConfig

        os.environ[THREADS_VARIABLE] = str(threads)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        self.fa = FaceAlignment.from_config(ModelConfig.from_json(config), cache_dir=cache_dir)
        self.out_dir, self.video_options = out_dir, video_options
        folder = os.path.join(out_dir, WORKERS)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, str(os.getpid())), "w") as f:
            f.write(f"{os.uname().nodename}\n")

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        summaries = [run_unit(self.fa, json.loads(str(unit)), self.out_dir, self.video_options)
                     for unit in batch["unit"]]
        return {name: np.array([s[name] for s in summaries]) for name in ("id", "items", "faces", "errors", "pid")}


def local_ray_options() -> Dict:
    """``ray.init``'s arguments for the local Ray a job starts when given no address."""
    return dict(num_cpus=os.cpu_count() or 1, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False)


def run_ray(args, config, units: List[Dict], out_dir: str, video_options: Dict) -> List[Dict]:
    """Run ``units`` on Ray (a local one, started and shut down here, or ``args.ray_address``),
    each worker with a FaceAlignment built from ``config`` (a ModelConfig: paths are absolute)."""
    import ray

    from ..backends.onnx_cache import cache_folder

    if not units:
        return []
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # The workers import this package as the driver does (a checkout, not only an install).
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        filter(None, [package_root, os.environ.get("PYTHONPATH")]))}}
    started = not ray.is_initialized()
    if started:
        # ray.init puts its own SIGTERM handler in place (exit status 15, a stack dump): keep ours.
        ours = signal.getsignal(signal.SIGTERM)
        where = {"address": args.ray_address} if args.ray_address else local_ray_options()
        ray.init(**where, runtime_env=runtime_env, log_to_driver=False,
                 logging_level=logging.INFO if getattr(args, "verbose", 0) else logging.WARNING)
        signal.signal(signal.SIGTERM, ours)
    # Ray configures its loggers when imported: quieted again, unless -v (cli_support).
    set_verbosity(getattr(args, "verbose", 0) - getattr(args, "quiet", 0))
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        sizing = worker_resources(cpus, args.workers, config.context == "cudnn")
        log.info("ray: %g CPUs, %d workers with %g CPU%s each, %d ONNX Runtime threads each", cpus, args.workers,
                 sizing["num_cpus"], f" and {sizing['num_gpus']} GPU" if sizing["num_gpus"] else "",
                 sizing["threads"])
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = not args.no_progress
        items = [{"unit": json.dumps(u)} for u in units]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            UnitWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=args.workers),
            num_cpus=sizing["num_cpus"],
            num_gpus=sizing["num_gpus"] or None,
            fn_constructor_kwargs=dict(config=config.to_json(), cache_dir=cache_folder(args.cache_dir),
                                       out_dir=os.path.abspath(out_dir), video_options=video_options,
                                       threads=sizing["threads"]))
        done = {}
        try:
            for row in dataset.iter_rows():
                done[str(row["id"])] = {"id": str(row["id"]), "items": int(row["items"]), "faces": int(row["faces"]),
                                        "errors": int(row["errors"]), "pid": int(row["pid"])}
        except Exception as error:
            raise worker_error(error) from None
        return list(done.values())
    finally:
        if started:
            ray.shutdown()
        # Workers stopped mid-unit (SIGTERM, Ctrl-C, an error in another) leave their
        # temporary files; this job holds the folder's lock, so they are no other job's.
        for folder in (LANDMARKS, ERRORS):
            remove_temporary_files(os.path.join(out_dir, folder))


# A line of a worker's traceback that says what was raised: "KeyError: 'x'", or
# "face_alignment.dataset.job.MachineFault: out/...: cannot write it (...)".
RAISED = re.compile(r"([A-Za-z_][\w.]*(?:Error|Exception|Fault|Interrupt|Exit))(?:: (.*))?")


def worker_error(error: BaseException) -> BaseException:
    """What a worker raised, as one line, from the exceptions Ray and Ray Data wrap it in. The
    exception itself, if it reached this process (ours, an OSError, a MemoryError); else the
    first line of the worker's traceback that says what was raised (Ray Data's
    UserCodeException keeps only the traceback's text): our message as it is, anything
    else with its type."""
    chain, todo = [], [error]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in chain):
            continue
        chain.append(current)
        if type(current).__module__.split(".")[0] != "ray" and isinstance(
                current, (FaceAlignmentError, MemoryError, OSError)):
            return current
        todo += [getattr(current, "cause", None), current.__cause__]
    for current in chain:
        for line in str(current).splitlines():
            raised = RAISED.fullmatch(line.strip() if line.startswith(" ") else line)
            if raised and not line.startswith(" ") and not raised.group(1).startswith("ray."):
                name, message = raised.group(1), raised.group(2) or ""
                if name.startswith("face_alignment."):
                    return FaceAlignmentError(message)
                return FaceAlignmentError(f"a Ray worker failed: {name}: {message}")
    text = (str(error).strip().splitlines() or [""])[-1]
    return FaceAlignmentError(f"a Ray worker failed: {type(error).__name__}: {text}")
