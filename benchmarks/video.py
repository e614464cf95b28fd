"""How fast a video is landmarked: tracking (detection every N frames) against detecting every
frame, and against the authors' face-alignment 1.5.0 run frame by frame. See
benchmarks/README.md ("Video") for what each number means.

    .venv/bin/python benchmarks/video.py                    # full: 300 frames of 1280x720, FAN-4 (6-16 min)
    .venv/bin/python benchmarks/video.py --quick --out-dir /tmp/bench   # smoke test: 12 small frames, FAN-1 (1 min)
    .venv/bin/python benchmarks/video.py --write-clip clip.mp4 --frames 50   # only write the test clip
    .venv/bin/python benchmarks/video.py --report results/video_benchmark_random-weights.json  # table again

The weights are RANDOM (no trained ones can be downloaded here): the speed does not depend on
their values, the landmarks mean nothing. The clip is made from a shared photo, moving, and
written as H.264 to a temporary folder. Each configuration runs in a fresh process, warmed up
on a few frames first, and the configurations take turns (a, b, c, a, b, c, ...) so that load
from elsewhere on the machine falls on all of them alike. Writes
``video_benchmark_random-weights.json`` to ``--out-dir``.
"""
import argparse
import contextlib
import datetime
import json
import math
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCHMARKS)
sys.path[:0] = [BENCHMARKS, ROOT, os.path.join(ROOT, "tests")]
from face_alignment.detection.registry import DEFAULT_DETECTOR  # noqa: E402 (after the path)

PHOTO = os.path.join(ROOT, "..", "shared", "data", "faces", "breakingbad.jpg")
RESULT_NAME = "video_benchmark_random-weights.json"
BACKEND = "onnxruntime"
TORCH_THREADS = 2  # the authors' side, as in benchmarks/benchmark.py
TARGET_RATIO = 3.0  # tracking's frames/s over detecting every frame

# The configurations, in the order they take turns.
TRACKING, EVERY_FRAME, AUTHORS = "ours_tracking", "ours_detect_every_frame", "authors_every_frame"
CONFIGS = (TRACKING, EVERY_FRAME, AUTHORS)
# Stages timed inside the frame loop; "other" is the rest of the loop's wall time (cropping,
# heatmap decoding, the tracker's bookkeeping, Python).
STAGES = ("decoding", "detection", "fan", "writing")
WRITING = ("drawing", "encoding", "table")  # the parts of "writing"

# ----------------------------------------------------------------------------- the clip
#
# The photo (1920x1080) moves as a camera would move over it: it sways by SHIFT pixels, zooms
# by +-ZOOM and rolls by ROLL +- TURN degrees about the face of the man on the left, with a
# period of PERIOD frames, at SCALE of the photo's size (his face is then about 230 px across
# in 1280x720). The man on the right is blurred out: dlib's HOG finds his half-turned face on
# some frames only (tried over these motions), which would make the faces per frame, and
# the work, differ between the configurations. The left face is found on every frame.
FACE_IN_PHOTO = (760.0, 300.0)  # the left face's centre, photo pixels
BLUR_FROM_X = 1120  # photo columns from here on are blurred
BLUR_SIGMA = 25.0
SCALE = 0.9  # at 1280 px wide; other widths scale it
FACE_IN_FRAME = (0.5, 0.46)  # where the face sways about, fractions of the frame
SHIFT = (150.0, 60.0)  # pixels at 1280 wide
ZOOM, ROLL, TURN, PERIOD = 0.1, 2.0, 3.0, 120.0


def clip_photo():
    """The photo, RGB, with its right-hand face blurred."""
    import cv2

    image = cv2.imread(PHOTO, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"error: {PHOTO}: cannot read the shared photo (is ../shared beside the repository?)")
    image = image[..., ::-1].copy()
    image[:, BLUR_FROM_X:] = cv2.GaussianBlur(image[:, BLUR_FROM_X:], (0, 0), BLUR_SIGMA)
    return image


