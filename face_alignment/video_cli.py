"""``model_inference.py --test-video``: landmarks for every frame of a video, tracked, saved
as a table and/or drawn onto a copy of the video.

Called by :mod:`face_alignment.inference_cli`, which owns the flags. Every output is checked
before the first frame is decoded; outputs are written to temporary files and renamed when
the video ends. A video that breaks off mid-way keeps what decoded: its rows and frames are
written, and the error naming the last good frame makes the exit status non-zero.
"""
import contextlib
import logging
import os
from typing import List, Optional

import numpy as np

from .errors import FaceAlignmentError, VideoTruncatedError
from .files import check_outputs

log = logging.getLogger("face_alignment")

TABLE_EXTENSIONS = (".parquet", ".json")
TRACK_COLOUR = (255, 255, 0)


def check_video_options(args) -> None:
    """The flags that only make sense with (or without) --test-video."""
    if args.save_json:
        raise FaceAlignmentError("--save-json is for images; with --test-video use --save-landmarks "
                                 "out.parquet (or out.json)")
    if args.boxes:
        raise FaceAlignmentError("--boxes is for images; a video's faces are detected and tracked")
    if args.save_landmarks and os.path.splitext(args.save_landmarks)[1].lower() not in TABLE_EXTENSIONS:
        raise FaceAlignmentError(f"{args.save_landmarks}: --save-landmarks takes a "
                                 f"{' or '.join(TABLE_EXTENSIONS)} file")


def check_video_outputs(args, model_inputs: List[tuple]):
    """The video's VideoInfo, once it is known to be a video and every output can be
    written: before the model is loaded, so a mistake costs no wait and writes nothing."""
    from .video.reader import probe_video

    info = probe_video(args.test_video)
    outputs = [(flag, path) for flag, path in (("--output", args.output), ("--save-landmarks", args.save_landmarks))
               if path]
    check_outputs(outputs, [("--test-video", args.test_video)] + model_inputs)
    return info


def run_video(args, fa, info) -> int:
    """Landmark ``args.test_video`` (described by ``info``) with ``fa``; returns the exit status."""
    from tqdm import tqdm

    from .pipeline import draw
    from .landmark_table import LandmarkTableWriter
    from .video.writer import AnnotatedVideoWriter

    video, output, table = args.test_video, args.output, args.save_landmarks
    banner = _Banner(draw, args.caption)

    frames = faces = 0
    broken: Optional[VideoTruncatedError] = None
    # Both outputs are renamed into place when the stack closes normally, and removed if
    # anything else goes wrong (a truncated video is not "anything else": it keeps its frames).
    with contextlib.ExitStack() as outputs_open, tqdm(total=info.frame_count, unit="frame",
                                                      disable=args.no_progress) as progress:
        writer = outputs_open.enter_context(AnnotatedVideoWriter(output, info)) if output else None
        rows = outputs_open.enter_context(LandmarkTableWriter(table, dims=3 if fa.is_3d else 2)) if table else None
        results = fa.get_landmarks_from_video(video, detect_every=args.detect_every, smooth=args.smooth,
                                              smooth_min_cutoff=args.smooth_min_cutoff,
                                              smooth_beta=args.smooth_beta)
        try:
            for result in results:
                prediction = result.prediction
                frames += 1
                faces += len(prediction.boxes)
                progress.update(1)
                if rows:
                    rows.add(video, result.index, result.time, result.tracks, prediction.boxes,
                             prediction.landmarks, prediction.scores, result.sources)
                if writer:
                    writer.write(_annotated(draw, result, banner(result.image.shape)), result.time)
        except VideoTruncatedError as e:
            broken = e
    if faces == 0:
        log.warning("%s: no face found in %d frames", video, frames)
    log.info("%s: %d frames, %d faces%s%s", video, frames, faces,
             f" -> {output}" if output else "", f", landmarks -> {table}" if table else "")
    if broken is not None:
        raise broken
    return 0


class _Banner:
    """--caption on video frames: drawn once, then laid over the top rows of every frame, so
    the annotated video keeps the input's size (draw.caption adds the banner above a picture)."""

    def __init__(self, draw, text: Optional[str]):
        self.draw, self.text, self._banner = draw, text, None

    def __call__(self, shape) -> Optional[np.ndarray]:
        if self.text and self._banner is None:
            captioned = self.draw.caption(np.zeros(shape, np.uint8), self.text)
            self._banner = captioned[:captioned.shape[0] - shape[0]]
        return self._banner


def _annotated(draw, result, banner) -> np.ndarray:
    """The frame with each face's landmarks, box and track id drawn, and the caption's
    banner over its top rows."""
    import cv2

    prediction = result.prediction
    picture = draw.draw_landmarks(result.image, [{"landmarks": lm, "box": box}
                                                 for lm, box in zip(prediction.landmarks, prediction.boxes)])
    scale = max(picture.shape[:2]) / 1000.0
    for box, track in zip(prediction.boxes, result.tracks):
        if track >= 0:
            corner = (int(round(box[0])), int(round(box[1] - 6 * scale)))
            cv2.putText(picture, f"#{track}", corner, cv2.FONT_HERSHEY_SIMPLEX, max(scale, 0.4), TRACK_COLOUR,
                        max(1, round(2 * scale)), cv2.LINE_AA)
    if banner is not None:
        rows = min(len(banner), len(picture))
        picture[:rows] = banner[:rows]
    return picture
