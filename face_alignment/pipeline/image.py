"""Reading images into the one form the pipeline works on: an RGB ``uint8`` array of shape
(H, W, 3), C-contiguous. Files are decoded with OpenCV keeping their bit depth and their
EXIF orientation; arrays are taken as RGB (or grey) already. Grey images gain three equal
channels, alpha is dropped, 16-bit values are scaled to 8 bits by rounding ``v / 257`` (the
nearest 8-bit value: it maps 0 and 65535 to 0 and 255 and undoes the usual ``v * 257``
widening exactly) and floats in [0, 1] are scaled by 255 and rounded. ``list_images`` lists
the images of a folder for batch runs.

Before anything is decoded, a file's own header is read (image_headers.py, mostly by
Pillow's header parsers, which decode nothing): its format must be one of
``image_headers.FORMATS``, its size at most ``MAX_IMAGE_PIXELS`` (a 1 MB PNG can hold
30000 x 30000 pixels, 11 GB to decode), and the file must be whole: OpenCV
would decode a truncated JPEG into a half-grey picture, and let libjpeg, libpng, libtiff or
itself print their complaints on stderr. Such files raise ImageReadError, in one line, and
the decoders never see them. A JPEG that is whole but damaged inside (libjpeg decodes through
it, grey where data is lost, and warns on stderr) is refused the same way, quoting libjpeg."""
import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import List, Optional, Union

import cv2
import numpy as np

from ..errors import FaceAlignmentError, ImageReadError
from ..files import not_a_file
from .image_headers import check_complete, netpbm_maxval, read_header

PathLike = Union[str, "os.PathLike[str]"]

# The image files of the whole project (batch runs, ground-truth folders), as lower-case
# suffixes: every type the opencv-python wheels decode into 8- or 16-bit pixels. Left out:
# .hdr/.pic/.pfm (floating-point radiance, not [0, 1] intensities), .exr (a codec OpenCV
# disables by default), .gif and .avif (not built in).
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jp2",  # JPEG, JPEG 2000
    ".png", ".webp", ".tif", ".tiff",
    ".bmp", ".dib",  # Windows bitmaps
    ".ppm", ".pgm", ".pbm", ".pnm",  # Netpbm
    ".sr", ".ras",  # Sun rasters
})

# ANYDEPTH keeps 16-bit data, ANYCOLOR keeps grey as grey. Unlike IMREAD_UNCHANGED this
# still applies the EXIF orientation, so phone photos come out upright; alpha, which
# IMREAD_UNCHANGED would add, is dropped anyway.
_READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
# But OpenCV (4.11) decodes grey Sun rasters without a colour map as all black unless asked
# for colour (opencv/opencv#29146); they hold 8-bit pixels at most, so colour loses nothing.
_READ_FLAGS_OF = {"Sun raster": cv2.IMREAD_COLOR}

# Files with more pixels than this are refused before decoding. Decoding costs 3 bytes a
# pixel, and read_image's RGB copy as much again (more for 16-bit or alpha; measured: 290 MB
# for a 48-megapixel JPEG), so 150 megapixels take about 1 GB. Every camera's full-size
# photo fits (61 MP full frame, 102 MP medium format) but 200 MP phone sensors' in their
# full-resolution mode; a decompression bomb or a mistaken export does not. Callers pass
# another limit as read_image's ``max_pixels`` (FaceAlignment's, --max-pixels).
MAX_IMAGE_PIXELS = 150_000_000
# A scheme and "://": what a path that is a URL starts with (http, https, s3, gs, ftp...).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
LOCAL_ONLY = "a URL; images are read from local files only (download it first)"


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL rather than a file's name."""
    return _URL.match(path) is not None


def read_image(image_or_path: Union[PathLike, np.ndarray],
               max_pixels: Optional[int] = None) -> np.ndarray:
    """Return the image as a new RGB ``uint8`` (H, W, 3) C-contiguous array. A path is read
    from disk (ImageReadError if missing, not an image, cut short, or of more than
    ``max_pixels`` pixels: default MAX_IMAGE_PIXELS); an array is taken as RGB, RGBA or grey
    and converted (FaceAlignmentError if its shape or values do not fit)."""
    if isinstance(image_or_path, np.ndarray):
        return _to_rgb8(image_or_path, "image array")
    if not isinstance(image_or_path, (str, os.PathLike)):
        raise FaceAlignmentError(
            f"{type(image_or_path).__name__}: expected an image path or a numpy array")
    path = os.fspath(image_or_path)
    if not os.path.isfile(path):  # a pipe (bash's <(...)) is refused: read once, it cannot be checked first
        raise ImageReadError(f"{path}: {LOCAL_ONLY}" if is_url(path) else not_a_file(path, "image file"))
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with open(path, "rb") as f:
            kind, width, height = read_header(path, f)
            if width * height > limit:
                raise ImageReadError(
                    f"{path}: {kind} of {width} x {height} pixels "
                    f"({width * height / 1e6:.3g} megapixels), more than the limit of "
                    f"{limit / 1e6:g} megapixels; if it is genuine, raise the limit "
                    "(--max-pixels, or read_image's max_pixels)")
            f.seek(0)
            data = f.read()
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read the image file ({e.strerror or e})") from None
    check_complete(path, kind, data)
    flags = _READ_FLAGS_OF.get(kind, _READ_FLAGS)
    if kind == "JPEG":
        decoded = _decode_jpeg(path, data, flags)
    else:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if kind == "Netpbm" and decoded is not None:
        decoded = _netpbm_full_range(decoded, *netpbm_maxval(data))
    del data
    if decoded is None:
        raise ImageReadError(f"{path}: not a readable image ({kind} that OpenCV cannot decode)")
    if decoded.ndim == 3:
        # OpenCV decodes to BGR(A); the rest of the pipeline is RGB.
        decoded = decoded[..., 2::-1] if decoded.shape[2] >= 3 else decoded
    return _to_rgb8(decoded, path)


