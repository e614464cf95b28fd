"""A model trained by ``face_alignment.train`` runs where published weights run: ``FaceAlignment``
(NNabla and its ONNX export on ONNX Runtime), reached through the face-alignment API, and gives
what ibug's own FANPredictor gives for the same trained weights on the same photos and boxes.

The run is tiny (one hourglass of depth 2, 64 features, at the pipeline's 256 px; one step
from random weights, augmentation on), so its landmarks mean nothing: what is tested is that
the trained file, its architecture and its BatchNorm statistics included, travels intact."""
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import ibug_reference
from conftest import SHARED, annotated_box, run_tool
from face_alignment.pipeline.image import read_image

PHOTOS = ("breakingbad", "einstein")
PIXEL_TOLERANCE = 0.01  # as tests/test_ibug_parity.py
IBUG_CONFIG = dict(crop_ratio=0.55, input_size=256, num_modules=1, hg_num_features=64, hg_depth=2,
                   use_avg_pool=False, use_instance_norm=False, stem_conv_kernel_size=7, stem_conv_stride=2,
                   stem_pool_kernel_size=2, num_landmarks=68)


def _photo(name):
    return os.path.join(SHARED, "data", "faces", name + ".jpg")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(our RUN/last.h5, the same weights as ibug's state dict .pth)."""
    from face_alignment.weights import load_weights
    from face_alignment.weights.layout import to_torch, torch_key

    run = tmp_path_factory.mktemp("trained") / "RUN"
    done = run_tool("-m face_alignment.train", "--data", os.path.join(SHARED, "data", "faces"), "--arch",
                    "ibug-2dfan2", "--modules", 1, "--hg-features", 64, "--hg-depth", 2, "--batch-size", 1,
                    "--steps", 1, "--output", run, "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    weights = load_weights(str(run / "last.h5"))
    # ibug's FAN of that configuration: its state dict's names and shapes are what ours must fill.
    net = ibug_reference.fan_module().FAN(config=SimpleNamespace(**IBUG_CONFIG))
    state = net.state_dict()
    filled = {torch_key(name): torch.from_numpy(np.ascontiguousarray(to_torch(name, value)))
              for name, value in weights.params.items()}
    assert set(filled) == {k for k in state if not k.endswith("num_batches_tracked")}
    for key, value in filled.items():
        assert tuple(value.shape) == tuple(state[key].shape), key
    state.update(filled)
    pth = run / "last-as-ibug.pth"
    torch.save(state, pth)
    return str(run / "last.h5"), str(pth)


@pytest.fixture(scope="module")
def ibugs(trained):
    """photo -> (landmarks, scores) from ibug's FANPredictor on the trained weights."""
    predictor_class = ibug_reference.predictor_module().FANPredictor
    predictor = predictor_class(device="cpu", model=SimpleNamespace(weights=trained[1],
                                                                    config=SimpleNamespace(**IBUG_CONFIG)),
                                config=predictor_class.create_config(use_jit=False))
    out = {}
    for photo in PHOTOS:
        landmarks, scores = predictor(read_image(_photo(photo)), annotated_box(photo)[None], rgb=True)
        out[photo] = landmarks[0], scores[0]
    return out


@pytest.mark.parametrize("backend", ["nnabla", "onnxruntime"])
def test_a_trained_model_gives_ibugs_landmarks_through_the_face_alignment_api(trained, ibugs, backend):
    import face_alignment
    from face_alignment import api

    fa = face_alignment.FaceAlignment(trained[0], backend=backend, context="cpu")  # their class, given a path
    assert type(fa) is api.FaceAlignment
    assert fa.decode == "centroid"  # an ibug architecture: their decoding, their crop
    for photo in PHOTOS:
        prediction = fa.get_landmarks_from_image(_photo(photo), annotated_box(photo)[None])
        theirs, their_scores = ibugs[photo]
        assert prediction.landmarks.shape == (1, 68, 2)
        assert np.abs(prediction.landmarks[0] - theirs).max() <= PIXEL_TOLERANCE, photo
        # A score is a heatmap's peak: equal up to the network's rounding.
        np.testing.assert_allclose(prediction.scores[0], their_scores, rtol=0, atol=1e-5 * np.abs(their_scores).max())


def test_a_model_of_another_input_size_is_refused_in_one_line(tmp_path):
    """The pipeline crops 256 px and reads 64-px heatmaps: a 128-px model is named, not fed
    256-px crops (NNabla would run it, wrongly; ONNX Runtime would fail on the shape)."""
    import dataclasses

    from conftest import assert_one_line_error
    from face_alignment.registry import ARCHITECTURES
    from face_alignment.training.graph import new_parameters
    from face_alignment.training.loop import write_weights

    arch = dataclasses.replace(ARCHITECTURES["ibug-2dfan2"], name="small-input", num_modules=1, hg_features=16,
                               hg_depth=1, input_size=128)
    path = tmp_path / "small-input.h5"
    write_weights(str(path), arch, new_parameters(arch, 0))
    out = tmp_path / "out.jpg"
    done = run_tool("model_inference.py", "--model", path, "--test-image", _photo("einstein"), "--output", out,
                    "--backend", "nnabla", "--context", "cpu")
    assert_one_line_error(done, str(path), "128")
    assert not out.exists()
