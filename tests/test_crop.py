"""Crops and back-projection against the authors' own functions (face-alignment 1.5.0) and a
transcription of ibug's FANPredictor, on real photos."""
import os
import warnings

import cv2
import numpy as np
import pytest

import authors_reference
from conftest import peak_memory
from face_alignment.errors import FaceAlignmentError
from face_alignment.pipeline import crop as crop_module
from face_alignment.pipeline.crop import crop_faces, face_frames
from face_alignment.pipeline.decode import decode_argmax

FACES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                     "faces")
U = authors_reference.utils_module()


@pytest.fixture
def authors_preds(monkeypatch):
    """The authors' get_preds_fromhm with its heatmap loop run as plain Python (its ``py_func``):
    numba would take ~20 s to compile it. transform_np, which it calls for ``preds_orig``,
    stays compiled: its pinv is numba's, whose rounding differs from numpy's."""
    monkeypatch.setattr(U, "_get_preds_fromhm", U._get_preds_fromhm.py_func)
    return U.get_preds_fromhm


def read_photo(name):
    image = cv2.cvtColor(cv2.imread(os.path.join(FACES, name + ".jpg")), cv2.COLOR_BGR2RGB)
    lines = open(os.path.join(FACES, name + ".pts")).read().split("{")[1].split("}")[0]
    points = np.array([line.split() for line in lines.strip().splitlines()], dtype=np.float64)
    return image, points - 1.0  # iBUG files are 1-based


def authors_center_scale(box, reference_scale=195.0):
    # face-alignment 1.5.0 api.py, get_landmarks_from_image, verbatim arithmetic.
    d = box
    center = np.array([d[2] - (d[2] - d[0]) / 2.0, d[3] - (d[3] - d[1]) / 2.0])
    center[1] = center[1] - (d[3] - d[1]) * 0.12
    scale = (d[2] - d[0] + d[3] - d[1]) / reference_scale
    return center, scale


def boxes_around(image, points, rng):
    """Boxes around the annotated face, rounded like a detector's, shifted partly out of the
    image on every side, enlarged beyond the image, and random ones."""
    height, width = image.shape[:2]
    face = np.concatenate([points.min(0), points.max(0)])
    size = face[2:] - face[:2]
    boxes = [face, np.round(face), face + [-5.3, -20.1, 7.7, 3.2]]
    for dx, dy in [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (1, 1)]:
        x = -face[0] - 0.4 * size[0] if dx < 0 else width - face[2] + 0.4 * size[0]
        y = -face[1] - 0.4 * size[1] if dy < 0 else height - face[3] + 0.4 * size[1]
        boxes.append(face + [x * abs(dx), y * abs(dy)] * 2)
    boxes.append(np.array([-0.3 * width, -0.2 * height, 1.2 * width, 1.1 * height]))
    corner = rng.uniform(0, [width - 40, height - 40], (6, 2))
    sides = rng.uniform(20, 300, (6, 2))
    boxes.extend(np.concatenate([corner, corner + sides], 1))
    boxes.append(np.array([10.0, 10.0, 41.0, 49.0]))  # integer, tidy
    return np.array(boxes)


@pytest.mark.parametrize("name", ["einstein", "breakingbad"])
def test_authors_crop_is_pixel_identical(name):
    image, points = read_photo(name)
    boxes = boxes_around(image, points, np.random.default_rng(len(name)))
    crops, frames = crop_faces(image, boxes, "authors")
    assert crops.shape == (len(boxes), 3, 256, 256) and crops.dtype == np.float32
    for i, box in enumerate(boxes):
        center, scale = authors_center_scale(box)
        theirs = U.crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0
        np.testing.assert_array_equal(crops[i], theirs, err_msg=f"box {i}: {box}")
        np.testing.assert_array_equal(frames.centers[i], center)
        assert frames.scales[i] == scale
        assert frames.depth_scale[i] == 1.0 / (256 / (200.0 * scale))
    assert crops[0].max() > 0.5  # a real face, not an empty crop


