"""A detector gone wrong (random SFD weights found 9,374 "faces" in one portrait, and the run
was silent for ten minutes) is bounded twice: candidates are cut to the best MAX_CANDIDATES
before suppression, as RetinaFace's reference code and YuNet do, and an image's faces to its
best ``max_faces`` (in the configuration) before FAN runs."""
import logging
import os

import numpy as np
import pytest

from conftest import SHARED
from face_alignment import landmarker
from face_alignment.api import FaceAlignment
from face_alignment.cli_flags import add_model_arguments, config_from_args
from face_alignment.config import DEFAULT_MAX_FACES, ModelConfig
from face_alignment.detection import sfd
from face_alignment.detection.nms import MAX_CANDIDATES
from face_alignment.errors import FaceAlignmentError

EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")


def test_sfd_suppresses_only_the_best_candidates():
    """6,400 candidates 16 px apart (their anchors touch, never overlap by IoU 0.3): without
    the cap all survive; with it, exactly the MAX_CANDIDATES best scores."""
    side = 320  # cells of the first head (stride 4)
    outputs = []
    for head, stride in enumerate(sfd.STRIDES):
        cells = max(side * 4 // stride, 1)
        outputs += [np.zeros((1, 2, cells, cells), np.float32), np.zeros((1, 4, cells, cells), np.float32)]
    scores = np.random.default_rng(0).uniform(0.6, 1.0, (side // 4, side // 4)).astype(np.float32)
    outputs[0][0, 1, ::4, ::4] = scores
    found = sfd.faces(outputs, 0, threshold=0.5)
    assert scores.size > MAX_CANDIDATES and len(found) == MAX_CANDIDATES
    np.testing.assert_array_equal(found[:, 4], np.sort(scores.ravel())[::-1][:MAX_CANDIDATES])


def test_retinaface_suppresses_only_the_best_candidates():
    """The same cap in RetinaFace: 6,400 faces on the smallest anchors of the stride-8 level,
    8 px apart (16-px boxes: IoU 1/3, under its 0.4), all kept without the cap."""
    from face_alignment.detection import retinaface

    side = 640
    outputs = []
    for step, sizes in zip(retinaface.STEPS, retinaface.ANCHOR_SIZES):
        cells, count = -(-side // step), len(sizes)
        outputs += [np.zeros((1, 2 * count, cells, cells), np.float32), np.zeros((1, 4 * count, cells, cells), np.float32)]
    outputs[0][0, 0::2] = 20.0  # background wins everywhere ...
    scores = np.random.default_rng(0).uniform(0.6, 1.0, (side // 8, side // 8))
    outputs[0][0, 0] = 0.0  # ... but on the first anchor of each stride-8 cell, a face of these scores
    outputs[0][0, 1] = np.log(scores / (1 - scores))
    found = retinaface.faces(outputs, 0, (side, side), threshold=0.5)
    assert scores.size > MAX_CANDIDATES and len(found) == MAX_CANDIDATES
    np.testing.assert_allclose(found[:, 4], np.sort(scores.ravel())[::-1][:MAX_CANDIDATES], rtol=1e-5)


def many_boxes(image):
    """A detector of 30 boxes, best first: a grid over the image."""
    corners = np.stack(np.meshgrid(np.arange(6) * 120.0, np.arange(5) * 150.0), axis=-1).reshape(-1, 2)
    return np.concatenate([corners + 20, corners + 140], axis=1)


def test_max_faces_keeps_the_detectors_best_and_names_the_image(fan1_h5, caplog, monkeypatch):
    bars = []
    monkeypatch.setattr(landmarker, "tqdm", lambda **kwargs: bars.append(kwargs) or _Bar())
    fa = FaceAlignment(fan1_h5, backend="nnabla", context="cpu", detector=many_boxes, calibrate_boxes=False,
                       max_faces=5, batch_size=2)
    assert fa.config.max_faces == 5
    with caplog.at_level(logging.WARNING, logger="face_alignment"):
        [prediction] = list(fa.get_landmarks_from_images([EINSTEIN]))
    np.testing.assert_array_equal(prediction.boxes, many_boxes(None)[:5])
    assert prediction.landmarks.shape == (5, 68, 2)
    [warning] = [r.getMessage() for r in caplog.records if "max_faces" in r.getMessage()]
    assert EINSTEIN in warning and "30 faces" in warning and "best 5" in warning
    # 5 faces in batches of 2: a progress bar over the faces (shown on a terminal).
    assert bars[-1]["total"] == 5 and bars[-1]["disable"] is None


class _Bar:
    def update(self, n):
        pass

    def close(self):
        pass


def test_max_faces_is_an_option_of_the_configuration_and_the_command_lines(fan1_h5):
    import argparse

    assert ModelConfig.build(fan1_h5).max_faces == DEFAULT_MAX_FACES
    assert ModelConfig.build(fan1_h5, max_faces=3).differences(ModelConfig.build(fan1_h5))[0].startswith("max_faces")
    p = argparse.ArgumentParser()
    add_model_arguments(p)
    assert config_from_args(p.parse_args(["--max-faces", "3"]), fan1_h5).max_faces == 3
    with pytest.raises(FaceAlignmentError, match="max_faces"):
        ModelConfig.build(fan1_h5, max_faces=0)
