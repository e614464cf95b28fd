"""The results document that ``model_inference.py --save-json`` writes and
``python -m face_alignment.evaluate`` reads::

    {"images": [{"path": str, "width": int, "height": int,
                 "faces": [{"box": [l, t, r, b],
                            "landmarks": [[x, y] or [x, y, z] x 68],
                            "scores": [68 floats]}]}],
     "errors": [{"path": str, "reason": str}]}

Coordinates are in the original image's pixels, as floats. ``errors`` lists the images that
could not be read (cut short, damaged, too large), in order, with why; ``images`` holds the
others. ``python -m face_alignment.evaluate``
needs only ``path``, ``faces`` and each face's ``landmarks`` (and checks ``box`` when it is
there): documents converted from other tools may leave the rest out.
"""
import json
from typing import Dict, Sequence, Tuple

from .files import atomic_write


def image_record(faces) -> Dict:
    """One entry of ``images`` for one image's :class:`face_alignment.writers.Faces`."""
    width, height = faces.size
    return {"path": faces.source, "width": int(width), "height": int(height),
            "faces": [{"box": [float(v) for v in box],
                       "landmarks": landmarks.astype(float).tolist(),
                       "scores": scores.astype(float).tolist()}
                      for box, landmarks, scores in zip(faces.boxes, faces.landmarks, faces.scores)]}


def write_document(path: str, records, errors: Sequence[Tuple[str, str]] = (), force: bool = True) -> None:
    """The document of ``records`` (from :func:`image_record`) and ``errors``, (path, reason) of
    each image that could not be read."""
    with atomic_write(path, force=force) as tmp, open(tmp, "w") as f:
        json.dump({"images": list(records), "errors": [{"path": p, "reason": r} for p, r in errors]}, f)
