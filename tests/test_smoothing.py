"""The One Euro filter against numbers worked out by hand from its equations (Casiez et al.
2012): alpha(fc, dt) = r / (r + 1) with r = 2 pi fc dt; speed low-passed at d_cutoff = 1 Hz;
cutoff = min_cutoff + beta * |speed|; and the per-track smoother built on it."""
import math

import numpy as np
import pytest

from face_alignment.errors import FaceAlignmentError
from face_alignment.video.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF, OneEuroFilter, TrackSmoother

FPS = 30.0


def _alpha(cutoff, dt=1 / FPS):
    r = 2 * math.pi * cutoff * dt
    return r / (r + 1)


def _step(filter_, before=10, after=8, height=100.0, dt=1 / FPS):
    """The filter's outputs for a landmark still at 0 for ``before`` frames that jumps to
    ``height`` and stays."""
    for k in range(before):
        filter_(np.zeros((68, 2)), k * dt)
    return np.array([filter_(np.full((68, 2), height), (before + k) * dt) for k in range(after)])


def test_defaults_follow_a_100_px_step_within_1_px_in_three_frames_without_overshoot():
    # By hand, at 30 frames/s with the defaults (min_cutoff 1 Hz, beta 0.05): alpha for the
    # speed is alpha(1 Hz) = 0.1731. Frame 1 after the jump: speed 100 px * 30 = 3000 px/s,
    # filtered 519.4; cutoff 1 + 0.05 * 519.4 = 26.97 Hz, alpha 0.8496, 15.04 px left.
    # Frame 2: speed 15.04 * 30 = 451, filtered 507.7; cutoff 26.38 Hz, alpha 0.8468, 2.30 px
    # left. Frame 3: speed 69.1, filtered 431.7; cutoff 22.59 Hz, alpha 0.8255, 0.40 px left.
    assert (DEFAULT_MIN_CUTOFF, DEFAULT_BETA) == (1.0, 0.05)
    out = _step(OneEuroFilter())
    left = 100.0 - out[:, 0, 0]
    np.testing.assert_allclose(left[:3], [15.04, 2.304, 0.402], rtol=5e-3)
    assert np.all(np.abs(100.0 - out[2:]) < 1.0)
    assert np.all(out <= 100.0) and np.all(np.diff(out, axis=0) >= 0)  # never overshoots, never goes back


def test_a_plain_low_pass_would_lag_that_step():
    # Without the speed term (beta 0) the same step decays by 1 - alpha(1 Hz) = 0.827 a
    # frame: still 100 * 0.827**8 = 21.9 px away after 8 frames.
    out = _step(OneEuroFilter(beta=0.0))
    np.testing.assert_allclose(100.0 - out[-1, 0, 0], 100 * (1 - _alpha(1.0)) ** 8, rtol=1e-6)


def test_still_jitter_is_reduced_as_the_cutoff_says():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, size=(3000, 68, 2))
    times = np.arange(len(noise)) / FPS
    # beta 0: a first-order low-pass, whose output variance for white noise is
    # alpha / (2 - alpha) of the input's: std ratio sqrt(0.1731 / 1.8269) = 0.308.
    plain = OneEuroFilter(beta=0.0)
    out = np.array([plain(x, t) for x, t in zip(noise, times)])[100:]
    a = _alpha(1.0)
    assert out.std() / noise.std() == pytest.approx(math.sqrt(a / (2 - a)), rel=0.03)
    # The defaults raise the cutoff with the jitter's own speed, so smooth less than that,
    # but still at least halve 1 px jitter.
    default = OneEuroFilter()
    out = np.array([default(x, t) for x, t in zip(noise, times)])[100:]
    assert math.sqrt(a / (2 - a)) < out.std() / noise.std() < 0.5


def test_time_gaps_weigh_by_the_time_that_passed():
    # A 1 s gap, then the 100 px step: speed 100 px/s, filtered with alpha(1 Hz, 1 s) = 0.8627
    # to 86.27; cutoff 5.31 Hz; alpha(5.31 Hz, 1 s) = 0.9709, so 2.91 px are left, where a
    # filter counting frames instead of seconds would leave 15.
    filter_ = OneEuroFilter()
    filter_(np.zeros(3), 0.0)
    out = filter_(np.full(3, 100.0), 1.0)
    np.testing.assert_allclose(100.0 - out, 2.908, rtol=1e-3)
    # Irregular frame times: each step is weighted by its own dt (beta 0 makes it exact).
    filter_ = OneEuroFilter(beta=0.0)
    filter_(np.zeros(1), 0.0)
    expected = 0.0
    for t, dt in zip(np.cumsum([0.01, 0.1, 0.033, 0.5]), [0.01, 0.1, 0.033, 0.5]):
        expected += _alpha(1.0, dt) * (10.0 - expected)
        np.testing.assert_allclose(filter_(np.full(1, 10.0), t), expected, rtol=1e-12)


