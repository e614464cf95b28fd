"""A folder of annotated images, 300W style: each image has its ``.pts`` files beside it.

An image ``name.jpg`` is annotated by ``name.pts`` and/or ``name_1.pts``, ``name_2.pts``, …
(300W gives one file per face in images with several people). Subfolders are searched too, as
300W ships its sets in folders; images are identified by file name, which must therefore be
unique among annotated images. Images without annotations are ignored.
"""
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from ..errors import AnnotationError
from .pts import read_pts

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True, eq=False)  # array fields: no element-wise ==
class AnnotatedImage:
    name: str  # file name, the key that predictions are matched by
    path: str
    annotation_paths: Tuple[str, ...]  # one .pts per face
    faces: Tuple[np.ndarray, ...]  # (68, 2) 0-based landmarks per face, same order


def _annotation_files(stem: str, pts_files: List[str], image_stems: set) -> List[str]:
    """``stem.pts`` then ``stem_1.pts``, ``stem_2.pts``… in numeric order. A ``stem_N.pts``
    that is the exact name of another image's annotation belongs to that image instead."""
    numbered = re.compile(re.escape(stem) + r"_(\d+)\.pts\Z")
    indexed = []
    for file in pts_files:
        match = numbered.match(file)
        if match and file[:-len(".pts")] not in image_stems:
            indexed.append((int(match.group(1)), file))
    plain = [stem + ".pts"] if stem + ".pts" in pts_files else []
    return plain + [file for _, file in sorted(indexed)]


def load_ground_truth(folder: str) -> Dict[str, AnnotatedImage]:
    """Every annotated image under ``folder``, keyed by file name, with its faces' landmarks.
    Raises :class:`AnnotationError` if the folder is missing or holds no annotated image."""
    if not os.path.isdir(folder):
        raise AnnotationError(f"{folder}: ground-truth folder does not exist")
    images: Dict[str, AnnotatedImage] = {}
    for directory, subdirectories, files in os.walk(folder):
        subdirectories.sort()
        pts_files = sorted(f for f in files if f.endswith(".pts"))
        image_files = sorted(f for f in files if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
        stems = {os.path.splitext(f)[0] for f in image_files}
        for image_file in image_files:
            stem = os.path.splitext(image_file)[0]
            annotations = _annotation_files(stem, pts_files, stems)
            if not annotations:
                continue
            path = os.path.join(directory, image_file)
            if image_file in images:
                raise AnnotationError(f"{path}: another annotated image has the same file name "
                                      f"({images[image_file].path}); file names must be unique")
            twins = [f for f in image_files if f != image_file and os.path.splitext(f)[0] == stem]
            if twins:
                raise AnnotationError(f"{path}: {twins[0]} has the same stem, so it is unclear "
                                      f"which image {annotations[0]} annotates")
            annotation_paths = tuple(os.path.join(directory, f) for f in annotations)
            images[image_file] = AnnotatedImage(
                name=image_file, path=path, annotation_paths=annotation_paths,
                faces=tuple(read_pts(p) for p in annotation_paths))
    if not images:
        raise AnnotationError(f"{folder}: no annotated images (expected images with .pts files of "
                              f"the same stem beside them)")
    return images
