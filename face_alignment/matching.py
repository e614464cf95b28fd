"""Boxes that overlap: intersection over union, and pairing faces by it. Evaluation pairs
annotated faces with predicted ones; video tracking pairs tracks with detections."""
import numpy as np

MISSED = -1  # match index of an annotated face that no predicted box overlaps


def points_box(points: np.ndarray) -> np.ndarray:
    """The ``(..., 4)`` box [left, top, right, bottom] around ``(..., n, 2)`` points."""
    points = np.asarray(points, dtype=np.float64)[..., :2]
    return np.concatenate((points.min(axis=-2), points.max(axis=-2)), axis=-1)


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``(n, 4)`` with every box in ``(m, 4)``:
    an ``(n, m)`` array. Boxes are [left, top, right, bottom] in continuous coordinates."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(1, -1, 4)
    overlap = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]),
                      0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - intersection
    # Two degenerate boxes have union 0 and no overlap worth matching on.
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def match_faces(truth_boxes: np.ndarray, predicted_boxes: np.ndarray) -> np.ndarray:
    """For each annotated face's box, the index of its predicted box, or :data:`MISSED`.

    Pairs are taken greedily by decreasing IoU, each predicted face serving at most one
    annotated face, so two people standing close cannot both claim one detection. With a
    single annotated face this is simply the prediction of highest IoU. Zero overlap is no
    match."""
    iou = box_iou(truth_boxes, predicted_boxes)
    matches = np.full(iou.shape[0], MISSED, dtype=np.int64)
    # One pass per matched pair (faces per image), not per landmark.
    for _ in range(min(iou.shape)):
        if iou.max() <= 0:
            break
        truth_index, predicted_index = np.unravel_index(np.argmax(iou), iou.shape)
        matches[truth_index] = predicted_index
        iou[truth_index, :] = 0
        iou[:, predicted_index] = 0
    return matches
