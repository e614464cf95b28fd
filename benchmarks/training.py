"""Training speed, ours against ibug's trainer (../shared/reference/ibug-fan-training, run as it is).

Data: samples per second of our training data pipeline (face_alignment.training.data) against
ibug's LandmarkDataset with its augmentation, at the same worker count.
Step: seconds per training step (forward, backward, RMSprop update) of FAN-2 (ibug-2dfan2, 256 px)
at batch 4 with both losses, ours in NNabla against ibug's in PyTorch, on random weights and a
random batch; the sides alternate, each in a fresh process, and the median of each is reported.

    .venv/bin/python benchmarks/training.py [--samples 96] [--workers 2] [--scales 1 0.45] [--json out.json]
    .venv/bin/python benchmarks/training.py --only step [--steps 3] [--rounds 2] [--batch-size 4]

Both sides make the same samples from the same index: an ibug .tsv over the shared annotated
photos (``--images``), each also rescaled by every ``--scales`` factor (the shared photos are
1 to 2 megapixels; 300W's are mostly smaller, and decoding them is a large part of the cost),
with ibug's experiments' augmentation on both sides: ShiftScaleRotate(scale 0.2, rotate 50,
p 0.5), Blur, ColorJitter(0.3, 0.3, 0.3), JPEG quality 30 to 100, CoarseDropout of up to 8
holes, random flip. Ours: ``batches(..., workers=W)``; ibug's: ``torch.utils.data.DataLoader(
dataset, batch_size, num_workers=W)`` from ../shared/reference/ibug-fan-training, run as it
is. Each side runs in a fresh process; the clock starts at the first batch (worker start-up
is reported apart) and stops at the last. On a machine shared with other work, samples per
second measure the share of the CPU each side got as much as the side itself; so each side is
also run in one process with one thread (OpenCV's, torch's), and its CPU time per sample
reported, and the CPU time of decoding the photos (cv2.imread, which both sides do alike).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared")
IBUG_TRAINING = os.path.normpath(os.path.join(SHARED, "reference", "ibug-fan-training"))
SHARED_FACES = os.path.normpath(os.path.join(SHARED, "data", "faces"))
sys.path.insert(0, HERE)
from dataset import loadavg  # noqa: E402

# Each side's script defines make_batches(tsv, samples, workers, batch_size), an iterator of
# batches; TIMED runs it and prints the timings as JSON.
TIMED = r"""
def main():
    tsv, samples, workers, batch_size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    start = time.perf_counter()
    times, cpu = [], []
    for _ in make_batches(tsv, samples, workers, batch_size):
        times.append(time.perf_counter())
        cpu.append(time.process_time())
    print(json.dumps({"start": times[0] - start, "seconds": times[-1] - times[0], "cpu": cpu[-1] - cpu[0],
                      "samples": samples - batch_size}))

if __name__ == "__main__":
    main()
"""

OURS = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import cv2
cv2.setNumThreads(1)  # as in the workers: one core per process, the workers are the parallelism
from face_alignment.training.data import DataConfig, batches, open_training_set

def make_batches(tsv, samples, workers, batch_size):
    training_set = open_training_set(tsv, DataConfig())
    order = [k % len(training_set) for k in range(samples)]
    return batches(training_set, order, batch_size, seed=0, workers=workers)
""" + TIMED
# Ours with --reduced-decode: large JPEGs decoded at a fraction of their size.
OURS_REDUCED = OURS.replace("DataConfig()", "DataConfig(reduced_decode=True)")

IBUG = r"""
import json, os, sys, time
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
sys.path.insert(0, sys.argv[1])
import albumentations as A
import cv2
import torch
cv2.setNumThreads(1)
torch.set_num_threads(1)
from torch.utils.data import DataLoader, Subset
from datasets import LandmarkDataset

def make_batches(tsv, samples, workers, batch_size):
    geometric = A.ShiftScaleRotate(scale_limit=0.2, rotate_limit=50, p=0.5)
    content = A.Compose([A.Blur(), A.ColorJitter(0.3, 0.3, 0.3), A.ImageCompression(quality_range=(30, 100)),
                         A.CoarseDropout(num_holes_range=(1, 8))])
    partitions = sorted({tuple(line.split("\t")[:2]) for line in open(tsv).read().splitlines()[1:]})
    dataset = LandmarkDataset(tsv, partitions, random_flip=True, geometric_transform=geometric,
                              content_transform=content)
    order = [k % len(dataset) for k in range(samples)]
    return DataLoader(Subset(dataset, order), batch_size=batch_size, num_workers=workers, shuffle=False)
""" + TIMED

# Decoding the photos alone, in the same order, as both sides decode them.
DECODE = r"""
import json, sys, time
import cv2
cv2.setNumThreads(1)

def make_batches(tsv, samples, workers, batch_size):
    paths = [line.split("\t")[3] for line in open(tsv).read().splitlines()[1:]]
    order = [paths[k % len(paths)] for k in range(samples)]
    for first in range(0, samples, batch_size):
        yield [cv2.imread(path, cv2.IMREAD_COLOR) for path in order[first:first + batch_size]]
""" + TIMED


