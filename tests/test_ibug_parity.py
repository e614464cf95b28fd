"""ibug's models end to end on real photos: our pipeline equals ibug's own FANPredictor.

Their ``fan.py`` and ``fan_predictor.py`` (loaded by path, see ibug_reference.py) run random
weights saved as their ``.pth``; ours run the same file converted by our converter. Both get
the same boxes, so their crop (``crop_ratio`` 0.55, rounding, zero padding), the network, the
centroid decoding with its defaults (``radius`` 0.1, ``gamma`` 1.0) and the mapping back to
the image are each held to their code rather than to a transcription of it.
"""
import functools
import os

import numpy as np
import pytest
import torch

import checkpoints
import ibug_reference
from conftest import SHARED, annotated_box
from face_alignment.api import FaceAlignment
from face_alignment.pipeline.crop import crop_faces
from face_alignment.pipeline.decode import decode
from face_alignment.pipeline.image import read_image
from face_alignment.registry import architecture
from face_alignment.weights.convert import convert_checkpoint

PHOTOS = ("breakingbad", "einstein")
HEATMAP_TOLERANCE = 1e-5  # max abs difference / max abs reference
PIXEL_TOLERANCE = 0.01  # landmarks, in image pixels
# A square box whose window corners fall on 100.5 and 202.5, where np.round goes to even.
HALVES_BOX = [123.5625, 123.5625, 123.5625 + 0.55 * 102.5, 123.5625 + 0.55 * 102.5]
# Every configuration on both backends: NNabla's CPU context, and ONNX Runtime, whose first
# use exports each model (a few seconds here).
RUNS = tuple((name, backend) for backend in ("nnabla", "onnxruntime") for name in ibug_reference.CONFIGURATIONS)
RUN_IDS = [f"{name}-{backend}" for name, backend in RUNS]


def _photo(name):
    return os.path.join(SHARED, "data", "faces", name + ".jpg")


class _Recorder:
    """Stands in for a network and keeps every batch it was given and every output."""

    def __init__(self, network):
        self.network, self.inputs, self.outputs = network, [], []

    def __call__(self, batch):
        out = self.network(batch)
        self.inputs.append(np.array(batch))
        self.outputs.append(np.array(out))
        return out


@pytest.fixture(scope="module")
def weights(module_folder):
    """name -> (ibug's .pth, our .h5) of a random FAN in that configuration, made on first use.
    The .pth files bear ibug's names, which is how our converter knows the architecture."""
    folder = module_folder("ibug")

    @functools.lru_cache(maxsize=None)
    def files(name):
        pth, h5 = folder / f"{name}.pth", folder / f"{name}.h5"
        seed = 60 + 2 * ibug_reference.CONFIGURATIONS.index(name)
        checkpoints.save_plain(checkpoints.ibug_fan(name, seed=seed), pth)
        assert convert_checkpoint(str(pth), str(h5)).name == "ibug-" + name
        return str(pth), str(h5)

    return files


@pytest.fixture(scope="module")
def theirs(weights):
    """name -> {photo: (crop, heatmaps, landmarks, scores)} from ibug's FANPredictor."""

    @functools.lru_cache(maxsize=None)
    def results(name):
        predictor = ibug_reference.predictor(name, weights(name)[0])
        seen = []
        predictor.net.register_forward_hook(
            lambda module, args, out: seen.append((args[0].numpy().copy(), out[0].numpy().copy())))
        out = {}
        for photo in PHOTOS:
            landmarks, scores = predictor(read_image(_photo(photo)), annotated_box(photo)[None], rgb=True)
            (crop, heatmaps), = seen
            seen.clear()
            out[photo] = crop[0], heatmaps[0], landmarks[0], scores[0]
        return out

    return results