def test_authors_windows_equal_their_corners():
    """The crop corners (their float32 torch affine, truncated) for many boxes, tidy ones
    (integer corners, w + h a multiple of 39 or of 195) included."""
    rng = np.random.default_rng(11)
    count = 1500
    corners = rng.uniform(-300, 2000, (count, 2))
    sides = rng.uniform(5, 900, (count, 2))
    tidy = count // 2
    corners[:tidy] = np.round(corners[:tidy] * 2) / 2
    perimeter_half = rng.choice([39, 195], tidy) * rng.integers(1, 8, tidy)
    sides[:tidy, 0] = np.floor(rng.uniform(0.3, 0.7, tidy) * perimeter_half)
    sides[:tidy, 1] = perimeter_half - sides[:tidy, 0]
    boxes = np.concatenate([corners, corners + sides], 1)
    frames = face_frames(boxes, "authors")
    theirs = []
    for box in boxes:
        center, scale = authors_center_scale(box)
        upper_left = U.transform([1, 1], center, scale, 256.0, True).numpy()
        lower_right = U.transform([256.0, 256.0], center, scale, 256.0, True).numpy()
        theirs.append(np.concatenate([upper_left, lower_right]))
    differ = np.abs(np.asarray(frames.windows) - np.asarray(theirs)).max(axis=1)
    # Random boxes: equal to the pixel on every CPU. Tidy boxes put their corners exactly on an
    # integer, where the float32 torch arithmetic of theirs rounds differently from one CPU to
    # another (equal on some; on an AVX-512 Xeon without bfloat16 units 28 of the 750 truncate
    # 1 px the other way): there, 1 px either way.
    np.testing.assert_array_equal(differ[tidy:], 0)
    assert differ[:tidy].max() <= 1


def test_authors_crop_reference_scale():
    image, points = read_photo("einstein")
    box = np.concatenate([points.min(0), points.max(0)])
    crops, frames = crop_faces(image, box[None], "authors", reference_scale=160.0)
    center, scale = authors_center_scale(box, 160.0)
    theirs = U.crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0
    np.testing.assert_array_equal(crops[0], theirs)


def ibug_crops(image, boxes):
    """hhj1897/face_alignment FANPredictor.__call__'s cropping, transcribed for the test."""
    centres = (boxes[:, [0, 1]] + boxes[:, [2, 3]]) / 2.0
    face_sizes = (boxes[:, [3, 2]] - boxes[:, [1, 0]]).mean(axis=1)
    enlarged_sizes = (face_sizes / 0.55)[:, np.newaxis].repeat(2, axis=1)
    enlarged = np.zeros_like(boxes[:, :4])
    enlarged[:, :2] = np.round(centres - enlarged_sizes / 2.0)
    enlarged[:, 2:] = np.round(enlarged[:, :2] + enlarged_sizes) + 1
    enlarged = enlarged.astype(int)
    outer = np.hstack((enlarged[:, :2].min(axis=0), enlarged[:, 2:].max(axis=0)))
    pad = np.zeros((3, 2), dtype=int)
    pad[1][0] = max(0, -outer[0])
    pad[0][0] = max(0, -outer[1])
    pad[1][1] = max(0, outer[2] - image.shape[1])
    pad[0][1] = max(0, outer[3] - image.shape[0])
    padded = np.pad(image, pad)
    patches = []
    for left, top, right, bottom in enlarged:
        left, right = left + pad[1][0], right + pad[1][0]
        top, bottom = top + pad[0][0], bottom + pad[0][0]
        patches.append(cv2.resize(padded[top:bottom, left:right, :], (256, 256)))
    crops = np.array(patches).transpose((0, 3, 1, 2)).astype(np.float32) / 255.0
    return crops, enlarged


