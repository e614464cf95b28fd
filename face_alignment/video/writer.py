"""Writing the annotated video: RGB frames of the input's size, each at its own presentation
time, encoded as yuv420p (what every player and browser plays).

The container is chosen by the extension: ``.mp4``, ``.m4v``, ``.mov`` (with the index at the
front, ``faststart``, so a player can start before the whole file is read) and ``.mkv`` get
H.264 (libx264, its default quality, CRF 23); ``.avi`` gets MPEG-4 Part 2 tagged ``XVID``
without B-frames, AVI's own codec: AVI has no presentation timestamps, and FFmpeg reads
H.264 in AVI back one frame late. Any other extension is refused before anything is
written. The video is written to a
temporary file beside ``path`` and renamed to it when the ``with`` block ends without an
exception; with one, nothing is left.

Timing: each frame is given with its time in seconds (``VideoFrame.time``) and keeps it, so
a variable-frame-rate input stays in step with its sound. MP4 and MOV get a clock of 90 kHz
or finer that divides the frame period exactly (25 fps: 1/90000 s; 30000/1001 fps:
1/90000; 24000/1001: 1/96000); Matroska's is always 1 ms (its muxer's choice); AVI has no
timestamps, only frame slots at the nominal rate, so there a frame goes to the slot nearest
its time and a gap repeats the frame before it. A frame whose time rounds to or before the
previous frame's goes one tick after it: timestamps must increase.

Odd sizes: yuv420p stores colour at half resolution, so H.264 needs an even width and
height. An odd-sized input is padded by one column or row repeating the last one (as
``ffmpeg -vf pad`` would with edge replication), so the output is then one pixel wider or
taller than the input (``width``/``height`` say by how much) and every input pixel keeps
its coordinates. yuv444p would keep the size but many players (browsers, QuickTime) cannot
play it.

Colour: RGB is converted with the BT.601 matrix to limited-range YUV, and H.264 streams are
tagged so, so that players do not assume BT.709 for HD sizes and shift the colours (MPEG-4
Part 2 in AVI carries no tag; players take it as BT.601 anyway).
"""
import math
import os
from fractions import Fraction
from typing import Dict, Optional, Tuple, Union

import av
import numpy as np

from ..errors import VideoWriteError
from ..files import abandon_atomic_write, atomic_write, checked_extension
from .reader import VideoInfo

PathLike = Union[str, "os.PathLike[str]"]

# Extension: (FFmpeg muxer, muxer options, encoder).
CONTAINERS: Dict[str, Tuple[str, Dict[str, str], str]] = {
    ".mp4": ("mp4", {"movflags": "+faststart"}, "libx264"),
    ".m4v": ("mp4", {"movflags": "+faststart"}, "libx264"),
    ".mov": ("mov", {"movflags": "+faststart"}, "libx264"),
    ".mkv": ("matroska", {}, "libx264"),
    ".avi": ("avi", {}, "mpeg4"),
}
# MPEG-4 Part 2 at a fixed quantiser (ffmpeg -q:v 3): its default, 200 kbit/s, blurs
# landmark dots into the background.
_MPEG4_QUANTISER = 3

# FFmpeg's AVColorSpace and AVColorRange values (PyAV's Colorspace enum is swscale's, another
# numbering): the BT.601 matrix and limited range that write() converts to.
_AVCOL_SPC_SMPTE170M = 6
_AVCOL_RANGE_MPEG = 1

# The finest clock: at least 90 kHz (MPEG's), a multiple of the frame rate's numerator.
_MIN_TICKS_PER_SECOND = 90000


