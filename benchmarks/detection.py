#!/usr/bin/env python3
"""Which face detector to use: recall, false positives and time on the shared annotated photos.

Views: each photo with 68 annotated points (``../shared/data/faces``), unmirrored and mirrored,
its face scaled to widths over three octaves (40 to 320 px) and rolled by -20 to 20 degrees,
composited at a random place into a frame of background texture (640x480 and 1280x720).
Face-free frames: the same textures with nothing on them.

- recall: a view counts as found when one detection's crop (the box mapped as FaceAlignment
  maps it by default, then the authors' crop rule) holds all 68 annotated points and is at most
  ``MAX_CROP_OVER_FACE`` times the points' extent across (a crop of the whole frame holds every
  point too, but is no face crop);
- false positives: detections per face-free frame;
- time: median ms of ``detect`` per frame, on the views' frames, per frame size.

Detectors with random weights (where no trained model can be had here) are timed only.

    .venv/bin/python benchmarks/detection.py                       # every registry detector
    .venv/bin/python benchmarks/detection.py --detector hog --detector blazeface --out results/detection.json
"""
import argparse
import json
import os
import platform
import sys
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from face_alignment.detection import DETECTORS, load_detector  # noqa: E402
from face_alignment.detection.base import reframe  # noqa: E402
from face_alignment.detection.registry import crop_relation  # noqa: E402
from face_alignment.evaluation.pts import read_pts  # noqa: E402
from face_alignment.pipeline.crop import crop_faces  # noqa: E402
from face_alignment.registry import CROP_AUTHORS  # noqa: E402

FACES = os.path.join(ROOT, "..", "shared", "data", "faces")
PHOTOS = ("breakingbad", "einstein")
FACE_WIDTHS = tuple(40.0 * 2 ** (k / 2) for k in range(7))  # 40 .. 320 px: three octaves
ROLLS = (-20.0, -10.0, 0.0, 10.0, 20.0)
FRAMES = {"640x480": (480, 640), "1280x720": (720, 1280)}
MAX_CROP_OVER_FACE = 4.0
FACE_FREE_FRAMES = 20
# Detectors whose trained weights cannot be had here: their boxes mean nothing.
RANDOM_WEIGHTS = ("sfd", "retinaface")


def texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A face-free background: noise smoothed at a random scale, tinted, with a gradient and
    a few stripes, so detectors see edges and blobs of many sizes."""
    scale = rng.choice([2, 8, 32])
    small = rng.random((max(2, height // scale), max(2, width // scale), 3)).astype(np.float32)
    noise = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    image = 0.6 * noise + 0.3 * ramp * rng.random(3).astype(np.float32) + 0.1 * rng.random(3).astype(np.float32)
    for _ in range(rng.integers(0, 4)):  # stripes
        x = int(rng.integers(0, width))
        image[:, x:x + int(rng.integers(2, 20))] *= 0.5
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def views(rng: np.random.Generator, height: int, width: int):
    """(frame, its 68 points, description) for every photo, mirror, size and roll."""
    for name in PHOTOS:
        photo = np.ascontiguousarray(cv2.imread(os.path.join(FACES, name + ".jpg"))[..., ::-1])
        points = read_pts(os.path.join(FACES, name + ".pts"))
        for mirrored in (False, True):
            image, pts = photo, points.copy()
            if mirrored:
                image = np.ascontiguousarray(photo[:, ::-1])
                pts[:, 0] = photo.shape[1] - 1 - pts[:, 0]
            extent = np.ptp(pts[:, 0])
            for face_width in FACE_WIDTHS:
                for roll in ROLLS:
                    yield composite(rng, image, pts, face_width / extent, roll, height, width), \
                        f"{name}{' mirrored' if mirrored else ''} {face_width:.0f}px {roll:+.0f}deg"


def composite(rng, image, points, scale, roll, height, width):
    """The face scaled by ``scale`` and rolled by ``roll`` degrees about its centroid, cut out
    as a square 2.5 face-widths across and pasted at a random place into a texture frame."""
    centre = points.mean(axis=0)
    side = int(round(2.5 * np.ptp(points[:, 0]) * scale))
    side = min(side, height, width)
    # One affine: the face centre to the middle of a side x side patch, scaled and rolled.
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), roll, scale)
    matrix[:, 2] += side / 2 - centre
    patch = cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    frame = texture(rng, height, width)
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    frame[top:top + side, left:left + side] = patch
    moved = points @ matrix[:, :2].T + matrix[:, 2] + [left, top]
    return frame, moved


def found(detector, boxes: np.ndarray, image: np.ndarray, points: np.ndarray) -> bool:
    """Whether one of ``boxes``, mapped and cropped as FaceAlignment does by default, gives a
    face crop holding all the points."""
    if len(boxes) == 0:
        return False
    relation = detector.box_relation
    mapped = reframe(boxes, relation, crop_relation()) if relation is not None else boxes[:, :4]
    frames = crop_faces(image, mapped, CROP_AUTHORS, 195.0)[1]
    extent = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))
    for left, top, right, bottom in frames.windows:
        inside = np.all((points[:, 0] >= left) & (points[:, 0] < right) & (points[:, 1] >= top) & (points[:, 1] < bottom))
        if inside and (right - left) <= MAX_CROP_OVER_FACE * extent:
            return True
    return False


def measure(name: str, weights, seed: int, repeats: int, limit: int):
    detector = load_detector(name, weights)
    detector.detect(np.zeros((480, 640, 3), np.uint8))  # warm-up: graphs built, caches filled
    result = {"detector": name, "random_weights": name in RANDOM_WEIGHTS, "frames": {}}
    for size, (height, width) in FRAMES.items():
        rng = np.random.default_rng(seed)
        all_views = list(views(rng, height, width))
        if limit:
            picks = np.random.default_rng(seed).choice(len(all_views), min(limit, len(all_views)), replace=False)
            all_views = [all_views[i] for i in sorted(picks)]
        hits, times, missed = 0, [], []
        for (frame, points), description in all_views:
            start = time.perf_counter()
            for _ in range(repeats):
                boxes = detector.detect(frame)
            times.append((time.perf_counter() - start) / repeats * 1000)
            if found(detector, boxes, frame, points):
                hits += 1
            else:
                missed.append(description)
        rng = np.random.default_rng(seed + 1)
        false = [len(detector.detect(texture(rng, height, width))) for _ in range(FACE_FREE_FRAMES)]
        result["frames"][size] = {"views": len(all_views), "recall": hits / len(all_views),
                                  "false_positives_per_frame": float(np.mean(false)),
                                  "ms_per_frame_median": float(np.median(times)),
                                  "missed": missed}
        print(f"{name:10s} {size:9s} recall {hits}/{len(all_views)}  false positives/frame {np.mean(false):.2f}  "
              f"{np.median(times):7.1f} ms/frame", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", action="append", metavar="NAME",
                        help=f"detector to measure, repeat for several (default: {', '.join(DETECTORS)})")
    parser.add_argument("--detector-model", action="append", default=[], metavar="NAME=PATH",
                        help="a detector's weight file (default: its own)")
    parser.add_argument("--limit", type=int, default=0, metavar="N",
                        help="measure N views per frame size, drawn at random (default: all 140); "
                        "dlib's CNN takes seconds a frame on a CPU")
    parser.add_argument("--repeats", type=int, default=1, help="detections per view, for the time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="JSON", help="write the results here (overwrites it)")
    args = parser.parse_args(argv)
    models = dict(item.split("=", 1) for item in args.detector_model)
    results = [measure(name, models.get(name), args.seed, args.repeats, args.limit)
               for name in args.detector or list(DETECTORS)]
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "load_average": os.getloadavg(), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
