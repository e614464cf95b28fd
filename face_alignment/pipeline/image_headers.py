"""What an image file's header says, read before anything is decoded: its format (one of
``FORMATS``), its width and height (``read_header``), and whether the file holds all the data
its header announces (``check_complete``). Each problem raises ImageReadError in one line
naming the file; read_image (image.py) asks these first, so that a decompression bomb or a
cut-short file never reaches a decoder, nor lets libjpeg, libpng, libtiff, OpenJPEG or
OpenCV print their complaints on stderr.

Pillow's plugins read the headers: they parse them in Python and decode nothing. Not WebP's,
which builds libwebp's decoder as it opens and so reserves two canvas-sized buffers (2 GB of
address space for a 16383 x 16383 header: measured); a WebP's size is read here. Nor does
Pillow compare a JP2's header box with the codestream the decoder sizes its image from.
Whether a file is whole no library tells without decoding it (Pillow's PNG verify aside),
so that part is ours, each format's check as small as its layout allows."""
import io
import os
import re
import struct
from typing import Any, BinaryIO, Callable, NamedTuple, Optional, Tuple

from PIL import (BmpImagePlugin, Jpeg2KImagePlugin, JpegImagePlugin, PngImagePlugin,
                 PpmImagePlugin, SunImagePlugin, TiffImagePlugin)

from ..errors import ImageReadError


class _Truncated(Exception):
    """The file ends before a field its header must have. Not an OSError, so that it passes
    through Pillow's handlers, which would make it a warning or a vaguer error."""


class _HeaderFile:
    """The file as Pillow's plugins and the readers here see it: a read that comes up short
    raises _Truncated where it happens."""

    def __init__(self, f: BinaryIO):
        self._f = f

    def read(self, size: Optional[int] = -1) -> bytes:
        data = self._f.read(size)
        if size is not None and 0 <= len(data) < size:
            raise _Truncated()
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


def read_header(path: str, f: BinaryIO) -> Tuple[str, int, int]:
    """(format, width, height) from the file's header, reading nothing else."""
    start = f.read(16)
    format_ = next((candidate for candidate in _FORMATS if candidate.matches(start)), None)
    if format_ is None:
        raise ImageReadError(f"{path}: not a readable image (expected "
                             f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]})")
    problem, header = _open(format_, f)
    if problem:
        raise ImageReadError(f"{path}: {problem}")
    return (format_.name,) + tuple(header.size)


def check_complete(path: str, kind: str, data: bytes) -> None:
    """ImageReadError unless the file, whose bytes are ``data``, holds all its image data.
    Its header is read again, from ``data``: the file may have changed since read_header."""
    format_ = _BY_NAME[kind]
    problem, header = _open(format_, io.BytesIO(data))
    if not problem:
        try:
            problem = format_.problem(header, data)
        except _Truncated:
            problem = f"truncated {kind} (the file ends inside its header)"
    if problem:
        raise ImageReadError(f"{path}: {problem}")


def _open(format_: "_Format", f: BinaryIO) -> Tuple[Optional[str], Any]:
    """(None, the header) or (what is wrong with it, None). Pillow's plugins are called
    directly, not through Image.open, whose own pixel limit (89 megapixels, one global for the
    whole process) would otherwise decide before read_image's ``max_pixels``."""
    f.seek(0)
    try:
        return None, format_.open(_HeaderFile(f))
    except _Truncated:
        return f"truncated {format_.name} (the file ends inside its header)", None
    except OSError as e:
        if e.errno is not None:  # the disk's error, not the file's content: read_image's
            raise
        return f"not a readable {format_.name} ({e})", None
    except (SyntaxError, ValueError) as e:
        return f"not a readable {format_.name} ({e})", None


def _rows_problem(kind: str) -> Callable[[Any, bytes], Optional[str]]:
    """The check of a format whose uncompressed pixels are stored in rows of a known length
    from a known offset, which Pillow's header describes (its "raw" tile: offset, stride)."""
    def problem(header, data: bytes) -> Optional[str]:
        (codec, _, offset, args), = header.tile
        if codec != "raw":  # compressed: its length is known only to its decoder
            return None
        if offset + args[1] * header.size[1] > len(data):
            return f"truncated {kind} (the file ends before its last row of pixels)"
        return None
    return problem


# JPEG: the header's segments one after the other up to the first scan, then from marker to
# marker (entropy-coded data holds none: 0xFF is followed by a stuffed 0x00, a restart
# marker D0-D7 or fill) through the scans to the end-of-image marker.
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_problem(header, data: bytes) -> Optional[str]:
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