@pytest.mark.parametrize("name", ["einstein", "breakingbad"])
def test_ibug_crop_and_back_projection(name):
    image, points = read_photo(name)
    boxes = boxes_around(image, points, np.random.default_rng(7))
    # Half-pixel box sizes put the window corners on np.round's halves.
    boxes = np.vstack([boxes, [[100.0, 100.0, 100.0 + 0.55 * 101, 100.0 + 0.55 * 101]]])
    crops, frames = crop_faces(image, boxes, "ibug")
    theirs, windows = ibug_crops(image, boxes)
    np.testing.assert_array_equal(crops, theirs)
    np.testing.assert_array_equal(frames.windows, windows)

    heatmap_points = np.random.default_rng(1).uniform(0, 64, (len(boxes), 68, 2))
    expected = heatmap_points.copy()
    for landmark, (left, top, right, bottom) in zip(expected, windows):
        landmark[:, 0] = landmark[:, 0] * (right - left) / 64 + left
        landmark[:, 1] = landmark[:, 1] * (bottom - top) / 64 + top
    np.testing.assert_allclose(frames.to_image(heatmap_points), expected, rtol=0, atol=1e-9)


def heatmap_pool(rng, count=6):
    """Heatmaps whose argmax points spread over the whole 64 x 64 grid, including borders."""
    maps = rng.random((count, 68, 64, 64)).astype(np.float32)
    peaks = rng.integers(0, 64, (count, 68, 2))
    peaks[0, :8] = [[0, 0], [63, 63], [0, 30], [30, 63], [1, 1], [62, 62], [1, 40], [40, 62]]
    faces, landmarks = np.indices((count, 68))
    maps[faces, landmarks, peaks[..., 1], peaks[..., 0]] = 2.0
    return maps


def test_authors_integer_back_projection_equals_preds_orig(authors_preds):
    rng = np.random.default_rng(3)
    pool = heatmap_pool(rng)
    count = 1200
    corners = rng.uniform(-100, 1500, (count, 2))
    sides = rng.uniform(30, 600, (count, 2))
    # Integer boxes (dlib's) whose w + h is a multiple of 39 make 200 * scale an integer,
    # so many mapped points are integers in exact arithmetic: the hard cases.
    tidy = count // 2
    corners[:tidy] = np.round(corners[:tidy])
    perimeter_half = 39 * rng.integers(2, 16, tidy)
    sides[:tidy, 0] = np.floor(rng.uniform(0.25, 0.75, tidy) * perimeter_half)
    sides[:tidy, 1] = perimeter_half - sides[:tidy, 0]
    boxes = np.concatenate([corners, corners + sides], 1)
    frames = face_frames(boxes, "authors")
    which = np.arange(count) % len(pool)
    points = decode_argmax(pool)[0][which]
    ours = frames.to_image(points, integer=True)
    expected = np.empty_like(ours)
    for i in range(count):
        center, scale = authors_center_scale(boxes[i])
        _, expected[i], _ = authors_preds(pool[which[i]][None], center, scale)
    np.testing.assert_array_equal(ours, expected)
    # The exact inverse, truncated, differs from theirs: the test can tell them apart.
    exact = frames.to_image(points).astype(np.int32)
    assert np.count_nonzero(np.any(exact != expected, axis=2)) > 20


def test_authors_float_back_projection_is_inverse_of_their_matrix():
    rng = np.random.default_rng(5)
    corners = rng.uniform(-50, 900, (50, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(20, 500, (50, 2))], 1)
    frames = face_frames(boxes, "authors")
    points = rng.uniform(-2, 66, (50, 68, 2))
    ours = frames.to_image(points)
    for i in range(len(boxes)):
        center, scale = authors_center_scale(boxes[i])
        h = 200.0 * scale
        forward = np.array([[64 / h, 0, 64 * (-center[0] / h + 0.5)],
                            [0, 64 / h, 64 * (-center[1] / h + 0.5)], [0, 0, 1]])
        homogeneous = np.concatenate([points[i], np.ones((68, 1))], 1)
        expected = (np.linalg.inv(forward) @ homogeneous.T).T[:, :2]
        np.testing.assert_allclose(ours[i], expected, rtol=0, atol=1e-9)
        # Their forward transform, back again (up to its integer truncation).
        back = np.array([U.transform_np(p, center, scale, 64.0, False) for p in ours[i][:3]])
        np.testing.assert_array_equal(back, points[i][:3].astype(np.int32))
    np.testing.assert_array_equal(frames.to_crop(points), points * 4)


