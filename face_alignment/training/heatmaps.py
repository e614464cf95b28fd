"""Training targets: one sub-pixel Gaussian heatmap per landmark.

The target ibug's trainer draws (``encode_landmarks`` with sub-pixel sampling): an
unnormalised Gaussian of peak 1 centred on the landmark's exact position, where a heatmap
pixel's centre is at (column + 0.5, row + 0.5), cut to the window of pixels from
``round(point - size * sigma)`` (inclusive) to ``round(point + size * sigma)`` (inclusive)
and zero elsewhere. Here it is drawn for every landmark at once: the Gaussian is separable,
so each map is the outer product of a row profile and a column profile, each already zero
outside its window.
"""
import numpy as np


def encode_heatmaps(points: np.ndarray, size: int, gaussian_size: float, sigma: float) -> np.ndarray:
    """``(n, size, size)`` float32 heatmaps of ``(n, 2)`` points (x, y) in heatmap pixels."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    reach = gaussian_size * sigma
    # numpy's round (half to even), as ibug's np.round; the window's end is exclusive.
    first = np.round(points - reach)
    last = np.round(points + reach)
    centres = np.arange(size, dtype=np.float64) + 0.5
    pixels = np.arange(size, dtype=np.float64)
    offsets = centres[None, :, None] - points[:, None, :]  # (n, size, 2): x and y per pixel
    profiles = np.exp(-offsets ** 2 / (2.0 * sigma ** 2))
    inside = (pixels[None, :, None] >= first[:, None, :]) & (pixels[None, :, None] <= last[:, None, :])
    profiles = np.where(inside, profiles, 0.0)
    # (n, rows, 1) * (n, 1, columns): y profile down the rows, x profile across.
    return (profiles[:, :, 1, None] * profiles[:, None, :, 0]).astype(np.float32)
