"""Random weights for the authors' networks, written in the real on-disk checkpoint formats.

No trained weights can be downloaded here, so every test runs on random ones. BatchNorm gets
statistics away from their defaults so that a mistake in any of its four tensors shows.
"""
import numpy as np
import torch

import authors_reference

# Max abs difference / max abs reference allowed between our networks and the authors' on
# the same weights. Measured agreement is about 1e-6; a BatchNorm eps of 5e-5 instead of
# 1e-5 moves FAN's output by more than 1e-5.
NETWORK_TOLERANCE = 1e-5


def _randomise_batch_norms(model, seed):
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = 0.5 + torch.rand(n, generator=g)
            module.bias.data = 0.2 * torch.randn(n, generator=g)
            module.running_mean.data = 0.2 * torch.randn(n, generator=g)
            module.running_var.data = 0.5 + torch.rand(n, generator=g)
            module.num_batches_tracked.fill_(1000)
    return model.eval()


def authors_fan(num_modules=4, pooling="avg", seed=0):
    torch.manual_seed(seed)
    model = authors_reference.fan_module(pooling).FAN(num_modules)
    return _randomise_batch_norms(model, seed + 1)


def ibug_fan(name="2dfan2", seed=0):
    """ibug's FAN in configuration ``name`` (2dfan2, 2dfan2_alt, 2dfan4), built by their fan.py."""
    import ibug_reference

    torch.manual_seed(seed)
    return _randomise_batch_norms(ibug_reference.fan(name), seed + 1)


def authors_depth(seed=0):
    torch.manual_seed(seed)
    return _randomise_batch_norms(authors_reference.resnet_module().ResNetDepth(), seed + 1)


def save_legacy(model, path):
    """``2DFAN4-….pth.tar``: a state dict saved in torch's pre-zip format."""
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)


def save_depth_checkpoint(model, path):
    """``depth-….pth.tar``: a training checkpoint whose ``state_dict`` came from DataParallel."""
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 40, "arch": "resnet_depth", "best_prec1": 0.0, "state_dict": state}, path,
               _use_new_zipfile_serialization=False)


def save_torchscript(model, path, channels=3):
    """``2DFAN4-….zip``: a traced TorchScript archive, as face-alignment 1.3.x shipped."""
    example = torch.rand(1, channels, 256, 256)
    with torch.no_grad():
        torch.jit.trace(model, example, check_trace=False).save(path)


def save_plain(model, path):
    """ibug's ``2dfan2.pth``: a plain state dict."""
    torch.save(model.state_dict(), path)


def nnabla_params(model, kind, num_modules=None):
    """The model's weights as NNabla parameters, mapped by the converter users run."""
    from face_alignment.weights.convert import torch_to_nnabla

    return torch_to_nnabla({k: v.numpy() for k, v in model.state_dict().items()}, kind, num_modules, "test")


def torch_forward(model, batch):
    with torch.no_grad():
        out = model(torch.from_numpy(batch))
    return (out[-1] if isinstance(out, (list, tuple)) else out).numpy()


def relative_error(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))