# One training step, each side: make(batch_size) builds the model, its optimiser and a random
# batch, and returns a function that runs one step; STEP_TIMED times steps after a warm-up one.
STEP_TIMED = r"""
def main():
    batch_size, steps = int(sys.argv[2]), int(sys.argv[3])
    step = make(batch_size)
    step()  # warm-up: graph building, allocation
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": times}))

if __name__ == "__main__":
    main()
"""

STEP_OURS = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from face_alignment.registry import ARCHITECTURES
from face_alignment.training.graph import TrainingGraph, new_parameters
from face_alignment.training.solvers import make_solver

def make(batch_size):
    arch = ARCHITECTURES["ibug-2dfan2"]
    graph = TrainingGraph(arch, new_parameters(arch, 0), batch_size, heatmap_weight=1.0, distance_weight=0.01)
    solver = make_solver("rmsprop", 5e-4, 0.9)
    solver.set_parameters(graph.learnable)
    rng = np.random.RandomState(0)
    size, n = arch.input_size, arch.num_landmarks
    corners = np.tile(np.array([[60, 60], [200, 60], [200, 200], [60, 200]], np.float32), (batch_size, 1, 1))
    graph.feed({"crop": rng.rand(batch_size, 3, size, size).astype(np.float32),
                "heatmaps": rng.rand(batch_size, n, arch.heatmap_size, arch.heatmap_size).astype(np.float32),
                "landmarks": (rng.rand(batch_size, n, 2) * size).astype(np.float32),
                "landmark_box_corners": corners, "weight": np.ones(batch_size, np.float32)})

    def step():
        graph.forward_backward()
        solver.update()
    return step
""" + STEP_TIMED

STEP_IBUG = r"""
import json, os, sys, time
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
sys.path.insert(0, sys.argv[1])
import torch
from models import FAN
from train import compute_losses

def make(batch_size):
    torch.manual_seed(0)
    model = FAN(FAN.create_config(num_modules=2)).train()
    optimiser = torch.optim.RMSprop(model.parameters(), lr=5e-4, momentum=0.9)
    images = torch.rand(batch_size, 3, 256, 256)
    heatmaps = torch.rand(batch_size, 68, 64, 64)
    landmarks = torch.rand(batch_size, 68, 2) * 256
    corners = torch.tensor([[60, 60], [200, 60], [200, 200], [60, 200]], dtype=torch.float32).repeat(batch_size, 1, 1)

    def step():
        predicted = model(images)
        total, _, _ = compute_losses(predicted, heatmaps, landmarks, images.shape, corners, None, 1.0, 0.01)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    return step
