"""How fast the toolkit is against the authors' face-alignment 1.5.0, on the same images, boxes
and (random) weights. See benchmarks/README.md for what each number means.

    .venv/bin/python benchmarks/benchmark.py                 # full: FAN-4, 24 images, 2D and 3D: ~45 min
    .venv/bin/python benchmarks/benchmark.py --quick --out-dir /tmp/bench   # FAN-1, 2 images, 2D: ~1.5 min

(a) bare FAN forward, ms per face; (b) steady-state pipeline, images/s; (c) a batch job over a
folder as whole processes; (d) start-up to the first landmark as a whole process. Writes
``benchmark.png`` and ``benchmark.json`` to ``--out-dir``.
"""
import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path[:0] = [BENCHMARKS, ROOT, os.path.join(ROOT, "tests")]

import job_photos  # noqa: E402
import report  # noqa: E402
import workers  # noqa: E402

DEFAULT_IMAGES = os.path.join(ROOT, "..", "shared", "data", "faces")
PYTHON = sys.executable
BATCH_SIZES = (1, 8)
DIMS = ("2D", "3D")
Command = List[str]


def isolated(function, *args):
    """``function(*args)`` in a fresh Python process (spawned, so nothing is inherited)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- whole processes


def check_document(path: str, expected_images: int, dims: int) -> None:
    """A run counts only if it landmarked every image: one face, 68 points of ``dims`` each."""
    with open(path) as f:
        images = json.load(f)["images"]
    if len(images) != expected_images:
        raise SystemExit(f"error: {path}: {len(images)} images, expected {expected_images}")
    for record in images:
        faces = record["faces"]
        if len(faces) != 1 or len(faces[0]["landmarks"]) != 68 or len(faces[0]["landmarks"][0]) != dims:
            raise SystemExit(f"error: {path}: {record['path']} does not have one face of 68 {dims}D points")


def time_process(command: Command, out_json: str, expected_images: int, dims: int) -> float:
    """Seconds from starting ``command`` to its exit; it must succeed and write its landmarks."""
    if os.path.exists(out_json):
        os.remove(out_json)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    check_document(out_json, expected_images, dims)
    return elapsed


def time_processes(commands: Dict[str, Tuple[Command, str]], expected_images: int, dims: int, warmup: int,
                   runs: int) -> Dict[str, List[float]]:
    """Runs interleaved (each round runs every command once) so that a burst of load from
    elsewhere on the machine falls on all implementations alike."""
    samples: Dict[str, List[float]] = {name: [] for name in commands}
    for round_index in range(warmup + runs):
        for name, (command, out_json) in commands.items():
            elapsed = time_process(command, out_json, expected_images, dims)
            if round_index >= warmup:
                samples[name].append(elapsed)
    return samples


def our_command(models: Dict, backend: str, dims: str, images: str, boxes: str, out_json: str) -> Command:
    model = models["fan3d_h5"] if dims == "3D" else models["fan2d_h5"]
    command = [PYTHON, os.path.join(ROOT, "model_inference.py"), "--model", model]
    if dims == "3D":
        command += ["--landmarks-type-3D", "--resnet-depth-model", models["depth_h5"]]
    return command + ["--test-image", images, "--boxes", boxes, "--save-json", out_json, "--no-progress",
                      "--backend", backend]


def authors_command(models: Dict, dims: str, num_modules: int, images: str, boxes: str, out_json: str) -> Command:
    command = [PYTHON, os.path.join(BENCHMARKS, "authors_pipeline.py"), "--network-size", str(num_modules),
               "--fan-checkpoint", models["fan3d_checkpoint"] if dims == "3D" else models["fan2d_checkpoint"]]
    if dims == "3D":
        command += ["--depth-checkpoint", models["depth_checkpoint"]]
    return command + ["--images", images, "--boxes", boxes, "--save-json", out_json]


def process_section(models: Dict, backends: Sequence[str], dims_wanted: Sequence[str], num_modules: int,
                    images: str, boxes: str, expected_images: int, scratch: str, warmup: int,
                    runs: int) -> Dict[str, Dict[str, List[float]]]:
    samples: Dict[str, Dict[str, List[float]]] = {name: {} for name in [report.AUTHORS, *backends]}
    for dims in dims_wanted:
        commands = {b: (our_command(models, b, dims, images, boxes, os.path.join(scratch, f"{b}.json")),
                        os.path.join(scratch, f"{b}.json")) for b in backends}
        authors_json = os.path.join(scratch, "authors.json")
        commands[report.AUTHORS] = (authors_command(models, dims, num_modules, images, boxes, authors_json),
                                    authors_json)
        log(f"  {dims}: {', '.join(commands)}")
        for name, times in time_processes(commands, expected_images, int(dims[0]), warmup, runs).items():
            samples[name][dims] = times
    return samples


# ----------------------------------------------------------------------------- the run


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the toolkit against the authors' face-alignment 1.5.0.")
    p.add_argument("--images", default=DEFAULT_IMAGES,
                   help="folder of photos with iBUG .pts files beside them (default: ../shared/data/faces)")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "results"), help="where benchmark.png and benchmark.json go, replacing any there (default: the "
                   "committed results/, whose files a run overwrites; give another folder to keep them)")
    p.add_argument("--runs", type=int, default=5, help="timed runs of (a) and (b) (default: %(default)s)")
    p.add_argument("--process-runs", type=int, default=3,
                   help="timed runs of the whole-process timings (c) and (d) (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before each timing (default: %(default)s)")
    p.add_argument("--job-size", type=int, default=24, help="images of the batch job (default: %(default)s)")
    p.add_argument("--backends", nargs="+", help="our backends to time (default: every available one)")
    p.add_argument("--dims", nargs="+", choices=DIMS, default=list(DIMS), help="landmarks (default: 2D 3D)")
    p.add_argument("--redraw", metavar="JSON", help="measure nothing: print the table and draw the chart "
                   "of a saved benchmark.json into --out-dir")
    p.add_argument("--quick", action="store_true",
                   help="a tiny case for the tests: FAN with 1 module, 2 photos, 2D, 1 run, no warm-up")
    args = p.parse_args(argv)
    if args.quick:
        # 2D only: 3D would add a one-time ONNX export of ResNetDepth and two more processes of
        # the authors', each paying numba's compilation, which would double the time.
        args.runs, args.process_runs, args.warmup, args.job_size, args.dims = 1, 1, 0, 2, ["2D"]
    args.dims = [d for d in DIMS if d in args.dims]
    if min(args.runs, args.process_runs, args.job_size) < 1 or args.warmup < 0:
        p.error("--runs, --process-runs and --job-size must be 1 or more, --warmup 0 or more")
    args.num_modules = 1 if args.quick else 4
    return args


def measure(args: argparse.Namespace, scratch: str) -> Tuple[Dict, List[str]]:
    """Raw samples in seconds, {section: {implementation: {group: [seconds]}}}, and the backends."""
    job_folder = os.path.join(scratch, "job")
    log(f"making {args.job_size} job images from {os.path.abspath(args.images)}")
    boxes = job_photos.make_job(args.images, args.job_size, job_folder)
    boxes_json = os.path.join(scratch, "boxes.json")
    with open(boxes_json, "w") as f:
        json.dump(boxes, f)
    names = sorted(boxes)
    job_images = [os.path.join(job_folder, n) for n in names]
    job_boxes = [boxes[n] for n in names]

    log(f"random FAN-{args.num_modules} and ResNetDepth checkpoints ({', '.join(args.dims)}), converted to .h5")
    models = isolated(workers.prepare_models, os.path.join(scratch, "models"), args.num_modules,
                      "3D" in args.dims)
    backends = args.backends or models["backends"]
    unknown = set(backends) - set(models["backends"])
    if unknown:
        raise SystemExit(f"error: backends {sorted(unknown)} not available (available: {models['backends']})")
    log(f"backends: {', '.join(backends)}")

    n, w, runs = args.num_modules, args.warmup, args.runs
    raw: Dict[str, Dict[str, Dict[str, List[float]]]] = {key: {} for key in report.SECTIONS}

    log("(a) bare FAN forward and (b) steady state, one process per implementation")
    for backend in backends:
        log(f"  ours: {backend}")
        raw["bare_forward"][backend], raw["steady_state"][backend] = isolated(
            workers.ours_in_process, models, backend, BATCH_SIZES, args.dims, job_images, job_boxes, w, runs)
    log("  the authors'")
    raw["bare_forward"][report.AUTHORS], raw["steady_state"][report.AUTHORS] = isolated(
        workers.authors_in_process, models, n, BATCH_SIZES, args.dims, job_images, job_boxes, w, runs)

    log(f"(c) batch job over {len(job_images)} images, whole processes")
    raw["batch_job"] = process_section(models, backends, args.dims, n, job_folder, boxes_json, len(job_images),
                                       scratch, w, args.process_runs)
    log("(d) start-up to first landmark, one image, whole processes")
    # Measured with each backend's cache warm: (b) and (c) have used the same model files, and
    # a full run adds an untimed round of its own.
    raw["startup"] = process_section(models, backends, args.dims, n, job_images[0], boxes_json, 1,
                                     scratch, startup_warmup(args), args.process_runs)
    return raw, backends


def startup_warmup(args: argparse.Namespace) -> int:
    return args.warmup if args.quick else max(1, args.warmup)


def summarise(raw: Dict, backends: Sequence[str], args: argparse.Namespace, job_size: int) -> Dict:
    n, w = args.num_modules, args.warmup
    return {
        "bare_forward": report.section(f"(a) bare FAN-{n} forward", "ms per face", raw["bare_forward"], backends,
                                       lambda group, s: 1000.0 * s / int(group), False, args.runs, w),
        "steady_state": report.section(f"(b) steady-state pipeline, {job_size} images", "images/s",
                                       raw["steady_state"], backends, lambda group, s: job_size / s, True,
                                       args.runs, w),
        "batch_job": report.section(f"(c) batch job, {job_size} images, whole process", "seconds",
                                    raw["batch_job"], backends, lambda group, s: s, False, args.process_runs, w),
        "startup": report.section("(d) start-up to first landmark, 1 image, whole process", "seconds",
                                  raw["startup"], backends, lambda group, s: s, False, args.process_runs,
                                  startup_warmup(args)),
    }


def notes(results: Dict) -> List[str]:
    config, machine = results["config"], results["machine"]
    return [f"random weights; {machine['cpus']}-core CPU; {results['date'].replace('T', ' ')}; "
            f"FAN-{config['fan_modules']}; authors: face-alignment 1.5.0, PyTorch eager, "
            f"torch.set_num_threads({config['torch_threads']})",
            f"load average (1 min) before {machine['load_average_1min_before']:.2f}, after "
            f"{machine['load_average_1min_after']:.2f}: other work on the machine makes the timings noisy"]


def draw(results: Dict, png_path: str) -> None:
    """The chart of a results document (so a saved benchmark.json can be drawn again)."""
    config, machine = results["config"], results["machine"]
    report.chart(results, png_path,
                 f"FAN-{config['fan_modules']}: this toolkit vs the authors' face-alignment 1.5.0 "
                 f"(random weights; {machine['cpus']}-core CPU; {results['date'][:10]})",
                 f"Median of {config['runs']} runs for (a), (b) and of {config['process_runs']} for (c), (d); "
                 "bars show the value and ours' speed-up over the authors'. Dashed red, the targets: (a) 0.75x "
                 "the authors' time, (b) 1.3x their images/s,\n(c) 1.5x (2D) / 1.3x (3D) faster than theirs, "
                 f"(d) 3 s. Load average (1 min) {machine['load_average_1min_before']:.2f} before, "
                 f"{machine['load_average_1min_after']:.2f} after: other work on the machine adds noise.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.redraw:
        with open(args.redraw) as f:
            results = json.load(f)
        print(report.table(results, notes(results)))
        os.makedirs(args.out_dir, exist_ok=True)
        draw(results, os.path.join(args.out_dir, "benchmark.png"))
        return 0
    started = datetime.datetime.now()
    load_before = os.getloadavg()
    os.makedirs(args.out_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="fan-benchmark-")
    try:
        raw, backends = measure(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load_after = os.getloadavg()

    results = summarise(raw, backends, args, args.job_size)
    results["targets"] = report.targets(results)
    cores = os.cpu_count()
    results["config"] = {"quick": args.quick, "fan_modules": args.num_modules, "job_images": args.job_size,
                         "dims": args.dims, "runs": args.runs, "process_runs": args.process_runs,
                         "warmup": args.warmup, "backends": list(backends), "torch_threads": workers.TORCH_THREADS,
                         "images_from": os.path.abspath(args.images), "weights": "random"}
    results["machine"] = {"cpus": cores, "platform": platform.platform(), "python": platform.python_version(),
                          "load_average_1min_before": round(load_before[0], 2),
                          "load_average_1min_after": round(load_after[0], 2)}
    results["date"] = started.isoformat(timespec="seconds")
    results["duration_s"] = round((datetime.datetime.now() - started).total_seconds(), 1)

    print(report.table(results, notes(results)))
    json_path = os.path.join(args.out_dir, "benchmark.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
    png_path = os.path.join(args.out_dir, "benchmark.png")
    draw(results, png_path)
    log(f"wrote {json_path} and {png_path} in {results['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
