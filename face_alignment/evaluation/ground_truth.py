"""A folder of annotated images, 300W style: each image has its ``.pts`` files beside it.

An image ``name.jpg`` is annotated by ``name.pts`` and/or ``name_1.pts``, ``name_2.pts``, …
(300W gives one file per face in images with several people). Subfolders are searched too, as
300W ships its sets in folders; images are identified by file name, which must therefore be
unique among annotated images. Images are those of
:data:`face_alignment.pipeline.image.IMAGE_EXTENSIONS`. Images without annotations are ignored;
an annotation file that annotates no image is reported (a warning naming it, and
:attr:`GroundTruth.unevaluated`), never dropped silently.
"""
import logging
import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Tuple

import numpy as np

from ..errors import AnnotationError
from ..pipeline.image import IMAGE_EXTENSIONS
from .pts import read_pts

log = logging.getLogger("face_alignment")
PTS_SUFFIX = ".pts"


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


class GroundTruth(dict):
    """The annotated images, keyed by file name; ``unevaluated`` holds each annotation file
    that annotates none of them, with why, as ``(path, reason)``."""

    def __init__(self, images: Dict[str, AnnotatedImage], unevaluated: Iterable[Tuple[str, str]] = ()):
        super().__init__(images)
        self.unevaluated: Tuple[Tuple[str, str], ...] = tuple(unevaluated)


def _why_unused(file: str, files: List[str]) -> str:
    """Why the annotation ``file`` annotates no image among the folder's ``files``."""
    stem, suffix = os.path.splitext(file)
    if suffix != PTS_SUFFIX:
        return f"expected the suffix {PTS_SUFFIX!r}, got {suffix!r}"
    others = sorted(f for f in files if os.path.splitext(f)[0] == stem and f != file)
    numbered = re.match(r"(.+)_\d+\Z", stem)
    if not others and numbered:
        others = sorted(f for f in files if os.path.splitext(f)[0] == numbered.group(1))
    if others:
        return f"its image {others[0]} is not of a type read here (expected one of " \
               f"{', '.join(sorted(IMAGE_EXTENSIONS))})"
    return "no image of the same stem beside it"


def _unreadable_folder(error: OSError) -> None:
    """A folder of the ground truth that cannot be listed: its annotations would be left out
    without a word, so it is an error."""
    raise AnnotationError(f"{error.filename}: cannot read the ground-truth folder ({error.strerror})")


def load_ground_truth(folder: str) -> GroundTruth:
    """Every annotated image under ``folder``, keyed by file name, with its faces' landmarks;
    each annotation file that annotates no image is logged as a warning. Raises
    :class:`AnnotationError` if the folder is missing or holds no annotated image."""
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise AnnotationError(f"{folder}: ground-truth folder {what}; expected a folder of annotated images")
    images: Dict[str, AnnotatedImage] = {}
    unevaluated: List[Tuple[str, str]] = []
    for directory, subdirectories, files in os.walk(folder, onerror=_unreadable_folder):
        subdirectories.sort()
        pts_files = sorted(f for f in files if f.endswith(PTS_SUFFIX))
        image_files = sorted(f for f in files if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
        stems = {os.path.splitext(f)[0] for f in image_files}
        used = set()
        for image_file in image_files:
            stem = os.path.splitext(image_file)[0]
            annotations = _annotation_files(stem, pts_files, stems)
            if not annotations:
                continue
            used.update(annotations)
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
        unevaluated += [(os.path.join(directory, f), _why_unused(f, files))
                        for f in sorted(files) if f.lower().endswith(PTS_SUFFIX) and f not in used]
    if not images:
        unused = f"; {len(unevaluated)} annotation file(s) annotate no image, e.g. {unevaluated[0][0]}: " \
                 f"{unevaluated[0][1]}" if unevaluated else ""
        raise AnnotationError(f"{folder}: no annotated images (expected images with .pts files of "
                              f"the same stem beside them{unused})")
    for path, reason in unevaluated:
        log.warning("%s: not evaluated: %s", path, reason)
    return GroundTruth(images, unevaluated)