def clip_frames(frames: int, width: int, height: int) -> Iterator:
    """The clip's RGB frames, one at a time (300 frames of 720p would be 830 MB at once)."""
    import cv2
    import numpy as np

    photo = clip_photo()
    k = width / 1280.0
    centre = np.array(FACE_IN_PHOTO)
    for index in range(frames):
        angle = 2 * np.pi * index / PERIOD
        matrix = cv2.getRotationMatrix2D(FACE_IN_PHOTO, ROLL + TURN * np.sin(angle),
                                         SCALE * k * (1 + ZOOM * np.sin(angle)))
        target = np.array(FACE_IN_FRAME) * (width, height) + k * np.array(SHIFT) * (np.sin(angle), np.cos(angle))
        matrix[:, 2] += target - centre
        yield cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR)


def write_clip(path: str, frames: int, width: int, height: int, fps: int, first: int = 0) -> str:
    """Frames ``first`` .. ``first + frames - 1`` of the clip as H.264 (libx264, its default
    quality), frame i at i / fps seconds."""
    import av

    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index, image in enumerate(clip_frames(first + frames, width, height)):
            if index < first:
                continue
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# ----------------------------------------------------------------------------- timing


class Stopwatch:
    """Seconds spent per stage, summed over calls: around calls of the product's own
    functions, which are wrapped here, never changed."""

    def __init__(self):
        self.seconds: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start
            self.calls[stage] += 1

    def wrap(self, stage: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self(stage):
                return function(*args, **kwargs)
        return timed

    def iterate(self, stage: str, open_iterator: Callable[[], Iterator]) -> Iterator:
        """The items of ``open_iterator()``, the opening and every step timed as ``stage``."""
        with self(stage):
            iterator = iter(open_iterator())
        try:
            while True:
                with self(stage):
                    try:
                        item = next(iterator)
                    except StopIteration:
                        return
                yield item
        finally:
            if hasattr(iterator, "close"):  # a reader left early closes its file
                iterator.close()

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def timed_writers(watch: Stopwatch):
    """The annotated video's and the landmark table's writers, their calls timed as the
    "encoding" and "table" parts of writing, closing included (the encoder's delayed frames,
    the MP4 index, the last row group)."""
    from face_alignment.landmark_table import LandmarkTableWriter
    from face_alignment.video.writer import AnnotatedVideoWriter

    class TimedVideoWriter(AnnotatedVideoWriter):
        def write(self, image, time):
            with watch("encoding"):
                super().write(image, time)

        def __exit__(self, *exc):
            with watch("encoding"):
                return super().__exit__(*exc)

    class TimedTableWriter(LandmarkTableWriter):
        def add(self, *args, **kwargs):
            with watch("table"):
                super().add(*args, **kwargs)

        def __exit__(self, *exc):
            with watch("table"):
                return super().__exit__(*exc)

    return TimedVideoWriter, TimedTableWriter


def _breakdown(watch: Stopwatch, wall: float) -> Dict[str, float]:
    seconds = {stage: watch.seconds.get(stage, 0.0) for stage in ("decoding", "detection", "fan")}
    parts = {part: watch.seconds.get(part, 0.0) for part in WRITING}
    seconds["writing"] = sum(parts.values())
    seconds["other"] = wall - sum(seconds.values())
    seconds.update({f"writing_{part}": value for part, value in parts.items()})
    return seconds


def _check_outputs(table_path: str, video_path: str, frames: int, faces: int) -> None:
    """A run counts only if its table has a row per face and its video a frame per frame."""
    from face_alignment.video.reader import probe_video
    from face_alignment.landmark_table import read_landmark_table

    rows = read_landmark_table(table_path).num_rows
    written = probe_video(video_path).frame_count
    if rows != faces or written != frames:
        raise SystemExit(f"error: {table_path}: {rows} rows for {faces} faces; {video_path}: {written} frames "
                         f"for {frames}")


# ----------------------------------------------------------------------------- ours


def run_ours(fan_h5: str, clip: str, warmup_clip: str, detect_every: int, scratch: str, detector: str) -> Dict:
    """``model_inference.py --test-video clip --output annotated.mp4 --save-landmarks
    landmarks.parquet --detect-every N``, run by its own function (video_cli.run_video) in
    this process, with each stage's calls wrapped in a stopwatch. With random weights a
    track's scores say nothing about the face, so the tracker is set up to give the steady state of a trained model
    on a face in view: a detection every ``detect_every`` frames, one box per face between."""
    from face_alignment import video_cli
    from face_alignment.api import FaceAlignment
    from face_alignment import landmark_table as table
    from face_alignment.video import reader, writer
    from face_alignment.video.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF

    watch = Stopwatch()
    fa = FaceAlignment(fan_h5, backend=BACKEND, detector=detector)
    fa.fan = watch.wrap("fan", fa.fan)
    fa.detect_faces = watch.wrap("detection", fa.detect_faces)  # what the tracker calls
    # What fa.face_tracker builds, except that tracks are kept whatever their scores, and a
    # track the detector does not see ends there (max_misses=0): random landmarks do not
    # follow the face, so its box drifts off it, and the detection starts a new track; kept
    # on, the drifted track would be a second face to landmark until the next detection.
    face_tracker = fa.face_tracker
    fa.face_tracker = lambda every: face_tracker(every, min_score=-math.inf, max_misses=0)
    read_video = reader.read_video
    reader.read_video = lambda path: watch.iterate("decoding", lambda: read_video(path))
    video_cli._annotated = watch.wrap("drawing", video_cli._annotated)

    # run_video imports both writers when it is called: it gets these.
    writer.AnnotatedVideoWriter, table.LandmarkTableWriter = timed_writers(watch)

    def landmark(video: str, name: str) -> Tuple[float, Dict]:
        outputs = {"output": os.path.join(scratch, f"{name}.mp4"),
                   "save_landmarks": os.path.join(scratch, f"{name}.parquet")}
        args = argparse.Namespace(test_video=video, detect_every=detect_every, smooth=False,
                                   smooth_min_cutoff=DEFAULT_MIN_CUTOFF, smooth_beta=DEFAULT_BETA,
                                   no_progress=True, caption=None, **outputs)
        info = reader.probe_video(video)  # the command line probes before loading the model
        watch.reset()
        start = time.perf_counter()
        status = video_cli.run_video(args, fa, info)
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"error: run_video exited with {status}")
        return wall, outputs

    landmark(warmup_clip, "warmup")
    load_before = os.getloadavg()[0]
    wall, outputs = landmark(clip, "run")
    load_after = os.getloadavg()[0]
    result = _result(watch, wall, load_before, load_after)
    faces = table.read_landmark_table(outputs["save_landmarks"])
    sources = faces.column("source").to_pylist()
    result.update(faces=faces.num_rows, detections=watch.calls["detection"],
                  sources={s: sources.count(s) for s in sorted(set(sources))},
                  tracks=len(set(faces.column("track").to_pylist())))
    _check_outputs(outputs["save_landmarks"], outputs["output"], result["frames"], result["faces"])
    return result


