"""A FAN whose heatmaps have real peaks at known places, for tests of what lower precisions do
to landmarks: random weights give flat heatmaps, where a landmark difference means nothing.

The authors' FAN (random body, PyTorch) is kept as it is, except its last 1x1 convolution,
which is fitted by least squares so that it turns the body's features into Gaussians at the
annotated points of the shared photos, mirrored and with shifted boxes (the faces the tests
then measure on): 8 faces. A readout of random features is a weak landmark detector: on
FAN-2 half the points peak within 1.6 heatmap pixels of their target, with peaks near 0.2, and its peaks are far more fragile than a trained network's (bf16 moves them by
about 0.4 heatmap pixels on average). Tests set the gate's limit for it accordingly. Features come from the authors' own module, through a forward hook: nothing
of this project's network code takes part in making the fixture.
"""
import json
import os
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch

import checkpoints
from conftest import SHARED, annotated_box
from face_alignment.pipeline.crop import crop_faces
from face_alignment.pipeline.flip import MIRRORED_LANDMARKS
from face_alignment.registry import FAN
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.loading import architecture_attrs

PHOTOS = ("einstein", "breakingbad")
SIGMA = 1.5  # heatmap pixels
# Box shifts, as shares of the box's width and height: the faces land at other crop positions.
SHIFTS = ((0.0, 0.0), (0.06, 0.04))
HEATMAP = 64


def annotated_points(name: str) -> np.ndarray:
    with open(os.path.join(SHARED, "data", "faces", name + ".pts")) as f:
        return np.array(f.read().split("{")[1].split("}")[0].split(), dtype=np.float64).reshape(68, 2) - 1


def photo_set(folder: str) -> Tuple[str, Dict[str, List[List[float]]], Dict[str, np.ndarray]]:
    """Write the photos and their mirror images to ``folder``; return the boxes JSON path
    (each image with one box per shift) and the annotated points of every image (68, 2)."""
    os.makedirs(folder, exist_ok=True)
    boxes, points = {}, {}
    for name in PHOTOS:
        image = cv2.imread(os.path.join(SHARED, "data", "faces", name + ".jpg"))
        truth, box = annotated_points(name), annotated_box(name)
        width = image.shape[1]
        mirrored_truth = truth[MIRRORED_LANDMARKS].copy()
        mirrored_truth[:, 0] = width - 1 - mirrored_truth[:, 0]
        mirrored_box = np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]])
        for file_name, pixels, face, b in ((f"{name}.png", image, truth, box),
                                            (f"{name}_mirrored.png", image[:, ::-1], mirrored_truth, mirrored_box)):
            cv2.imwrite(os.path.join(folder, file_name), np.ascontiguousarray(pixels))
            w, h = b[2] - b[0], b[3] - b[1]
            boxes[file_name] = [[b[0] + dx * w, b[1] + dy * h, b[2] + dx * w, b[3] + dy * h] for dx, dy in SHIFTS]
            points[file_name] = face
    boxes_path = os.path.join(folder, "..", os.path.basename(folder) + "_boxes.json")
    with open(boxes_path, "w") as f:
        json.dump(boxes, f)
    return os.path.abspath(boxes_path), boxes, points


def training_crops(folder: str, boxes: Dict, points: Dict, convention: str):
    """Crops (N, 3, 256, 256) and target points in heatmap coordinates (N, 68, 2)."""
    crops, targets = [], []
    for file_name in sorted(boxes):
        image = cv2.cvtColor(cv2.imread(os.path.join(folder, file_name)), cv2.COLOR_BGR2RGB)
        face_crops, frames = crop_faces(image, np.array(boxes[file_name]), convention)
        # to_image is affine per face: invert it from two probes.
        origin = frames.to_image(np.zeros((len(frames), 1, 2)))
        step = frames.to_image(np.ones((len(frames), 1, 2))) - origin
        crops.append(face_crops)
        targets.append((points[file_name][None] - origin) / step)
    return np.concatenate(crops), np.concatenate(targets)


def gaussians(points_hm: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """(N, 68, 64, 64) Gaussians, peak 1, centred on heatmap points (pixel centres at +0.5)."""
    grid = np.arange(HEATMAP) + 0.5
    dx = grid[None, None, None, :] - points_hm[..., 0, None, None]
    dy = grid[None, None, :, None] - points_hm[..., 1, None, None]
    return np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2)).astype(np.float32)


def fit_last_conv(model, crops: np.ndarray, targets_hm: np.ndarray, ridge: float = 1e-3,
                  peak_weight: float = 10.0) -> None:
    """Set the authors' model's last 1x1 convolution to the least-squares fit of Gaussians at
    ``targets_hm`` from the features it receives. Pixels near a landmark weigh up to
    ``1 + peak_weight`` times more than the background: the peaks come out higher."""
    head = getattr(model, f"l{model.num_modules - 1}")
    seen = []
    hook = head.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach().numpy()))
    # One thread: PyTorch's two threads wait for each other at every layer on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.no_grad():
        for crop in crops:
            model(torch.from_numpy(crop[None]))
    hook.remove()
    torch.set_num_threads(threads)
    features = np.concatenate(seen).transpose(0, 2, 3, 1).reshape(-1, head.in_channels).astype(np.float64)
    design = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    wanted = gaussians(targets_hm).transpose(0, 2, 3, 1).reshape(-1, head.out_channels).astype(np.float64)
    weighted = design * (1.0 + peak_weight * wanted.max(axis=1))[:, None]
    gram = weighted.T @ design
    gram += ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    solution = np.linalg.solve(gram, weighted.T @ wanted)  # (C + 1, 68)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(solution[:-1].T.reshape(head.weight.shape).astype(np.float32)))
        head.bias.copy_(torch.from_numpy(solution[-1].astype(np.float32)))


def peaked_fan_h5(path: str, arch, photos_folder: str, seed: int = 11):
    """Write a peaked FAN of ``arch`` to ``path``; return (boxes JSON, crops, target points)."""
    boxes_path, boxes, points = photo_set(photos_folder)
    crops, targets = training_crops(photos_folder, boxes, points, arch.crop)
    model = checkpoints.authors_fan(arch.num_modules, arch.pooling, seed=seed)
    fit_last_conv(model, crops, targets)
    write_h5(path, checkpoints.nnabla_params(model, FAN, arch.num_modules), architecture_attrs(arch))
    return boxes_path, crops, targets
