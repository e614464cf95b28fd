"""read_image on files the test writes with cv2 (grey, RGBA, 16-bit, EXIF-rotated JPEG),
on arrays, on bad inputs (too many pixels, cut short), and on the shared photographs;
list_images on a folder tree."""
import io
import os
import struct
import tracemalloc
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from face_alignment.errors import FaceAlignmentError, ImageReadError
from face_alignment.pipeline import image_headers
from face_alignment.pipeline.image import IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS, list_images, read_image
from face_alignment.video.reader import probe_video
from face_alignment.weights.convert import read_torch_checkpoint
from face_alignment.weights.h5 import read_h5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACES = os.path.join(ROOT, "..", "shared", "data", "faces")


def _assert_rgb8(image: np.ndarray, height: int, width: int) -> None:
    assert image.shape == (height, width, 3)
    assert image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]


def test_grey_png_becomes_three_equal_channels(tmp_path):
    grey = np.arange(35 * 20, dtype=np.uint8).reshape(35, 20) * 7  # wraps: uses all values
    path = str(tmp_path / "grey.png")
    assert cv2.imwrite(path, grey)
    image = read_image(path)
    _assert_rgb8(image, 35, 20)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], grey)


def test_rgba_png_drops_alpha_and_keeps_rgb_order(tmp_path):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, size=(17, 23, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 23).astype(np.uint8)  # includes fully transparent
    path = str(tmp_path / "rgba.png")
    # cv2 writes BGRA, so the file holds our RGBA once the colour channels are swapped.
    assert cv2.imwrite(path, rgba[..., [2, 1, 0, 3]])
    image = read_image(path)
    _assert_rgb8(image, 17, 23)
    np.testing.assert_array_equal(image, rgba[..., :3])


def test_16bit_png_is_scaled_by_257_with_rounding(tmp_path):
    values = np.array([0, 128, 129, 257, 385, 386, 1000, 32767, 32768, 65407, 65535],
                      dtype=np.uint16)
    grey16 = np.tile(values, (3, 1))
    path = str(tmp_path / "deep.png")
    assert cv2.imwrite(path, grey16)
    image = read_image(path)
    _assert_rgb8(image, 3, values.size)
    expected = np.floor(values / 257.0 + 0.5).astype(np.uint8)
    assert expected[0] == 0 and expected[-1] == 255  # full range kept, not clipped
    np.testing.assert_array_equal(image[0, :, 0], expected)
    np.testing.assert_array_equal(image[..., 1], image[..., 0])


def test_16bit_colour_png_keeps_channel_order(tmp_path):
    rgb16 = np.zeros((2, 2, 3), dtype=np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 257 * 100, 0
    path = str(tmp_path / "deep_colour.png")
    assert cv2.imwrite(path, rgb16[..., ::-1])
    np.testing.assert_array_equal(read_image(path)[0, 0], [255, 100, 0])


def _jpeg_with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 EXIF segment holding only the orientation tag (0x0112)."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((24, 40, 3), dtype=np.uint8)
    stored[:, :8] = 255  # white band on the left of the stored pixels
    ok, encoded = cv2.imencode(".jpg", stored)
    assert ok
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_jpeg_with_exif_orientation(encoded.tobytes(), 6))  # 6: rotate 90° cw
    image = read_image(str(path))
    _assert_rgb8(image, 40, 24)
    # Turned clockwise, the stored left band becomes the top rows.
    assert image[:8].mean() > 200 and image[12:].mean() < 40


def test_arrays_are_converted_and_copied():
    rgb = np.random.default_rng(2).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    copy = read_image(rgb)
    np.testing.assert_array_equal(copy, rgb)
    assert not np.shares_memory(copy, rgb)
    floats = np.array([[0.0, 0.5, 1.0, 0.2]])
    np.testing.assert_array_equal(read_image(floats)[0, :, 2], [0, 128, 255, 51])
    non_contiguous = np.asfortranarray(rgb)[:, ::2]
    _assert_rgb8(read_image(non_contiguous), 5, 3)
    np.testing.assert_array_equal(read_image(rgb[..., :1])[..., 2], rgb[..., 0])


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8),
                                 np.full((2, 2), 1.5), np.full((2, 2), 300, np.int32)])
