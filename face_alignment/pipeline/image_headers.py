"""What an image file's header says, read before anything is decoded: its format (one of
``FORMATS``), its width and height (``read_header``), and whether the file holds all the data
its header announces (``check_complete``). Each problem raises ImageReadError in one line
naming the file; read_image (image.py) asks these first, so that a decompression bomb or a
cut-short file never reaches a decoder, nor lets libjpeg, libpng, libtiff, OpenJPEG or
OpenCV print their complaints on stderr."""
import functools
import io
import re
import struct
import zlib
from typing import BinaryIO, Callable, Dict, List, NamedTuple, Optional, Tuple

from ..errors import ImageReadError

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


def _reader(data: bytes) -> Callable[[int, int], bytes]:
    """``read(offset, size)`` over the whole file's bytes, as _read_exactly over the file."""
    def read(offset: int, size: int) -> bytes:
        if offset + size > len(data):
            raise _Truncated()
        return data[offset:offset + size]
    return read


def read_header(path: str, f: BinaryIO) -> Tuple[str, int, int]:
    """(format, width, height) from the file's header, reading nothing else."""
    start = f.read(16)
    format_ = next((candidate for candidate in _FORMATS if candidate.matches(start)), None)
    if format_ is None:
        raise ImageReadError(f"{path}: not a readable image (expected "
                             f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]})")
    kind = format_.name
    try:
        width, height = format_.size(f, start)
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
    fields = _tiff_fields(functools.partial(_read_exactly, f), start)
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


def check_complete(path: str, kind: str, data: bytes) -> None:
    """ImageReadError unless the file holds all its image data."""
    try:
        problem = _BY_NAME[kind].problem(data)
    except _Truncated:  # a header read again, of a file that changed since read_header
        problem = f"truncated {kind} (the file ends inside its header)"
    except ValueError as e:
        problem = f"not a readable {kind} ({e.args[0]})"
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
    pixels_at, header_size = struct.unpack_from("<II", data, 10)  # read_header read these
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
    try:
        fields = _tiff_fields(_reader(data), data[:16])
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


# Netpbm (P1 to P6): the magic number, then width, height and, but for bitmaps (P1, P4),
# maxval, as decimal numbers between whitespace and '#' comments (to the end of the line),
# then one byte (whitespace) and the pixels. P1-P3 ("plain") hold them as decimal numbers,
# P4-P6 as bytes: P4 one bit a pixel with each row padded to whole bytes, P5 and P6 one byte
# a sample (P6 has three samples a pixel), or two big-endian ones when maxval is above 255.
_NETPBM_GAP = re.compile(rb"(?:\s|#[^\r\n]*[\r\n])*")
_NETPBM_DIGITS = re.compile(rb"\d*")
_NETPBM_NAMES = ("width", "height", "maxval")


def _netpbm_header(f: BinaryIO) -> Tuple[int, int, int, int, int]:
    """The magic number's digit, width, height, maxval (1 for P1 and P4, which have none)
    and where the pixels start; reads the file only as far as its header."""
    f.seek(0)
    text = f.read(64)
    kind = text[1] - ord("0")
    numbers, at = [], 2
    while len(numbers) < (2 if kind in (1, 4) else 3):
        start = _NETPBM_GAP.match(text, at).end()
        end = _NETPBM_DIGITS.match(text, start).end()
        # Undecided while the gap, a comment or the number may go on past what was read.
        if end == len(text) or (end == start and text[start] == ord("#")):
            more = f.read(max(4096, len(text)))
            if not more:
                raise _Truncated()
            text += more
            continue
        if end == start:
            raise ValueError(f"{chr(text[start])!r} at byte {start} of its header, "
                             f"where its {_NETPBM_NAMES[len(numbers)]} should be")
        if end - start > 10:  # longer than any size OpenCV reads (up to 2**31 - 1)
            raise ValueError(f"a {_NETPBM_NAMES[len(numbers)]} of {end - start} digits")
        numbers.append(int(text[start:end]))
        at = end
    width, height, maxval = numbers + [1] * (3 - len(numbers))
    if width == 0 or height == 0:
        raise ValueError(f"{width} x {height} pixels")
    if not 0 < maxval <= 65535:
        raise ValueError(f"a maxval of {maxval}, not 1 to 65535")
    return kind, width, height, maxval, at + 1