@pytest.fixture(scope="module")
def ours(weights):
    """(name, backend) -> (crops, heatmaps, Prediction per photo) from our FaceAlignment with
    the decoding it picks for the model, both photos in one batch."""

    @functools.lru_cache(maxsize=None)
    def results(name, backend):
        fa = FaceAlignment(weights(name)[1], backend=backend, context="cpu")
        assert fa.decode == "centroid"  # ibug's rule is the default for their models
        fa.fan = recorder = _Recorder(fa.fan)
        predictions = list(fa.get_landmarks_from_images(
            [_photo(p) for p in PHOTOS], [annotated_box(p)[None] for p in PHOTOS]))
        assert len(recorder.inputs) == 1  # one batch: the rows are the photos in order
        return recorder.inputs[0], recorder.outputs[0], dict(zip(PHOTOS, predictions))

    return results


@pytest.mark.parametrize("name, backend", RUNS, ids=RUN_IDS)
def test_the_network_sees_ibugs_crop_exactly(name, backend, ours, theirs):
    crops = ours(name, backend)[0]
    for i, photo in enumerate(PHOTOS):
        assert np.array_equal(crops[i], theirs(name)[photo][0]), photo


@pytest.mark.parametrize("name, backend", RUNS, ids=RUN_IDS)
def test_heatmaps_match_ibugs(name, backend, ours, theirs):
    heatmaps = ours(name, backend)[1]
    for i, photo in enumerate(PHOTOS):
        assert checkpoints.relative_error(heatmaps[i], theirs(name)[photo][1]) <= HEATMAP_TOLERANCE, photo


@pytest.mark.parametrize("name, backend", RUNS, ids=RUN_IDS)
def test_landmarks_and_scores_match_ibugs(name, backend, ours, theirs):
    predictions = ours(name, backend)[2]
    for photo in PHOTOS:
        _, heatmaps, landmarks, scores = theirs(name)[photo]
        ours_photo = predictions[photo]
        assert ours_photo.landmarks.shape == (1, 68, 2)
        assert np.abs(ours_photo.landmarks[0] - landmarks).max() <= PIXEL_TOLERANCE, photo
        # A score is a heatmap's peak value: equal up to the network's rounding.
        assert np.allclose(ours_photo.scores[0], scores, rtol=0,
                           atol=HEATMAP_TOLERANCE * np.abs(heatmaps).max()), photo


class _FixedHeatmaps:
    """Stands in for ibug's network: keeps the crops it is given, returns set heatmaps."""

    def __init__(self, heatmaps):
        self.heatmaps, self.crops = heatmaps, None

    def __call__(self, crops):
        self.crops = crops.numpy().copy()
        return torch.from_numpy(self.heatmaps), None, ()


def _awkward_heatmaps(count, seed=3):
    """Noise with some negative values around one bright peak per map, so that the disc's
    radius, the clamp at zero and the exponent each move the centroid."""
    rng = np.random.default_rng(seed)
    maps = rng.uniform(-0.2, 1.0, (count, 68, 64, 64)).astype(np.float32)
    faces, landmarks = np.indices((count, 68))
    maps[faces, landmarks, rng.integers(0, 64, (count, 68)), rng.integers(0, 64, (count, 68))] = 3.0
    return maps


@pytest.mark.parametrize("name", ibug_reference.CONFIGURATIONS)
def test_crops_and_points_are_ibugs_on_awkward_boxes(name, weights):
    """Their predictor's own crop, decoding and mapping back, its network replaced by set
    heatmaps: windows over every edge of the image, several faces at once (they pad the
    image once for all of them) and window corners on np.round's halves."""
    predictor = ibug_reference.predictor(name, weights(name)[0])
    image = read_image(_photo("breakingbad"))
    boxes = np.array([annotated_box("breakingbad"), HALVES_BOX, [1800.0, 950, 2010, 1150], [-80.0, -60, 90, 120]])
    heatmaps = _awkward_heatmaps(len(boxes))
    predictor.net = stub = _FixedHeatmaps(heatmaps)
    landmarks, scores = predictor(image, boxes)

    arch = architecture("ibug-" + name)
    crops, frames = crop_faces(image, boxes, arch.crop)
    assert np.array_equal(crops, stub.crops)
    points, ours_scores = decode(heatmaps, arch.decode)
    assert np.abs(frames.to_image(points) - landmarks).max() <= 1e-3
    assert np.array_equal(ours_scores, scores)
