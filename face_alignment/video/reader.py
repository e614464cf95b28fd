"""Reading a video file frame by frame, with PyAV (FFmpeg's libraries, no ffmpeg binary).

``probe_video(path)`` says what a video holds (upright size, frame rate, frame count,
rotation); ``read_video(path)`` yields its frames one at a time as RGB ``uint8`` (H, W, 3)
arrays, so memory does not grow with the length of the video.

Times are presentation times, ``(pts - start_time) * time_base`` of the video stream, so a
variable frame rate comes out as the file has it and the first frame is usually at 0.

Frames come upright, as a player shows them: a phone stores a portrait video as landscape
pictures plus a display matrix (the MP4 ``tkhd`` matrix; Matroska's projection) saying how
to turn them, and that matrix, a rotation by a multiple of 90 degrees and maybe a mirror, is
applied. It is what older FFmpeg versions showed as a ``rotate`` tag; FFmpeg 7 exposes it
only as the display matrix, and its muxers ignore a ``rotate`` tag set on a stream.

Refused, with VideoReadError: missing files, files FFmpeg cannot open, files without a video
stream, still images (FFmpeg's image demuxers read a JPEG or PNG as a one-frame video) and
text (FFmpeg's ``tty`` demuxer reads any ``.txt`` as ANSI art).

A video that breaks off (a download cut short, a recording whose writer crashed) yields the
frames decoded before the break, then raises VideoTruncatedError naming the last good frame.
The break is found by whichever comes first, from what FFmpeg reads: FFmpeg failing to demux
or decode; FFmpeg flagging a frame as corrupt (decoded from partial data); its index (MP4's
sample tables, AVI's idx1, Matroska's cues) placing frame data past the end of the file;
fewer packets than the header's frame count (MP4, AVI); packets that end before the
stream's declared duration (Matroska's DURATION tag, or its segment's with one stream). FFmpeg
itself ends such files without a word. MPEG-TS declares neither: it is a run of fixed-size
packets, and a file that ends inside one was cut. Reading stops at the first corrupt frame:
after damage, frames are unreliable until the next keyframe. Not seen: the cut of a file that
declares neither a frame count nor a duration (a Matroska file written live), or of an
MPEG-TS file exactly between two packets; such files read as shorter videos, and their last
frame or two may be numbered as frames the cut removed (their times are right).
An MP4 whose index (``moov``) was to come at the end cannot be opened at all when cut: that
is a VideoReadError, which says the file is cut short (from its top-level boxes, whose sizes
FFmpeg does not report).
"""
import math
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Generator, Iterator, Optional, Tuple, Union

import av
import numpy as np

from ..errors import VideoReadError, VideoTruncatedError
from ..files import not_a_file

PathLike = Union[str, "os.PathLike[str]"]

# The suffixes (any case) by which a file found in a folder or a list is taken for a video
# rather than a photo: common containers FFmpeg reads (read_video opens any it can).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts",
                              ".mts", ".m2ts", ".flv", ".wmv", ".3gp", ".ogv"})


@dataclass(frozen=True)
class VideoFrame:
    index: int  # 0 for the first frame decoded, counting every frame in presentation order
    time: float  # presentation time in seconds from the start of the video stream
    image: np.ndarray  # RGB uint8 (H, W, 3), C-contiguous, upright


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # upright, after the rotation
    height: int
    fps: float  # average frame rate, e.g. 25.0 or 29.97...
    frame_rate: Fraction  # the same, exact (30000/1001): for AnnotatedVideoWriter
    frame_count: Optional[int]  # as the container says; None if it does not
    rotation: int  # degrees clockwise applied to the stored pictures: 0, 90, 180 or 270
    duration: Optional[float]  # seconds, as the container says; None if it does not
    mirrored: bool = False  # mirrored left-right after the rotation (rare)


@dataclass(frozen=True)
class _Orientation:
    rotation: int  # degrees clockwise
    mirrored: bool

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.rotation:
            # np.rot90 turns counter-clockwise for positive k.
            image = np.rot90(image, k=-self.rotation // 90)
        if self.mirrored:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)


_UPRIGHT = _Orientation(0, False)


def probe_video(path: PathLike) -> VideoInfo:
    """What the video at ``path`` holds. Decodes its first frame, which is where FFmpeg puts
    the display matrix and which shows the file can be decoded at all. VideoReadError if it
    cannot be opened, is not a video, or no frame of it decodes."""
    path = os.fspath(path)
    container, stream = _open(path)
    with container:
        first = next(_decoded(container, stream), None)
        if first is None:
            reason = _cut_short(path, container, stream)
            raise VideoReadError(f"{path}: no frame of its {stream.codec_context.name} video stream "
                                 f"could be decoded" + (f" ({reason})" if reason else ""))
        orientation = _orientation(path, first)
        width, height = first.width, first.height
        if orientation.rotation in (90, 270):
            width, height = height, width
        frame_rate = _frame_rate(path, stream)
        if stream.duration:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = None
        return VideoInfo(path=path, width=width, height=height, fps=float(frame_rate),
                         frame_rate=frame_rate, frame_count=stream.frames or None,
                         rotation=orientation.rotation, duration=duration,
                         mirrored=orientation.mirrored)