def netpbm_maxval(data: bytes) -> Tuple[int, int]:
    """The magic number's digit (1 to 6) and the maxval (1 for bitmaps) of a Netpbm file."""
    kind, _, _, maxval, _ = _netpbm_header(io.BytesIO(data))
    return kind, maxval


def _netpbm_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    return _netpbm_header(f)[1:3]


# Digits to "1", every other byte to "0".
_NETPBM_DIGIT_MARKS = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_NETPBM_CHUNK = 1 << 24


def _netpbm_problem(data: bytes) -> Optional[str]:
    kind, width, height, maxval, pixels_at = _netpbm_header(io.BytesIO(data))
    channels = 3 if kind in (3, 6) else 1
    samples = width * height * channels
    if kind == 1:  # one digit a pixel, spaces optional
        found = data.count(b"0", pixels_at) + data.count(b"1", pixels_at)
    elif kind in (2, 3):
        # Decimal numbers, counted a chunk at a time where they end ("10"): one that runs
        # into the end of the file may have been cut, and OpenCV, reading a byte past each
        # number, fails on it.
        found, before = 0, b"0"
        for at in range(pixels_at, len(data), _NETPBM_CHUNK):
            marks = data[at:at + _NETPBM_CHUNK].translate(_NETPBM_DIGIT_MARKS)
            found += marks.count(b"10") + (before + marks[:1] == b"10")
            before = marks[-1:]
    else:
        row = (width + 7) // 8 if kind == 4 else width * channels * (1 if maxval < 256 else 2)
        if pixels_at + row * height > len(data):
            return "truncated Netpbm (the file ends before its last row of pixels)"
        return None
    if found < samples:
        return f"truncated Netpbm (the file ends after {found} of its {samples} values)"
    return None


# Sun raster: a big-endian header of eight 32-bit words (magic number, width, height, bits a
# pixel, length of the pixel data, type, colour map type, colour map length), the colour map,
# then the pixels. The old (0) and standard (1) types store rows of width x depth bits padded
# to 16 bits; the run-length encoded (2) and RGB (3) ones OpenCV (4.11) does not decode.
_SUN_MAGIC = b"\x59\xa6\x6a\x95"


def _sun_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    return struct.unpack_from(">II", _read_exactly(f, 0, 32), 4)


def _sun_problem(data: bytes) -> Optional[str]:
    if len(data) < 32:
        raise _Truncated()
    width, height, depth, _, kind, _, map_length = struct.unpack_from(">7I", data, 4)
    row = (width * depth + 15) // 16 * 2
    if kind in (0, 1) and 32 + map_length + row * height > len(data):
        return "truncated Sun raster (the file ends before its last row of pixels)"
    return None


# JPEG 2000: a JP2 file is a row of boxes (a 32-bit big-endian length, counting its own 8
# bytes; 1 for a 64-bit length after the type, 0 for "to the end of the file"; then a
# four-letter type): the signature box, then among others a jp2h box whose ihdr box holds
# height and width, and a jp2c box holding the codestream. A codestream, also a file of its
# own (.j2k), starts with its start-of-codestream (FF4F) and SIZ (FF51) markers, SIZ holding
# the canvas's right and bottom edges (Xsiz, Ysiz) and the image's left and top ones (XOsiz,
# YOsiz), and ends with its end-of-codestream marker (FFD9). The decoder sizes its image from
# SIZ, so a JP2's ihdr must agree with it. Whether a codestream is whole is judged by its
# end marker alone (entropy-coded data cannot hold one), not by parsing its tiles.
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_START = b"\xff\x4f\xff\x51"
_J2K_END = b"\xff\xd9"


def _jp2_box(read, offset: int) -> Tuple[bytes, int, Optional[int]]:
    """The type, content offset and end (None: the end of the file) of the box at
    ``offset``; ``read(offset, size)`` gives the file's bytes."""
    length, kind = struct.unpack(">I4s", read(offset, 8))
    if length == 0:
        return kind, offset + 8, None
    if length == 1:
        length, = struct.unpack(">Q", read(offset + 8, 8))
        start = offset + 16
    else:
        start = offset + 8
    if offset + length < start:
        raise ValueError(f"a {kind.decode('latin-1')} box of {length} bytes at byte {offset}")
    return kind, start, offset + length


