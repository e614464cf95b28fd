"""What the engine tests (ONNX Runtime, OpenVINO) share: a random FAN-1 as a weight file in a
folder of its own with an export cache of its own, a batch of crops, and NNabla's heatmaps of
them as the reference. A test module takes them with ``from engine_fixtures import ...``."""
import numpy as np
import pytest

import checkpoints
from conftest import fresh_home
from face_alignment.backends import NNablaNetwork, onnx_cache
from face_alignment.registry import FAN, Architecture
from face_alignment.weights.loading import architecture_attrs
from weight_files import Net, link

FAN1 = Architecture("test-fan1-avg", FAN, 1, "avg")
FAN1_NET = Net("fan", 1, "avg", seed=31)


@pytest.fixture(scope="module")
def fan1_params(weight_files):
    return checkpoints.nnabla_params(weight_files.model(FAN1_NET), FAN, 1)


@pytest.fixture
def isolated_fan1_h5(weight_files, tmp_path, monkeypatch):
    """A FAN-1 weight file in its own folder (a hard link: the file is shared, never change
    it), and a FACE_ALIGNMENT_HOME (export cache) that is empty and unbounded. Not the
    session's ``fan1_h5``: that one's exports are in the session's cache."""
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", fresh_home(tmp_path / "home"))
    monkeypatch.delenv(onnx_cache.SIZE_VARIABLE, raising=False)
    folder = tmp_path / "weights"
    folder.mkdir()
    return link(weight_files.h5(FAN1_NET, architecture_attrs(FAN1), "fan1.h5"), folder)


@pytest.fixture(scope="module")
def crops():
    return np.random.RandomState(5).rand(3, 3, 256, 256).astype(np.float32)


@pytest.fixture(scope="module")
def fan1_reference(fan1_params, crops):
    return NNablaNetwork(FAN1, fan1_params)(crops)
