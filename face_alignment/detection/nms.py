"""Greedy non-maximum suppression, as face-alignment's detectors do it.

Boxes are taken best score first; each one kept removes every later box that overlaps it by
more than ``threshold`` (intersection over union). SFD measures sides as ``right - left + 1``
(the inclusive pixel count), RetinaFace as ``right - left``: that is ``offset``.

Greedy suppression of a box depends only on the boxes scoring above it, so suppressing among
the boxes above a score cut-off gives exactly the boxes above that cut-off that suppressing
among all of them would: detectors cut first, then suppress the few boxes left.
"""
import numpy as np

# Candidates suppressed at most, the best first: RetinaFace's reference code and OpenCV's YuNet
# (face-alignment's) keep the top 5000 before suppression. Without a bound, random or
# mistrained weights give tens of thousands of candidates and suppression runs for minutes.
MAX_CANDIDATES = 5000


def nms(boxes: np.ndarray, order: np.ndarray, threshold: float, offset: float = 0.0) -> np.ndarray:
    """Indices into ``boxes`` (N, 4+) of the boxes kept, visiting them in ``order`` (best first)."""
    left, top, right, bottom = (boxes[:, i] for i in range(4))
    areas = (right - left + offset) * (bottom - top + offset)
    kept = []
    remaining = np.asarray(order)
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        kept.append(best)
        width = np.maximum(0.0, np.minimum(right[best], right[rest]) - np.maximum(left[best], left[rest]) + offset)
        height = np.maximum(0.0, np.minimum(bottom[best], bottom[rest]) - np.maximum(top[best], top[rest]) + offset)
        overlap = width * height
        remaining = rest[overlap / (areas[best] + areas[rest] - overlap) <= threshold]
    return np.array(kept, dtype=np.intp)