def _result(watch: Stopwatch, wall: float, load_before: float, load_after: float) -> Dict:
    frames = watch.calls["drawing"]  # one picture drawn per frame
    return {"wall_s": wall, "frames": frames, "fps": frames / wall, "seconds": _breakdown(watch, wall),
            "fan_calls": watch.calls["fan"], "load_1min_before": load_before, "load_1min_after": load_after}


# ----------------------------------------------------------------------------- the authors'


def run_authors(fan_checkpoint: str, num_modules: int, clip: str, warmup_clip: str, scratch: str, detector_name: str,
                limit: Optional[int] = None) -> Dict:
    """Their get_landmarks_from_image steps (benchmarks/authors_pipeline.py: their crop, FAN in
    PyTorch eager with one face per forward pass, their numba decoding; flip off) on every
    frame, after detecting its faces with the same detector as ours, its boxes mapped onto the
    crop's as ours are (their default, SFD, needs weights that cannot be downloaded here; their
    crop is the authors' crop, ours). Frames are read, drawn and written as ours
    are, so the job is the same: only the detection schedule and the landmark code differ.
    ``limit``: landmark only the clip's first frames (every frame costs the same here)."""
    import numpy as np

    from authors_pipeline import AuthorsPipeline
    from face_alignment import video_cli
    from face_alignment.api import Prediction, VideoLandmarks
    from face_alignment.pipeline import draw
    from face_alignment.detection import load_detector
    from face_alignment.detection.registry import crop_boxes
    from face_alignment.video.reader import probe_video, read_video
    from face_alignment.landmark_table import read_landmark_table

    watch = Stopwatch()
    VideoWriter, TableWriter = timed_writers(watch)
    pipeline = AuthorsPipeline(fan_checkpoint, None, num_modules, TORCH_THREADS)
    pipeline.fan = watch.wrap("fan", pipeline.fan)
    detector = load_detector(detector_name)  # what FaceAlignment.detect_faces runs

    def landmark(video: str, name: str, limit: Optional[int] = None) -> Tuple[float, Dict]:
        outputs = {"output": os.path.join(scratch, f"{name}.mp4"),
                   "save_landmarks": os.path.join(scratch, f"{name}.parquet")}
        info = probe_video(video)
        frames = watch.iterate("decoding", lambda: read_video(video))
        watch.reset()
        start = time.perf_counter()
        with VideoWriter(outputs["output"], info) as out, \
                TableWriter(outputs["save_landmarks"], dims=2) as rows:
            for frame in frames:
                with watch("detection"):
                    boxes = crop_boxes(detector, detector.detect(frame.image))
                faces = pipeline.landmarks(frame.image, boxes)
                points = np.array([p for p, _ in faces]).reshape(-1, 68, 2)
                scores = np.array([s for _, s in faces]).reshape(-1, 68)
                rows.add(video, frame.index, frame.time, None, boxes, points, scores, "detector")
                result = VideoLandmarks(frame.index, frame.time, frame.image, Prediction(points, scores, boxes),
                                        np.full(len(boxes), -1), ("detector",) * len(boxes))
                with watch("drawing"):
                    picture = video_cli._annotated(draw, result, None)
                out.write(picture, frame.time)
                if frame.index + 1 == limit:
                    frames.close()
                    break
        wall = time.perf_counter() - start
        return wall, outputs

    landmark(warmup_clip, "warmup")  # also compiles their numba functions
    load_before = os.getloadavg()[0]
    wall, outputs = landmark(clip, "run", limit)
    load_after = os.getloadavg()[0]
    result = _result(watch, wall, load_before, load_after)
    faces = read_landmark_table(outputs["save_landmarks"]).num_rows
    result.update(faces=faces, detections=watch.calls["detection"], sources={"detector": faces}, tracks=0)
    _check_outputs(outputs["save_landmarks"], outputs["output"], result["frames"], result["faces"])
    return result