def test_empty_and_bad_input():
    image = np.zeros((50, 60, 3), np.uint8)
    crops, frames = crop_faces(image, np.zeros((0, 4)))
    assert crops.shape == (0, 3, 256, 256) and len(frames) == 0
    assert frames.to_image(np.zeros((0, 68, 2)), integer=True).shape == (0, 68, 2)
    with pytest.raises(FaceAlignmentError, match=r"boxes: shape \(3,\)"):
        crop_faces(image, np.array([1.0, 2, 30]))
    with pytest.raises(FaceAlignmentError, match="no area"):
        crop_faces(image, np.array([[10.0, 10, 10, 40]]))
    with pytest.raises(FaceAlignmentError, match="NaN"):
        crop_faces(image, np.array([[10.0, np.nan, 20, 40]]))
    with pytest.raises(FaceAlignmentError, match="unknown crop convention 'dlib'"):
        crop_faces(image, np.array([[10.0, 10, 30, 40]]), "dlib")
    with pytest.raises(FaceAlignmentError, match="RGB uint8"):
        crop_faces(image.astype(np.float32), np.array([[10.0, 10, 30, 40]]))
    _, frames = crop_faces(image, np.array([[10.0, 10, 30, 40]]), "ibug")
    with pytest.raises(FaceAlignmentError, match="integer=True"):
        frames.to_image(np.zeros((1, 68, 2)), integer=True)
    with pytest.raises(FaceAlignmentError, match=r"expected \(1, landmarks, 2\)"):
        frames.to_image(np.zeros((2, 68, 2)))
    with pytest.raises(FaceAlignmentError, match="too small to crop") as caught:
        crop_faces(image, np.array([[0.0, 0, 0.001, 0.001]]))
    assert "\n" not in str(caught.value)


def test_windows_past_the_bound_still_give_the_authors_crop(monkeypatch):
    """With the bound at zero every window is resized from its gathered taps alone: still
    the authors' crop to the bit, for windows smaller and larger than 256 pixels, inside,
    across the border of and outside the image, of 512 pixels (OpenCV's 2x special case)."""
    monkeypatch.setattr(crop_module, "OPENCV_WINDOW_MAX_PIXELS", 0)
    image, points = read_photo("einstein")
    rng = np.random.default_rng(21)
    # Centres on the photo: their crop fails on windows wholly outside it.
    centres = rng.uniform(0, [image.shape[1], image.shape[0]], (40, 2))
    sides = np.exp(rng.uniform(np.log(3), np.log(2500), (40, 2)))
    boxes = np.vstack([boxes_around(image, points, rng),
                       np.concatenate([centres - sides / 2, centres + sides / 2], 1),
                       [[100.0, 100.0, 412.0, 412.0]]])  # w + h = 624: a 640-pixel window
    crops, frames = crop_faces(image, boxes, "authors")
    sizes = frames.windows[:, 2:] - frames.windows[:, :2]
    assert sizes.min() < 256 < sizes.max()
    for i, box in enumerate(boxes):
        center, scale = authors_center_scale(box)
        theirs = U.crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0
        np.testing.assert_array_equal(crops[i], theirs, err_msg=f"box {i}: {box}")


@pytest.mark.parametrize("window", [[-100, 0, 49901, 7], [5, -3, 60006, 2], [0, -20000, 8, 45001],
                                    [-7, -29000, 3, 31001], [-40000, 2, 40001, 5]])
