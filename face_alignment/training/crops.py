"""ibug's training crop: a square of side ``face size / crop_ratio`` about the face box's
centre, cut out with ``temp_padding_factor`` times as much margin again (zero outside the
image), resized to ``image_size * (1 + temp_padding_factor)`` and cut to its central
``image_size`` square (``LandmarkDataset`` with ``use_improved_preprocessing``).

Without a geometric augmentation this is repeated step for step (integer window, OpenCV's
bilinear resize of the padded window, centre cut), so crops equal ibug's. With one, the crop,
the flip and the augmentation are one affine warp from the photo, so only the pixels kept are
computed. Coordinates are continuous, ibug's: pixel (column c, row r) covers [c, c + 1) x
[r, r + 1), and a landmark read from a .pts (0-based) is used as it is.
"""
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Window:
    left: int
    top: int
    side: int  # the padded window's side in image pixels
    canvas: int  # the padded crop's side: image_size * (1 + temp_padding_factor), rounded
    margin: int  # the centre cut's offset in the padded crop

    def matrix(self) -> np.ndarray:
        """3x3 map from image coordinates to padded-crop coordinates."""
        scale = self.canvas / self.side
        return np.array([[scale, 0.0, -self.left * scale], [0.0, scale, -self.top * scale], [0.0, 0.0, 1.0]])


def crop_window(box: np.ndarray, config) -> Window:
    """The padded window of face box ``box`` (left, top, right, bottom), as ibug rounds it."""
    box = np.asarray(box, dtype=np.float64).reshape(2, 2)
    centre = box.mean(axis=0)
    crop_side = (box[1] - box[0]).mean() / config.crop_ratio
    padding = 1.0 + config.temp_padding_factor
    left, top = np.round(centre - crop_side / 2.0 * padding)
    side = int(np.round(crop_side * padding)) + 1
    canvas = int(np.round(config.image_size * padding))
    return Window(int(left), int(top), side, canvas, (canvas - config.image_size) // 2)


def cut(image: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """The ``side`` x ``side`` pixels from (left, top), zero outside the image (a view of the
    image when the window lies inside it)."""
    height, width = image.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side, width), min(top + side, height)
    if (x0, y0, x1, y1) == (left, top, left + side, top + side):
        return image[y0:y1, x0:x1]
    out = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
    if x1 > x0 and y1 > y0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


def resized_crop(image: np.ndarray, window: Window, size: int, mirrored: bool) -> np.ndarray:
    """ibug's crop without geometric augmentation: the window (of the mirrored image when
    ``mirrored``) resized to the padded crop, then its centre. Mirroring the window rather
    than the whole photo gives the same pixels."""
    if mirrored:
        width = image.shape[1]
        patch = cv2.flip(cut(image, width - window.left - window.side, window.top, window.side), 1)
    else:
        patch = cut(image, window.left, window.top, window.side)
    # cv2.resize's source positions depend on the whole output's size: resize it all, as ibug
    # does, and keep the centre.
    padded = cv2.resize(patch, (window.canvas, window.canvas), interpolation=cv2.INTER_LINEAR)
    return padded[window.margin:window.margin + size, window.margin:window.margin + size]


def warped_crop(image: np.ndarray, to_crop: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` crop that the 3x3 map ``to_crop`` (image to crop, continuous
    coordinates) gives, bilinear, zero outside the image."""
    # Pixel indices sit half a pixel off continuous coordinates: conjugate by that shift.
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    unhalf = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    on_pixels = unhalf @ to_crop @ half
    return cv2.warpAffine(image, on_pixels[:2], (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# cv2.imread's flags for a colour image decoded at 1/factor of its size.
REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}


def decodes_reduced(path: str) -> bool:
    """Whether OpenCV decodes ``path`` at a reduced size itself (JPEG's scaled DCT), rather
    than decoding it whole and resizing."""
    return path.lower().endswith((".jpg", ".jpeg"))


def decode_factor(photo_per_crop: float) -> int:
    """The largest reduction (1, 2, 4 or 8) that leaves at least one decoded pixel per crop
    pixel, when the crop takes ``photo_per_crop`` photo pixels per crop pixel."""
    return max(f for f in REDUCED_FLAGS if f <= max(photo_per_crop, 1.0))


def mirror_matrix(width: int) -> np.ndarray:
    """3x3 left-right mirror of an image ``width`` pixels wide: x to width - x."""
    return np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def window_points(points: np.ndarray, window: Window) -> np.ndarray:
    """``(n, 2)`` image points in the crop of :func:`resized_crop`, computed as ibug's
    albumentations pipeline computes them: in float32, shift, scale and centre cut rounded in
    turn, so that the heatmaps drawn from them match ibug's to float precision."""
    shifted = np.asarray(points, dtype=np.float32) - np.array([window.left, window.top], dtype=np.float32)
    scaled = shifted * np.float32(window.canvas / window.side)
    return (scaled - np.float32(window.margin)).astype(np.float64)