# ----------------------------------------------------------------------------- the run


def isolated(function, *args):
    """``function(*args)`` in a fresh Python process (spawned, so nothing is inherited)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare_models(folder: str, num_modules: int) -> Dict:
    """A random authors' FAN checkpoint and our .h5 of it (benchmarks/workers.py), and the
    ONNX model our backend keeps in the export cache, built now so that no timed process pays
    for the export."""
    import workers

    models = workers.prepare_models(folder, num_modules, False)
    from face_alignment.api import FaceAlignment

    FaceAlignment(models["fan2d_h5"], backend=BACKEND)
    return models


def size_arg(text: str) -> Tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from None
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected even sides of 16 px or more")
    return width, height


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Video landmarking speed: tracking against detecting every frame, "
                                "and against the authors' face-alignment 1.5.0 frame by frame.")
    p.add_argument("--frames", type=int, help="frames in the clip (default: 300; 12 with --quick)")
    p.add_argument("--size", type=size_arg, default=(1280, 720), metavar="WxH",
                   help="frame size (default: 1280x720)")
    p.add_argument("--fps", type=int, default=25, help="frame rate of the clip (default: %(default)s)")
    p.add_argument("--detect-every", type=int, default=15, metavar="N",
                   help="detection every N frames when tracking (default: %(default)s, the product's)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, metavar="NAME",
                   help="the face detector, for ours and for the authors' code alike (default: %(default)s, "
                        "the product's)")
    p.add_argument("--rounds", type=int, default=2, help="timed runs of each configuration (default: %(default)s)")
    p.add_argument("--authors-frames", type=int, default=60, metavar="N",
                   help="the authors' pipeline landmarks the clip's first N frames only, 0 for all: it is "
                   "the slowest, and every frame costs the same (default: %(default)s)")
    p.add_argument("--warmup-frames", type=int, default=8,
                   help="frames of the untimed run each process starts with (default: %(default)s)")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "results"), help=f"where {RESULT_NAME} goes, replacing any there (default: the "
                   "committed results/, whose file a run overwrites; give another folder to keep it)")
    p.add_argument("--quick", action="store_true", help="a tiny case for the tests: 12 frames (or --frames) of "
                   "480x270, FAN with 1 module, detection every 5 frames, 1 round; its numbers mean nothing")
    p.add_argument("--write-clip", metavar="PATH", help="measure nothing: write the clip (--frames, --size, "
                   "--fps) to PATH and stop")
    p.add_argument("--report", metavar="JSON", help="measure nothing: print the table of a saved result")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.detect_every, args.rounds, args.warmup_frames = (480, 270), 5, 1, 2
        args.authors_frames = 0
    if args.frames is None:  # --frames is the one setting --quick leaves to be given
        args.frames = 12 if args.quick else 300
    if min(args.frames, args.fps, args.detect_every, args.rounds, args.warmup_frames) < 1 or args.authors_frames < 0:
        p.error("--frames, --fps, --detect-every, --rounds and --warmup-frames must be 1 or more, "
                "--authors-frames 0 or more")
    args.num_modules = 1 if args.quick else 4
    return args


def measure(args: argparse.Namespace, scratch: str) -> Dict[str, List[Dict]]:
    width, height = args.size
    clip = os.path.join(scratch, "clip.mp4")
    warmup_clip = os.path.join(scratch, "warmup.mp4")
    log(f"writing the clip: {args.frames} frames of {width}x{height} at {args.fps} frames/s, H.264")
    write_clip(clip, args.frames, width, height, args.fps)
    # Frames from past the clip's end: the warm-up sees nothing the timed run will.
    write_clip(warmup_clip, args.warmup_frames, width, height, args.fps, first=args.frames)
    log(f"random FAN-{args.num_modules}: the authors' checkpoint, our .h5 and its ONNX model")
    models = isolated(prepare_models, os.path.join(scratch, "models"), args.num_modules)
    authors_frames = min(args.authors_frames or args.frames, args.frames)
    runs: Dict[str, List[Dict]] = {name: [] for name in CONFIGS}
    for round_index in range(args.rounds):
        for name in CONFIGS:
            folder = os.path.join(scratch, name)
            os.makedirs(folder, exist_ok=True)
            if name == AUTHORS:
                result = isolated(run_authors, models["fan2d_checkpoint"], args.num_modules, clip, warmup_clip,
                                  folder, args.detector, authors_frames)
            else:
                every = args.detect_every if name == TRACKING else 1
                result = isolated(run_ours, models["fan2d_h5"], clip, warmup_clip, every, folder, args.detector)
            expected = authors_frames if name == AUTHORS else args.frames
            if result["frames"] != expected:
                raise SystemExit(f"error: {name} landmarked {result['frames']} frames of {expected}")
            log(f"  round {round_index + 1}/{args.rounds} {name}: {result['fps']:.2f} frames/s, "
                f"{result['faces']} faces, {result['detections']} detections, load {result['load_1min_before']:.2f}")
            runs[name].append(result)
    return runs


def summarise(runs: Dict[str, List[Dict]]) -> Dict:
    """Per configuration: the median frames/s, and each stage's share of the time summed over
    the rounds."""
    summary = {}
    for name, results in runs.items():
        wall = sum(r["wall_s"] for r in results)
        keys = results[0]["seconds"]
        summary[name] = {
            "fps": statistics.median(r["fps"] for r in results),
            "fps_samples": [r["fps"] for r in results],
            "ms_per_frame": 1000.0 * wall / sum(r["frames"] for r in results),
            "share": {key: sum(r["seconds"][key] for r in results) / wall for key in keys},
            "faces_per_frame": sum(r["faces"] for r in results) / sum(r["frames"] for r in results),
            "detections_per_frame": sum(r["detections"] for r in results) / sum(r["frames"] for r in results),
        }
    ratio = summary[TRACKING]["fps"] / summary[EVERY_FRAME]["fps"]
    summary["ratios"] = {
        "tracking_over_detect_every_frame": ratio,
        "tracking_over_authors": summary[TRACKING]["fps"] / summary[AUTHORS]["fps"],
        "detect_every_frame_over_authors": summary[EVERY_FRAME]["fps"] / summary[AUTHORS]["fps"],
    }
    summary["target"] = {"what": f"tracking >= {TARGET_RATIO:g}x the frames/s of detecting every frame",
                         "measured": ratio, "met": bool(ratio >= TARGET_RATIO)}
    return summary


def table(results: Dict) -> str:
    """The results as a Markdown table, with its notes."""
    config, summary = results["config"], results["summary"]
    titles = {TRACKING: f"(a) ours, tracking: detection every {config['detect_every']} frames",
              EVERY_FRAME: "(b) ours, detection every frame",
              AUTHORS: "(c) authors' face-alignment 1.5.0, frame by frame"
                       + (f" (first {config['authors_frames']} frames)"
                          if config["authors_frames"] < config["frames"] else "")}
    lines = ["| | frames/s | ms per frame | decoding | detection | FAN | writing | other | faces per frame "
             "| detections per frame |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in CONFIGS:
        s = summary[name]
        shares = " | ".join(f"{100 * s['share'][k]:.0f} %" for k in (*STAGES, "other"))
        lines.append(f"| {titles[name]} | **{s['fps']:.2f}** | {s['ms_per_frame']:.0f} | {shares} | "
                     f"{s['faces_per_frame']:.2f} | {s['detections_per_frame']:.3f} |")
    ratios, target = summary["ratios"], summary["target"]
    loads = [r[k] for rs in results["runs"].values() for r in rs for k in ("load_1min_before", "load_1min_after")]
    lines += ["",
              f"(a) / (b) = **{ratios['tracking_over_detect_every_frame']:.2f}x** (target {TARGET_RATIO:g}x: "
              f"{'met' if target['met'] else 'NOT met'}); (a) / (c) = {ratios['tracking_over_authors']:.2f}x; "
              f"(b) / (c) = {ratios['detect_every_frame_over_authors']:.2f}x.",
              f"{config['frames']} frames of {config['width']}x{config['height']} H.264, FAN-{config['fan_modules']} "
              f"with RANDOM weights, ours on {config['backend']}, the authors' in PyTorch eager with "
              f"{config['torch_threads']} threads; {results['machine']['cpus']}-core CPU; median of "
              f"{config['rounds']} rounds (frames/s samples: "
              + "; ".join(f"({letter}) " + ", ".join(f"{v:.2f}" for v in summary[name]["fps_samples"])
                          for letter, name in zip("abc", CONFIGS))
              + f"); 1-minute load average {min(loads):.2f}-{max(loads):.2f} during the runs; {results['date'][:10]}."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.report:
        with open(args.report) as f:
            print(table(json.load(f)))
        return 0
    width, height = args.size
    if args.write_clip:
        write_clip(args.write_clip, args.frames, width, height, args.fps)
        log(f"wrote {args.write_clip}: {args.frames} frames of {width}x{height} at {args.fps} frames/s")
        return 0
    started = datetime.datetime.now()
    os.makedirs(args.out_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="fan-video-benchmark-")
    try:
        runs = measure(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "config": {"quick": args.quick, "frames": args.frames, "width": width, "height": height, "fps": args.fps,
                   "codec": "libx264 (default CRF 23), yuv420p", "detect_every": args.detect_every,
                   "authors_frames": min(args.authors_frames or args.frames, args.frames),
                   "rounds": args.rounds, "warmup_frames": args.warmup_frames, "fan_modules": args.num_modules,
                   "weights": "random", "backend": BACKEND, "torch_threads": TORCH_THREADS,
                   "detector": args.detector + (" (FaceAlignment's default)" if args.detector == DEFAULT_DETECTOR
                                                else ""),
                   "tracker": "FaceTracker as FaceAlignment builds it, but min_score=-inf and max_misses=0: "
                              "with random weights a track's scores say nothing about the face",
                   "outputs": "annotated .mp4 and .parquet landmark table, as model_inference.py --test-video",
                   "clip_from": os.path.abspath(PHOTO)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": started.isoformat(timespec="seconds"),
        "runs": runs,
    }
    results["summary"] = summarise(runs)
    results["duration_s"] = round((datetime.datetime.now() - started).total_seconds(), 1)
    print(table(results))
    path = os.path.join(args.out_dir, RESULT_NAME)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {path} in {results['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
