"""Reading and writing iBUG ``.pts`` landmark files (300W, menpo).

A ``.pts`` file is a short header, then the points between braces, one ``x y`` per line::

    version: 1
    n_points: 68
    {
    357.417253 308.455774
    ...
    }

Coordinate convention. iBUG files are 1-based: the centre of the top-left pixel is (1, 1).
Everything else in this library follows the authors' face-alignment code, whose landmarks are
0-based: the centre of the top-left pixel is (0, 0), so ``x`` is a column index and ``y`` a row
index. The conversion happens here and only here: :func:`read_pts` subtracts 1 from every
coordinate and :func:`write_pts` adds it back, so ground truth read from a ``.pts`` file and
landmarks predicted by our pipeline can be compared directly.
"""
import math
from typing import List

import numpy as np

from ..errors import AnnotationError
from ..files import atomic_write
from ..shapes import NUM_LANDMARKS

# iBUG coordinate of the top-left pixel's centre; ours is 0.
PTS_ORIGIN = 1.0


def _parse_point(path: str, line_number: int, line: str) -> List[float]:
    fields = line.split()
    try:
        point = [float(field) for field in fields]
    except ValueError:
        point = []
    if len(point) != 2 or not all(math.isfinite(value) for value in point):
        raise AnnotationError(f"{path}:{line_number}: expected a point 'x y' (two finite numbers), "
                              f"got {line.strip()!r}")
    return point


def read_pts(path: str, n_points: int = NUM_LANDMARKS) -> np.ndarray:
    """The landmarks of a ``.pts`` file as an ``(n_points, 2)`` float array of 0-based pixel
    coordinates (x, y). Raises :class:`AnnotationError` naming the file and line at fault."""
    try:
        # utf-8-sig: some annotation tools start files with a byte-order mark.
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: cannot read the annotation file ({e})") from None

    # Header: "key: value" lines up to the opening brace; only n_points matters.
    declared = None
    declared_line = 0
    opening = None
    for index, line in enumerate(lines):
        text = line.strip()
        if text == "{":
            opening = index
            break
        if not text:
            continue
        key, colon, value = text.partition(":")
        if not colon:
            raise AnnotationError(f"{path}:{index + 1}: expected a header line 'key: value' "
                                  f"or '{{', got {text!r}")
        if key.strip() == "n_points":
            declared, declared_line = value.strip(), index + 1
    if opening is None:
        raise AnnotationError(f"{path}: no '{{' line opening the points")
    if declared is None:
        raise AnnotationError(f"{path}: expected an 'n_points: {n_points}' header line, found none")
    if declared != str(n_points):
        raise AnnotationError(f"{path}:{declared_line}: expected 'n_points: {n_points}', "
                              f"got 'n_points: {declared}'")

    points = []
    for index in range(opening + 1, len(lines)):
        text = lines[index].strip()
        if text == "}":
            if len(points) != n_points:
                raise AnnotationError(f"{path}:{index + 1}: expected {n_points} points "
                                      f"before '}}', found {len(points)}")
            trailing = [n for n in range(index + 1, len(lines)) if lines[n].strip()]
            if trailing:
                raise AnnotationError(f"{path}:{trailing[0] + 1}: expected nothing after the "
                                      f"closing '}}', got {lines[trailing[0]].strip()!r}")
            return np.asarray(points, dtype=np.float64) - PTS_ORIGIN
        if not text:
            continue
        if len(points) == n_points:
            raise AnnotationError(f"{path}:{index + 1}: expected '}}' after {n_points} points, "
                                  f"got {text!r}")
        points.append(_parse_point(path, index + 1, text))
    raise AnnotationError(f"{path}: no '}}' line closing the points (found {len(points)} points)")


def write_pts(path: str, landmarks: np.ndarray, force: bool = True) -> None:
    """Write ``(n, 2)`` 0-based landmarks (extra columns such as z are dropped) as a 1-based
    ``.pts`` file, atomically."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 2 or not np.isfinite(points[:, :2]).all():
        raise AnnotationError(f"{path}: expected (n, 2) finite landmarks to write, "
                              f"got an array of shape {points.shape}")
    body = "\n".join(f"{x:.6f} {y:.6f}" for x, y in points[:, :2] + PTS_ORIGIN)
    text = f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n"
    with atomic_write(path, force=force) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