def _png_problem(header, data: bytes) -> Optional[str]:
    """Pillow's verify: every chunk after the header's against its checksum, up to IEND."""
    try:
        header.verify()
    except _Truncated:
        return "truncated PNG (the file ends before its IEND chunk)"
    except SyntaxError as e:  # "broken PNG file (bad header checksum in b'IDAT')"
        return f"corrupt PNG: {e}"
    return None


def _open_tiff(f: _HeaderFile):
    if f.read(4) == b"MM\x00+":  # Pillow (12.3) looks for BigTIFF's 43 where little-endian files hold it
        raise ValueError("a big-endian BigTIFF, whose header Pillow cannot read")
    f.seek(0)
    return TiffImagePlugin.TiffImageFile(f)


def _tiff_problem(header, data: bytes) -> Optional[str]:
    """The first image's strips (or tiles) must end within the file."""
    tags = header.tag_v2
    ends = [offset + count for offsets, counts in ((273, 279), (324, 325))  # strips, tiles
            for offset, count in zip(tags.get(offsets, ()), tags.get(counts, ()))]
    if ends and max(ends) > len(data):
        return "truncated TIFF (the file ends before its image data does)"
    return None


# WebP: "RIFF", the length of what follows, "WEBP", then the first chunk: VP8 (lossy), VP8L
# (lossless) or VP8X (extended), each holding the image's size its own way.
class _WebPHeader(NamedTuple):
    size: Tuple[int, int]


def _open_webp(f: _HeaderFile) -> _WebPHeader:
    f.seek(12)
    chunk = f.read(18)
    if chunk[:4] == b"VP8 ":  # lossy: 14-bit sizes after the key frame's start code
        width, height = struct.unpack("<HH", chunk[14:18])
        return _WebPHeader((width & 0x3FFF, height & 0x3FFF))
    if chunk[:4] == b"VP8L":  # lossless: 14-bit sizes minus one after its signature byte
        bits = int.from_bytes(chunk[9:13], "little")
        return _WebPHeader(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
    if chunk[:4] == b"VP8X":  # extended: 24-bit canvas sizes minus one
        return _WebPHeader((int.from_bytes(chunk[12:15], "little") + 1,
                            int.from_bytes(chunk[15:18], "little") + 1))
    raise ValueError(f"unknown first chunk {chunk[:4]!r}")


def _webp_problem(header, data: bytes) -> Optional[str]:
    if 8 + int.from_bytes(data[4:8], "little") > len(data):
        return "truncated WebP (the file is shorter than its RIFF header says)"
    return None


# Netpbm: P4-P6 store their pixels as bytes (P4 one bit a pixel, rows padded to whole bytes;
# P5 and P6 one byte a sample, two above a maxval of 255), P1-P3 as decimal numbers, counted
# here a chunk at a time.
_DIGIT_MARKS = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))  # 1: a digit
_NETPBM_CHUNK = 1 << 24


def netpbm_maxval(data: bytes) -> Tuple[int, int]:
    """The magic number's digit (1 to 6) and the maxval (1 for bitmaps) of a Netpbm file, as
    Pillow's header reader tells them (its tile's raw mode, with the maxval beside it unless
    that is 255, or 65535 for 16-bit samples)."""
    header = PpmImagePlugin.PpmImageFile(io.BytesIO(data))
    (_, _, _, args), = header.tile
    kind = data[1] - ord("0")
    if header.mode == "1":
        return kind, 1
    if isinstance(args, tuple):
        return kind, int(args[1])
    return kind, 65535 if args == "I;16B" else 255


def _netpbm_problem(header, data: bytes) -> Optional[str]:
    # Pillow's tile: its decoder, where the pixels start, and the raw mode ("I;16B": 16-bit
    # grey) or (raw mode, maxval).
    (codec, _, offset, args), = header.tile
    width, height = header.size
    channels = 3 if header.mode == "RGB" else 1
    if codec == "ppm_plain":
        if header.mode == "1":  # one digit a pixel, spaces optional
            found = data.count(b"0", offset) + data.count(b"1", offset)
        else:
            # Numbers end where a digit is followed by a non-digit ("10"): one that runs into
            # the end of the file may have been cut, and OpenCV, reading a byte past each
            # number, fails on it.
            found, before = 0, b"0"
            for at in range(offset, len(data), _NETPBM_CHUNK):
                marks = data[at:at + _NETPBM_CHUNK].translate(_DIGIT_MARKS)
                found += marks.count(b"10") + (before + marks[:1] == b"10")
                before = marks[-1:]
        samples = width * height * channels
        if found < samples:
            return f"truncated Netpbm (the file ends after {found} of its {samples} values)"
        return None
    if header.mode == "1":
        row = (width + 7) // 8
    else:
        wide = args == "I;16B" or (isinstance(args, tuple) and args[1] > 255)
        row = width * channels * (2 if wide else 1)
    if offset + row * height > len(data):
        return "truncated Netpbm (the file ends before its last row of pixels)"
    return None


