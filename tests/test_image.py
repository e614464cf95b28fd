"""read_image on files the test writes with cv2 (grey, RGBA, 16-bit, EXIF-rotated JPEG),
on arrays, on bad inputs, and on the shared photographs; list_images on a folder tree."""
import os
import struct

import cv2
import numpy as np
import pytest

from face_alignment.errors import FaceAlignmentError, ImageReadError
from face_alignment.pipeline.image import IMAGE_EXTENSIONS, list_images, read_image

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
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


def test_missing_file_raises_naming_it(tmp_path):
    path = tmp_path / "absent.png"
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


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