def read_video(path: PathLike) -> Iterator[VideoFrame]:
    """The frames of the video at ``path``, upright, in presentation order, one at a time.
    Opens the file at once: VideoReadError here, as ``probe_video``, for a file that is not
    a video; VideoTruncatedError from the iterator, after the last good frame, if the video
    breaks off."""
    path = os.fspath(path)
    container, stream = _open(path)
    return _frames(path, container, stream)


def _frames(path: str, container, stream) -> Iterator[VideoFrame]:
    with container:
        start = stream.start_time or 0
        time_base = stream.time_base
        # Known before decoding: the sizes and the index are read at open.
        cut = _cut_short(path, container, stream)
        frames = _decoded(container, stream, cut=cut is not None)
        index, time = -1, 0.0
        while True:
            try:
                frame = next(frames)
            except StopIteration as stop:
                reason = cut or stop.value  # the structure's account is the clearer one
                break
            index += 1
            if frame.pts is None or time_base is None:
                # Raw streams (.h264) carry no timestamps: the frame's place at the nominal rate.
                time = index / float(_frame_rate(path, stream))
            else:
                time = float((frame.pts - start) * time_base)
            image = _orientation(path, frame).apply(frame.to_ndarray(format="rgb24"))
            yield VideoFrame(index=index, time=time, image=image)
        if reason is not None:
            last = f"after its last good frame, {index} at {time:.3f} s" if index >= 0 else "before its first frame"
            raise VideoTruncatedError(f"{path}: the video breaks off {last} ({reason})",
                                      last_good_frame=index if index >= 0 else None)


# FFmpeg demuxers that read a single picture as a one-frame video.
def _is_image_format(name: str) -> bool:
    return name in ("image2", "image2pipe") or name.endswith("_pipe")


# Decoders of text art: FFmpeg's tty, bintext, xbin and idf demuxers take text files for video.
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


def _open(path: str) -> Tuple["av.container.InputContainer", "av.video.stream.VideoStream"]:
    if not os.path.isfile(path):
        raise VideoReadError(not_a_file(path, "video file"))
    try:
        container = av.open(path)
    except av.error.FFmpegError as e:
        reason = _mp4_cut_short(path)
        raise VideoReadError(f"{path}: not a readable video (FFmpeg: {e.strerror}"
                             + (f"; {reason}" if reason else "") + ")") from None
    try:
        format_name = container.format.name
        if _is_image_format(format_name):
            raise VideoReadError(f"{path}: a still image ({format_name}), not a video")
        if not container.streams.video:
            reason = _mp4_cut_short(path)
            if reason:  # an MP4 cut before its index opens as a file of no streams
                raise VideoReadError(f"{path}: not a readable video (no video stream; {reason})")
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise VideoReadError(f"{path}: no video stream ({format_name} with {', '.join(kinds)})")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise VideoReadError(f"{path}: its video codec is not one FFmpeg can decode")
        if stream.codec_context.name in _TEXT_CODECS:
            raise VideoReadError(f"{path}: text ({format_name}), not a video")
    except BaseException:
        container.close()
        raise
    # Frame threads where the codec allows them, else slice threads.
    stream.thread_type = "AUTO"
    return container, stream


def _decoded(container, stream, cut: bool = False) -> Generator["av.VideoFrame", None, Optional[str]]:
    """Decoded frames of ``stream``; returns why decoding stopped early, None at the end of
    the file. ``cut``: the file is known to be cut short (known at open, or when demuxing
    ends short of what the header declares), so of the frames the decoder still holds at the
    end (B-frame reordering, threads), only those presented no later than the last packet's
    decoding time are yielded: a frame is decoded before it is presented, so every frame up
    to that time was in the file, and a later one may come after a gap the cut made, where
    it would be numbered as the frames missing."""
    last_dts, packets, ended, reason = None, 0, None, None
    try:
        for packet in container.demux(stream):
            # demux() ends with an empty packet, whose decode() drains the decoder.
            end = packet.size == 0 and packet.dts is None
            if end:
                reason = _ends_early(container, stream, packets, ended)
                cut = cut or reason is not None
            else:
                packets += 1
                if packet.dts is not None:
                    last_dts = packet.dts
                if packet.pts is not None and packet.time_base is not None:
                    packet_end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    ended = packet_end if ended is None else max(ended, packet_end)
            for frame in stream.decode(packet):
                if end and cut and (frame.pts is None or last_dts is None or frame.pts > last_dts):
                    return reason
                if frame.is_corrupt:
                    return "the next frame is corrupt: decoded from damaged or missing data"
                yield frame
    except av.error.FFmpegError as e:
        return f"FFmpeg: {e.strerror}"
    return reason


