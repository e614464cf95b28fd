"""Video end to end: model_inference.py --test-video and FaceAlignment.get_landmarks_from_video
on clips written here with PyAV from the shared photos, moved by known amounts.

Random FAN weights give landmarks that mean nothing, so what is checked against independent
references here is what does not depend on them: frames, times and sizes (what was written),
detections (dlib's detector run on the same decoded frames), the tracker on the encoded clip
with the true landmarks, and every bad input. test_tracking.py tests the tracker itself.
"""
import json
import os

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

import moving_faces
from synthetic_video import write_clip
from conftest import CPU, assert_one_line_error, run_tool
from face_alignment.api import FaceAlignment
from face_alignment.boxes import as_boxes
from face_alignment.errors import VideoTruncatedError
from face_alignment.detection.dlib_detectors import DLIB_BOXES, HogDetector
from face_alignment.pipeline.draw import CAPTION_BACKGROUND
from face_alignment.video.box_sources import DETECTOR, GIVEN, GivenBoxes, TRACKING, UNTRACKED
from face_alignment.video.reader import read_video
from face_alignment.landmark_table import to_numpy
from face_alignment.video.tracking import FaceTracker

FPS = 25
FRAMES = 20


@pytest.fixture(scope="module")
def clip():
    return moving_faces.two_faces(FRAMES, moving_faces.load_photo("breakingbad"))


@pytest.fixture(scope="module")
def clip_file(clip, tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("video") / "two_faces.mp4", clip.frames)


def hog():
    # As test_tracking: dlib scores this half-turned face near 0, so a lower threshold.
    return HogDetector(threshold=-0.3)


def test_command_line_writes_a_row_per_face_per_frame_and_the_annotated_video(clip_file, fan1_h5, tmp_path):
    table, annotated = tmp_path / "landmarks.parquet", tmp_path / "annotated.mp4"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-video", clip_file, "--output", annotated,
                      "--save-landmarks", table, "--detect-every", 5, "--no-progress", "--caption", "RANDOM", *CPU,
                      "--detector", "hog")
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(table)
    frames = np.array(rows.column("frame").to_pylist())
    assert set(frames) <= set(range(FRAMES)) and 0 in frames
    # Times are the written presentation times, i / 25 s.
    np.testing.assert_array_equal(rows.column("time").to_pylist(), frames / FPS)
    assert to_numpy(rows).shape == (len(frames), 68, 2)
    assert set(rows.column("source").to_pylist()) <= {DETECTOR, TRACKING}
    # Frame 0's faces are what dlib's HOG finds in the decoded frame 0.
    first = next(read_video(clip_file))
    detected = as_boxes(HogDetector().detect(first.image))
    boxes0 = np.array(rows.filter(rows.column("frame").to_numpy() == 0).column("box").to_pylist())
    np.testing.assert_allclose(boxes0[np.lexsort(boxes0.T[::-1])], detected[np.lexsort(detected.T[::-1])])
    # The annotated video: same size, frame count and frame rate as the clip.
    with av.open(str(annotated)) as container:
        stream = container.streams.video[0]
        pictures = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert (stream.width, stream.height) == moving_faces.SIZE
        assert stream.average_rate == FPS
    assert len(pictures) == FRAMES
    # The caption's banner lies over the top rows in the caption's colour (draw.CAPTION_BACKGROUND).
    assert np.abs(pictures[0][2, :5].astype(int) - CAPTION_BACKGROUND).max() < 12
    assert sorted(os.listdir(tmp_path)) == ["annotated.mp4", "landmarks.parquet"]


def test_api_yields_one_result_per_frame_with_given_boxes(clip_file, fan1_h5):
    fa = FaceAlignment(fan1_h5, backend="onnxruntime")
    given = {0: [[100.0, 80, 180, 170]], 3: [[50.0, 40, 150, 160], [250, 60, 350, 180]]}
    results = list(fa.get_landmarks_from_video(clip_file, boxes=GivenBoxes(given)))
    assert [r.index for r in results] == list(range(FRAMES))
    assert [r.time for r in results] == [i / FPS for i in range(FRAMES)]
    for r in results:
        expected = np.array(given.get(r.index, np.zeros((0, 4))), dtype=float).reshape(-1, 4)
        np.testing.assert_array_equal(r.prediction.boxes, expected)
        assert r.sources == (GIVEN,) * len(expected) and list(r.tracks) == [UNTRACKED] * len(expected)
        assert r.prediction.landmarks.shape == (len(expected), 68, 2)
        assert r.image.shape == (moving_faces.SIZE[1], moving_faces.SIZE[0], 3)