def test_bad_arrays_raise(bad):
    with pytest.raises(FaceAlignmentError):
        read_image(bad)


def test_text_file_raises_naming_it(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n")
    with pytest.raises(ImageReadError) as caught:
        read_image(str(path))
    assert str(caught.value) == (f"{path}: not a readable image (expected JPEG, PNG, BMP, TIFF, "
                                 "WebP, Netpbm, Sun raster or JPEG 2000)")


def test_missing_file_raises_naming_it(tmp_path):
    path = tmp_path / "absent.png"
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_pipe_is_not_called_missing(tmp_path):
    """bash's --test-image <(curl ...) is a pipe: it exists, but can be read only once, and
    the header is checked before the image is read."""
    path = tmp_path / "stream.jpg"
    os.mkfifo(path)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: not a regular file (a pipe or device); expected an image file"


@pytest.mark.parametrize("call, what", [
    (read_image, "an image file"), (read_h5, "a file"), (read_torch_checkpoint, "a file"),
    (probe_video, "a video file")])
def test_a_folder_where_a_file_is_expected_is_called_a_folder(tmp_path, call, what):
    with pytest.raises(FaceAlignmentError) as caught:
        call(tmp_path)
    assert str(caught.value) == f"{tmp_path}: a folder; expected {what}"


@pytest.mark.parametrize("name, shape", [("breakingbad", (1080, 1920, 3)),
                                         ("einstein", (1024, 817, 3))])
def test_shared_photos_match_cv2_decoding(name, shape):
    path = os.path.join(FACES, name + ".jpg")
    image = read_image(path)
    _assert_rgb8(image, *shape[:2])
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image, bgr[..., ::-1])
    if name == "breakingbad":
        # A colour photo: the order matters, red and blue planes really differ.
        assert np.abs(image[..., 0].astype(int) - image[..., 2]).mean() > 5


def test_list_images_filters_sorts_and_recurses(tmp_path):
    for relative in ["b.JPG", "a.png", "c.txt", ".hidden.jpg", "sub/d.jpeg", ".git/e.png"]:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    assert list_images(tmp_path) == [str(tmp_path / "a.png"), str(tmp_path / "b.JPG")]
    assert list_images(str(tmp_path), recursive=True) == [
        str(tmp_path / "a.png"), str(tmp_path / "b.JPG"), str(tmp_path / "sub" / "d.jpeg")]
    assert {".jpg", ".png"} <= IMAGE_EXTENSIONS
    with pytest.raises(FaceAlignmentError):
        list_images(tmp_path / "nowhere")


def test_the_issue_s_types_are_listed():
    assert {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)


# Formats that keep pixels exactly; the others are compared loosely.
_LOSSY = {".jpg", ".jpeg", ".jpe", ".jp2", ".webp"}


@pytest.mark.parametrize("extension", sorted(IMAGE_EXTENSIONS))
def test_every_listed_type_is_read(tmp_path, extension):
    """Each suffix listed is one OpenCV writes and read_image reads back: listing a type
    nothing can decode would send users' files to an error instead of the evaluation."""
    # Smooth, so that lossy codecs keep it close; red, green and blue differ, so that a
    # channel swap shows.
    y, x = np.mgrid[0:64, 0:80]
    rgb = np.stack((x * 3, y * 4, np.full_like(x, 200) - y), axis=2).astype(np.uint8)
    if extension == ".pgm":  # grey only
        rgb = np.repeat(rgb[..., :1], 3, axis=2)
    if extension == ".pbm":  # black and white only
        rgb = np.repeat((rgb[..., :1] > 127).astype(np.uint8) * 255, 3, axis=2)
    written = rgb[..., 0] if extension in (".pgm", ".pbm") else rgb[..., ::-1]
    path = str(tmp_path / f"picture{extension.upper() if extension == '.ppm' else extension}")
    assert cv2.imwrite(path, written)
    image = read_image(path)
    _assert_rgb8(image, 64, 80)
    if extension in _LOSSY:
        assert np.abs(image.astype(int) - rgb).mean() < 4
    else:
        np.testing.assert_array_equal(image, rgb)
    assert list_images(tmp_path) == [path]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_30000_pixel_square_png_is_refused_from_its_header(tmp_path, capfd):
    """A PNG declaring 30000 x 30000 RGB pixels (a real one, all black, compresses to 1 MB and
    took 11 GB and 42 s to decode): refused from its header, in one line that says how to
    raise the limit, before any decoder allocates a pixel. Only its first row is stored."""
    row = zlib.compress(b"\0" * (1 + 3 * 30000))
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                     + _png_chunk(b"IDAT", row) + _png_chunk(b"IEND", b""))
    assert 30000 * 30000 > MAX_IMAGE_PIXELS
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError) as caught:
            read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "\n" not in message and peak < 2 ** 20
    for fragment in (str(path), "30000 x 30000 pixels", "900 megapixels",
                     f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels", "max_pixels"):
        assert fragment in message, (fragment, message)
    assert capfd.readouterr().err == ""


def test_pillow_s_own_pixel_limit_does_not_decide(tmp_path):
    """12000 x 12000 pixels: within our 150 megapixels, above Pillow's 89 (a warning) and
    twice that (an error); only read_image's limit may refuse it."""
    path = tmp_path / "large.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0))
                     + _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b""))
    assert Image.MAX_IMAGE_PIXELS < 12000 * 12000 < MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open(path, "rb") as f:
            assert image_headers.read_header(str(path), f) == ("PNG", 12000, 12000)
        with pytest.raises(ImageReadError, match="12000 x 12000 pixels"):
            read_image(path, max_pixels=12000 * 12000 - 1)


