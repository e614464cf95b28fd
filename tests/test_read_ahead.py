"""Reading and detecting images in a worker thread ahead of inference: the same results, in
the same order, with errors raised where they belong."""
import dataclasses
import os
import threading

import numpy as np
import pytest

import checkpoints
from conftest import SHARED
from face_alignment.api import FaceAlignment, _run_ahead
from face_alignment.errors import FaceAlignmentError
from face_alignment.registry import ARCHITECTURES, FAN
from face_alignment.weights.convert import torch_to_nnabla
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.loading import architecture_attrs

FACES = os.path.join(SHARED, "data", "faces")


def _numbers(log, fail_at=None):
    for i in range(7):
        log.append(threading.current_thread().name)
        if i == fail_at:
            raise FaceAlignmentError(f"item {i}")
        yield i


@pytest.mark.parametrize("depth", [0, 1, 3, 10])
def test_items_come_in_order_from_one_worker(depth):
    log = []
    assert list(_run_ahead(_numbers(log), depth)) == list(range(7))
    threads = set(log)
    assert len(threads) == 1
    assert (threads.pop() == threading.current_thread().name) == (depth == 0)


def test_an_error_is_raised_after_the_items_before_it():
    got = []
    with pytest.raises(FaceAlignmentError, match="item 4"):
        for item in _run_ahead(_numbers([], fail_at=4), 3):
            got.append(item)
    assert got == [0, 1, 2, 3]


def test_stopping_early_reads_no_more_than_the_depth_ahead():
    log = []
    items = _run_ahead(_numbers(log), 2)
    assert next(items) == 0
    items.close()  # waits for the worker
    assert len(log) <= 3


@pytest.fixture(scope="module")
def fan1_h5(tmp_path_factory):
    arch = dataclasses.replace(ARCHITECTURES["2DFAN4"], name="FAN1", num_modules=1)
    state = {k: v.numpy() for k, v in checkpoints.authors_fan(1, "avg", seed=3).state_dict().items()}
    path = tmp_path_factory.mktemp("ahead") / "fan1.h5"
    write_h5(str(path), torch_to_nnabla(state, FAN, 1, "test"), architecture_attrs(arch))
    return str(path)


def test_landmarks_with_detection_ahead_equal_those_image_by_image(fan1_h5, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fa = FaceAlignment(fan1_h5, backend="onnxruntime", batch_size=2)
    paths = [os.path.join(FACES, name) for name in ("breakingbad.jpg", "einstein.jpg", "breakingbad.jpg")]
    one_by_one = [fa.get_landmarks_from_image(p) for p in paths]
    assert [len(p.boxes) for p in one_by_one] == [2, 1, 2]  # HOG: both Breaking Bad faces, and Einstein
    detect, threads = fa.detect_faces, []

    def detect_and_note_the_thread(image):
        threads.append(threading.current_thread())
        return detect(image)

    monkeypatch.setattr(fa, "detect_faces", detect_and_note_the_thread)
    together = list(fa.get_landmarks_from_images(paths))
    assert len(threads) == 3 and threading.current_thread() not in threads
    for alone, ahead in zip(one_by_one, together):
        np.testing.assert_array_equal(alone.boxes, ahead.boxes)
        np.testing.assert_allclose(alone.landmarks, ahead.landmarks, atol=1e-4)
    with pytest.raises(FaceAlignmentError, match="missing.jpg"):
        list(fa.get_landmarks_from_images(paths[:1] + [str(tmp_path / "missing.jpg")]))