# JPEG 2000: a JP2 file is a row of boxes (a 32-bit big-endian length counting its own 8
# bytes, 1 for a 64-bit length after the type, 0 for "to the end of the file"; then a
# four-letter type), among them the jp2c box holding the codestream. A codestream, also a
# file of its own (.j2k), starts with its start-of-codestream (FF4F) and SIZ (FF51) markers,
# SIZ holding the canvas's right and bottom edges and the image's left and top ones, and
# ends with its end-of-codestream marker (FFD9), which entropy-coded data cannot hold.
# Pillow sizes a JP2 from its header box, OpenJPEG from SIZ: they must agree.
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_START = b"\xff\x4f\xff\x51"


def _jp2_codestream(f) -> Tuple[int, Optional[int]]:
    """Where a JP2's codestream starts and ends (None: at the end of the file)."""
    offset = len(_JP2_SIGNATURE)
    while True:
        f.seek(offset)
        length, kind = struct.unpack(">I4s", f.read(8))
        start = offset + 8
        if length == 1:
            length, = struct.unpack(">Q", f.read(8))
            start += 8
        if kind == b"jp2c":
            return start, None if length == 0 else offset + length
        if length == 0:
            raise ValueError("no codestream (jp2c) box")
        if offset + length < start:
            raise ValueError(f"a {kind.decode('latin-1')} box of {length} bytes at byte {offset}")
        offset += length


def _open_jpeg2000(f: _HeaderFile):
    header = Jpeg2KImagePlugin.Jpeg2KImageFile(f)
    if header.codec == "jp2":
        f.seek(_jp2_codestream(f)[0])
        marks, right, bottom, left, top = struct.unpack(">4s2x2xIIII", f.read(24))
        if marks != _J2K_START:
            raise ValueError("no start-of-codestream and SIZ markers at its codestream's start")
        if (right - left, bottom - top) != header.size:
            raise ValueError(f"an image header (ihdr) of {header.size[0]} x {header.size[1]} "
                             f"pixels but a codestream of {right - left} x {bottom - top}")
    return header


def _jpeg2000_problem(header, data: bytes) -> Optional[str]:
    end = len(data)
    if header.codec == "jp2":
        _, end = _jp2_codestream(_HeaderFile(io.BytesIO(data)))
        if end is None:
            end = len(data)
        elif end > len(data):
            return "truncated JPEG 2000 (the file ends inside its codestream box)"
    if data[end - 2:end] != b"\xff\xd9":
        return "truncated JPEG 2000 (its codestream lacks its end-of-codestream marker)"
    return None


class _Format(NamedTuple):
    name: str  # as error messages call it
    matches: Callable[[bytes], bool]  # given the file's first 16 bytes
    open: Callable[[_HeaderFile], Any]  # its header (.size: width, height), decoding nothing
    problem: Callable[[Any, bytes], Optional[str]]  # what is missing, given the header and the bytes


# The formats read_image accepts (those OpenCV decodes to 8- or 16-bit pixels), each with its
# signature, its header and its completeness check; the one list of them.
_FORMATS = (
    _Format("JPEG", lambda start: start.startswith(b"\xff\xd8\xff"),
            JpegImagePlugin.JpegImageFile, _jpeg_problem),
    _Format("PNG", lambda start: start.startswith(b"\x89PNG\r\n\x1a\n"),
            PngImagePlugin.PngImageFile, _png_problem),
    _Format("BMP", lambda start: start.startswith(b"BM"),
            BmpImagePlugin.BmpImageFile, _rows_problem("BMP")),
    _Format("TIFF", lambda start: start[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
            _open_tiff, _tiff_problem),
    _Format("WebP", lambda start: start[:4] == b"RIFF" and start[8:12] == b"WEBP",
            _open_webp, _webp_problem),
    _Format("Netpbm", lambda start: re.match(rb"P[1-6][\s#]", start) is not None,
            PpmImagePlugin.PpmImageFile, _netpbm_problem),
    _Format("Sun raster", lambda start: start.startswith(b"\x59\xa6\x6a\x95"),
            SunImagePlugin.SunImageFile, _rows_problem("Sun raster")),
    _Format("JPEG 2000", lambda start: start.startswith((_JP2_SIGNATURE, _J2K_START)),
            _open_jpeg2000, _jpeg2000_problem),
)
FORMATS = tuple(format_.name for format_ in _FORMATS)
_BY_NAME = {format_.name: format_ for format_ in _FORMATS}
