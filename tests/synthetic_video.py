"""Small videos that the video tests write with PyAV, whose every frame says what it is: a
grey level in its bottom half gives the frame's index, and a white top-left quarter beside
a red top-right quarter makes each of the eight turns and mirrors of the picture look
different, and RGB different from BGR. Tests compare what they read with what they wrote
here."""
from fractions import Fraction
from typing import Dict, List, Optional, Sequence

import av
import numpy as np

# Levels 40, 47, ..., 194: distinct for 23 frames, far from the white and red quarters,
# 7 apart so that a codec's error on a flat area (1 or 2) cannot take one for its neighbour.
LEVELS = 23


def grey(index: int) -> int:
    return 40 + 7 * (index % LEVELS)


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """The RGB picture of frame ``index``."""
    image = np.full((height, width, 3), grey(index), dtype=np.uint8)
    image[: height // 2, : width // 2] = 255
    image[: height // 2, width // 2:] = (255, 0, 0)
    return image


def index_of(image: np.ndarray) -> int:
    """The frame index (modulo LEVELS) that an upright decoded picture shows."""
    height = image.shape[0]
    level = float(np.median(image[height // 2 + 2: -2, 2:-2]))
    return int(round((level - 40) / 7))


def write_video(path: str, pts: Sequence[int], time_base: Fraction, width: int = 64,
                height: int = 48, codec: str = "libx264", rate: Fraction = Fraction(25),
                rotation: Optional[int] = None, mirror: bool = False,
                options: Optional[Dict[str, str]] = None,
                container_options: Optional[Dict[str, str]] = None) -> List[np.ndarray]:
    """Write frames ``pattern(i)`` at ``pts[i]`` (in ``time_base``); returns the pictures.
    ``rotation``: PyAV's display rotation, degrees counter-clockwise, with ``mirror`` a
    left-right mirror after it."""
    images = [pattern(i, width, height) for i in range(len(pts))]
    with av.open(path, "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        if codec == "mpeg4":
            stream.codec_context.qscale = 2  # its default 200 kbit/s blurs the grey levels
        if rotation is not None or mirror:
            stream.set_display_rotation(rotation or 0, hflip=mirror)
        for image, stamp in zip(images, pts):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = stamp, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return images


def decode_with_pyav(path: str):
    """(times from the stream's start, RGB pictures, stream) read with PyAV alone, as a
    reference independent of face_alignment.video.reader."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        times, images = [], []
        for frame in container.decode(stream):
            times.append((frame.pts - start) * stream.time_base)
            images.append(frame.to_ndarray(format="rgb24"))
        return times, images, stream.time_base, stream.average_rate


def write_clip(path, frames, fps=25, options=None) -> str:
    """RGB ``frames`` as H.264 at pts 0, 1, 2, ... in 1/fps: frame i is shown at i / fps s."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options=options or {})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return str(path)
