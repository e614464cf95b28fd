"""Reading and detecting images in a worker thread ahead of inference: the same results, in
the same order, with errors raised where they belong."""
import os
import threading

import numpy as np
import pytest

from conftest import SHARED
from face_alignment.api import FaceAlignment, _run_ahead
from face_alignment.errors import FaceAlignmentError
from face_alignment.matching import box_iou, points_box
from face_alignment.evaluation.pts import read_pts

FACES = os.path.join(SHARED, "data", "faces")


def _numbers(log, fail_at=None):
    for i in range(7):
        log.append(threading.current_thread().name)
        if i == fail_at:
            raise FaceAlignmentError(f"item {i}")
        yield i


def _workers():
    return [t for t in threading.enumerate() if t.name.startswith("face-alignment-read-ahead")]


@pytest.mark.parametrize("depth", [0, 1, 3, 10])
def test_items_come_in_order_from_one_worker(depth):
    log = []
    assert list(_run_ahead(_numbers(log), depth)) == list(range(7))
    threads = set(log)
    assert len(threads) == 1
    assert (threads.pop() == threading.current_thread().name) == (depth == 0)
    assert not _workers()


def test_an_error_is_raised_after_the_items_before_it():
    got = []
    with pytest.raises(FaceAlignmentError, match="item 4"):
        for item in _run_ahead(_numbers([], fail_at=4), 3):
            got.append(item)
    assert got == [0, 1, 2, 3]
    assert not _workers()


def test_stopping_early_reads_no_more_than_the_depth_ahead_and_leaves_no_thread():
    log = []
    items = _run_ahead(_numbers(log), 2)
    assert next(items) == 0
    assert len(_workers()) == 1
    items.close()
    assert len(log) <= 3
    assert not _workers()


def _detecting_threads(fa, monkeypatch):
    detect, threads = fa.detect_faces, []

    def detect_and_note_the_thread(image, *name):
        threads.append(threading.current_thread())
        return detect(image, *name)

    monkeypatch.setattr(fa, "detect_faces", detect_and_note_the_thread)
    return threads


def test_detection_ahead_gives_the_landmarks_of_detection_in_turn(fan1_h5, tmp_path, monkeypatch):
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(tmp_path))
    paths = [os.path.join(FACES, name) for name in ("breakingbad.jpg", "einstein.jpg", "breakingbad.jpg")]
    in_turn = FaceAlignment(fan1_h5, backend="nnabla", context="cpu", batch_size=2, detector="hog")
    threads = _detecting_threads(in_turn, monkeypatch)
    reference = list(in_turn.get_landmarks_from_images(paths))
    assert threads == [threading.current_thread()] * 3  # NNabla: everything in this thread
    # Detection really ran: the annotated Breaking Bad face is among HOG's boxes. (What HOG
    # finds in einstein.jpg is a false positive, so nothing is said about it.)
    truth = points_box(read_pts(os.path.join(FACES, "breakingbad.pts")))
    for found in (reference[0], reference[2]):
        assert box_iou(truth, found.boxes).max() > 0.5

    ahead = FaceAlignment(fan1_h5, backend="onnxruntime", batch_size=2, detector="hog")
    threads = _detecting_threads(ahead, monkeypatch)
    results = list(ahead.get_landmarks_from_images(paths))
    assert len(results) == len(reference)
    for expected, got in zip(reference, results):
        np.testing.assert_array_equal(got.boxes, expected.boxes)
        assert np.max(np.abs(got.landmarks - expected.landmarks)) <= 0.01  # the backends' agreement
    assert len(threads) == 3 and threading.current_thread() not in threads
    assert not _workers()

    # An iterator (not a list) stays in the caller's thread.
    threads.clear()
    list(ahead.get_landmarks_from_images(iter(paths)))
    assert threads == [threading.current_thread()] * 3
    with pytest.raises(FaceAlignmentError, match="missing.jpg"):
        list(ahead.get_landmarks_from_images(paths[:1] + [str(tmp_path / "missing.jpg")], on_error="raise"))
    assert not _workers()