def test_filter_refuses_time_going_back_shape_changes_and_bad_parameters():
    filter_ = OneEuroFilter()
    filter_(np.zeros(2), 1.0)
    with pytest.raises(FaceAlignmentError, match=r"^t=1.0: .*\(1.0\)"):
        filter_(np.zeros(2), 1.0)
    with pytest.raises(FaceAlignmentError, match=r"shape \(3,\); expected \(2,\)"):
        filter_(np.zeros(3), 2.0)
    for options, message in (({"min_cutoff": 0.0}, "min_cutoff=0.0: expected a frequency"),
                             ({"beta": -1.0}, "beta=-1.0: expected a speed coefficient"),
                             ({"d_cutoff": float("nan")}, "d_cutoff=nan: expected a frequency")):
        with pytest.raises(FaceAlignmentError, match=message):
            OneEuroFilter(**options)


def test_track_smoother_keeps_tracks_apart_and_forgets_ended_ones():
    smoother = TrackSmoother(beta=0.0)
    a = _alpha(1.0)
    faces = np.zeros((3, 68, 2))
    first = smoother(np.array([4, 7, -1]), faces, 0.0)
    np.testing.assert_array_equal(first, faces)
    # Track 4 jumps by 10, track 7 stays, the untracked face passes through unsmoothed.
    moved = faces + np.array([10.0, 0.0, 5.0])[:, None, None]
    out = smoother(np.array([4, 7, -1]), moved, 1 / FPS)
    np.testing.assert_allclose(out[0], 10 * a)
    np.testing.assert_allclose(out[1], 0.0)
    np.testing.assert_allclose(out[2], 5.0)
    # Track 7 ends (absent from a frame); when an id 7 comes back it starts afresh.
    smoother(np.array([4]), moved[:1], 2 / FPS)
    back = smoother(np.array([7]), moved[:1], 3 / FPS)
    np.testing.assert_array_equal(back, moved[:1])
    with pytest.raises(FaceAlignmentError, match=r"^tracks \[1, 1\]: "):
        smoother(np.array([1, 1]), faces[:2], 4 / FPS)


def test_the_speed_is_low_passed_at_d_cutoff_and_the_value_at_min_cutoff_plus_beta_speed():
    """min_cutoff 1 Hz, d_cutoff 3 Hz, beta 0.5, and uneven frame times, worked out by hand
    (r = 2 pi fc dt, alpha = r / (r + 1)); with the speed filtered at min_cutoff instead of
    d_cutoff (a mistake invisible while both are 1 Hz) the second value is 9.273, not 9.549.
      t 0.1, x 10: speed (10 - 0) / 0.1 = 100; alpha_d(3 Hz, 0.1 s) = 0.653374;
        speed^ = 65.3374; cutoff 1 + 0.5 * 65.3374 = 33.6687 Hz; alpha 0.954863; x^ = 9.548628
      t 0.2, x 10: speed (10 - 9.548628) / 0.1 = 4.51372; speed^ = 65.3374 + 0.653374 *
        (4.51372 - 65.3374) = 25.5968; cutoff 13.7984 Hz; alpha 0.896585; x^ = 9.953321
      t 0.35, x 4: speed (4 - 9.953321) / 0.15 = -39.6888; alpha_d(3 Hz, 0.15 s) = 0.738728;
        speed^ = -22.6315; cutoff 1 + 0.5 * 22.6315 = 12.3158 Hz; alpha 0.920681; x^ = 4.472211
    """
    filter_ = OneEuroFilter(min_cutoff=1.0, beta=0.5, d_cutoff=3.0)
    got = [float(filter_(np.array([x]), t)[0]) for t, x in ((0.0, 0.0), (0.1, 10.0), (0.2, 10.0), (0.35, 4.0))]
    assert got == pytest.approx([0.0, 9.548628, 9.953321, 4.472211], abs=2e-6)