@pytest.mark.parametrize("name, params", [
    ("baseline.jpg", []), ("progressive.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), ("a.png", []),
    ("a.bmp", []), ("a.tif", []), ("lossy.webp", [cv2.IMWRITE_WEBP_QUALITY, 90]),
    ("lossless.webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), ("alpha.webp", [cv2.IMWRITE_WEBP_QUALITY, 90]),
    ("a.ppm", []), ("plain.ppm", [cv2.IMWRITE_PXM_BINARY, 0]), ("a.pgm", []),
    ("plain.pgm", [cv2.IMWRITE_PXM_BINARY, 0]), ("a.pbm", []), ("plain.pbm", [cv2.IMWRITE_PXM_BINARY, 0]),
    ("a.pnm", []), ("a.sr", []), ("a.ras", []), ("grey.sr", []), ("a.jp2", []), ("grey.jp2", [])])
def test_every_format_is_sized_from_its_header(tmp_path, name, params):
    """The limit applies at exactly width x height, as written by OpenCV in each format."""
    channels = 4 if name.startswith("alpha") else 3  # lossy WebP with alpha: an extended header
    image = np.random.default_rng(3).integers(0, 256, (37, 53, channels), dtype=np.uint8)
    if name.endswith((".pgm", ".pbm")) or name.startswith("grey"):
        image = image[..., 0]
    path = str(tmp_path / name)
    assert cv2.imwrite(path, image, params)
    _assert_rgb8(read_image(path, max_pixels=53 * 37), 37, 53)
    with pytest.raises(ImageReadError, match=r"of 53 x 37 pixels \(0.00196 megapixels\)"):
        read_image(path, max_pixels=53 * 37 - 1)


def _pillow_tiff(pixels: np.ndarray, **options) -> bytes:
    """A TIFF written by Pillow, which puts its directory before the pixels (OpenCV after)."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "TIFF", **options)
    return out.getvalue()


@pytest.mark.parametrize("big", [False, True])
def test_tiff_cut_inside_its_strip_is_refused_silently(tmp_path, capfd, big):
    """The directory is whole but the pixels are not: OpenCV printed a warning and an error."""
    grey = np.random.default_rng(4).integers(0, 256, (60, 110), dtype=np.uint8)
    whole = _pillow_tiff(grey, big_tiff=big)
    path = tmp_path / "cut.tif"
    path.write_bytes(whole)
    np.testing.assert_array_equal(read_image(path, max_pixels=6600)[..., 1], grey)
    with pytest.raises(ImageReadError, match="TIFF of 110 x 60 pixels"):
        read_image(path, max_pixels=6599)
    path.write_bytes(whole[:-3000])
    capfd.readouterr()
    with pytest.raises(ImageReadError, match=r"cut\.tif: truncated TIFF \(the file ends before its image data"):
        read_image(path)
    assert capfd.readouterr().err == ""


def test_a_big_endian_bigtiff_is_refused_in_one_line(tmp_path):
    """Pillow (12.3) reads its header as a classic TIFF's, and would size it from nonsense."""
    path = tmp_path / "motorola.tif"
    path.write_bytes(b"MM\x00+" + struct.pack(">HHQ", 8, 0, 16) + bytes(200))
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable TIFF") and "big-endian BigTIFF" in message


def _photo_bytes(suffix: str, params=()) -> bytes:
    image = cv2.resize(cv2.imread(os.path.join(FACES, "einstein.jpg")), (200, 250))
    if suffix in (".pgm", ".pbm"):  # grey only
        image = image[..., 0]
    ok, encoded = cv2.imencode(suffix, image, list(params))
    assert ok
    return encoded.tobytes()


def _with_comment(jpeg: bytes, text: bytes) -> bytes:
    """The JPEG with a COM segment holding ``text`` right after its start marker."""
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpeg[2:]


@pytest.mark.parametrize("suffix, params, cut, problem", [
    (".jpg", (), 0.5, "truncated JPEG"),
    (".jpg", (), -2, "truncated JPEG"),  # only the end-of-image marker missing
    (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), 0.7, "truncated JPEG"),
    ("comment.jpg", (), 0.5, "truncated JPEG"),  # an end marker's bytes in a comment do not count
    (".jpg", (), 100, "truncated JPEG (the file ends inside its header)"),
    (".png", (), 0.5, "truncated PNG"),
    (".png", (), 20, "truncated PNG (the file ends inside its header)"),
    (".bmp", (), 0.5, "truncated BMP"),
    (".webp", (), 0.5, "truncated WebP"),
    (".tif", (), 0.5, "truncated TIFF"),  # OpenCV writes the header at the end
    (".ppm", (), 0.5, "truncated Netpbm (the file ends before its last row of pixels)"),
    (".ppm", (), -1, "truncated Netpbm (the file ends before its last row of pixels)"),
    (".ppm", (), 7, "truncated Netpbm (the file ends inside its header)"),
    (".pgm", (), -1, "truncated Netpbm (the file ends before its last row of pixels)"),
    (".pbm", (), -1, "truncated Netpbm (the file ends before its last row of pixels)"),
    (".ppm", (cv2.IMWRITE_PXM_BINARY, 0), 0.5, "truncated Netpbm (the file ends after "),
    (".pgm", (cv2.IMWRITE_PXM_BINARY, 0), 0.5, "truncated Netpbm (the file ends after "),
    (".pbm", (cv2.IMWRITE_PXM_BINARY, 0), 0.5, "truncated Netpbm (the file ends after "),
    (".sr", (), 0.5, "truncated Sun raster (the file ends before its last row of pixels)"),
    (".ras", (), -1, "truncated Sun raster (the file ends before its last row of pixels)"),
    (".sr", (), 31, "truncated Sun raster (the file ends inside its header)"),
    (".jp2", (), 0.5, "truncated JPEG 2000 (the file ends inside its codestream box)"),
    (".jp2", (), -1, "truncated JPEG 2000 (the file ends inside its codestream box)"),
    (".jp2", (), 60, "truncated JPEG 2000 (the file ends inside its header)"),
])
def test_cut_short_files_are_refused_in_one_line_and_nothing_else_is_printed(
        tmp_path, capfd, suffix, params, cut, problem):
    """Before, a cut-short JPEG came back half grey after libjpeg printed 'Premature end of
    JPEG file', and PNG and BMP ones left libpng's or OpenCV's messages on stderr."""
    if suffix == "comment.jpg":
        whole = _with_comment(_photo_bytes(".jpg"), b"\xff\xd9 is an end-of-image marker")
    else:
        whole = _photo_bytes(suffix, params)
    size = int(len(whole) * cut) if isinstance(cut, float) else cut if cut > 0 else len(whole) + cut
    path = tmp_path / ("photo." + suffix.split(".")[-1])
    path.write_bytes(whole[:size])
    capfd.readouterr()
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
    assert capfd.readouterr().err == ""
    path.write_bytes(whole)  # the whole file reads
    _assert_rgb8(read_image(path), 250, 200)


@pytest.mark.parametrize("suffix, depth, binary, chunk", [
    (".pbm", np.uint8, 0, None), (".pgm", np.uint16, 0, None), (".ppm", np.uint16, 0, None),
    (".pgm", np.uint16, 0, 4), (".ppm", np.uint16, 0, 4), (".pbm", np.uint8, 1, None),
    (".pgm", np.uint16, 1, None), (".ppm", np.uint16, 1, None)])
def test_netpbm_of_16_bit_samples_plain_or_binary_cut_by_one_byte(tmp_path, capfd, monkeypatch, suffix, depth,
                                                                   binary, chunk):
    """Our count of a Netpbm file's pixels: rows of two bytes a sample above a maxval of
    255, one bit a pixel in bitmaps; plain numbers counted ``chunk`` bytes at a time, so that
    many straddle two chunks."""
    if chunk:
        monkeypatch.setattr(image_headers, "_NETPBM_CHUNK", chunk)
    rng = np.random.default_rng(7)
    samples = rng.integers(0, 65536 if depth == np.uint16 else 256, (6, 11, 3)).astype(depth)
    if suffix != ".ppm":
        samples = samples[..., 0] if suffix == ".pgm" else (samples[..., 0] > 127).astype(np.uint8) * 255
    ok, encoded = cv2.imencode(suffix, samples, [cv2.IMWRITE_PXM_BINARY, binary])
    whole = encoded.tobytes()
    path = tmp_path / f"written{suffix}"
    path.write_bytes(whole)
    # What was written, through the array path's same scaling (cv2 writes colour as BGR).
    np.testing.assert_array_equal(read_image(path, max_pixels=66),
                                  read_image(samples[..., ::-1] if samples.ndim == 3 else samples))
    with pytest.raises(ImageReadError, match=r"written\.p.m: Netpbm of 11 x 6 pixels"):
        read_image(path, max_pixels=65)
    # Cut by one byte: the binary ones lose part of their last row; the plain ones end inside
    # their last number, which might have been longer (and OpenCV reads a byte past it).
    path.write_bytes(whole[:-1] if binary else whole.rstrip()[:-1])
    capfd.readouterr()
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: truncated Netpbm (the file ends ") and "\n" not in message
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("header", [b"P6\n53 x7\n255\n", b"P2 0 4 255\n", b"P3 4 4 65536\n"])
def test_malformed_netpbm_headers_are_refused_in_one_line(tmp_path, header):
    path = tmp_path / "bad.ppm"
    path.write_bytes(header + b"\x00" * 100)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable Netpbm (") and "\n" not in message


@pytest.mark.parametrize("kind, data", [
    ("Netpbm", b"P6 12"), ("JPEG 2000", b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00"),
    ("TIFF", b"II*\x00\x08\x00\x00\x00\x01")])
def test_a_file_changed_after_its_header_was_read_is_refused_in_one_line(kind, data):
    """check_complete reads some headers again, from the whole file's bytes: if the file
    changed since read_header, those may no longer parse."""
    with pytest.raises(ImageReadError) as caught:
        image_headers.check_complete("f", kind, data)
    assert str(caught.value) == f"f: truncated {kind} (the file ends inside its header)"


@pytest.mark.parametrize("extension", [".sr", ".ras"])
def test_grey_sun_raster_keeps_its_greys(tmp_path, extension):
    """OpenCV 4.11, asked for grey, decodes the grey rasters it writes as all black."""
    grey = np.random.default_rng(11).integers(1, 256, (7, 9), dtype=np.uint8)
    path = str(tmp_path / f"grey{extension}")
    assert cv2.imwrite(path, grey)
    np.testing.assert_array_equal(read_image(path), np.repeat(grey[..., None], 3, axis=2))


def _jp2_variant(jp2: bytes, variant: str) -> bytes:
    """OpenCV's JP2 file rewritten: its codestream box with a 64-bit length, or with none
    (to the end of the file), or the bare codestream (a .j2k file)."""
    at = jp2.index(b"jp2c") - 4  # OpenCV writes the codestream box last
    stream = jp2[at + 8:]
    assert len(stream) + 8 == struct.unpack(">I", jp2[at:at + 4])[0] and stream.startswith(b"\xff\x4f\xff\x51")
    if variant == "64-bit length":
        return jp2[:at] + struct.pack(">I4sQ", 1, b"jp2c", 16 + len(stream)) + stream
    if variant == "to the end":
        return jp2[:at] + struct.pack(">I4s", 0, b"jp2c") + stream
    return stream


@pytest.mark.parametrize("variant, cut_problem", [
    ("64-bit length", "the file ends inside its codestream box"),
    ("to the end", "its codestream lacks its end-of-codestream marker"),
    ("bare codestream", "its codestream lacks its end-of-codestream marker")])
def test_jpeg_2000_boxes_and_bare_codestreams(tmp_path, capfd, variant, cut_problem):
    image = np.random.default_rng(12).integers(0, 256, (37, 53, 3), dtype=np.uint8)  # 32 px at least
    ok, encoded = cv2.imencode(".jp2", image)
    assert ok
    whole = _jp2_variant(encoded.tobytes(), variant)
    path = tmp_path / "variant.jp2"
    path.write_bytes(whole)
    expected = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]  # what OpenCV makes of its file
    np.testing.assert_array_equal(read_image(path, max_pixels=53 * 37), expected)
    with pytest.raises(ImageReadError, match=r"variant\.jp2: JPEG 2000 of 53 x 37 pixels"):
        read_image(path, max_pixels=53 * 37 - 1)
    path.write_bytes(whole[:-1])
    capfd.readouterr()
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: truncated JPEG 2000 ({cut_problem})"
    assert capfd.readouterr().err == ""


def _siz_patched(codestream: bytes, **fields) -> bytes:
    """The codestream with SIZ fields replaced (Xsiz, Ysiz, XOsiz, YOsiz, XTOsiz, YTOsiz)."""
    names = ("Xsiz", "Ysiz", "XOsiz", "YOsiz", "XTsiz", "YTsiz", "XTOsiz", "YTOsiz")
    values = dict(zip(names, struct.unpack(">8I", codestream[8:40])), **fields)
    return codestream[:8] + struct.pack(">8I", *(values[name] for name in names)) + codestream[40:]


def test_jp2_whose_header_box_and_codestream_disagree_is_refused(tmp_path):
    """The decoder allocates what the codestream says: a small ihdr box must not hide it."""
    ok, encoded = cv2.imencode(".jp2", np.zeros((37, 53, 3), np.uint8))
    assert ok
    jp2 = encoded.tobytes()
    at = jp2.index(b"jp2c") + 4
    path = tmp_path / "liar.jp2"
    path.write_bytes(jp2[:at] + _siz_patched(jp2[at:], Xsiz=30000, Ysiz=30000))
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(caught.value) == (f"{path}: not a readable JPEG 2000 (an image header (ihdr) of "
                                 "53 x 37 pixels but a codestream of 30000 x 30000)")


def _broken_jp2(how: str) -> bytes:
    ok, encoded = cv2.imencode(".jp2", np.zeros((37, 53, 3), np.uint8))
    assert ok
    jp2 = encoded.tobytes()
    header, codestream = jp2.index(b"jp2h") - 4, jp2.index(b"jp2c") + 4
    if how == "short box":
        return jp2[:header] + struct.pack(">I", 4) + jp2[header + 4:]
    return jp2[:codestream] + b"\x00\x00" + jp2[codestream + 2:]


@pytest.mark.parametrize("how, problem", [
    ("short box", "not a readable JPEG 2000"),
    ("no codestream", "not a readable JPEG 2000 (no start-of-codestream and SIZ markers")])
def test_malformed_jpeg_2000_headers_are_refused_in_one_line(tmp_path, how, problem):
    path = tmp_path / "bad.jp2"
    path.write_bytes(_broken_jp2(how))
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_corrupt_png_chunk_is_refused_by_its_checksum(tmp_path, capfd):
    data = bytearray(_photo_bytes(".png"))
    data[len(data) // 2] ^= 0x55  # inside the image data
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(ImageReadError, match=r"flipped\.png: corrupt PNG: .*IDAT"):
        read_image(path)
    assert capfd.readouterr().err == ""


def test_jpeg_with_bytes_after_its_end_marker_still_reads(tmp_path):
    """Some cameras append data after the end-of-image marker; decoders ignore it."""
    whole = _photo_bytes(".jpg")
    path = tmp_path / "trailer.jpg"
    path.write_bytes(whole + b"\x00" * 100 + b"camera maker's trailer")
    expected = cv2.imdecode(np.frombuffer(whole, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(read_image(path), expected)
