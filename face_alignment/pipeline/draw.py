"""Drawing results: the 68 iBUG landmarks joined part by part (and the face box) on the
photo, a 3D scatter plot of 3D landmarks beside it, a caption banner above a picture, and
saving a picture atomically. Every function returns a new RGB uint8 image and leaves its
input untouched. Lines are anti-aliased and drawn with sub-pixel precision; their width
follows the image size, capped by the face size so small faces stay legible. Plots and
text are rendered by matplotlib's Agg canvas (no display needed, Unicode text works),
imported only when a plot or a caption is drawn: its import alone takes about half a second."""
import os
from typing import Iterable, Mapping, Optional, Tuple, Union

import cv2
import numpy as np

from ..errors import FaceAlignmentError
from ..files import atomic_write
from ..shapes import NUM_LANDMARKS
from .image import read_image

# The iBUG 68-point scheme as (part, point indices, drawn as a closed loop). Left and right
# are the subject's own: the "right" eye is on the left of a frontal photo.
LANDMARK_PARTS: Tuple[Tuple[str, Tuple[int, ...], bool], ...] = (
    ("jaw", tuple(range(0, 17)), False),
    ("right_eyebrow", tuple(range(17, 22)), False),
    ("left_eyebrow", tuple(range(22, 27)), False),
    ("nose_bridge", tuple(range(27, 31)), False),
    ("nose_lower", tuple(range(31, 36)), False),
    ("right_eye", tuple(range(36, 42)), True),
    ("left_eye", tuple(range(42, 48)), True),
    ("outer_lips", tuple(range(48, 60)), True),
    ("inner_lips", tuple(range(60, 68)), True),
)

# One RGB colour per part, in LANDMARK_PARTS order; paired parts share a colour.
PART_COLOURS: Tuple[Tuple[int, int, int], ...] = (
    (255, 200, 40), (255, 120, 40), (255, 120, 40), (60, 200, 255), (60, 200, 255),
    (120, 255, 120), (120, 255, 120), (255, 60, 120), (255, 150, 200),
)
BOX_COLOUR = (40, 255, 40)
CAPTION_BACKGROUND = (150, 20, 20)
CAPTION_TEXT = (255, 255, 255)

_SHIFT = 4  # cv2 fixed-point bits: coordinates are drawn to 1/16 pixel.
_DPI = 100

Face = Union[Mapping[str, np.ndarray], np.ndarray]


def _face_parts(face: Face, index: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(landmarks (68, 2 or 3) float64, box [l, t, r, b] or None) of one face entry."""
    if isinstance(face, Mapping):
        if "landmarks" not in face:
            raise FaceAlignmentError(f"face {index}: dict has no 'landmarks' entry")
        landmarks, box = face["landmarks"], face.get("box")
    else:
        landmarks, box = face, None
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape not in ((NUM_LANDMARKS, 2), (NUM_LANDMARKS, 3)):
        raise FaceAlignmentError(
            f"face {index}: landmarks must have shape ({NUM_LANDMARKS}, 2) or ({NUM_LANDMARKS}, 3), got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise FaceAlignmentError(f"face {index}: landmarks contain NaN or infinity")
    if box is not None:
        box = np.asarray(box, dtype=np.float64).ravel()[:4]
        if box.shape != (4,) or not np.isfinite(box).all():
            raise FaceAlignmentError(f"face {index}: box must be finite [left, top, right, bottom]")
    return landmarks, box


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates to cv2's fixed-point int32. Points further than int32 reaches (a
    wild box's landmarks, 10**8 pixels away) are clipped to it rather than wrapped around."""
    info = np.iinfo(np.int32)
    return np.clip(np.rint(points * (1 << _SHIFT)), info.min, info.max).astype(np.int32)


def _line_width(image_shape: Tuple[int, ...], landmarks: np.ndarray) -> int:
    by_image = max(image_shape[:2]) / 600.0
    face_extent = float(np.ptp(landmarks[:, :2], axis=0).max())
    return max(1, round(min(by_image, face_extent / 80.0)))


def draw_landmarks(image_rgb: np.ndarray, faces: Iterable[Face]) -> np.ndarray:
    """A copy of the image with each face's landmarks joined by part, its points marked and,
    if the face is a dict with a "box" [l, t, r, b], the box outlined. A face is such a dict
    with "landmarks" (68, 2 or 3) in 0-based pixel coordinates, or that array itself."""
    canvas = read_image(image_rgb)
    for index, face in enumerate(faces):
        landmarks, box = _face_parts(face, index)
        width = _line_width(canvas.shape, landmarks)
        xy = _fixed(landmarks[:, :2])
        if box is not None:
            corners = _fixed(box.reshape(2, 2))
            cv2.rectangle(canvas, tuple(corners[0]), tuple(corners[1]), BOX_COLOUR, width,
                          cv2.LINE_AA, _SHIFT)
        for (_, indices, closed), colour in zip(LANDMARK_PARTS, PART_COLOURS):
            cv2.polylines(canvas, [xy[list(indices)]], closed, colour, width, cv2.LINE_AA, _SHIFT)
        radius = (width + 1) << _SHIFT
        # Points after all lines, so no line covers a point.
        for (_, indices, _), colour in zip(LANDMARK_PARTS, PART_COLOURS):
            for point in xy[list(indices)]:
                cv2.circle(canvas, tuple(point), radius, colour, -1, cv2.LINE_AA, _SHIFT)
    return canvas


def _figure(width: int, height: int, **options):
    """A matplotlib figure of ``width`` x ``height`` pixels, and its Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, **options)
    return figure, FigureCanvasAgg(figure)


def _render(canvas, width: int, height: int) -> np.ndarray:
    """The canvas's figure as an RGB uint8 (height, width, 3) array."""
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3]
    if pixels.shape[:2] != (height, width):  # figsize * dpi can round one pixel off
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(pixels)


