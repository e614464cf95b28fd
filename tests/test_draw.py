"""Drawing: the part table against the iBUG 68-point scheme, pixels drawn where (and only
where) landmarks are joined, the 3D view and caption layouts, and atomic saving."""
import os
import warnings

import cv2
import numpy as np
import pytest

from face_alignment.errors import FaceAlignmentError
from face_alignment.pipeline import draw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EINSTEIN_PTS = os.path.join(ROOT, "..", "shared", "data", "faces", "einstein.pts")

# iBUG 68 parts written out independently of the module: (first, last, closed loop).
IBUG_PARTS = [(0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False),
              (31, 35, False), (36, 41, True), (42, 47, True), (48, 59, True),
              (60, 67, True)]
FAR = 12.0  # px: beyond any line width + point radius the module may pick on 300 px


def _segments(parts) -> np.ndarray:
    """(start, end) index pairs joined by the given (first, last, closed) parts."""
    pairs = []
    for first, last, closed in parts:
        pairs += [(i, i + 1) for i in range(first, last)]
        if closed:
            pairs.append((last, first))
    return np.array(pairs)


def _distance_to_segments(pixels: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Distance from each (x, y) pixel centre to the nearest of the segments."""
    direction = ends - starts                                     # (S, 2)
    offset = pixels[:, None, :] - starts[None, :, :]              # (P, S, 2)
    length2 = np.maximum((direction ** 2).sum(-1), 1e-12)
    t = np.clip((offset * direction).sum(-1) / length2, 0.0, 1.0)
    nearest = starts[None] + t[..., None] * direction[None]
    return np.sqrt(((pixels[:, None, :] - nearest) ** 2).sum(-1)).min(axis=1)


@pytest.fixture(scope="module")
def face_points() -> np.ndarray:
    """Einstein's annotated landmarks moved and scaled to span ~200 px of a 300 px image."""
    points = np.loadtxt(EINSTEIN_PTS, skiprows=3, max_rows=68) - 1.0
    points = (points - points.min(axis=0)) / np.ptp(points, axis=0).max() * 200.0
    return points + 50.0


def test_part_table_is_the_ibug_scheme():
    listed = [index for _, indices, _ in draw.LANDMARK_PARTS for index in indices]
    assert sorted(listed) == list(range(68))  # every point exactly once
    as_ranges = [(indices[0], indices[-1], closed) for _, indices, closed in draw.LANDMARK_PARTS]
    assert as_ranges == IBUG_PARTS
    for _, indices, _ in draw.LANDMARK_PARTS:
        assert list(indices) == list(range(indices[0], indices[-1] + 1))
    assert len(draw.PART_COLOURS) == len(draw.LANDMARK_PARTS)


def test_lines_drawn_between_joined_points_only(face_points):
    image = np.zeros((300, 300, 3), dtype=np.uint8)
    before = image.copy()
    drawn = draw.draw_landmarks(image, [face_points])
    np.testing.assert_array_equal(image, before)  # input untouched
    changed = np.any(drawn != 0, axis=2)

    pairs = _segments(IBUG_PARTS)
    starts, ends = face_points[pairs[:, 0]], face_points[pairs[:, 1]]
    # Midway along every joined pair the line must show.
    midpoints = np.rint((starts + ends) / 2).astype(int)
    assert changed[midpoints[:, 1], midpoints[:, 0]].all()

    ys, xs = np.mgrid[0:300, 0:300]
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)
    distance = _distance_to_segments(pixels, starts, ends).reshape(300, 300)
    far = distance > FAR
    assert far.sum() > 40_000 and not changed[far].any()

    # Pairs that must NOT be joined: open parts' ends and neighbours across parts. Where
    # such a false line would pass far from every true one, nothing may be drawn.
    forbidden = np.array([(0, 16), (16, 17), (21, 22), (26, 27), (30, 31), (17, 26),
                          (27, 35), (31, 35), (35, 36), (41, 42), (47, 48), (0, 36)])
    samples = np.concatenate([
        face_points[a] + np.linspace(0, 1, 50)[:, None] * (face_points[b] - face_points[a])
        for a, b in forbidden])
    sample_px = np.rint(samples).astype(int)
    away = distance[sample_px[:, 1], sample_px[:, 0]] > FAR
    assert away.sum() > 50  # the check below has something to look at
    assert not changed[sample_px[away, 1], sample_px[away, 0]].any()


