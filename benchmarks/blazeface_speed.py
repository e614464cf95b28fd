"""Milliseconds per frame of the BlazeFace detector (letterbox, network, decoding, blending),
per model, backend and frame size, on this machine's CPU.

    .venv/bin/python benchmarks/blazeface_speed.py                 # full and short range, both backends
    .venv/bin/python benchmarks/blazeface_speed.py --runs 50 --backends onnxruntime

The frames are the shared breakingbad photo (two faces) resized to 640x480 and 1280x720;
the models are the converted ones scripts/setup.sh puts in the home folder (trained:
MediaPipe's). Each configuration is warmed up on 3 frames; the median and the fastest of
``--runs`` calls of ``detect`` are reported, with the load average, since other processes on
a shared machine slow every number alike.
"""
import argparse
import os
import statistics
import sys
import time

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path.insert(0, ROOT)

PHOTO = os.path.join(ROOT, "..", "shared", "data", "faces", "breakingbad.jpg")
SIZES = ((640, 480), (1280, 720))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--variants", nargs="+", default=["full_range", "short_range"])
    p.add_argument("--backends", nargs="+", default=["nnabla", "onnxruntime"])
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: %(default)s)")
    args = p.parse_args()

    import cv2

    from face_alignment.detection.blazeface import BlazeFaceDetector
    from face_alignment.pipeline.image import read_image

    os.environ["FACE_ALIGNMENT_ORT_THREADS"] = str(args.threads)
    photo = read_image(PHOTO)
    frames = {size: cv2.resize(photo, size, interpolation=cv2.INTER_AREA) for size in SIZES}
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'model':12s} {'backend':12s} {'frame':10s} {'median ms':>10s} {'min ms':>8s} faces")
    for variant in args.variants:
        for backend in args.backends:
            detector = BlazeFaceDetector(variant=variant, backend=backend)
            for size, frame in frames.items():
                for _ in range(3):
                    found = detector.detect(frame)
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    detector.detect(frame)
                    times.append((time.perf_counter() - start) * 1000)
                print(f"{variant:12s} {backend:12s} {size[0]}x{size[1]:<6d} {statistics.median(times):10.1f} "
                      f"{min(times):8.1f} {len(found)}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
