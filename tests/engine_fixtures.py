"""What the engine tests (ONNX Runtime, OpenVINO) share: a random FAN-1 as a weight file in a
folder of its own, a batch of crops, and NNabla's heatmaps of them as the reference. A test
module takes them with ``from engine_fixtures import ...``."""
import numpy as np
import pytest

import checkpoints
from conftest import fresh_home
from face_alignment.backends import NNablaNetwork, onnx_cache
from face_alignment.registry import FAN, Architecture
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.loading import architecture_attrs

FAN1 = Architecture("test-fan1-avg", FAN, 1, "avg")


@pytest.fixture(scope="module")
def fan1_params():
    return checkpoints.nnabla_params(checkpoints.authors_fan(1, "avg", seed=31), FAN, 1)


@pytest.fixture
def fan1_h5(fan1_params, tmp_path, monkeypatch):
    """A FAN-1 weight file in its own folder, and a FACE_ALIGNMENT_HOME (export cache) that is
    empty and unbounded."""
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", fresh_home(tmp_path / "home"))
    monkeypatch.delenv(onnx_cache.SIZE_VARIABLE, raising=False)
    folder = tmp_path / "weights"
    folder.mkdir()
    path = folder / "fan1.h5"
    write_h5(str(path), fan1_params, architecture_attrs(FAN1))
    return str(path)


@pytest.fixture(scope="module")
def crops():
    return np.random.RandomState(5).rand(3, 3, 256, 256).astype(np.float32)


@pytest.fixture(scope="module")
def fan1_reference(fan1_params, crops):
    return NNablaNetwork(FAN1, fan1_params)(crops)