def _jp2_codestream(read) -> Tuple[int, Optional[int], Optional[Tuple[int, int]]]:
    """Where a JP2's codestream starts and ends (None: at the end of the file), and the
    (width, height) of its ihdr box."""
    offset, size = len(_JP2_SIGNATURE), None
    while True:
        kind, start, end = _jp2_box(read, offset)
        if kind == b"jp2h":  # a superbox: ihdr is among the boxes it holds
            inner = start
            while size is None and (end is None or inner < end):
                inner_kind, inner_start, inner = _jp2_box(read, inner)
                if inner_kind == b"ihdr":
                    height, width = struct.unpack(">II", read(inner_start, 8))
                    size = width, height
                if inner is None:
                    break
        elif kind == b"jp2c":
            return start, end, size
        if end is None:
            raise ValueError("no codestream (jp2c) box")
        offset = end


def _j2k_size(read, offset: int) -> Tuple[int, int]:
    """(width, height) from the SIZ marker segment of the codestream at ``offset``."""
    start, width, height, left, top = struct.unpack(">4s2x2xIIII", read(offset, 24))
    if start != _J2K_START:
        raise ValueError("no start-of-codestream and SIZ markers at its codestream's start")
    if width <= left or height <= top:
        raise ValueError(f"an image from ({left}, {top}) to ({width}, {height})")
    return width - left, height - top


def _jpeg2000_size(f: BinaryIO, start: bytes) -> Tuple[int, int]:
    read = functools.partial(_read_exactly, f)
    if start.startswith(_J2K_START):
        return _j2k_size(read, 0)
    codestream, _, header_size = _jp2_codestream(read)
    if header_size is None:
        raise ValueError("no image header (ihdr) box before its codestream")
    size = _j2k_size(read, codestream)
    if size != header_size:
        raise ValueError(f"an image header (ihdr) of {header_size[0]} x {header_size[1]} "
                         f"pixels but a codestream of {size[0]} x {size[1]}")
    return size


def _jpeg2000_problem(data: bytes) -> Optional[str]:
    end = len(data)
    if not data.startswith(_J2K_START):
        _, end, _ = _jp2_codestream(_reader(data))
        if end is None:
            end = len(data)
        elif end > len(data):
            return "truncated JPEG 2000 (the file ends inside its codestream box)"
    if data[end - 2:end] != _J2K_END:
        return "truncated JPEG 2000 (its codestream lacks its end-of-codestream marker)"
    return None


class _Format(NamedTuple):
    name: str  # as error messages call it
    matches: Callable[[bytes], bool]  # given the file's first 16 bytes
    size: Callable[[BinaryIO, bytes], Tuple[int, int]]  # (width, height), given the file and them
    problem: Callable[[bytes], Optional[str]]  # what is missing from the whole file, if anything


# The formats read_image accepts, each with its signature, its size and its completeness
# check; the one list of them.
_FORMATS = (
    _Format("JPEG", lambda start: start.startswith(b"\xff\xd8\xff"), _jpeg_size, _jpeg_problem),
    _Format("PNG", lambda start: start.startswith(_PNG_SIGNATURE), _png_size, _png_problem),
    _Format("BMP", lambda start: start.startswith(b"BM"), _bmp_size, _bmp_problem),
    _Format("TIFF", lambda start: start[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
            _tiff_size, _tiff_problem),
    _Format("WebP", lambda start: start[:4] == b"RIFF" and start[8:12] == b"WEBP",
            _webp_size, _webp_problem),
    _Format("Netpbm", lambda start: re.match(rb"P[1-6][\s#]", start) is not None,
            _netpbm_size, _netpbm_problem),
    _Format("Sun raster", lambda start: start.startswith(_SUN_MAGIC), _sun_size, _sun_problem),
    _Format("JPEG 2000", lambda start: start.startswith((_JP2_SIGNATURE, _J2K_START)),
            _jpeg2000_size, _jpeg2000_problem),
)
FORMATS = tuple(format_.name for format_ in _FORMATS)
_BY_NAME = {format_.name: format_ for format_ in _FORMATS}
