"""Left-right flipping for test-time augmentation with the iBUG 68-point layout.

A mirrored face is still a face, but its landmarks swap sides: the mirror image of the jaw's
first point is its last, of one eye's outer corner the other eye's outer corner. Running FAN
on a mirrored crop and then mirroring its heatmaps back and swapping their channels gives a
second estimate in the original frame, which the authors add to the first (``flip_input``).
"""
import numpy as np

from ..errors import FaceAlignmentError


def _mirrored_loop(first: int, count: int, pivot: int) -> np.ndarray:
    # A closed contour listed clockwise is mirrored by running it backwards from a pivot:
    # point i goes to (pivot - i) mod count.
    return first + (pivot - np.arange(count)) % count


# MIRRORED_LANDMARKS[i] is the landmark that point i becomes in a mirrored face (0-based).
MIRRORED_LANDMARKS = np.concatenate([
    np.arange(16, -1, -1),  # jaw 0-16, ear to ear through the chin (8)
    np.arange(26, 16, -1),  # eyebrows 17-21 and 22-26, outer end to outer end
    np.arange(27, 31),  # nose bridge 27-30, on the axis
    np.arange(35, 30, -1),  # nostrils 31-35, through the tip (33)
    _mirrored_loop(42, 6, 3),  # eye 36-41 (outer corner 36) to eye 42-47 (inner corner 42)
    _mirrored_loop(36, 6, 3),  # and back
    _mirrored_loop(48, 12, 6),  # outer lips 48-59 from the left corner, 51 and 57 on the axis
    _mirrored_loop(60, 8, 4),  # inner lips 60-67 from the left corner, 62 and 66 on the axis
])


def flip_crops(crops: np.ndarray) -> np.ndarray:
    """Mirror (N, C, H, W) crops left to right."""
    crops = _as_4d(crops, "crops")
    return np.ascontiguousarray(crops[..., ::-1])


def unflip_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Heatmaps (N, 68, H, W) of mirrored crops back to the unmirrored frame: swap each
    landmark's channel with its mirror partner and mirror the maps left to right."""
    heatmaps = _as_4d(heatmaps, "heatmaps")
    if heatmaps.shape[1] != len(MIRRORED_LANDMARKS):
        raise FaceAlignmentError(
            f"heatmaps with {heatmaps.shape[1]} channels; expected {len(MIRRORED_LANDMARKS)}")
    return np.ascontiguousarray(heatmaps[:, MIRRORED_LANDMARKS, :, ::-1])


def _as_4d(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 4:
        raise FaceAlignmentError(f"{name} of shape {array.shape}; expected (N, C, H, W)")
    return array
