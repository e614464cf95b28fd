"""Reading images into the one form the pipeline works on: an RGB ``uint8`` array of shape
(H, W, 3), C-contiguous. Files are decoded with OpenCV keeping their bit depth and their
EXIF orientation; arrays are taken as RGB (or grey) already. Grey images gain three equal
channels, alpha is dropped, 16-bit values are scaled to 8 bits by rounding ``v / 257`` (the
nearest 8-bit value: it maps 0 and 65535 to 0 and 255 and undoes the usual ``v * 257``
widening exactly) and floats in [0, 1] are scaled by 255 and rounded. ``list_images`` lists
the images of a folder for batch runs.

Before anything is decoded, a file's own header is read here: its format must be JPEG,
PNG, BMP, TIFF or WebP, its size at most ``MAX_IMAGE_PIXELS`` (a 1 MB PNG can hold 30000 x
30000 pixels, 11 GB to decode), and the file must be whole: OpenCV would decode a
truncated JPEG into a half-grey picture, and let libjpeg, libpng, libtiff or itself print
their complaints on stderr. Such files raise ImageReadError, in one line, and the
decoders never see them."""
import os
import re
import struct
import zlib
from typing import BinaryIO, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from ..errors import FaceAlignmentError, ImageReadError

PathLike = Union[str, "os.PathLike[str]"]

# The image files of the whole project (batch runs, ground-truth folders), as lower-case
# suffixes: every type the opencv-python wheels decode into 8- or 16-bit pixels. Left out:
# .hdr/.pic/.pfm (floating-point radiance, not [0, 1] intensities), .exr (a codec OpenCV
# disables by default), .gif and .avif (not built in). scikit-image is not used for reading.
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

# Files with more pixels than this are refused before decoding. Decoding costs 3 bytes a
# pixel, and read_image's RGB copy as much again (more for 16-bit or alpha; measured: 290 MB
# for a 48-megapixel JPEG), so 150 megapixels take about 1 GB. Every camera's full-size
# photo fits (61 MP full frame, 102 MP medium format) but 200 MP phone sensors' in their
# full-resolution mode; a decompression bomb or a mistaken export does not. Callers pass
# another limit as read_image's ``max_pixels`` (FaceAlignment's, --max-pixels).
MAX_IMAGE_PIXELS = 150_000_000


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
    if not os.path.isfile(path):
        raise ImageReadError(f"{path}: no such image file")
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with open(path, "rb") as f:
            kind, width, height = _header(path, f)
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
    _check_complete(path, kind, data)
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _READ_FLAGS)
    del data
    if decoded is None:
        raise ImageReadError(f"{path}: not a readable image ({kind} that OpenCV cannot decode)")
    if decoded.ndim == 3:
        # OpenCV decodes to BGR(A); the rest of the pipeline is RGB.
        decoded = decoded[..., 2::-1] if decoded.shape[2] >= 3 else decoded
    return _to_rgb8(decoded, path)


FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WebP")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers, which hold the image size: C0-CF but DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A marker in entropy-coded JPEG data: 0xFF followed by neither a stuffed 0x00, nor a
# restart marker (D0-D7), nor another 0xFF (fill).
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class _Truncated(Exception):
    """The file ends before a field that must be there."""


def _read_exactly(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    chunk = f.read(size)
    if len(chunk) != size:
        raise _Truncated()
    return chunk


def _header(path: str, f: BinaryIO) -> Tuple[str, int, int]:
    """(format, width, height) from the file's header, reading nothing else."""
    start = f.read(16)
    if start.startswith(b"\xff\xd8\xff"):
        kind, size = "JPEG", _jpeg_size
    elif start.startswith(_PNG_SIGNATURE):
        kind, size = "PNG", _png_size
    elif start.startswith(b"BM"):
        kind, size = "BMP", _bmp_size
    elif start[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        kind, size = "TIFF", _tiff_size
    elif start[:4] == b"RIFF" and start[8:12] == b"WEBP":
        kind, size = "WebP", _webp_size
    else:
        raise ImageReadError(f"{path}: not a readable image (expected "
                             f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]})")
    try:
        width, height = size(f, start)
    except _Truncated:
        raise ImageReadError(f"{path}: truncated {kind} (the file ends inside its header)") from None
    except (ValueError, KeyError) as e:
        raise ImageReadError(f"{path}: not a readable {kind} ({e.args[0]})") from None
    return kind, width, height


