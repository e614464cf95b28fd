#!/usr/bin/env python3
"""Measure where a face detector puts its boxes relative to the 68 annotated landmarks of
the shared photos: its ``box_relation``, which the tracker falls back on and which maps its
boxes onto the crop FAN expects (dlib's: face_alignment/detection/dlib_detectors.py,
DLIB_BOXES).

Each photo, and its mirror image, is shrunk so that its annotated face is 90 to 108 px wide
(one step of dlib's image pyramid, a factor 1.2, in SIZES sub-steps, each cropped at a
different offset modulo 8 px, HOG's cell) and rolled by -8, 0 and 8 degrees, so that the
sizes and places to which dlib rounds its boxes are averaged over. Every detection that
overlaps the annotated face gives one relation (box centre offset from the landmarks'
centroid, box width and height, in units of the landmarks' radius: see tracking.py); the
medians are the calibrated relation. The spread is printed too, with how well the medians
reproduce each detection (IoU).

    .venv/bin/python scripts/calibrate_tracking_boxes.py [--faces DIR] [--cnn-model PATH]
    .venv/bin/python scripts/calibrate_tracking_boxes.py --detector blazeface [--detector-model PATH]
    .venv/bin/python scripts/calibrate_tracking_boxes.py --detect-every 240

The second form measures, for the tracker's default detect_every, how far tracked boxes
stray from detected ones as detection gets rarer, and detection's share of the time.

HOG runs on breakingbad.jpg only (it misses Einstein's upturned face), other detectors on both.
The CNN takes ~1-2 s a crop on two cores; the whole run, a few minutes.
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from face_alignment.matching import box_iou, points_box  # noqa: E402
from face_alignment.evaluation.pts import read_pts  # noqa: E402
from face_alignment.detection import BoxRelation, Detector, load_detector  # noqa: E402
from face_alignment.detection.dlib_detectors import HogDetector  # noqa: E402
from face_alignment.video.tracking import box_from_landmarks, relation_of  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
PHOTOS = {"hog": ("breakingbad",)}
BOTH_PHOTOS = ("breakingbad", "einstein")
SIZES = 8
FACE_WIDTHS = 90.0 * 1.2 ** (np.arange(SIZES) / SIZES)  # one pyramid step
ROLLS = (-8.0, 0.0, 8.0)  # degrees: dlib's HOG scores breakingbad's face, upright, near its threshold
CROP = 2.2  # crop side over face width: the CNN's cost grows with the pixels


def views(image: np.ndarray, points: np.ndarray):
    """(crop, its landmarks) of the face at each size, unmirrored then mirrored, each
    rolled by each of ROLLS."""
    width = np.ptp(points[:, 0])
    for step, face_width in enumerate(FACE_WIDTHS):
        scale = face_width / width
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        factor = np.array([size[0] / image.shape[1], size[1] / image.shape[0]])
        moved = (points + 0.5) * factor - 0.5  # pixel centres of the shrunk copy
        side = int(CROP * face_width)
        corner = np.round(moved.mean(axis=0) - side / 2).astype(int) + step  # a different cell offset each
        crop = np.zeros((side, side, 3), np.uint8)
        top, left = max(corner[1], 0), max(corner[0], 0)
        part = small[top:corner[1] + side, left:corner[0] + side]
        crop[top - corner[1]:top - corner[1] + part.shape[0], left - corner[0]:left - corner[0] + part.shape[1]] = part
        local = moved - corner
        mirrored = local.copy()
        mirrored[:, 0] = side - 1 - local[:, 0]
        for view, view_points in ((crop, local), (np.ascontiguousarray(crop[:, ::-1]), mirrored)):
            for roll in ROLLS:
                centre = view_points.mean(axis=0)
                matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), roll, 1.0)
                yield (cv2.warpAffine(view, matrix, (side, side), flags=cv2.INTER_LINEAR),
                       view_points @ matrix[:, :2].T + matrix[:, 2])


def measure(kind: str, detector: Detector, faces_dir: str):
    relations, samples, missed = [], [], 0
    for name in PHOTOS.get(kind, BOTH_PHOTOS):
        image = np.ascontiguousarray(cv2.imread(os.path.join(faces_dir, name + ".jpg"))[..., ::-1])
        points = read_pts(os.path.join(faces_dir, name + ".pts"))
        for crop, local in views(image, points):
            boxes = detector.detect(crop)[:, :4]
            iou = box_iou(points_box(local), boxes)[0]
            if len(boxes) == 0 or iou.max() < 0.3:
                missed += 1
                continue
            box = boxes[np.argmax(iou)]
            relations.append(relation_of(box, local[None])[0])
            samples.append((box, local))
    return np.array(relations), samples, missed


def sweep_detect_every(frames: int) -> None:
    """How far tracked boxes stray from dlib's HOG boxes of the same frames, and how much of
    the time detection takes, for several detect_every, on the tests' two-face clip with
    dlib's shape predictor as the landmark source."""
    import time

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import moving_faces  # the tests' clips: the default is measured on what the tests run

    from face_alignment.video.box_sources import TRACKING
    from face_alignment.video.tracking import FaceTracker

    clip = moving_faces.two_faces(frames, moving_faces.load_photo())
    hog = HogDetector(threshold=-0.3)  # as in the tests: a box on every frame
    boxes = [hog.detect(frame)[:, :4] for frame in clip.frames]
    frame_1080 = cv2.resize(clip.frames[0], (1920, 1080))
    start = time.perf_counter()
    for _ in range(5):
        HogDetector().detect(frame_1080)
    hog_seconds = (time.perf_counter() - start) / 5
    fan_seconds = 0.147  # FAN-4 per face, ONNX Runtime, batch 8: README's benchmark
    print(f"HOG on a 1920x1080 frame (1024 px): {hog_seconds:.3f} s; FAN-4 per face: {fan_seconds} s")
    print("detect_every  IoU tracked/detected: mean  10th pct  min   detection's share of time (1 face)")
    for every in (1, 2, 5, 10, 15, 30, 60):
        lookup = {id(frame): index for index, frame in enumerate(clip.frames)}
        found = moving_faces.run(FaceTracker(lambda image: boxes[lookup[id(image)]], every), clip,
                                 moving_faces.ShapePredictor())
        share = hog_seconds / every / (hog_seconds / every + fan_seconds)
        tracked = [box_iou(faces.boxes[np.array(faces.sources) == TRACKING], detected).max(axis=1)
                   for faces, detected in zip(found, boxes) if TRACKING in faces.sources]
        if not tracked:  # every frame detected
            print(f"{every:12d}  {'-':>30}  {'-':>5}  {'-':>5}  {share:8.1%}")
            continue
        ious = np.concatenate(tracked)
        print(f"{every:12d}  {ious.mean():30.3f}  {np.percentile(ious, 10):.3f}  {ious.min():.3f}  {share:8.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", default=os.path.join(SHARED, "faces"), help="folder of the shared photos")
    parser.add_argument("--cnn-model", default=os.path.join(SHARED, "models", "mmod_human_face_detector.dat"))
    parser.add_argument("--detector", action="append", metavar="NAME",
                        help="detector to measure, by registry name; repeat for several (default: hog and cnn)")
    parser.add_argument("--detector-model", metavar="PATH", help="its weight file, for one --detector")
    parser.add_argument("--detect-every", type=int, metavar="FRAMES",
                        help="instead, measure the tracker on a clip of FRAMES frames for several detect_every")
    args = parser.parse_args()
    np.set_printoptions(precision=3, suppress=True)
    if args.detect_every:
        sweep_detect_every(args.detect_every)
        return
    for kind in args.detector or ("hog", "cnn"):
        detector = load_detector(kind, args.cnn_model if kind == "cnn" else args.detector_model)
        relations, samples, missed = measure(kind, detector, args.faces)
        median = np.median(relations, axis=0)
        ious = [box_iou(box_from_landmarks(local[None], median), box[None])[0, 0] for box, local in samples]
        print(f"{kind}: {len(relations)} detections ({missed} views missed) on "
              f"{', '.join(PHOTOS.get(kind, BOTH_PHOTOS))}")
        print(f"  [dx, dy, width, height] median {median}, 10th-90th percentiles "
              f"{np.percentile(relations, 10, axis=0)} .. {np.percentile(relations, 90, axis=0)}")
        print(f"  IoU of the median relation's box with each detection: min {min(ious):.3f}, "
              f"median {np.median(ious):.3f}")
        print(f"  {kind!r}: {BoxRelation(*np.round(median, 3).tolist())},")


if __name__ == "__main__":
    main()
