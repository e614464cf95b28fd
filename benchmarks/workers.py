"""Measurements that run inside one process, each meant to be called in a fresh child process.

A fresh process per measurement keeps the two implementations apart: ours never imports torch
(as for a user of the toolkit) and torch's thread pool is never awake while NNabla runs.
Timings are returned as lists of seconds, one per timed run, after ``warmup`` untimed runs.
"""
import dataclasses
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

TORCH_THREADS = 2


def _timed(action: Callable[[], object], warmup: int, runs: int) -> List[float]:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def _sample_batch(batch_size: int) -> np.ndarray:
    # The network's cost does not depend on the pixel values; a fixed input keeps runs alike.
    return np.random.RandomState(0).rand(batch_size, 3, 256, 256).astype(np.float32)


# ----------------------------------------------------------------------------- set-up


def _convert_fan(source: str, destination: str, arch_name: str, num_modules: int) -> None:
    """Our .h5 of a random authors' FAN. FAN-4 goes through the converter users run; the
    registry knows no smaller authors' FAN, so a small one (for --quick) is written the same
    way with the architecture's module count changed."""
    from face_alignment.weights.convert import convert_checkpoint

    if num_modules == 4:
        convert_checkpoint(source, destination)
        return
    from face_alignment.registry import ARCHITECTURES, FAN
    from face_alignment.weights.convert import read_torch_checkpoint, torch_to_nnabla
    from face_alignment.weights.h5 import write_h5
    from face_alignment.weights.loading import architecture_attrs

    arch = dataclasses.replace(ARCHITECTURES[arch_name], name=f"{arch_name[:-1]}{num_modules}",
                               num_modules=num_modules)
    state, _ = read_torch_checkpoint(source)
    write_h5(destination, torch_to_nnabla(state, FAN, num_modules, source), architecture_attrs(arch))


def prepare_models(folder: str, num_modules: int, with_3d: bool) -> Dict[str, object]:
    """Random authors' 2D-FAN (and 3D-FAN, ResNetDepth) saved in their checkpoint formats, our
    .h5 conversions of them, and what the toolkit offers: its backends and CLI flags."""
    import checkpoints  # tests/checkpoints.py

    os.makedirs(folder, exist_ok=True)
    # The published names, which tell the converter the architecture of FAN-4.
    paths = {
        "fan2d_checkpoint": os.path.join(folder, f"2DFAN{num_modules}-11f355bf06.pth.tar"),
        "fan3d_checkpoint": os.path.join(folder, f"3DFAN{num_modules}-7835d9f11d.pth.tar"),
        "depth_checkpoint": os.path.join(folder, "depth-2a464da4ea.pth.tar"),
        "fan2d_h5": os.path.join(folder, "fan2d.h5"),
        "fan3d_h5": os.path.join(folder, "fan3d.h5"),
        "depth_h5": os.path.join(folder, "depth.h5"),
    }
    checkpoints.save_legacy(checkpoints.authors_fan(num_modules, "avg", seed=20), paths["fan2d_checkpoint"])
    _convert_fan(paths["fan2d_checkpoint"], paths["fan2d_h5"], "2DFAN4", num_modules)
    if with_3d:
        from face_alignment.weights.convert import convert_checkpoint

        checkpoints.save_legacy(checkpoints.authors_fan(num_modules, "avg", seed=30), paths["fan3d_checkpoint"])
        checkpoints.save_depth_checkpoint(checkpoints.authors_depth(seed=40), paths["depth_checkpoint"])
        _convert_fan(paths["fan3d_checkpoint"], paths["fan3d_h5"], "3DFAN4", num_modules)
        convert_checkpoint(paths["depth_checkpoint"], paths["depth_h5"])

    from face_alignment.backends import available_backends

    return dict(paths, backends=list(available_backends()))


# ----------------------------------------------------------------------------- ours


def _our_aligner(fan_h5: str, depth_h5: Optional[str], backend: str):
    from face_alignment.api import FaceAlignment

    return FaceAlignment(fan_h5, depth_h5, backend=backend)


def our_bare_forward(fan_h5: str, backend: str, batch_sizes: Sequence[int], warmup: int,
                     runs: int) -> Dict[int, List[float]]:
    """Seconds per batch of ``fa.fan``, per batch size."""
    aligner = _our_aligner(fan_h5, None, backend)
    return {size: _timed(lambda batch=_sample_batch(size): aligner.fan(batch), warmup, runs)
            for size in batch_sizes}