def _clock(container_format: str, frame_rate: Fraction) -> Fraction:
    """The encoder's time base: AVI's is the frame period (one tick per frame slot: any
    finer and its muxer writes an empty chunk per skipped tick); the others' divides the
    period exactly and is fine enough for variable frame rates."""
    if container_format == "avi":
        return 1 / frame_rate
    multiple = -(-_MIN_TICKS_PER_SECOND // frame_rate.numerator)
    return Fraction(1, frame_rate.numerator * multiple)


class AnnotatedVideoWriter:
    """``with AnnotatedVideoWriter("out.mp4", probe_video("in.mov")) as out:
    out.write(image, frame.time)`` for each (RGB uint8, (info.height, info.width, 3)) frame.
    ``force=False`` refuses an existing ``path`` (OutputExistsError)."""

    def __init__(self, path: PathLike, info: VideoInfo, *, force: bool = True):
        self.path = os.fspath(path)
        extension = checked_extension(self.path, CONTAINERS, "video container", VideoWriteError)
        if not info.frame_rate or info.frame_rate <= 0:
            raise VideoWriteError(f"{self.path}: frame rate {info.frame_rate} is not positive")
        self.info = info
        self.width = info.width + info.width % 2
        self.height = info.height + info.height % 2
        self._format, self._options, self._codec = CONTAINERS[extension]
        self._force = force
        # A float rate (29.97) would give a clock too fine for FFmpeg's 32-bit time bases.
        self.frame_rate = Fraction(info.frame_rate).limit_denominator(1001 * 1000)
        self._time_base = _clock(self._format, self.frame_rate)
        self._atomic = None
        self._container = None
        self._stream = None
        self._last_pts: Optional[int] = None
        self.frames_written = 0

    def __enter__(self) -> "AnnotatedVideoWriter":
        self._atomic = atomic_write(self.path, force=self._force)
        temporary = self._atomic.__enter__()
        try:
            self._container = av.open(temporary, "w", format=self._format, options=self._options)
            stream = self._container.add_stream(self._codec, rate=self.frame_rate)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            stream.codec_context.time_base = self._time_base
            stream.codec_context.colorspace = _AVCOL_SPC_SMPTE170M
            stream.codec_context.color_range = _AVCOL_RANGE_MPEG
            if self._codec == "mpeg4":
                # AVI stores frames in decoding order without timestamps: no B-frames, which
                # would need them. XVID: the tag players look for (FFmpeg's default is FMP4).
                stream.codec_context.max_b_frames = 0
                stream.codec_context.qscale = _MPEG4_QUANTISER
                stream.codec_context.codec_tag = "XVID"
            self._stream = stream
        except BaseException as error:
            self._abandon(error)
            raise
        return self

    def write(self, image: np.ndarray, time: float) -> None:
        """Encode ``image`` (RGB uint8, (info.height, info.width, 3)) shown at ``time``
        seconds."""
        if self._stream is None:
            raise VideoWriteError(f"{self.path}: write() outside the writer's with block")
        expected = (self.info.height, self.info.width, 3)
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != expected:
            found = (f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray)
                     else type(image).__name__)
            raise VideoWriteError(f"{self.path}: frame {self.frames_written} is {found}; "
                                  f"expected uint8 {expected} (RGB, the input's size)")
        if not math.isfinite(time):
            raise VideoWriteError(f"{self.path}: frame {self.frames_written} at time {time}; "
                                  "expected a time in seconds")
        pad_rows, pad_columns = self.height - expected[0], self.width - expected[1]
        if pad_rows or pad_columns:
            image = np.pad(image, ((0, pad_rows), (0, pad_columns), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace="ITU601", dst_color_range="MPEG")
        pts = round(Fraction(time) / self._time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        frame.pts, frame.time_base = pts, self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._last_pts = pts
        self.frames_written += 1

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc is not None:
            self._abandon(exc)
            return False
        try:
            for packet in self._stream.encode(None):  # flush the encoder's delayed frames
                self._container.mux(packet)
            self._container.close()  # writes the index (and moves it to the front for MP4)
        except BaseException as error:
            self._abandon(error)
            raise
        atomic, self._atomic, self._container, self._stream = self._atomic, None, None, None
        atomic.__exit__(None, None, None)  # rename into place
        return False

    def _abandon(self, error: BaseException) -> None:
        """Close what is open and remove the temporary file."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                pass  # the file is being removed: its trailer does not matter
        atomic, self._atomic, self._container, self._stream = self._atomic, None, None, None
        abandon_atomic_write(atomic, error)