def _frame_rate(path: str, stream) -> Fraction:
    # average_rate: frames over duration, from the header; guessed_rate: FFmpeg's guess from
    # the first timestamps (MPEG-TS with a variable rate has no average).
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    raise VideoReadError(f"{path}: its video stream has no frame rate")


def _orientation(path: str, frame: "av.VideoFrame") -> _Orientation:
    """How to turn ``frame`` upright, from its display matrix (FFmpeg copies the container's
    onto every decoded frame)."""
    side_data = frame.side_data.get("DISPLAYMATRIX")
    if side_data is None:
        return _UPRIGHT
    m = np.frombuffer(bytes(side_data), dtype=np.int32).astype(np.float64)
    # FFmpeg: a stored pixel (x, y) is displayed at (m0 x + m3 y, m1 x + m4 y) (then
    # translated), y pointing down. A clockwise turn by t is [[cos, -sin], [sin, cos]],
    # a mirror then negates x: a negative determinant means mirrored.
    a, b, c, d = m[0], m[1], m[3], m[4]
    mirrored = a * d - b * c < 0
    degrees = math.degrees(math.atan2(b, -a if mirrored else a))
    rotation = int(round(degrees / 90.0)) * 90 % 360
    if abs((degrees - rotation + 180) % 360 - 180) > 1:
        raise VideoReadError(f"{path}: its display matrix turns the picture by {degrees:.1f} "
                             "degrees; only multiples of 90 degrees are supported")
    return _Orientation(rotation, bool(mirrored))


def _cut_short(path: str, container, stream) -> Optional[str]:
    """Why the file is shorter than FFmpeg's reading of its header says, known at open: its
    index places frame data past its end (a cut even exactly between two frames), or, for
    MPEG-TS, it ends inside a packet. None if neither."""
    if container.format.name == "mpegts":
        return _partial_transport_packet(path, container.size)
    end = max((entry.pos + entry.size for entry in stream.index_entries), default=0)
    if end > container.size:
        return f"the file is cut short: its index places frame data up to byte {end}, the file has {container.size}"
    return None


def _ends_early(container, stream, packets: int, ended: Optional[float]) -> Optional[str]:
    """Why the ``packets`` demuxed, the last presented until ``ended`` seconds, fall short of
    what the header declares: its frame count (MP4, AVI) or the stream's duration."""
    if stream.frames and packets < stream.frames:
        return f"the file is cut short: it holds {packets} of the {stream.frames} frames its header declares"
    declared = _declared_duration(container, stream)
    # Half a frame's leeway for rounding: a missing frame is a whole one.
    if declared is not None and ended is not None and declared - ended > 0.5 / float(stream.guessed_rate or 25):
        return f"the file is cut short: its frames end at {ended:.3f} s, its header says {declared:.3f} s"
    return None


def _declared_duration(container, stream) -> Optional[float]:
    """The stream's duration in seconds as Matroska declares it: the track's DURATION tag
    (written by FFmpeg and mkvmerge), or the segment's when it is the only stream. Others'
    durations FFmpeg may estimate from the very packets read (MPEG-TS), so they prove nothing."""
    tag = stream.metadata.get("DURATION")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    if "matroska" in container.format.name and len(container.streams) == 1 and container.duration:
        return container.duration / av.time_base
    return None


def _partial_transport_packet(path: str, size: int) -> Optional[str]:
    """MPEG-TS declares no length, but is a run of fixed-size packets (188 bytes, 192 in
    M2TS, 204 with error correction), each starting with the sync byte 0x47: a file that
    ends inside one was cut (a cut between two packets goes unseen)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2 * 204 + 4)
    except OSError:
        return None
    for packet, sync in ((188, 0), (192, 4), (204, 0)):
        if len(head) > packet + sync and head[sync] == head[packet + sync] == 0x47:
            if size % packet:
                return (f"the file is cut short: its {size} bytes are not a whole number of "
                        f"{packet}-byte MPEG-TS packets")
            return None
    return None


def _mp4_cut_short(path: str) -> Optional[str]:
    """For an MP4 or MOV file FFmpeg could not read a video stream from: whether it is shorter
    than its top-level boxes say (each a 32-bit big-endian size, 1 for a 64-bit one after the
    type, 0 for "to the end of the file"; then a four-letter type). FFmpeg says only "moov atom
    not found", and nothing at all when the cut is inside that index box."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if f.read(8)[4:] not in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
                return None
            start = 0
            while start < size:
                f.seek(start)
                head = f.read(16)
                if len(head) < 8 or (head[:4] == b"\0\0\0\1" and len(head) < 16):
                    return f"the file is cut short: it ends inside the header of the MP4 box at byte {start}"
                box, = struct.unpack(">I", head[:4])
                if box == 1:
                    box, = struct.unpack(">Q", head[8:16])
                if box == 0:  # to the end of the file
                    return None
                if box < 8:
                    return None  # not a box: nothing can be said
                if start + box > size:
                    return (f"the file is cut short: the {head[4:8].decode('latin-1')} box at byte {start} "
                            f"ends at byte {start + box}, the file has {size}")
                start += box
    except OSError:
        return None
    return None