def _jpeg_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    offset = 2
    while True:
        marker = _read_exactly(f, offset, 2)
        if marker[0] != 0xFF:
            raise ValueError(f"no marker at byte {offset} of its header")
        if marker[1] == 0xFF:  # fill byte
            offset += 1
            continue
        if marker[1] in (0xD9, 0xDA):  # end of image or start of scan
            raise ValueError("no frame header before its image data")
        length = int.from_bytes(_read_exactly(f, offset + 2, 2), "big")
        if marker[1] in _JPEG_SOF:
            height, width = struct.unpack(">HH", _read_exactly(f, offset + 5, 4))
            return width, height
        offset += 2 + length


def _png_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    length, kind, width, height = struct.unpack(">I4sII", _read_exactly(f, 8, 16))
    if kind != b"IHDR" or length != 13:
        raise ValueError("no IHDR chunk first")
    return width, height


def _bmp_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    header_size = int.from_bytes(_read_exactly(f, 14, 4), "little")
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes
        return struct.unpack("<HH", _read_exactly(f, 18, 4))
    width, height = struct.unpack("<ii", _read_exactly(f, 18, 8))
    return abs(width), abs(height)  # a negative height means rows stored top-down


def _tiff_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    """ImageWidth and ImageLength of the first image (the one OpenCV reads)."""
    fields = _tiff_fields(lambda offset, size: _read_exactly(f, offset, size), start)
    if _TIFF_WIDTH not in fields or _TIFF_HEIGHT not in fields:
        raise ValueError("no ImageWidth and ImageLength tags")
    return fields[_TIFF_WIDTH][0], fields[_TIFF_HEIGHT][0]


_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
# Where the first image's data lies: strips or tiles, offsets and byte counts.
_TIFF_DATA = ((273, 279), (324, 325))
_TIFF_INTEGERS = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def _tiff_fields(read, start: bytes) -> Dict[int, List[int]]:
    """The integer values of the size and data-location tags of a TIFF's (or BigTIFF's)
    first directory; ``read(offset, size)`` gives the file's bytes."""
    order = "<" if start[:2] == b"II" else ">"
    if start[2:4] in (b"+\x00", b"\x00+"):  # BigTIFF: 8-byte counts and offsets
        first, = struct.unpack(order + "Q", start[8:16])
        count_format, long_format = "Q", "Q"
    else:
        first, = struct.unpack(order + "I", start[4:8])
        count_format, long_format = "H", "I"
    # An entry: tag, type, number of values, then the values or, if longer, their offset.
    inline_size = struct.calcsize(long_format)
    entry_size = 4 + 2 * inline_size
    count_size = struct.calcsize(count_format)
    count, = struct.unpack(order + count_format, read(first, count_size))
    entries = read(first + count_size, entry_size * count)
    wanted = {_TIFF_WIDTH, _TIFF_HEIGHT} | {tag for pair in _TIFF_DATA for tag in pair}
    fields = {}
    for at in range(0, len(entries), entry_size):
        tag, value_type = struct.unpack_from(order + "HH", entries, at)
        if tag not in wanted:
            continue
        if value_type not in _TIFF_INTEGERS:
            raise ValueError(f"tag {tag} of type {value_type}")
        values, = struct.unpack_from(order + long_format, entries, at + 4)
        value_format = f"{order}{values}{_TIFF_INTEGERS[value_type]}"
        where = entries[at + 4 + inline_size:at + entry_size]
        if struct.calcsize(value_format) > inline_size:  # stored elsewhere, at this offset
            offset, = struct.unpack(order + long_format, where)
            where = read(offset, struct.calcsize(value_format))
        fields[tag] = list(struct.unpack_from(value_format, where))
    return fields