def our_steady_state(fan_h5: str, depth_h5: Optional[str], backend: str, images: Sequence[str],
                     boxes: Sequence[Sequence[Sequence[float]]], warmup: int, runs: int) -> List[float]:
    """Seconds per pass of ``get_landmarks_from_images`` over the decoded images."""
    from face_alignment.pipeline.image import read_image

    aligner = _our_aligner(fan_h5, depth_h5, backend)
    pixels = [read_image(p) for p in images]
    face_boxes = [np.asarray(b, dtype=np.float64) for b in boxes]
    dims = 3 if depth_h5 else 2

    def one_pass():
        results = list(aligner.get_landmarks_from_images(pixels, boxes=face_boxes))
        assert len(results) == len(pixels) and all(r.landmarks.shape == (1, 68, dims) for r in results)

    return _timed(one_pass, warmup, runs)


# ----------------------------------------------------------------------------- the authors'


def authors_bare_forward(fan_checkpoint: str, num_modules: int, batch_sizes: Sequence[int], warmup: int,
                         runs: int) -> Dict[int, List[float]]:
    """Seconds per batch of their FAN in PyTorch eager mode, ``torch.set_num_threads(2)``."""
    import torch

    from authors_pipeline import AuthorsPipeline

    fan = AuthorsPipeline(fan_checkpoint, None, num_modules, TORCH_THREADS).fan

    def forward(batch):
        with torch.no_grad():
            return fan(batch)[-1].numpy()

    return {size: _timed(lambda batch=torch.from_numpy(_sample_batch(size)): forward(batch), warmup, runs)
            for size in batch_sizes}


def authors_steady_state(fan_checkpoint: str, depth_checkpoint: Optional[str], num_modules: int,
                         images: Sequence[str], boxes: Sequence[Sequence[Sequence[float]]], warmup: int,
                         runs: int) -> List[float]:
    """Seconds per pass of their get_landmarks_from_image steps over the decoded images."""
    from authors_pipeline import AuthorsPipeline

    pipeline = AuthorsPipeline(fan_checkpoint, depth_checkpoint, num_modules, TORCH_THREADS)
    pixels = [pipeline.read(p) for p in images]
    dims = 3 if depth_checkpoint else 2

    def one_pass():
        results = [pipeline.landmarks(image, b) for image, b in zip(pixels, boxes)]
        assert all(len(r) == 1 and r[0][0].shape == (68, dims) for r in results)

    return _timed(one_pass, warmup, runs)


# ----------------------------------------------------------------------------- both sections, one process

Boxes = Sequence[Sequence[Sequence[float]]]


def ours_in_process(models: Dict, backend: str, batch_sizes: Sequence[int], dims: Sequence[str],
                    images: Sequence[str], boxes: Boxes, warmup: int, runs: int) -> Tuple[Dict, Dict]:
    """(a) and (b) for one of our backends: ({batch size: seconds}, {"2D"/"3D": seconds per pass})."""
    forward = our_bare_forward(models["fan2d_h5"], backend, batch_sizes, warmup, runs)
    steady = {d: our_steady_state(models["fan3d_h5" if d == "3D" else "fan2d_h5"],
                                  models["depth_h5"] if d == "3D" else None, backend, images, boxes, warmup, runs)
              for d in dims}
    return {str(size): times for size, times in forward.items()}, steady


def authors_in_process(models: Dict, num_modules: int, batch_sizes: Sequence[int], dims: Sequence[str],
                       images: Sequence[str], boxes: Boxes, warmup: int, runs: int) -> Tuple[Dict, Dict]:
    """(a) and (b) for the authors' code, in one process so that numba compiles once."""
    forward = authors_bare_forward(models["fan2d_checkpoint"], num_modules, batch_sizes, warmup, runs)
    steady = {d: authors_steady_state(models["fan3d_checkpoint" if d == "3D" else "fan2d_checkpoint"],
                                      models["depth_checkpoint"] if d == "3D" else None, num_modules, images,
                                      boxes, warmup, runs)
              for d in dims}
    return {str(size): times for size, times in forward.items()}, steady
