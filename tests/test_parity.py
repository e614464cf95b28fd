"""On identical random weights, our NNabla graphs give the authors' PyTorch numbers."""
import numpy as np
import pytest

import checkpoints
from face_alignment.backends import NNablaNetwork
from face_alignment.registry import ARCHITECTURES, FAN, RESNET_DEPTH, Architecture

TOLERANCE = checkpoints.NETWORK_TOLERANCE


@pytest.mark.parametrize("num_modules, pooling", [(1, "avg"), (1, "max"), (2, "avg"), (2, "max"), (4, "max")])
def test_fan_heatmaps_match_authors(num_modules, pooling):
    model = checkpoints.authors_fan(num_modules, pooling, seed=num_modules)
    arch = Architecture(f"test-fan{num_modules}-{pooling}", FAN, num_modules, pooling)
    net = NNablaNetwork(arch, checkpoints.nnabla_params(model, FAN, num_modules))
    crops = np.random.RandomState(num_modules).rand(2, 3, 256, 256).astype(np.float32)
    reference = checkpoints.torch_forward(model, crops)
    ours = net(crops)
    assert ours.shape == reference.shape == (2, 68, 64, 64)
    assert checkpoints.relative_error(ours, reference) <= TOLERANCE


def test_fan4_heatmaps_match_authors_and_graph_is_reused_across_batch_sizes(fan4):
    net = NNablaNetwork(ARCHITECTURES["2DFAN4"], checkpoints.nnabla_params(fan4, FAN, 4))
    crops = np.random.RandomState(0).rand(3, 3, 256, 256).astype(np.float32)
    reference = checkpoints.torch_forward(fan4, crops)
    batch = net(crops)
    single = net(crops[1:2])
    again = net(crops)
    assert checkpoints.relative_error(batch, reference) <= TOLERANCE
    assert checkpoints.relative_error(single, reference[1:2]) <= TOLERANCE
    assert np.array_equal(batch, again)
    assert sorted(shape[0] for shape in net.runner._graphs) == [1, 3]  # one graph per batch size, built once


def test_resnet_depth_matches_authors(depth_net):
    net = NNablaNetwork(ARCHITECTURES["ResNetDepth"], checkpoints.nnabla_params(depth_net, RESNET_DEPTH))
    inputs = np.random.RandomState(1).rand(2, 71, 256, 256).astype(np.float32)
    reference = checkpoints.torch_forward(depth_net, inputs)
    ours = net(inputs)
    assert ours.shape == reference.shape == (2, 68)
    assert checkpoints.relative_error(ours, reference) <= TOLERANCE