def _webp_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    chunk = _read_exactly(f, 12, 18)
    if chunk[:4] == b"VP8 ":  # lossy: 14-bit sizes after the key frame's start code
        width, height = struct.unpack("<HH", chunk[14:18])
        return width & 0x3FFF, height & 0x3FFF
    if chunk[:4] == b"VP8L":  # lossless: 14-bit sizes minus one after its signature byte
        bits = int.from_bytes(chunk[9:13], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk[:4] == b"VP8X":  # extended: 24-bit canvas sizes minus one
        return (int.from_bytes(chunk[12:15], "little") + 1,
                int.from_bytes(chunk[15:18], "little") + 1)
    raise ValueError(f"unknown first chunk {chunk[:4]!r}")


def _check_complete(path: str, kind: str, data: bytes) -> None:
    """ImageReadError unless the file holds all its image data."""
    check = {"JPEG": _jpeg_problem, "PNG": _png_problem, "BMP": _bmp_problem,
             "TIFF": _tiff_problem, "WebP": _webp_problem}[kind]
    problem = check(data)
    if problem:
        raise ImageReadError(f"{path}: {problem}")


def _jpeg_problem(data: bytes) -> Optional[str]:
    # The header's segments one after the other up to the first scan, then from marker to
    # marker (entropy-coded data holds none) through the scans to the end-of-image marker.
    offset, in_scans = 2, False
    while offset + 2 <= len(data):
        if in_scans:
            found = _JPEG_MARKER_IN_SCAN.search(data, offset)
            if found is None:
                break
            offset = found.start()
        elif data[offset] != 0xFF:
            return f"corrupt JPEG (no marker at byte {offset} of its header)"
        marker = data[offset + 1]
        if marker == 0xD9:
            return None
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
        elif 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
            offset += 2
        else:
            offset += 2 + int.from_bytes(data[offset + 2:offset + 4], "big")
            in_scans = in_scans or marker == 0xDA
    return "truncated JPEG (the file ends before its end-of-image marker)"


def _png_problem(data: bytes) -> Optional[str]:
    view, offset = memoryview(data), len(_PNG_SIGNATURE)
    while offset + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 12 + length
        if end > len(data):
            break
        if zlib.crc32(view[offset + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return f"corrupt PNG (its {kind.decode('latin-1')} chunk fails its checksum)"
        if kind == b"IEND":
            return None
        offset = end
    return "truncated PNG (the file ends before its IEND chunk)"


def _bmp_problem(data: bytes) -> Optional[str]:
    pixels_at, header_size = struct.unpack_from("<II", data, 10)  # _header read these
    if header_size < 40:  # OS/2's short header: left to OpenCV
        return None
    if len(data) < 34:
        return "truncated BMP (the file ends inside its header)"
    width, height, _, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    # Only uncompressed rows (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS) have a known length,
    # each padded to 4 bytes.
    if compression not in (0, 3, 6):
        return None
    if pixels_at + (abs(width) * bits + 31) // 32 * 4 * abs(height) > len(data):
        return "truncated BMP (the file ends before its last row of pixels)"
    return None


def _tiff_problem(data: bytes) -> Optional[str]:
    def read(offset, size):
        if offset + size > len(data):
            raise _Truncated()
        return data[offset:offset + size]

    try:
        fields = _tiff_fields(read, data[:16])
    except _Truncated:
        return "truncated TIFF (the file ends inside its directory)"
    for offsets_tag, counts_tag in _TIFF_DATA:
        ends = [o + c for o, c in zip(fields.get(offsets_tag, []), fields.get(counts_tag, []))]
        if ends and max(ends) > len(data):
            return "truncated TIFF (the file ends before its image data does)"
    return None


def _webp_problem(data: bytes) -> Optional[str]:
    if 8 + int.from_bytes(data[4:8], "little") > len(data):
        return "truncated WebP (the file is shorter than its RIFF header says)"
    return None


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
