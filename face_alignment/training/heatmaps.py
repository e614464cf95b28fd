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
    # numpy's round (half to even), as ibug's np.round; the window's end is inclusive here.
    first = np.round(points - reach)
    last = np.round(points + reach)
    pixels = np.arange(size, dtype=np.float64)
    offsets = pixels + 0.5 - points[:, :, None]  # (n, 2, size): x and y offsets of each pixel centre
    inside = (pixels >= first[:, :, None]) & (pixels <= last[:, :, None])
    profiles = np.where(inside, np.exp(offsets * offsets / (-2.0 * sigma ** 2)), 0.0).astype(np.float32)
    # Row r, column c of map n: the y profile at r times the x profile at c.
    return np.einsum("nr,nc->nrc", profiles[:, 1], profiles[:, 0])