def test_sampled_resize_equals_opencv_on_long_windows(window):
    """Long thin windows, cheap to cut out whole, compared with cv2.resize itself. Their odd
    lengths past 2**15 pixels put sample positions on 1/512 of a pixel, more than float32's
    24 bits hold: OpenCV's rounding of them decides the weights."""
    image = np.random.default_rng(8).integers(0, 256, (40, 60000, 3), dtype=np.uint8)
    image = np.ascontiguousarray(image if window[2] - window[0] > 100 else image.transpose(1, 0, 2))
    left, top, right, bottom = window
    patch = np.zeros((bottom - top, right - left, 3), np.uint8)
    y0, y1, x0, x1 = max(top, 0), min(bottom, image.shape[0]), max(left, 0), min(right, image.shape[1])
    patch[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    expected = cv2.resize(patch, (256, 256), interpolation=cv2.INTER_LINEAR)
    assert expected.any()
    np.testing.assert_array_equal(crop_module._resize_sampled_window(image, window), expected)


def bilinear_crop(image, window):
    """Bilinear resizing of the zero-padded window to 256 x 256 in float64: crop pixel d
    samples window coordinate (d + 0.5) * side / 256 - 0.5, clamped to the window (OpenCV's
    convention), from its two neighbouring pixels on each axis."""
    left, top, right, bottom = window

    def taps(side, offset):
        u = np.clip((np.arange(256) + 0.5) * side / 256 - 0.5, 0, side - 1)
        first = np.floor(u).astype(np.int64)
        return first + offset, np.minimum(first + 1, side - 1) + offset, u - first

    def pixels(rows, columns):
        inside = ((rows[:, None] >= 0) & (rows[:, None] < image.shape[0])
                  & (columns >= 0) & (columns < image.shape[1]))
        values = image[np.clip(rows, 0, image.shape[0] - 1)][:, np.clip(columns, 0, image.shape[1] - 1)]
        return np.where(inside[..., None], values, 0).astype(np.float64)

    r0, r1, fr = taps(bottom - top, top)
    c0, c1, fc = taps(right - left, left)
    fr, fc = fr[:, None, None], fc[None, :, None]
    return ((1 - fr) * ((1 - fc) * pixels(r0, c0) + fc * pixels(r0, c1))
            + fr * ((1 - fc) * pixels(r1, c0) + fc * pixels(r1, c1)))


@pytest.mark.parametrize("box", [[0.0, 0.0, 100000.0, 100000.0], [-40000.0, 1000.0, 0.0, 7000.0]])
def test_huge_box_costs_memory_of_the_crop_not_of_the_window(box):
    """A box of 100000 pixels: a window of 204326 pixels a side (117 GiB cut out whole). The
    crop takes a few MiB; the photo, tiny in it, lands where bilinear geometry puts it,
    within a grey level (OpenCV's 11-bit weights and float32 coordinates)."""
    image, _ = read_photo("einstein")
    box = np.array([box])
    (crops, frames), peak = peak_memory(lambda: crop_faces(image, box, "authors"))
    assert peak < 16 * 2 ** 20, peak
    center, scale = authors_center_scale(box[0])
    window = frames.windows[0]
    np.testing.assert_array_equal(window[:2], U.transform([1, 1], center, scale, 256.0, True).numpy())
    np.testing.assert_array_equal(window[2:], U.transform([256, 256], center, scale, 256.0, True).numpy())
    assert np.prod(window[2:] - window[:2]) > 100 * crop_module.OPENCV_WINDOW_MAX_PIXELS
    expected = bilinear_crop(image, window.tolist())
    ours = crops[0].transpose(1, 2, 0).astype(np.float64) * 255.0
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1.0)
    assert 0 < np.count_nonzero(expected.max(axis=2) > 1) < 100  # the photo is a few pixels


