"""Augmentation: ibug's experiments' choice by default, each part switched by a DataConfig field.

Geometry (a random shift, scale and rotation, as albumentations' ``ShiftScaleRotate`` draws
them, and the left-right flip) is composed with the crop into one affine warp, so each sample
is resampled once; the appearance changes (blur, colour jitter, JPEG compression, dropout) are
albumentations transforms on the finished crop. The geometry draws use Python's ``random``,
which the caller seeds per sample; albumentations (1.4.24 on) draws from generators of its
own, which ``apply_content`` seeds from that same ``random``.
"""
import os
import random
from typing import Optional, Tuple

import numpy as np

# albumentations asks PyPI for a newer version when imported unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations  # noqa: E402


def draw_geometry(config) -> Optional[Tuple[float, float, float, float]]:
    """(angle in degrees, scale, dx, dy as fractions of the padded crop's side), or None when
    the sample keeps its geometry (augmentation off, or not drawn this time)."""
    if not (config.augment and config.shift_scale_rotate) or random.random() >= config.shift_scale_rotate_p:
        return None
    angle = random.uniform(-config.rotate_limit, config.rotate_limit)
    scale = random.uniform(1.0 - config.scale_limit, 1.0 + config.scale_limit)
    dx = random.uniform(-config.shift_limit, config.shift_limit)
    dy = random.uniform(-config.shift_limit, config.shift_limit)
    return angle, scale, dx, dy


def geometry_matrix(geometry, canvas: float) -> np.ndarray:
    """3x3 map of continuous coordinates on a ``canvas``-sized square: rotation and scale
    about its centre, then the shift."""
    angle, scale, dx, dy = geometry
    radians = np.deg2rad(angle)
    # Counter-clockwise on screen (y down), as cv2.getRotationMatrix2D turns.
    cos, sin = scale * np.cos(radians), scale * np.sin(radians)
    centre = canvas / 2.0
    linear = np.array([[cos, sin], [-sin, cos]])
    offset = np.array([centre, centre]) - linear @ [centre, centre] + np.array([dx, dy]) * canvas
    return np.vstack((np.hstack((linear, offset[:, None])), [0.0, 0.0, 1.0]))


def content_transform(config) -> Optional[albumentations.Compose]:
    """The appearance changes the config switches on, or None."""
    if not config.augment:
        return None
    steps = []
    if config.blur:
        steps.append(albumentations.Blur())
    if config.color_jitter:
        steps.append(albumentations.ColorJitter(brightness=config.color_jitter, contrast=config.color_jitter,
                                                saturation=config.color_jitter))
    if config.jpeg:
        steps.append(albumentations.ImageCompression(quality_range=(config.jpeg_quality_min, 100)))
    if config.coarse_dropout:
        steps.append(albumentations.CoarseDropout(num_holes_range=(1, config.coarse_dropout_holes)))
    return albumentations.Compose(steps) if steps else None


def apply_content(transform: albumentations.Compose, crop: np.ndarray) -> np.ndarray:
    """``transform`` on ``crop``, its draws seeded from Python's ``random``: a Compose seeds
    its own generators from the OS when built, so without this a sample would depend on the
    process and on how many samples that process made before."""
    seed = random.getrandbits(32)
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return transform(image=crop)["image"]
