"""face_alignment.video's reader, writer and landmark table, on small videos the tests write
with PyAV (tests/synthetic_video.py: each frame's content says its index) and tables of
known rows. Expected values are what the tests wrote: timestamps, pictures, rows."""
import json
import os
import pickle
from fractions import Fraction

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from face_alignment.errors import (FaceAlignmentError, LandmarkTableError, VideoReadError,
                                   VideoTruncatedError, VideoWriteError)
from face_alignment.video.reader import VideoInfo, probe_video, read_video
from face_alignment.landmark_table import LandmarkTableWriter, read_landmark_table, schema, to_numpy
from face_alignment.video.writer import AnnotatedVideoWriter
from synthetic_video import LEVELS, decode_with_pyav, index_of, pattern, write_video

# H.264 at its default quality keeps the flat test pictures within a few levels on average
# (edges and the red quarter's colour blur: measured up to 1.7); a picture turned or mirrored
# the wrong way, or in BGR, is off by 30 or more. Which frame it is, index_of says.
MEAN_TOLERANCE = 3.0


def _assert_picture(image: np.ndarray, expected: np.ndarray, tolerance: float = MEAN_TOLERANCE) -> None:
    assert image.shape == expected.shape and image.dtype == np.uint8
    error = np.abs(image.astype(np.int16) - expected).mean()
    assert error < tolerance, error


def _assert_one_line(error: Exception, *fragments: str) -> None:
    message = str(error)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --- reading --------------------------------------------------------------------------------

def test_constant_25_fps_mp4_frames_times_pictures_and_probe(tmp_path):
    path = str(tmp_path / "cfr.mp4")
    written = write_video(path, range(20), Fraction(1, 25))
    frames = list(read_video(path))
    assert [f.index for f in frames] == list(range(20))
    # pts i in 1/25 s: exactly i/25 once the muxer's time base (1/12800) is undone.
    assert [f.time for f in frames] == [float(Fraction(i, 25)) for i in range(20)]
    for frame, image in zip(frames, written):
        assert frame.image.flags["C_CONTIGUOUS"]
        _assert_picture(frame.image, image)
        assert index_of(frame.image) == frame.index
    info = probe_video(path)
    assert info == VideoInfo(path=path, width=64, height=48, fps=25.0, frame_rate=Fraction(25),
                             frame_count=20, rotation=0, duration=0.8)


def test_ntsc_rate_30000_1001(tmp_path):
    path = str(tmp_path / "ntsc.mp4")
    rate = Fraction(30000, 1001)
    write_video(path, range(12), 1 / rate, rate=rate)
    info = probe_video(path)
    assert info.frame_rate == rate and info.fps == 30000 / 1001
    assert info.frame_count == 12
    frames = list(read_video(path))
    assert [f.time for f in frames] == [float(i / rate) for i in range(12)]
    assert [index_of(f.image) for f in frames] == list(range(12))


@pytest.mark.parametrize("extension", ["mkv", "mp4"])
def test_variable_frame_rate_keeps_each_frames_time(tmp_path, extension):
    path = str(tmp_path / f"vfr.{extension}")
    milliseconds = [0, 40, 100, 110, 250, 300, 420, 430, 600]
    written = write_video(path, milliseconds, Fraction(1, 1000))
    frames = list(read_video(path))
    assert [f.time for f in frames] == [float(Fraction(ms, 1000)) for ms in milliseconds]
    for frame, image in zip(frames, written):
        _assert_picture(frame.image, image)


def test_times_count_from_the_streams_start(tmp_path):
    # The MPEG-TS muxer starts its clock at 1.4 s; times are from the first frame still.
    path = str(tmp_path / "clip.ts")
    write_video(path, range(10), Fraction(1, 25))
    with av.open(path) as container:
        assert container.streams.video[0].start_time > 0  # what this test is about
    frames = list(read_video(path))
    assert [f.time for f in frames] == [float(Fraction(i, 25)) for i in range(10)]
    assert probe_video(path).frame_count is None  # MPEG-TS does not count its frames