def test_consecutive_frames_share_batches_when_boxes_need_no_landmarks(clip_file, fan1_h5):
    """Given boxes, one face a frame, batches of 4: the network sees 4 crops at a time, and
    each frame still gets its own box back."""
    fa = FaceAlignment(fan1_h5, backend="onnxruntime", batch_size=4)
    seen, network = [], fa.fan

    def recording(batch):
        seen.append(len(batch))
        return network(batch)

    fa.fan = recording
    given = {i: [[10.0 * i, 20, 10.0 * i + 90, 120]] for i in range(FRAMES)}
    results = list(fa.get_landmarks_from_video(clip_file, boxes=GivenBoxes(given)))
    assert seen == [4] * (FRAMES // 4)
    for r in results:
        np.testing.assert_array_equal(r.prediction.boxes, given[r.index])


def test_tracking_holds_on_the_encoded_clip_and_detects_as_often_as_asked(clip, clip_file):
    """The tracker fed the true (moved) landmarks, as a perfect FAN would give them, on the
    frames decoded from the H.264 file: one track per face all through, detection on frames
    0, 5, 10 and 15 only."""
    calls = []
    detector = hog()

    def detect(image):
        calls.append(len(calls))
        return detector.detect(image)

    tracker = FaceTracker(detect, detect_every=5, relation=DLIB_BOXES["hog"])
    truth = moving_faces.TruePoints(clip)
    tracks = []
    for frame in read_video(clip_file):
        faces = tracker.boxes(frame.index, frame.image)
        landmarks, scores = truth(frame.index, frame.image, faces.boxes)
        tracker.observe(frame.index, faces, landmarks, scores)
        tracks.append(tuple(faces.tracks))
    assert len(calls) == 4
    assert tracks == [(0, 1)] * FRAMES


def test_smoothing_flows_from_the_command_line(clip_file, fan1_h5, tmp_path):
    """--smooth with an enormous cutoff changes nothing; with a tiny one and no speed term,
    every later frame is pulled towards the first."""
    def landmarks(*smoothing):
        out = tmp_path / f"{len(smoothing)}-{smoothing[-1] if smoothing else 'raw'}.json"
        result = run_tool("model_inference.py", "--model", fan1_h5, "--test-video", clip_file, "--detect-every", 1,
                          "--save-landmarks", out, "--no-progress", *smoothing, *CPU)
        assert result.returncode == 0, result.stderr
        faces = json.loads(out.read_text())["faces"]
        return {(f["frame"], f["track"]): np.array(f["landmarks"]) for f in faces}

    raw = landmarks()
    assert landmarks("--smooth", "--smooth-min-cutoff", "1e9", "--smooth-beta", "0").keys() == raw.keys()
    sharp = landmarks("--smooth", "--smooth-min-cutoff", "1e9", "--smooth-beta", "0")
    for key in raw:
        np.testing.assert_allclose(sharp[key], raw[key], atol=1e-6)
    assert not all(np.allclose(a, b) for a, b in zip(landmarks("--smooth", "--smooth-min-cutoff", "0.01",
                                                                 "--smooth-beta", "0").values(), raw.values()))


def test_not_a_video_is_one_line_and_writes_nothing(fan1_h5, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    out, table = tmp_path / "out.mp4", tmp_path / "rows.parquet"
    assert_one_line_error(run_tool("model_inference.py", "--model", fan1_h5, "--test-video", notes,
                                   "--output", out, "--save-landmarks", table, *CPU), "notes.mp4")
    assert_one_line_error(run_tool("model_inference.py", "--model", fan1_h5, "--test-video", tmp_path / "none.mkv",
                                   "--save-landmarks", table, *CPU), "none.mkv")
    assert sorted(os.listdir(tmp_path)) == ["notes.mp4"]


def test_a_video_that_breaks_off_keeps_what_decoded_and_exits_non_zero(clip, fan1_h5, tmp_path):
    whole = write_clip(tmp_path / "whole.mkv", clip.frames)
    data = open(whole, "rb").read()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[:len(data) * 2 // 3])
    table = tmp_path / "rows.parquet"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-video", cut, "--save-landmarks", table,
                      "--detect-every", 1, "--no-progress", *CPU)
    error = assert_one_line_error(result, "cut.mkv", "breaks off")
    good = [frame.index for frame in _frames_until_error(str(cut))]
    assert 0 < len(good) < FRAMES and f"last good frame, {good[-1]} at" in error
    frames = pq.read_table(table).column("frame").to_pylist()
    assert set(frames) == set(good)  # each decoded frame has faces here (HOG finds one in each)
    # Through the API with given boxes, which batch several frames: none is lost at the break.
    fa = FaceAlignment(fan1_h5, backend="onnxruntime", batch_size=8)
    got = []
    with pytest.raises(VideoTruncatedError):
        for result in fa.get_landmarks_from_video(str(cut), boxes=GivenBoxes(lambda i: [[10.0, 20, 100, 120]])):
            got.append(result.index)
    assert got == good


def _frames_until_error(path):
    frames = []
    try:
        for frame in read_video(path):
            frames.append(frame)
    except Exception:
        pass
    return frames


def test_a_video_without_faces_gives_no_rows_a_warning_and_exit_0(fan1_h5, tmp_path):
    blank = write_clip(tmp_path / "blank.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 6)
    table = tmp_path / "rows.parquet"
    result = run_tool("model_inference.py", "--model", fan1_h5, "--test-video", blank, "--save-landmarks", table,
                      "--no-progress", *CPU)
    assert result.returncode == 0, result.stderr
    assert "no face found in 6 frames" in result.stderr
    rows = pq.read_table(table)
    assert rows.num_rows == 0 and "landmarks" in rows.column_names


def test_image_and_video_flags_do_not_mix(fan1_h5, clip_file, tmp_path):
    base = ("model_inference.py", "--model", fan1_h5)
    assert_one_line_error(run_tool(*base, "--test-video", clip_file, "--save-json", tmp_path / "a.json"),
                          "--save-landmarks")
    assert_one_line_error(run_tool(*base, "--test-video", clip_file, "--save-landmarks", tmp_path / "a.csv"),
                          "a.csv", ".parquet")
    assert_one_line_error(run_tool(*base, "--test-video", clip_file, "--test-image", clip_file), "--test-video")
    assert_one_line_error(run_tool(*base, "--test-video", clip_file, "--output", clip_file), "--test-video")
    assert not os.listdir(tmp_path)