""" + STEP_TIMED


def step_benchmark(args) -> dict:
    """Seconds per training step of each side, sides alternating over ``args.rounds``."""
    import statistics

    times = {"ours": [], "ibug": []}
    for _ in range(args.rounds):
        for side, script, first in (("ours", STEP_OURS, ROOT), ("ibug", STEP_IBUG, IBUG_TRAINING)):
            done = subprocess.run([sys.executable, "-c", script, first, str(args.batch_size), str(args.steps)],
                                  capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"error: the {side} training step failed:\n{done.stderr[-3000:]}")
            times[side] += json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    result = {side: statistics.median(seconds) for side, seconds in times.items()}
    result["all_seconds"] = times
    result["ours_over_ibug"] = result["ours"] / result["ibug"]
    print(f"one training step, FAN-2 (ibug-2dfan2, 256 px), batch {args.batch_size}, RMSprop, both losses, "
          f"median of {len(times['ours'])} per side:")
    print(f"  ours (NNabla) {result['ours']:.1f} s, ibug's (PyTorch) {result['ibug']:.1f} s: "
          f"ours takes {result['ours_over_ibug']:.2f}x ibug's time")
    return result


def read_points(path: str) -> np.ndarray:
    with open(path) as f:
        body = f.read().split("{", 1)[1].split("}", 1)[0]
    return np.array(body.split(), dtype=np.float64).reshape(-1, 2)


def make_index(images: str, scales, folder: str) -> str:
    """An ibug .tsv over each annotated photo of ``images`` at each scale (rescaled copies and
    their .pts written to ``folder``); face box: the points' box, 5 % wider each side."""
    rows = []
    for name in sorted(os.listdir(images)):
        stem, suffix = os.path.splitext(name)
        pts = os.path.join(images, stem + ".pts")
        if suffix.lower() not in (".jpg", ".jpeg", ".png") or not os.path.isfile(pts):
            continue
        photo, points = cv2.imread(os.path.join(images, name)), read_points(pts)
        for scale in scales:
            image_path = os.path.join(folder, f"{stem}-x{scale:g}.jpg")
            pts_path = os.path.join(folder, f"{stem}-x{scale:g}.pts")
            size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
            cv2.imwrite(image_path, cv2.resize(photo, size, interpolation=cv2.INTER_AREA),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            scaled = points * scale
            with open(pts_path, "w") as f:
                f.write("version: 1\nn_points: 68\n{\n" + "\n".join(f"{x:.4f} {y:.4f}" for x, y in scaled) + "\n}\n")
            (left, top), (right, bottom) = scaled.min(0) - 1, scaled.max(0) - 1
            pad = 0.05 * (right - left)
            box = [left - pad, top - pad, right + pad, bottom + pad]
            rows.append("\t".join(["bench", "", "0", image_path, pts_path] + [f"{v:.3f}" for v in box]))
    if not rows:
        raise SystemExit(f"error: {images}: no photo with an iBUG .pts file beside it")
    tsv = os.path.join(folder, "index.tsv")
    with open(tsv, "w") as f:
        f.write("subset\tsplit\taug_idx\tim_path\tpts_path\tleft\ttop\tright\tbottom\n" + "\n".join(rows) + "\n")
    return tsv


def run(script: str, path_first: str, tsv: str, samples: int, workers: int, batch_size: int) -> dict:
    done = subprocess.run([sys.executable, "-c", script, path_first, tsv, str(samples), str(workers), str(batch_size)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"error: a benchmark process failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["samples_per_second"] = result["samples"] / result["seconds"]
    result["cpu_ms_per_sample"] = 1e3 * result["cpu"] / result["samples"]
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=SHARED_FACES, help="photos with iBUG .pts files beside them")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.45], help="each photo also rescaled by these")
    p.add_argument("--samples", type=int, default=96, help="samples per side (the first batch is not timed)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, help="samples per batch (default: 8 for data, 4 for a step)")
    p.add_argument("--only", choices=("data", "step"), help="run one half only")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per process (after a warm-up one)")
    p.add_argument("--rounds", type=int, default=2, help="processes per side for the step, alternating")
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args()
    results = {"load_average_before": loadavg()}
    if args.only != "data":
        step_args = argparse.Namespace(**vars(args))
        step_args.batch_size = args.batch_size or 4
        results["step"] = step_benchmark(step_args)
    if args.only != "step":
        args.batch_size = args.batch_size or 8
        results["data"] = data_benchmark(args)
    results["load_average_after"] = loadavg()
    print(f"load average {results['load_average_before']} before, {results['load_average_after']} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


SIDES = (("ibug", IBUG, IBUG_TRAINING), ("ours", OURS, ROOT), ("ours_reduced", OURS_REDUCED, ROOT))


def data_benchmark(args) -> dict:
    results = {"load_average_before": loadavg(), "workers": args.workers, "batch_size": args.batch_size,
               "scales": args.scales}
    with tempfile.TemporaryDirectory(prefix="training-bench-") as folder:
        tsv = make_index(args.images, args.scales, folder)
        for side, script, first in SIDES:
            results[side] = run(script, first, tsv, args.samples, args.workers, args.batch_size)
            # In one process, one thread: the CPU time a sample costs, which other processes
            # on a shared machine do not change.
            results[side + "_one_process"] = run(script, first, tsv, args.samples, 0, args.batch_size)
        # Decoding the photos (cv2.imread), which both sides do alike.
        results["decoding"] = run(DECODE, ROOT, tsv, args.samples, 0, args.batch_size)
    results["load_average_after"] = loadavg()
    for ours in ("ours", "ours_reduced"):
        results[ours + "_speed_ratio"] = results[ours]["samples_per_second"] / results["ibug"]["samples_per_second"]
        results[ours + "_cpu_ratio"] = (results["ibug_one_process"]["cpu_ms_per_sample"]
                                        / results[ours + "_one_process"]["cpu_ms_per_sample"])
    print(f"data pipeline, batches of {args.batch_size}, augmentation on, scales {args.scales} "
          f"(load average {results['load_average_before']} before, {results['load_average_after']} after)")
    print(f"  {'':12s} {args.workers} workers: samples/s   1 process: CPU ms/sample")
    for side, _, _ in SIDES:
        r, one = results[side], results[side + "_one_process"]
        print(f"  {side:12s} {r['samples_per_second']:11.1f}   {one['cpu_ms_per_sample']:24.1f}")
    decoding = results["decoding"]["cpu_ms_per_sample"]
    beyond = ((results["ibug_one_process"]["cpu_ms_per_sample"] - decoding)
              / (results["ours_one_process"]["cpu_ms_per_sample"] - decoding))
    results["cpu_ratio_beyond_decoding"] = beyond
    print(f"  of which decoding the photos (cv2.imread, alike on both sides): {decoding:.1f} ms/sample")
    print(f"  ours / ibug: {results['ours_speed_ratio']:.2f}x samples/s with {args.workers} workers, "
          f"{results['ours_cpu_ratio']:.2f}x less CPU per sample, {beyond:.2f}x less beyond decoding")
    print(f"  ours with --reduced-decode / ibug: {results['ours_reduced_speed_ratio']:.2f}x samples/s, "
          f"{results['ours_reduced_cpu_ratio']:.2f}x less CPU per sample")
    return results


if __name__ == "__main__":
    sys.exit(main())