def test_a_tiny_reference_scale_costs_memory_of_the_crop_not_of_the_window():
    """--reference-scale 0.5 instead of 195 makes a face's window 390 times as wide: a box of
    350 x 380 pixels gets a window 290859 pixels a side, 236 GiB cut out whole (a MemoryError)."""
    image, _ = read_photo("einstein")
    box = np.array([[250.0, 260.0, 600.0, 640.0]])
    (crops, frames), peak = peak_memory(lambda: crop_faces(image, box, "authors", reference_scale=0.5))
    assert peak < 16 * 2 ** 20, peak
    side = frames.windows[0, 2] - frames.windows[0, 0]
    assert side == 290859 and crops.shape == (1, 3, 256, 256)
    np.testing.assert_allclose(crops[0].transpose(1, 2, 0) * 255.0, bilinear_crop(image, frames.windows[0].tolist()),
                               rtol=0, atol=1.0)


def test_huge_window_is_sampled_exactly_where_the_taps_fall():
    """ibug's window for this box is 1048576 = 256 * 4096 pixels a side (3 TiB cut out whole):
    crop pixel d samples window coordinate d * 4096 + 2047.5, midway between two pixels. The
    window is placed so that crop row 100 and columns 50 to 52 sample a strip of 2 x 8194
    pixels, the whole image: those three crop pixels are the mean of four image pixels
    (rounded, halves up, by OpenCV's fixed point), every other is zero."""
    strip = np.random.default_rng(5).integers(0, 256, (2, 8194, 3), dtype=np.uint8)
    side = 256 * 4096
    left, top = -(50 * 4096 + 2047), -(100 * 4096 + 2047)
    face = 0.55 * (side - 1)  # ibug's window is mean(w, h) / 0.55 + 1 pixels
    centre_x, centre_y = left + (side - 1) / 2, top + (side - 1) / 2
    box = np.array([[centre_x - face / 2, centre_y - face / 2, centre_x + face / 2, centre_y + face / 2]])
    (crops, frames), peak = peak_memory(lambda: crop_faces(strip, box, "ibug"))
    assert peak < 16 * 2 ** 20, peak
    np.testing.assert_array_equal(frames.windows[0], [left, top, left + side, top + side])
    expected = np.zeros((256, 256, 3), np.int64)
    for column in (50, 51, 52):
        x = (column - 50) * 4096
        expected[100, column] = (strip[:, x:x + 2].astype(np.int64).sum(axis=(0, 1)) + 2) // 4
    assert expected[100, 50:53].min() > 0
    np.testing.assert_array_equal(crops[0], (expected.astype(np.float32) / np.float32(255.0)).transpose(2, 0, 1))


@pytest.mark.parametrize("convention, box", [("authors", [-1e9, -1e9, 1e9, 1e9]),
                                             ("authors", [3e9, 0.0, 3e9 + 100, 100.0]),
                                             ("authors", [0.0, 0.0, 1e300, 1e300]),  # float32 scale 0
                                             ("ibug", [0.0, 0.0, 2e9, 2e9]),
                                             ("ibug", [0.0, 0.0, 1e300, 1e300])])
def test_boxes_whose_window_overflows_int32_are_refused_in_one_line(convention, box):
    """The authors' corners are int32: beyond ±2**31 their arithmetic wraps into garbage."""
    image = np.zeros((50, 60, 3), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        with pytest.raises(FaceAlignmentError, match="too large or too far away") as caught:
            crop_faces(image, np.array([box]), convention)
    message = str(caught.value)
    assert "\n" not in message and "2147483648" in message and str(box[2]) in message


def test_box_so_small_that_its_float32_scale_overflows_is_too_small():
    """256 / side overflows float32 in the authors' arithmetic (ibug's gives such a box a
    window of one pixel, as theirs does)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FaceAlignmentError, match="too small to crop"):
            crop_faces(np.zeros((50, 60, 3), np.uint8), np.array([[0.0, 0.0, 1e-300, 1e-300]]))
