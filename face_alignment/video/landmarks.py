"""The video loop: frames read as they come, boxes from a source (a tracker, a detector, given
boxes), landmarks from a :class:`~face_alignment.landmarker.Landmarker`, smoothed per track if
asked. :meth:`face_alignment.api.FaceAlignment.get_landmarks_from_video` calls it."""
from typing import Iterator, NamedTuple, Optional, Tuple

import numpy as np

from ..errors import VideoReadError
from ..landmarker import Landmarker, Prediction
from .box_sources import BoxSource
from .smoothing import TrackSmoother
from .tracking import FaceTracker


class VideoLandmarks(NamedTuple):
    """The faces of one video frame: its ``index`` and presentation ``time`` (seconds), the
    upright RGB ``image``, the ``prediction``, and for each face its ``tracks`` id (-1 when
    untracked) and ``sources`` ("detector", "tracking" or "given": where its box came from)."""

    index: int
    time: float
    image: np.ndarray
    prediction: Prediction
    tracks: np.ndarray
    sources: Tuple[str, ...]


def video_landmarks(path: str, landmarker: Landmarker, source: BoxSource,
                    smoother: Optional[TrackSmoother] = None) -> Iterator[VideoLandmarks]:
    """One VideoLandmarks per frame of the video at ``path``, in order, streamed. The faces of
    a frame share network batches; so do those of consecutive frames, up to the landmarker's
    batch size in faces and frames, when the boxes do not depend on earlier landmarks (any
    source but a FaceTracker: a tracked frame's boxes need its predecessor's). A video that
    breaks off raises VideoReadError after the frames that decoded."""
    from .reader import read_video  # PyAV, imported only for videos

    batch_size = landmarker.batch_size
    frames_per_batch = 1 if isinstance(source, FaceTracker) else batch_size
    pending: list = []  # (VideoFrame, FrameFaces) waiting for their batch

    def finish():
        group = [(frame, frame.image, faces.boxes) for frame, faces in pending]
        for (frame, faces), (_, _, prediction) in zip(pending, landmarker.landmarks(group)):
            source.observe(frame.index, faces, prediction.landmarks, prediction.scores)
            if smoother is not None:
                prediction = prediction._replace(landmarks=smoother(faces.tracks, prediction.landmarks, frame.time))
            yield VideoLandmarks(frame.index, frame.time, frame.image, prediction, faces.tracks, faces.sources)
        pending.clear()

    try:
        for frame in read_video(path):
            pending.append((frame, source.boxes(frame.index, frame.image)))
            if len(pending) >= frames_per_batch or sum(len(f) for _, f in pending) >= batch_size:
                yield from finish()
    except VideoReadError:
        yield from finish()  # a video that breaks off: the frames that decoded come first
        raise
    yield from finish()