def draw_3d_view(image_rgb: np.ndarray, landmarks3d_list: Iterable[Face],
                 size: Optional[int] = None) -> np.ndarray:
    """The image with the faces drawn as by ``draw_landmarks`` (boxes included), and beside
    it a 3D scatter plot of their (68, 3) landmarks, coloured and joined by part; ``size`` is the plot's width in pixels
    (default: the image height, a square plot). Returns one RGB image of the image's
    height. The plot's vertical axis is the image y, pointing down as in the image."""
    image = read_image(image_rgb)
    faces = list(landmarks3d_list)
    parsed = [_face_parts(face, index) for index, face in enumerate(faces)]
    for index, (landmarks, _) in enumerate(parsed):
        if landmarks.shape[1] != 3:
            raise FaceAlignmentError(f"face {index}: 3D view needs (68, 3) landmarks, got (68, 2)")
    height = image.shape[0]
    plot_width = height if size is None else int(size)
    if plot_width < 1:
        raise FaceAlignmentError(f"size={size}: expected a positive plot width in pixels")
    figure, canvas = _figure(plot_width, height)
    axes = figure.add_subplot(projection="3d")
    for landmarks, _ in parsed:
        for (_, indices, closed), colour in zip(LANDMARK_PARTS, PART_COLOURS):
            loop = list(indices) + ([indices[0]] if closed else [])
            x, y, z = landmarks[loop].T
            rgb = np.array(colour) / 255.0
            # Matplotlib's vertical axis is its third one: put the image y there.
            axes.plot(x, z, y, color=rgb * 0.7, linewidth=1)
            axes.scatter(x, z, y, color=rgb, s=6, depthshade=False)
    if parsed:
        stacked = np.concatenate([lm for lm, _ in parsed])
        extent = np.maximum(np.ptp(stacked, axis=0), 1e-6)
        axes.set_box_aspect((extent[0], extent[2], extent[1]))
    axes.invert_zaxis()
    axes.set_xlabel("x")
    axes.set_ylabel("z")
    axes.set_zlabel("y")
    axes.view_init(elev=10, azim=-70)
    plot = _render(canvas, plot_width, height)
    return np.hstack([draw_landmarks(image, faces), plot])


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a banner above it holding one line of ``text``, shrunk to fit the
    width (e.g. to say that a picture was made with random, untrained weights)."""
    picture = read_image(image)
    height, width = picture.shape[:2]
    banner_height = int(np.clip(round(0.06 * max(height, width)), 24, 96))
    background = np.array(CAPTION_BACKGROUND) / 255.0
    figure, canvas = _figure(width, banner_height, facecolor=background)
    points_per_pixel = 72.0 / _DPI
    label = figure.text(0.5, 0.5, text, ha="center", va="center",
                        color=np.array(CAPTION_TEXT) / 255.0,
                        fontsize=0.55 * banner_height * points_per_pixel)
    text_width = label.get_window_extent(renderer=canvas.get_renderer()).width
    if text_width > 0.96 * width:
        label.set_fontsize(label.get_fontsize() * 0.96 * width / text_width)
    banner = _render(canvas, width, banner_height)
    return np.vstack([banner, picture])


def check_image_path(path: Union[str, "os.PathLike[str]"]) -> None:
    """Raise FaceAlignmentError unless ``save_image`` can write to ``path``'s type of file
    (chosen by its extension), so a command line can tell before any work is done."""
    path = os.fspath(path)
    if not os.path.splitext(path)[1] or not cv2.haveImageWriter(path):
        raise FaceAlignmentError(
            f"{path}: unsupported image file extension (use e.g. .png or .jpg)")


def save_image(path: Union[str, "os.PathLike[str]"], image_rgb: np.ndarray) -> None:
    """Write an RGB image to ``path`` (format from the extension, e.g. .png or .jpg),
    replacing any file there only once the new one is complete."""
    path = os.fspath(path)
    check_image_path(path)
    bgr = np.ascontiguousarray(read_image(image_rgb)[..., ::-1])
    with atomic_write(path, force=True) as tmp_path:
        try:
            written = cv2.imwrite(tmp_path, bgr)
        except cv2.error as exc:
            raise FaceAlignmentError(f"{path}: could not write image ({_one_line(exc)})") from None
        if not written:
            raise FaceAlignmentError(f"{path}: could not write image")


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
