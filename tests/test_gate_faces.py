"""The faces the precision gate gathers: ``max_faces`` counts every face gathered so far, in
file order, not each image's alone."""
import os
import shutil

import numpy as np

from conftest import SHARED
from face_alignment.precision.faces import gather_faces
from face_alignment.registry import ARCHITECTURES

FACES = os.path.join(SHARED, "data", "faces")
# Two boxes on each photo (given, so no detector runs): the first image holds two faces.
BOXES = {"1_breakingbad.jpg": [[1211.0, 97, 1551, 437], [614, 181, 850, 417]],
         "2_einstein.jpg": [[250.0, 260, 600, 640], [200, 200, 500, 500]]}


def test_max_faces_counts_the_faces_already_gathered(tmp_path):
    for name in BOXES:
        shutil.copy(os.path.join(FACES, name.split("_", 1)[1]), tmp_path / name)
    boxes = [np.array(BOXES[name]) for name in sorted(BOXES)]
    faces = gather_faces(ARCHITECTURES["2DFAN4"], str(tmp_path), boxes, max_faces=3)
    # Both faces of the first image, then the first of the second: three, not four.
    assert len(faces) == 3 and faces.crops.shape[0] == 3
    np.testing.assert_array_equal(faces.boxes, BOXES["1_breakingbad.jpg"] + BOXES["2_einstein.jpg"][:1])
    assert [os.path.basename(path) for path in faces.images] == sorted(BOXES)
    assert [len(frames) for frames in faces.frames] == [2, 1]
