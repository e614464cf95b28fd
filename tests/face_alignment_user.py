"""Code written for face-alignment 1.5.0, run unchanged against its package and against
ours (tests/test_compat.py runs it twice, with either package first on PYTHONPATH).

    python face_alignment_user.py DATA_DIR RESULTS.pkl

DATA_DIR holds ``einstein.jpg`` (grey), ``breakingbad.jpg`` (colour), ``blank.png`` (no face), ``box.json`` (a face box of
einstein.jpg), the folder ``photos/`` for get_landmarks_from_directory and ``boxes/`` whose
images have their boxes beside them (``.pth``) for the 'folder' detector. Every call's
return value is pickled under a name; torch tensors in them become numpy arrays.

The one place the code differs: face-alignment 1.5.0's 'folder' detector raises ValueError
inside get_landmarks_from_image (it is handed the decoded image, not its path), so with
theirs the boxes are read by that detector's own ``detect_from_image(path)`` and given as
``detected_faces``; ours reads them itself.
"""
import json
import os
import pickle
import sys
import warnings

import numpy as np
import torch
from skimage import io

import face_alignment
from face_alignment import FaceAlignment, LandmarksType

THEIRS = getattr(face_alignment, "__version__", None) == "1.5.0"


def plain(value):
    """Tensors to arrays, recursively, so that the pickle loads without either package."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def folder_landmarks(fa, path, **flags):
    if THEIRS:
        return fa.get_landmarks_from_image(path, detected_faces=fa.face_detector.detect_from_image(path), **flags)
    return fa.get_landmarks_from_image(path, **flags)


def main(data, out):
    warnings.simplefilter("ignore")
    einstein = os.path.join(data, "einstein.jpg")
    colour = os.path.join(data, "breakingbad.jpg")
    blank = os.path.join(data, "blank.png")
    with open(os.path.join(data, "box.json")) as f:
        box = json.load(f)
    image = io.imread(einstein)  # grey: (H, W)
    rgb = np.stack([image] * 3, axis=2)
    results = {}

    # compile=False: theirs would otherwise torch.compile the networks (ours ignores it).
    fa = FaceAlignment(LandmarksType.TWO_D, device="cpu", face_detector="dlib", compile=False)
    results["path"] = fa.get_landmarks_from_image(einstein)
    results["get_landmarks"] = fa.get_landmarks(rgb)
    results["bboxes"] = fa.get_landmarks_from_image(colour, return_bboxes=True)
    results["scores"] = fa.get_landmarks_from_image(io.imread(colour), return_landmark_score=True)
    results["given"] = fa.get_landmarks_from_image(image, detected_faces=[np.array(box)])
    results["given_both"] = fa.get_landmarks_from_image(
        einstein, detected_faces=[box, [b + 40 for b in box]], return_bboxes=True, return_landmark_score=True)
    results["no_face"] = fa.get_landmarks_from_image(blank)
    results["no_face_both"] = fa.get_landmarks_from_image(blank, return_bboxes=True, return_landmark_score=True)

    batch = torch.from_numpy(np.stack([rgb, np.full_like(rgb, 128)]).transpose(0, 3, 1, 2).astype(np.float32))
    results["batch"] = fa.get_landmarks_from_batch(batch, detected_faces=[[np.array(box)], []])
    results["batch_both"] = fa.get_landmarks_from_batch(batch, detected_faces=[[np.array(box)], []],
                                                        return_bboxes=True, return_landmark_score=True)

    photos = os.path.join(data, "photos")
    results["directory"] = fa.get_landmarks_from_directory(photos, show_progress_bar=False)
    results["directory_scores"] = fa.get_landmarks_from_directory(
        photos, extensions=[".png"], recursive=False, show_progress_bar=False, return_landmark_score=True)

    boxed = os.path.join(data, "boxes", "einstein.jpg")
    fa_folder = FaceAlignment(LandmarksType.TWO_D, device="cpu", face_detector="folder", compile=False)
    results["folder"] = folder_landmarks(fa_folder, boxed, return_bboxes=True)

    fa3d = FaceAlignment(LandmarksType.THREE_D, device="cpu", face_detector="folder", flip_input=False,
                         compile=False)
    results["3d"] = folder_landmarks(fa3d, boxed, return_landmark_score=True)

    with open(out, "wb") as f:
        pickle.dump(plain(results), f)


if __name__ == "__main__":
    main(*sys.argv[1:])
