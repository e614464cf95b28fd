"""The accuracy gate: how far a lower precision moves the landmarks of the same faces from
fp32's, and whether that is little enough to use it.

Both networks see the same crops; both heatmaps are decoded by the model's decoding and mapped
to image pixels by the same frames, so every difference is the network's. The decision is on
the mean distance in image pixels (``DEFAULT_MAX_MEAN_PX``, or the user's limit). The other
numbers are reported for the user to judge: the largest distance, the NME (mean distance over
the face's size), the share of points that moved by more than 1 % of their face's size, and
the change of the scores (heatmap peaks), which the video tracker and users' filters compare
against thresholds.
"""
from dataclasses import asdict, dataclass
from typing import Callable, Tuple

import numpy as np

from ..pipeline.decode import decode
from .faces import Faces

# The default limit on the mean landmark difference, in image pixels. A trained FAN-4 is off
# by about 3 % of the face size on 300W-like faces; 1 px is 0.5 % of a 200-px face, a sixth of
# that. It is an absolute limit: on small faces the NME and the share of moved points say more.
DEFAULT_MAX_MEAN_PX = 1.0
# A point counts as moved when it is further than this share of its face's size from fp32's.
MOVED_SHARE_OF_FACE = 0.01
BATCH_SIZE = 8


@dataclass(frozen=True)
class Comparison:
    """What a lower precision did to the landmarks of ``faces`` faces (68 points each)."""

    faces: int
    mean_px: float
    max_px: float
    nme: float  # mean distance / face size, averaged over faces
    moved_share: float  # share of points moved by more than MOVED_SHARE_OF_FACE of the face size
    score_change_mean: float  # mean |score - fp32 score|
    score_change_max: float

    def as_dict(self):
        return asdict(self)

    def lines(self):
        return [f"faces compared: {self.faces}",
                f"landmark difference: mean {self.mean_px:.3f} px, max {self.max_px:.3f} px",
                f"NME (by face size): {self.nme:.5f}",
                f"points moved by more than {100 * MOVED_SHARE_OF_FACE:g} % of the face size: "
                f"{100 * self.moved_share:.2f} %",
                f"score change: mean {self.score_change_mean:.4f}, max {self.score_change_max:.4f}"]


Network = Callable[[np.ndarray], np.ndarray]


def landmarks(network: Network, faces: Faces, method: str) -> Tuple[np.ndarray, np.ndarray]:
    """(N, 68, 2) image points and (N, 68) scores of every face, a batch at a time."""
    points, scores = [], []
    for first in range(0, len(faces), BATCH_SIZE):
        batch_points, batch_scores = decode(network(faces.crops[first:first + BATCH_SIZE]), method)
        points.append(batch_points)
        scores.append(batch_scores)
    return faces.to_image(np.concatenate(points)), np.concatenate(scores).astype(np.float64)


def compare(reference: Network, candidate: Network, faces: Faces, method: str) -> Comparison:
    """The candidate's landmarks against the reference's (fp32's) on the same faces."""
    ref_points, ref_scores = landmarks(reference, faces, method)
    points, scores = landmarks(candidate, faces, method)
    distances = np.linalg.norm(points - ref_points, axis=2)  # (N, 68)
    sizes = faces.sizes[:, None]
    score_change = np.abs(scores - ref_scores)
    return Comparison(faces=len(faces), mean_px=float(distances.mean()), max_px=float(distances.max()),
                      nme=float((distances / sizes).mean(axis=1).mean()),
                      moved_share=float((distances > MOVED_SHARE_OF_FACE * sizes).mean()),
                      score_change_mean=float(score_change.mean()), score_change_max=float(score_change.max()))


def passes(comparison: Comparison, max_mean_px: float = DEFAULT_MAX_MEAN_PX) -> bool:
    return comparison.mean_px < max_mean_px
