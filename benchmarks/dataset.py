"""The same dataset job with --engine local, and --engine ray with 1 and 2 workers, in one run.

    .venv/bin/python benchmarks/dataset.py --model weights/random-2DFAN4.h5 [--photos 200] [--json out.json]

The job: ``--photos`` images made from the shared annotated photos (benchmarks/job_photos.py:
crops, mirrors, rescales), plus two short clips (breakingbad.jpg moving, ``--clip-frames``
frames each), faces found by the default detector (BlazeFace). Each configuration runs as a user would run it,
a fresh process into a fresh OUT_DIR, timed from start to exit (for Ray: starting a local
Ray, the workers' start-up and shutting it down included). Items per second count photos and
clips alike (a clip is one item); faces are rows written.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]
from job_photos import make_job  # noqa: E402
from synthetic_video import write_clip  # noqa: E402 (the tests' clips: H.264, frame i at i / fps)

SHARED_FACES = os.path.join(ROOT, "..", "shared", "data", "faces")
CONFIGS = (("local", ["--engine", "local"]), ("ray, 1 worker", ["--engine", "ray", "--workers", "1"]),
           ("ray, 2 workers", ["--engine", "ray", "--workers", "2"]))


def make_inputs(folder: str, photos: int, clip_frames: int) -> None:
    make_job(SHARED_FACES, photos, os.path.join(folder, "photos"))
    photo = cv2.imread(os.path.join(SHARED_FACES, "breakingbad.jpg"))[..., ::-1]
    photo = cv2.resize(photo, (640, 360), interpolation=cv2.INTER_AREA)
    for k in range(2):
        frames = [np.ascontiguousarray(np.roll(photo, (2 + k) * i, axis=1)) for i in range(clip_frames)]
        write_clip(os.path.join(folder, f"clip{k}.mp4"), frames)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="FAN .h5 (random weights are fine: cost does not depend on them)")
    p.add_argument("--photos", type=int, default=200)
    p.add_argument("--clip-frames", type=int, default=25)
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args()
    results = []
    env = dict(os.environ, PYTHONPATH=ROOT)
    with tempfile.TemporaryDirectory(prefix="fa-dataset-bench-") as work:
        data = os.path.join(work, "data")
        make_inputs(data, args.photos, args.clip_frames)
        # The ONNX model is exported once, before anything is timed.
        subprocess.run([sys.executable, "-m", "face_alignment.dataset", "--input", os.path.join(data, "clip0.mp4"),
                        "--output", os.path.join(work, "warm"), "--model", args.model, "--context", "cpu",
                        "--no-progress"], env=env, check=True, capture_output=True)
        for name, flags in CONFIGS:
            out = os.path.join(work, name.replace(" ", "").replace(",", "-"))
            before = loadavg()
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "face_alignment.dataset", "--input", data, "--output", out,
                            "--model", args.model, "--context", "cpu", "--no-progress", *flags], env=env,
                           check=True, capture_output=True)
            seconds = time.perf_counter() - start
            summary = json.load(open(os.path.join(out, "_manifest.json")))["summary"]
            results.append({"config": name, "seconds": round(seconds, 1), "items": summary["items"],
                            "items_per_second": round(summary["items"] / seconds, 2), "faces": summary["faces"],
                            "errors": summary["errors"], "loadavg_before": before, "loadavg_after": loadavg()})
            print(json.dumps(results[-1]), flush=True)
    print("\n| engine | wall time, s | items | items/s | faces | load average before / after |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['seconds']} | {r['items']} | {r['items_per_second']} | {r['faces']} | "
              f"{r['loadavg_before']} / {r['loadavg_after']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cores": os.cpu_count(), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