@pytest.mark.parametrize("extension", ["mp4", "mkv"])
@pytest.mark.parametrize("counter_clockwise, mirror, clockwise_applied", [
    (-90, False, 90),  # a phone held upright: stored landscape, shown turned clockwise
    (90, False, 270),
    (180, False, 180),
    (0, True, 0),
    (90, True, 270),
])
def test_display_matrix_turns_frames_upright(tmp_path, extension, counter_clockwise, mirror,
                                             clockwise_applied):
    path = str(tmp_path / f"turned.{extension}")
    written = write_video(path, range(3), Fraction(1, 25), rotation=counter_clockwise, mirror=mirror)
    # What a player shows, from PyAV's definition of the display rotation: turned
    # counter-clockwise (np.rot90's direction), then mirrored left-right.
    shown = [np.rot90(image, k=counter_clockwise // 90) for image in written]
    if mirror:
        shown = [image[:, ::-1] for image in shown]
    info = probe_video(path)
    assert (info.width, info.height) == (shown[0].shape[1], shown[0].shape[0])
    assert (info.rotation, info.mirrored) == (clockwise_applied, mirror)
    frames = list(read_video(path))
    assert len(frames) == 3
    for frame, image in zip(frames, shown):
        assert frame.image.flags["C_CONTIGUOUS"]
        _assert_picture(frame.image, image)


def _not_a_video(tmp_path):
    """(name, how to make it, what the error says) for files that are not videos."""
    import cv2
    picture = pattern(0, 64, 48)

    def text(path):
        with open(path, "w") as f:
            f.write("just some text\n" * 50)

    def jpeg(path):
        ok, data = cv2.imencode(".jpg", picture)
        with open(path, "wb") as f:
            f.write(data.tobytes())

    def png(path):
        cv2.imwrite(path, picture)

    def audio(path):
        with av.open(path, "w") as container:
            stream = container.add_stream("pcm_s16le", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
            frame.sample_rate = 8000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)

    def empty(path):
        open(path, "w").close()

    return [("notes.txt", text, "text"), ("notes.mp4", text, "not a readable video"),
            ("photo.jpg", jpeg, "still image"), ("photo.mp4", jpeg, "still image"),
            ("photo.png", png, "still image"), ("sound.wav", audio, "no video stream"),
            ("empty.mkv", empty, "not a readable video")]


def test_files_that_are_not_videos_are_refused_in_one_line(tmp_path):
    for name, make, says in _not_a_video(tmp_path):
        path = str(tmp_path / name)
        make(path)
        for read in (probe_video, read_video):
            with pytest.raises(VideoReadError) as caught:
                read(path)
            assert not isinstance(caught.value, VideoTruncatedError)
            _assert_one_line(caught.value, path, says)
    for missing, says in ((str(tmp_path / "nowhere.mp4"), "no such video file"), (str(tmp_path), "a folder")):
        with pytest.raises(VideoReadError) as caught:
            read_video(missing)
        _assert_one_line(caught.value, missing, says)
    assert issubclass(VideoReadError, FaceAlignmentError)


def _packets(path):
    """(pts, dts, pos, size) of the video packets, in the file's (decoding) order."""
    with av.open(path) as container:
        return [(p.pts, p.dts, p.pos, p.size) for p in container.demux(video=0) if p.size]


def _read_until_error(path):
    frames = []
    with pytest.raises(VideoTruncatedError) as caught:
        for frame in read_video(path):
            frames.append(frame)
    return frames, caught.value


def _assert_good_prefix(frames, error, path, total):
    """Frames 0..k, each showing itself at its time, then an error naming frame k."""
    assert 0 < len(frames) < total
    assert [f.index for f in frames] == list(range(len(frames)))
    assert [index_of(f.image) for f in frames] == [i % LEVELS for i in range(len(frames))]
    assert [f.time for f in frames] == [float(Fraction(i, 25)) for i in range(len(frames))]
    last = frames[-1]
    assert error.last_good_frame == last.index
    _assert_one_line(error, path, "breaks off", f"after its last good frame, {last.index} at {last.time:.3f} s")


@pytest.mark.parametrize("extension, options", [("mkv", {}), ("mp4", {"movflags": "+faststart"}),
                                                ("ts", {})])
def test_video_cut_mid_way_yields_the_good_frames_then_names_the_last(tmp_path, extension, options):
    # H.264 with B-frames: cut after a frame that is shown after frames whose data comes
    # later in the file, so frames after that gap are in the cut file (and in the decoder).
    whole = str(tmp_path / f"whole.{extension}")
    write_video(whole, range(24), Fraction(1, 25), width=160, height=120, container_options=options)
    packets = _packets(whole)
    with open(whole, "rb") as f:
        data = f.read()
    position = next(i for i in range(8, len(packets) - 1) if packets[i][0] > packets[i + 1][0])
    dts = packets[position][1]
    # Inside the next packet: the MPEG-TS packet that holds it is left partial.
    cut = str(tmp_path / f"cut.{extension}")
    with open(cut, "wb") as f:
        f.write(data[: packets[position + 1][2] + packets[position + 1][3] // 2])
    frames, error = _read_until_error(cut)
    _assert_good_prefix(frames, error, cut, 24)
    assert "cut short" in str(error)
    # Every frame shown no later than the last whole packet's decoding time was read whole
    # before it (a frame is decoded before it is shown): those at least are yielded.
    with av.open(whole) as container:
        stream = container.streams.video[0]
        sure = float((dts - (stream.start_time or 0)) * stream.time_base)
    assert frames[-1].time >= sure, (frames[-1].time, sure)


@pytest.mark.parametrize("extension, codec, says", [("mkv", "libx264", "its header says 0.960 s"),
                                                 ("avi", "mpeg4", "of the 24 frames its header declares")])
def test_cut_exactly_between_frames_is_seen_by_what_the_header_declares(tmp_path, extension, codec, says):
    # FFmpeg ends such a file without an error or a corrupt frame; the Matroska track's
    # duration or the AVI header's frame count says it is cut.
    whole = str(tmp_path / f"whole.{extension}")
    write_video(whole, range(24), Fraction(1, 25), width=160, height=120, codec=codec)
    packets = _packets(whole)
    with open(whole, "rb") as f:
        data = f.read()
    cut = str(tmp_path / f"cut.{extension}")
    with open(cut, "wb") as f:
        f.write(data[: packets[12][2] + packets[12][3]])
    frames, error = _read_until_error(cut)
    _assert_good_prefix(frames, error, cut, 24)
    _assert_one_line(error, "cut short", says)


def test_mp4_cut_between_its_boxes_is_seen_by_its_index(tmp_path):
    # Cut right after the index (moov, at the front with faststart): every box is whole,
    # but the index places the frames in the box that is missing.
    whole = str(tmp_path / "whole.mp4")
    write_video(whole, range(24), Fraction(1, 25), container_options={"movflags": "+faststart"})
    with open(whole, "rb") as f:
        data = f.read()
    cut = str(tmp_path / "cut.mp4")
    with open(cut, "wb") as f:
        f.write(data[: data.index(b"mdat") - 4])
    with pytest.raises(VideoTruncatedError) as caught:
        list(read_video(cut))
    assert caught.value.last_good_frame is None
    _assert_one_line(caught.value, cut, "before its first frame", "index places frame data")


def test_cut_avi_breaks_off_after_its_good_frames(tmp_path):
    whole = str(tmp_path / "whole.avi")
    write_video(whole, range(24), Fraction(1, 25), width=160, height=120, codec="mpeg4")
    packets = _packets(whole)
    with open(whole, "rb") as f:
        data = f.read()
    cut = str(tmp_path / "cut.avi")
    with open(cut, "wb") as f:
        f.write(data[: packets[12][2] + packets[12][3] // 2])
    frames, error = _read_until_error(cut)
    _assert_good_prefix(frames, error, cut, 24)


def test_mp4_cut_before_its_index_is_not_a_readable_video(tmp_path):
    # Without faststart the moov box (the index) comes last: a cut file cannot be opened.
    whole = str(tmp_path / "whole.mp4")
    write_video(whole, range(24), Fraction(1, 25), width=160, height=120)
    with open(whole, "rb") as f:
        data = f.read()
    assert data.index(b"moov") > data.index(b"mdat")
    cut = str(tmp_path / "cut.mp4")
    with open(cut, "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    for read in (probe_video, read_video):
        with pytest.raises(VideoReadError) as caught:
            read(cut)
        assert not isinstance(caught.value, VideoTruncatedError)
        _assert_one_line(caught.value, cut, "not a readable video", "cut short")


def test_a_whole_matroska_file_whose_audio_outlasts_its_video_is_not_cut(tmp_path):
    """The segment's duration is the longest stream's: only the video track's own counts."""
    path = str(tmp_path / "long_audio.mkv")
    with av.open(path, "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        for i in range(24):
            for packet in video.encode(av.VideoFrame.from_ndarray(pattern(i, 64, 48), format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        for second in range(2):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 8000, second * 8000
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    with av.open(path) as container:
        assert container.duration / av.time_base > 1.5  # the audio's 2 s
    assert [frame.index for frame in read_video(path)] == list(range(24))


def test_truncated_error_keeps_its_last_good_frame_through_pickling():
    error = pickle.loads(pickle.dumps(VideoTruncatedError("a.mkv: breaks off", last_good_frame=7)))
    assert (str(error), error.last_good_frame) == ("a.mkv: breaks off", 7)


# --- writing --------------------------------------------------------------------------------

@pytest.mark.parametrize("extension", ["mp4", "mkv", "avi", "mov"])
@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)])
def test_writer_keeps_size_rate_times_and_pictures(tmp_path, extension, rate):
    path = str(tmp_path / f"out.{extension}")
    info = VideoInfo(path="in.mp4", width=96, height=64, fps=float(rate), frame_rate=rate,
                     frame_count=15, rotation=0, duration=None)
    pictures = [pattern(i, 96, 64) for i in range(15)]
    times = [float(i / rate) for i in range(15)]
    with AnnotatedVideoWriter(path, info) as writer:
        for picture, time in zip(pictures, times):
            writer.write(picture, time)
    assert os.listdir(tmp_path) == [f"out.{extension}"]
    read_times, images, time_base, average_rate = decode_with_pyav(path)
    assert average_rate == rate
    assert len(images) == 15
    # Within half a tick of the container's clock (Matroska: 1 ms).
    assert np.abs(np.array(read_times, dtype=float) - times).max() <= float(time_base) / 2 + 1e-12
    for image, picture in zip(images, pictures):
        _assert_picture(image, picture)


@pytest.mark.parametrize("extension, tick", [("mp4", Fraction(1, 90000)), ("mkv", Fraction(1, 1000))])
def test_writer_keeps_a_variable_frame_rate(tmp_path, extension, tick):
    path = str(tmp_path / f"out.{extension}")
    info = VideoInfo(path="in.mkv", width=64, height=48, fps=25.0, frame_rate=Fraction(25),
                     frame_count=None, rotation=0, duration=None)
    times = [0.0, 0.04, 0.1, 0.11, 0.25, 0.3, 0.4213, 0.43]
    with AnnotatedVideoWriter(path, info) as writer:
        for i, time in enumerate(times):
            writer.write(pattern(i, 64, 48), time)
    read_times, images, time_base, _ = decode_with_pyav(path)
    assert time_base == tick
    expected = [round(Fraction(t) / tick) * tick for t in times]  # the nearest tick
    assert read_times == expected
    assert [index_of(image) for image in images] == list(range(len(times)))


def test_odd_size_is_padded_by_repeating_the_last_row_and_column(tmp_path):
    path = str(tmp_path / "odd.mp4")
    info = VideoInfo(path="in.mp4", width=65, height=49, fps=25.0, frame_rate=Fraction(25),
                     frame_count=None, rotation=0, duration=None)
    pictures = [pattern(i, 65, 49) for i in range(4)]
    for picture in pictures:  # a bright last column and a dark last row, to see them repeated
        picture[:, -1] = 230
        picture[-1, :] = 10
    with AnnotatedVideoWriter(path, info) as writer:
        assert (writer.width, writer.height) == (66, 50)
        for i, picture in enumerate(pictures):
            writer.write(picture, i / 25)
    _, images, _, _ = decode_with_pyav(path)
    assert len(images) == 4
    for image, picture in zip(images, pictures):
        padded = np.concatenate([picture, picture[:, -1:]], axis=1)
        padded = np.concatenate([padded, padded[-1:]], axis=0)
        _assert_picture(image, padded)


def test_error_inside_the_with_block_leaves_no_file(tmp_path):
    path = str(tmp_path / "out.mp4")
    info = VideoInfo(path="in.mp4", width=64, height=48, fps=25.0, frame_rate=Fraction(25),
                     frame_count=None, rotation=0, duration=None)
    with pytest.raises(RuntimeError, match="tracker failed"):
        with AnnotatedVideoWriter(path, info) as writer:
            for i in range(5):
                writer.write(pattern(i, 64, 48), i / 25)
            raise RuntimeError("tracker failed")
    assert os.listdir(tmp_path) == []
    # An earlier output stays as it was.
    with open(path, "wb") as f:
        f.write(b"earlier")
    for picture, time, says in ((pattern(1, 48, 64), 0.04, "(48, 64, 3)"),  # the wrong size
                                (pattern(1, 64, 48), float("nan"), "time nan")):
        with pytest.raises(VideoWriteError) as caught:
            with AnnotatedVideoWriter(path, info) as writer:
                writer.write(pattern(0, 64, 48), 0.0)
                writer.write(picture, time)
        _assert_one_line(caught.value, path, "frame 1", says)
        assert os.listdir(tmp_path) == ["out.mp4"]
        with open(path, "rb") as f:
            assert f.read() == b"earlier"


def test_unknown_container_is_refused_before_anything_is_written(tmp_path):
    info = VideoInfo(path="in.mp4", width=64, height=48, fps=25.0, frame_rate=Fraction(25),
                     frame_count=None, rotation=0, duration=None)
    for name in ("out.gif", "out"):
        path = str(tmp_path / name)
        with pytest.raises(VideoWriteError) as caught:
            AnnotatedVideoWriter(path, info)
        _assert_one_line(caught.value, path, ".avi, .m4v, .mkv, .mov, .mp4")
    assert os.listdir(tmp_path) == []


def test_a_read_video_written_back_keeps_its_frames_and_times(tmp_path):
    source = str(tmp_path / "in.mkv")
    milliseconds = [0, 40, 100, 110, 250, 300]
    write_video(source, milliseconds, Fraction(1, 1000), rotation=-90)
    info = probe_video(source)
    out = str(tmp_path / "out.mp4")
    with AnnotatedVideoWriter(out, info) as writer:
        for frame in read_video(source):
            writer.write(frame.image, frame.time)
    read_times, images, _, _ = decode_with_pyav(out)
    assert read_times == [Fraction(ms, 1000) for ms in milliseconds]
    # Upright: the input's display matrix (turn clockwise) applied, and none written.
    # Encoded twice: twice the error (measured up to 2.7).
    for i, image in enumerate(images):
        _assert_picture(image, np.rot90(pattern(i, 64, 48), k=-1), tolerance=2 * MEAN_TOLERANCE)


# --- the landmark table ---------------------------------------------------------------------

def _faces(dims, seed=0):
    """Per frame: (video, frame, time, tracks, boxes, landmarks, scores, sources)."""
    rng = np.random.default_rng(seed)
    frames = []
    for frame, count in enumerate([2, 0, 1, 3, 1]):
        tracks = None if frame == 2 else np.arange(count) + 10 * frame
        sources = "detector" if frame < 3 else ["tracking", "given", "detector"][:count]
        frames.append(("clip.mp4", frame, frame / 25, tracks, rng.random((count, 4)) * 100,
                       rng.random((count, 68, dims)) * 100, rng.random((count, 68)), sources))
    return frames


def _expected_rows(frames):
    rows = []
    for video, frame, time, tracks, boxes, landmarks, scores, sources in frames:
        for i in range(len(boxes)):
            rows.append({"video": video, "frame": frame, "time": time,
                         "track": -1 if tracks is None else int(tracks[i]),
                         "box": boxes[i].tolist(), "landmarks": landmarks[i].tolist(),
                         "scores": scores[i].astype(np.float32).tolist(),
                         "source": sources if isinstance(sources, str) else sources[i]})
    return rows


@pytest.mark.parametrize("dims", [2, 3])
def test_parquet_table_holds_the_rows_in_the_documented_types(tmp_path, dims):
    path = str(tmp_path / "faces.parquet")
    frames = _faces(dims)
    with LandmarkTableWriter(path, dims, rows_per_group=3) as table:
        for faces in frames:
            table.add(*faces)
    read = pq.read_table(path)  # pyarrow itself, as pandas' read_parquet does
    types = {field.name: str(field.type) for field in read.schema}
    assert types == {
        "video": "string", "frame": "int64", "time": "double", "track": "int64",
        "box": "fixed_size_list<element: double>[4]",
        "landmarks": f"fixed_size_list<element: fixed_size_list<element: double>[{dims}]>[68]",
        "scores": "fixed_size_list<element: float>[68]",
        "source": "dictionary<values=string, indices=int8, ordered=0>"}
    expected = _expected_rows(frames)
    assert read.to_pylist() == expected
    assert pq.ParquetFile(path).metadata.num_row_groups == 3  # 7 rows, 3 a group: bounded
    points = to_numpy(read_landmark_table(path))
    assert points.shape == (7, 68, dims) and points.dtype == np.float64
    np.testing.assert_array_equal(points, [row["landmarks"] for row in expected])


def test_json_table_has_the_same_fields_and_reads_as_the_same_table(tmp_path):
    frames = _faces(3, seed=1)
    for name in ("faces.json", "faces.parquet"):
        with LandmarkTableWriter(str(tmp_path / name), 3) as table:
            for faces in frames:
                table.add(*faces)
    with open(tmp_path / "faces.json") as f:
        document = json.load(f)
    assert document == {"landmark_dims": 3, "faces": _expected_rows(frames)}
    from_json = read_landmark_table(str(tmp_path / "faces.json"))
    assert from_json.equals(pq.read_table(str(tmp_path / "faces.parquet")))


@pytest.mark.parametrize("name", ["empty.parquet", "empty.json"])
def test_no_faces_gives_a_valid_file_with_the_schema_and_no_rows(tmp_path, name):
    path = str(tmp_path / name)
    with LandmarkTableWriter(path, 3) as table:
        table.add("clip.mp4", 0, 0.0, None, np.zeros((0, 4)), np.zeros((0, 68, 3)),
                  np.zeros((0, 68)), "detector")
    read = pq.read_table(path) if name.endswith(".parquet") else read_landmark_table(path)
    assert read.num_rows == 0 and read.schema.equals(schema(3))
    assert to_numpy(read).shape == (0, 68, 3)


def test_table_error_inside_the_with_block_leaves_no_file(tmp_path):
    for name in ("faces.parquet", "faces.json"):
        with pytest.raises(RuntimeError):
            with LandmarkTableWriter(str(tmp_path / name), 2, rows_per_group=1) as table:
                for faces in _faces(2):  # some row groups are written before the failure
                    table.add(*faces)
                raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []


def test_bad_rows_and_files_are_refused_in_one_line(tmp_path):
    path = str(tmp_path / "faces.parquet")
    with pytest.raises(LandmarkTableError) as caught:
        LandmarkTableWriter(str(tmp_path / "faces.csv"))
    _assert_one_line(caught.value, "faces.csv", ".json, .parquet, .pq")
    with pytest.raises(LandmarkTableError):
        LandmarkTableWriter(path, dims=4)
    with pytest.raises(LandmarkTableError) as caught:
        with LandmarkTableWriter(path, 2) as table:
            table.add("clip.mp4", 0, 0.0, None, np.zeros((1, 4)), np.zeros((1, 68, 3)),
                      np.zeros((1, 68)), "detector")
    _assert_one_line(caught.value, path, "landmarks", "(1, 68, 2)")
    with pytest.raises(LandmarkTableError) as caught:
        with LandmarkTableWriter(path, 2) as table:
            table.add("clip.mp4", 0, 0.0, None, np.zeros((1, 4)), np.zeros((1, 68, 2)),
                      np.zeros((1, 68)), "guessed")
    _assert_one_line(caught.value, path, "guessed", "detector, tracking, given")
    assert os.listdir(tmp_path) == []
    # Files that are not landmark tables.
    other = str(tmp_path / "other.parquet")
    pq.write_table(pa.table({"frame": [1, 2]}), other)
    not_json = str(tmp_path / "faces.json")
    with open(not_json, "w") as f:
        f.write('{"faces": []}')
    not_parquet = str(tmp_path / "text.parquet")
    with open(not_parquet, "w") as f:
        f.write("frame,time\n")
    for bad, says in ((other, "not a landmark table"), (not_json, "landmark_dims"),
                      (not_parquet, "not a readable Parquet file"),
                      (str(tmp_path / "missing.parquet"), "no such landmark table")):
        with pytest.raises(LandmarkTableError) as caught:
            read_landmark_table(bad)
        _assert_one_line(caught.value, bad, says)
