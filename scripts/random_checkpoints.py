"""Write RANDOM weights as the checkpoints face-alignment downloads, to try its API offline.

    .venv/bin/python scripts/random_checkpoints.py            # into $TORCH_HOME/hub/checkpoints

Writes, under the published names and in the authors' formats: 2DFAN4-11f355bf06.pth.tar and
3DFAN4-7835d9f11d.pth.tar (state dicts in torch's pre-zip format), depth-2a464da4ea.pth.tar
(a training checkpoint of a DataParallel ResNetDepth) and s3fd-619a316812.pth (a state dict).
face-alignment (theirs or ours) then runs with no download; ours warns that their sha256 is
not the published one. Landmarks from them mean nothing. The random S3FD finds no face (its
face scores are made ~0, rather than thousands of random boxes): give ``detected_faces``,
or detect with another detector (e.g. ``face_detector="blazeface"``, MediaPipe's trained
short-range model, for faces near the camera).
Needs torch, as face-alignment does.
"""
import os
import sys
from collections import OrderedDict

import numpy as np

from face_alignment.cli_support import ArgumentParser, command_line
from face_alignment.detection.registry import DETECTORS
from face_alignment.detection.torch_weights import graph_parameters
from face_alignment.errors import FaceAlignmentError
from face_alignment.hub import torch_checkpoints_dir
from face_alignment.nets.sfd import s3fd
from face_alignment.registry import FAN, RESNET_DEPTH, known_weights
from face_alignment.weights.layout import torch_key, to_torch
from random_weights import random_parameters  # this folder's sibling

FACE_LOGIT = 10.0  # S3FD's face logits this far below the background's: face scores ~2e-9


def authors_state(kind: str, num_modules: int, seed: int) -> "OrderedDict[str, np.ndarray]":
    """Random FAN or ResNetDepth weights under the authors' state-dict keys and layouts."""
    params = random_parameters(kind, num_modules, seed)
    return OrderedDict((torch_key(name), to_torch(name, value)) for name, value in params.items())


def s3fd_state(seed: int) -> "OrderedDict[str, np.ndarray]":
    """Random S3FD weights under face-alignment's keys, whose face scores are ~0."""
    rng = np.random.RandomState(seed)
    state = OrderedDict()
    for name, shape in graph_parameters(s3fd).items():
        layer, leaf = name.rsplit("/", 2)[0], name.rsplit("/", 1)[1]
        if leaf == "scale":  # an L2Norm's per-channel weight
            state[f"{layer}.weight"] = np.full(int(np.prod(shape)), 10.0, np.float32)
            continue
        if leaf == "W":
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
            value = value * 0 if "mbox_conf" in layer else value
        else:
            value = np.zeros(shape)
            if "mbox_conf" in layer:  # the last channel is the face's
                value[:] = FACE_LOGIT
                value[-1] = -FACE_LOGIT
        state[f"{layer}.{'weight' if leaf == 'W' else 'bias'}"] = value.astype(np.float32)
    return state


def write(state, path: str, wrap_depth: bool = False) -> None:
    import torch

    tensors = OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in state.items())
    if wrap_depth:  # as the published depth file: a DataParallel training checkpoint
        tensors = {"state_dict": OrderedDict(("module." + k, v) for k, v in tensors.items())}
    torch.save(tensors, path, _use_new_zipfile_serialization=False)
    print(f"{path}: RANDOM weights")


@command_line
def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", default=None, metavar="DIR",
                   help="where to write them (default: $TORCH_HOME/hub/checkpoints, where face-alignment looks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace files of these names")
    args = p.parse_args(argv)
    folder = args.folder or torch_checkpoints_dir()
    files = {known_weights(name).file_name: (authors_state(kind, 4, args.seed + i), name == "depth")
             for i, (name, kind) in enumerate((("2DFAN4", FAN), ("3DFAN4", FAN), ("depth", RESNET_DEPTH)))}
    files[DETECTORS["sfd"].weights.file_name] = (s3fd_state(args.seed), False)
    existing = [n for n in files if os.path.exists(os.path.join(folder, n))]
    if existing and not args.force:
        raise FaceAlignmentError(f"{os.path.join(folder, existing[0])}: exists (a published file?); pass --force "
                                 "to replace it with random weights, or choose another --folder")
    os.makedirs(folder, exist_ok=True)
    for file_name, (state, wrapped) in files.items():
        write(state, os.path.join(folder, file_name), wrapped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
