"""ibug's two losses as NNabla graphs, over every hourglass's heatmaps.

- Heatmap MSE: per sample the mean squared difference over landmarks and pixels, times the
  sample's weight, averaged over the batch and then over the hourglasses.
- Normalised landmark distance: landmarks decoded by the differentiable centroid (the mass of
  each heatmap within ``radius`` of its peak, raised to ``gamma``), their mean distance to the
  truth in crop pixels divided by the size of the truth's bounding box, weighted and averaged
  the same way.

The total is the weighted mean of the losses whose weights are positive (ibug's
``compute_losses``): dividing by the weights' sum keeps the learning rate meaning the same.
"""
import nnabla as nn
import nnabla.functions as F
import numpy as np

# The centroid decoding's defaults (ibug's decode_landmarks and our centroid decoder).
GAMMA = 1.0
RADIUS = 0.1
# Smallest mass and normaliser divided by: float32's eps, as torch.finfo(float32).eps.
EPS = float(np.finfo(np.float32).eps)


def heatmap_mse(predicted, target, weights):
    """Mean over ``predicted`` (a list of (B, N, H, W)) of the weighted batch mean of each
    sample's heatmap MSE against ``target`` (B, N, H, W); ``weights`` is (B,)."""
    losses = [F.mean(F.mean(F.squared_error(p, target), axis=(1, 2, 3)) * weights) for p in predicted]
    return sum(losses[1:], losses[0]) / len(losses)


def _peak_mask(heatmaps, radius):
    """1 within ``radius`` * sqrt(H W) of each heatmap's (first) maximum, else 0; a constant
    for backpropagation, as the comparison is in ibug's code."""
    b, n, h, w = heatmaps.shape
    index = F.max(F.reshape(heatmaps, (b, n, h * w)), axis=2, keepdims=True, only_index=True)
    index.need_grad = False
    index = F.reshape(index, (b, n, 1, 1))
    peak_row = F.floor(index / w)
    peak_col = index - peak_row * w
    rows = nn.Variable.from_numpy_array(np.arange(h, dtype=np.float32).reshape(1, 1, h, 1))
    cols = nn.Variable.from_numpy_array(np.arange(w, dtype=np.float32).reshape(1, 1, 1, w))
    distance = ((rows - peak_row) ** 2 + (cols - peak_col) ** 2) ** 0.5
    mask = F.less_equal_scalar(distance, radius * (h * w) ** 0.5)
    mask.need_grad = False
    return mask


def centroids(heatmaps, gamma=GAMMA, radius=RADIUS):
    """(B, N, 2) x, y in heatmap pixels (pixel centres at +0.5) of (B, N, H, W) ``heatmaps``:
    ibug's ``decode_landmarks``, differentiable."""
    b, n, h, w = heatmaps.shape
    if radius ** 2 * h * w < h ** 2 + w ** 2:  # otherwise the disc holds the whole heatmap
        heatmaps = heatmaps * _peak_mask(heatmaps, radius)
    heatmaps = F.maximum_scalar(heatmaps, 0.0)
    if gamma != 1.0:
        heatmaps = heatmaps ** gamma
    mass = F.maximum_scalar(F.sum(heatmaps, axis=(2, 3)), EPS)
    xs = nn.Variable.from_numpy_array(np.arange(0.5, w, dtype=np.float32).reshape(1, 1, w))
    ys = nn.Variable.from_numpy_array(np.arange(0.5, h, dtype=np.float32).reshape(1, 1, h))
    x = F.sum(F.sum(heatmaps, axis=2) * xs, axis=2) / mass
    y = F.sum(F.sum(heatmaps, axis=3) * ys, axis=2) / mass
    return F.stack(x, y, axis=2)


def landmark_distance(predicted, landmarks, normalisers, weights, input_size, gamma=GAMMA, radius=RADIUS):
    """Mean over ``predicted`` (a list of (B, N, H, W)) of the weighted batch mean of each
    sample's mean landmark distance, in crop pixels of an ``input_size`` crop, to ``landmarks``
    (B, N, 2), divided by ``normalisers`` (B,) (clipped below at float32's eps)."""
    losses = []
    for heatmaps in predicted:
        h, w = heatmaps.shape[2:]
        scale = nn.Variable.from_numpy_array(np.array([input_size / w, input_size / h], np.float32).reshape(1, 1, 2))
        difference = centroids(heatmaps, gamma, radius) * scale - landmarks
        distance = F.mean(F.sum(difference ** 2, axis=2) ** 0.5, axis=1)
        losses.append(F.mean(distance / F.maximum_scalar(normalisers, EPS) * weights))
    return sum(losses[1:], losses[0]) / len(losses)


def total_loss(heatmap_loss, distance_loss, heatmap_weight, distance_weight):
    """The weighted mean of the losses whose weight is positive (their weights' sum divides)."""
    terms = [(loss, weight) for loss, weight in ((heatmap_loss, heatmap_weight), (distance_loss, distance_weight))
             if weight > 0]
    if not terms:
        raise ValueError("at least one loss weight must be positive")
    total_weight = sum(weight for _, weight in terms)
    weighted = [loss * (weight / total_weight) for loss, weight in terms]
    return sum(weighted[1:], weighted[0])


def box_sizes(corners: np.ndarray) -> np.ndarray:
    """sqrt(width * height) of boxes given by their corners (..., 4, 2) in the order top-left,
    top-right, bottom-right, bottom-left (ibug's get_bbox_sizes, which allows rotated boxes)."""
    corners = np.asarray(corners, dtype=np.float64)
    widths = np.linalg.norm(corners[..., 1, :] - corners[..., 0, :], axis=-1)
    heights = np.linalg.norm(corners[..., 2, :] - corners[..., 1, :], axis=-1)
    return np.sqrt(widths * heights)
