"""A face detector of a user's own, in one module and nothing else: the test of the detector
seam loads it by name ("plugin_detector:FixedBoxes") without any registry entry."""
import json
import os

import numpy as np

from face_alignment.detection import BoxRelation, Detector, check_rgb

# The boxes it "finds", [left, top, right, bottom, score]; a command line run in another
# process is told them through this variable.
BOXES_VARIABLE = "PLUGIN_DETECTOR_BOXES"


class FixedBoxes(Detector):
    name = "fixed-boxes"
    box_relation = BoxRelation(dx=0.0, dy=-0.3, width=3.0, height=3.0)

    def __init__(self, weights=None, threshold: float = 0.0):
        self.threshold = threshold
        self.calls = 0
        self.boxes = np.array(json.loads(os.environ.get(BOXES_VARIABLE, "[]")), dtype=np.float64).reshape(-1, 5)

    def detect(self, image: np.ndarray) -> np.ndarray:
        check_rgb(image)
        self.calls += 1
        kept = self.boxes[self.boxes[:, 4] >= self.threshold]
        return kept[np.argsort(-kept[:, 4], kind="stable")]