def test_box_outline_and_dict_faces(face_points):
    image = np.full((300, 300, 3), 30, dtype=np.uint8)
    landmarks3d = np.c_[face_points, np.zeros(68)]
    box = [20.0, 20.0, 280.0, 280.0, 0.9]  # a detector row: score is ignored
    drawn = draw.draw_landmarks(image, [{"landmarks": landmarks3d, "box": box}])
    changed = np.any(drawn != 30, axis=2)
    for x, y in [(150, 20), (150, 280), (20, 150), (280, 150)]:  # edge midpoints
        assert changed[y, x]
    assert not changed[5, 5] and not changed[150, 10]
    plain = draw.draw_landmarks(image, [landmarks3d])
    assert not np.any(plain[20] != 30)  # no box row without a box


def test_bad_landmarks_raise():
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    with pytest.raises(FaceAlignmentError, match="face 0"):
        draw.draw_landmarks(image, [np.zeros((5, 2))])
    with pytest.raises(FaceAlignmentError):
        draw.draw_landmarks(image, [{"box": [0, 0, 1, 1]}])
    with pytest.raises(FaceAlignmentError):
        draw.draw_3d_view(image, [np.zeros((68, 2))])


def test_points_beyond_int32_fixed_point_are_drawn_towards_them(face_points):
    """Landmarks of a wild box, 1e9 pixels out (1.6e10 in cv2's fixed point, past int32): no
    numpy overflow warning, and the line from an image point towards one still leaves the
    image the right way instead of wrapping round to the other side."""
    points = face_points.copy()
    points[16] = [1e9, points[15, 1]]  # the jaw's last point, far to the right
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picture = draw.draw_landmarks(np.zeros((300, 300, 3), np.uint8), [points])
    row = int(round(points[15, 1]))
    assert picture[row, int(points[15, 0]) + 20:].max(axis=1).min() > 0  # out to the right edge


def test_3d_view_layout(face_points):
    image = np.full((240, 300, 3), 90, dtype=np.uint8)
    landmarks3d = np.c_[face_points * 0.8, np.linspace(-20, 20, 68)]
    faces = [{"landmarks": landmarks3d, "box": [30, 30, 230, 210]}]
    view = draw.draw_3d_view(image, faces)
    assert view.dtype == np.uint8 and view.shape[0] == 240 and view.shape[1] > 300
    assert view.shape == (240, 300 + 240, 3)  # default: a square plot
    np.testing.assert_array_equal(view[:, :300], draw.draw_landmarks(image, faces))
    assert np.any(view[30, 100:200] != 90)  # the box's top edge is part of the left panel
    plot = view[:, 300:]
    # Part colours appear in the plot (the Agg canvas is otherwise white/grey/black).
    saturation = plot.max(axis=2).astype(int) - plot.min(axis=2)
    assert (saturation > 80).sum() > 100
    assert draw.draw_3d_view(image, faces, size=150).shape == (240, 450, 3)


def test_caption_adds_visible_banner():
    image = np.full((200, 320, 3), 200, dtype=np.uint8)
    text = "random weights — not a trained model, " * 3  # too long: must be shrunk to fit
    captioned = draw.caption(image, text)
    height = captioned.shape[0] - 200
    assert height >= 20 and captioned.shape[1:] == (320, 3)
    np.testing.assert_array_equal(captioned[height:], image)
    banner = captioned[:height].astype(int)
    background = np.array(draw.CAPTION_BACKGROUND)
    text_pixels = np.abs(banner - background).sum(axis=2) > 150
    assert text_pixels.sum() > 100  # letters are there and contrast with the banner
    assert not text_pixels[:, :3].any() and not text_pixels[:, -3:].any()  # fits the width


def test_save_image_round_trip(tmp_path):
    rgb = np.random.default_rng(4).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    path = tmp_path / "out.png"
    draw.save_image(str(path), rgb)
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], rgb)
    assert os.listdir(tmp_path) == ["out.png"]


def test_save_image_errors_leave_nothing(tmp_path, monkeypatch):
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(FaceAlignmentError, match="out.xyz"):
        draw.save_image(str(tmp_path / "out.xyz"), rgb)
    with pytest.raises(FaceAlignmentError):
        draw.save_image(str(tmp_path / "absent" / "out.png"), rgb)
    assert os.listdir(tmp_path) == []

    existing = tmp_path / "keep.png"
    existing.write_bytes(b"old")

    def failing_imwrite(path, image):
        with open(path, "wb") as handle:  # half a file, then failure
            handle.write(b"\x89PNG partial")
        return False

    monkeypatch.setattr(cv2, "imwrite", failing_imwrite)
    with pytest.raises(FaceAlignmentError, match="keep.png") as caught:
        draw.save_image(str(existing), rgb)
    assert "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == ["keep.png"] and existing.read_bytes() == b"old"