# libjpeg reports damage it decodes through (a scan cut short, bad Huffman codes, stray markers)
# as a warning printed straight onto file descriptor 2, and OpenCV returns the picture, grey
# where data was missing. libjpeg's warnings of damage (jerror.h's JWRN_*) start so.
_LIBJPEG_DAMAGE = re.compile(r"(Corrupt JPEG data|Premature end of JPEG file|Inconsistent progression sequence"
                             r"|Invalid SOS parameters)")
# fd 2 is one for the whole process: one decode at a time captures it.
_STDERR_CAPTURE = threading.Lock()


def _decode_jpeg(path: str, data: bytes, flags: int) -> Optional[np.ndarray]:
    """``cv2.imdecode`` of a JPEG, with what libjpeg prints caught: a JPEG it finds damaged is
    refused in one line quoting it (ImageReadError). Any other text (libjpeg's harmless
    warnings, other threads' output meanwhile) is passed on."""
    with _STDERR_CAPTURE, tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        printed = capture.read().decode("utf-8", "replace")
    warnings = [line.strip() for line in printed.splitlines() if _LIBJPEG_DAMAGE.match(line.strip())]
    others = "".join(line for line in printed.splitlines(keepends=True) if line.strip() not in warnings)
    if others:
        with contextlib.suppress(OSError):
            os.write(2, others.encode())
    if warnings:
        raise ImageReadError(f"{path}: damaged JPEG (libjpeg: {'; '.join(dict.fromkeys(warnings))})")
    return decoded


def _netpbm_full_range(decoded: np.ndarray, kind: int, maxval: int) -> np.ndarray:
    """Netpbm samples as OpenCV decodes them, with ``maxval`` as full brightness. OpenCV
    (4.11) scales only plain greymaps and pixmaps (P2, P3) of a maxval below 256; the others
    keep their stored values, 0 to maxval, which read as 0 to 255 (or 65535) came out dark.
    Those are scaled here to 8 bits, rounding."""
    if kind in (1, 4) or maxval in (255, 65535) or (kind in (2, 3) and maxval < 256):
        return decoded
    return ((decoded.astype(np.uint32) * 255 + maxval // 2) // maxval).astype(np.uint8)


def _to_rgb8(array: np.ndarray, name: str) -> np.ndarray:
    """Channels to RGB, values to uint8; ``name`` is what error messages call the input."""
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        rgb = array[..., :3]
    elif array.ndim == 2:
        rgb = array[..., None]
    else:
        raise FaceAlignmentError(
            f"{name}: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
            f"got {array.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise FaceAlignmentError(f"{name}: image has no pixels (shape {array.shape})")
    rgb8 = _to_uint8(rgb, name)
    if rgb8.shape[2] == 1:
        rgb8 = np.repeat(rgb8, 3, axis=2)
    # Copy even when nothing changed, so callers may draw on the result freely.
    return np.array(rgb8, dtype=np.uint8, order="C", copy=True)


def _to_uint8(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.uint16:
        return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(values.dtype, np.floating):
        low, high = float(np.min(values)), float(np.max(values))
        if not (0.0 <= low and high <= 1.0):  # also rejects NaN
            raise FaceAlignmentError(
                f"{name}: float image values must lie in [0, 1], got [{low:g}, {high:g}]")
        return np.rint(values * 255.0).astype(np.uint8)
    if values.dtype == np.bool_:
        return values.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(values.dtype, np.integer):
        low, high = int(np.min(values)), int(np.max(values))
        if low < 0 or high > 255:
            raise FaceAlignmentError(
                f"{name}: {values.dtype} image values must lie in [0, 255], "
                f"got [{low}, {high}]")
        return values.astype(np.uint8)
    raise FaceAlignmentError(f"{name}: unsupported image dtype {values.dtype}")


def list_images(folder: PathLike, recursive: bool = False) -> List[str]:
    """Paths of the image files in ``folder`` (by suffix, any case), sorted. Hidden files
    and folders (names starting with '.') are skipped: they are mostly editor or OS debris
    such as macOS ``._photo.jpg`` resource forks, which are not images."""
    root = os.fspath(folder)
    if not os.path.isdir(root):
        raise FaceAlignmentError(f"{root}: not a folder")
    found = []
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        found.extend(os.path.join(current, f) for f in files
                     if not f.startswith(".")
                     and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
    return sorted(found)
