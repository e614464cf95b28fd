"""``boxes_from``: a detector's boxes in place of the annotated ones, so that a model is trained
on the crops its users' detector will give it. Each annotated face takes the detection that
best overlaps the box around its landmarks; a face no detection overlaps is left out and
listed. Each image is detected once, however many faces it holds."""
from typing import List, Tuple

import numpy as np

from ..matching import box_iou, points_box
from .sources import Record


def detected_records(records: List[Record], detector_name: str,
                     calibrate: bool = True) -> Tuple[List[Record], List[Tuple[str, str]]]:
    from tqdm import tqdm

    from ..detection.registry import crop_boxes, load_detector
    from ..pipeline.image import read_image

    detector = load_detector(detector_name)
    found = {}
    kept, missed = [], []
    for record in tqdm(records, desc=f"detecting faces ({detector_name})", unit="face", leave=False):
        if record.image not in found:
            found[record.image] = np.asarray(detector.detect(read_image(record.image)), dtype=np.float64)
        detections = found[record.image]
        overlaps = box_iou(points_box(record.landmarks)[None], detections[:, :4])[0] if len(detections) else []
        if len(overlaps) == 0 or np.max(overlaps) <= 0:
            missed.append((record.image, f"{record.origin}: {detector_name} found no face overlapping the "
                                         f"annotated one in {record.image}"))
            continue
        best = detections[int(np.argmax(overlaps))]
        box = crop_boxes(detector, best[None], calibrate)[0]
        kept.append(Record(record.image, record.landmarks, box, record.weight, record.origin))
    return kept, missed
