"""Path integration (kinematic bicycle) and projection onto the path."""

import math

import numpy as np
import pytest

from evaluation.closed_loop.kinematics import (
    arc_step,
    build_path,
    circle_fit_radius,
    integrate_path,
    pose_on_path,
    project,
    relative_pose,
    split_segments,
)

WHEELBASE = 2.87


def test_constant_steering_drives_a_circle_of_the_bicycle_radius():
    steering, v, dt, n = 0.2, 10.0, 0.05, 400  # 5 degrees of wheel, 200 m
    x, y, h, s = integrate_path(np.full(n - 1, dt), np.full(n, v), np.full(n, steering))
    radius = WHEELBASE / math.tan(math.radians(5.0))  # 32.80 m
    assert circle_fit_radius(x, y) == pytest.approx(radius, rel=1e-6)
    assert s[-1] == pytest.approx(v * dt * (n - 1))
    # A right turn: heading falls by s / R, and the centre lies to the right (-y at start).
    assert h[-1] == pytest.approx(-s[-1] / radius, rel=1e-9)
    assert np.hypot(x, y + radius).max() == pytest.approx(radius, rel=1e-9)


def test_straight_line_and_exact_arc_step():
    x, y, h, _ = integrate_path(np.full(9, 0.1), np.full(10, 5.0), np.zeros(10))
    np.testing.assert_allclose(x, np.arange(10) * 0.5)
    np.testing.assert_allclose(y, 0.0, atol=1e-12)
    # One exact step equals many tiny Euler steps along the same arc.
    k, ds = 0.05, 4.0
    ex = arc_step(0.0, 0.0, 0.3, k, ds)
    px, py, ph = 0.0, 0.0, 0.3
    for _ in range(20000):
        px += ds / 20000 * math.cos(ph - k * ds / 40000)
        py += ds / 20000 * math.sin(ph - k * ds / 40000)
        ph -= k * ds / 20000
    np.testing.assert_allclose(ex, (px, py, ph), atol=1e-7)


def test_integrate_path_checks_lengths():
    with pytest.raises(ValueError, match="n-1 intervals"):
        integrate_path(np.zeros(3), np.zeros(3), np.zeros(3))


def test_segments_skip_standing_and_gaps():
    n = 200
    t = np.arange(n) * 0.07
    t[120:] += 2.0  # recording paused for 2 s
    speed_mph = np.full(n, 20.0)
    speed_mph[:10] = 0.0  # starts from rest
    speed_mph[190:] = 0.5
    segs = split_segments(t, speed_mph, np.zeros(n))
    assert [(int(s.rows[0]), int(s.rows[-1])) for s in segs] == [(10, 119), (120, 189)]
    assert segs[0].t[0] == 0.0 and segs[0].speed[0] == pytest.approx(20 / 2.2369)
    # Without time stamps the nominal 67 ms interval is assumed.
    segs = split_segments(np.full(n, np.nan), np.full(n, 20.0), np.zeros(n))
    assert len(segs) == 1 and segs[0].t[1] == pytest.approx(0.067)


def test_projection_offset_heading_and_pose_round_trip():
    n = 300
    path = build_path(np.arange(n), np.arange(n) * 0.1, np.full(n, 8.0), np.full(n, 0.1))
    base = np.array([40, 150])
    frac = np.array([0.25, 0.6])
    x, y, h = pose_on_path(
        path, base, frac, offset_m=np.array([0.7, -0.4]), yaw_rad=np.radians([3.0, -2.0])
    )
    p = project(path, x, y, h, hint=base)
    np.testing.assert_array_equal(p.base, base)
    np.testing.assert_allclose(p.frac, frac, atol=1e-3)
    # Offsets are measured to the chord between frames 0.8 m apart: sagitta < 1 mm here.
    np.testing.assert_allclose(p.offset, [0.7, -0.4], atol=2e-3)
    np.testing.assert_allclose(np.degrees(p.heading_error), [3.0, -2.0], atol=0.02)
    right, fwd, yaw = relative_pose(path, base, x, y, h)
    assert (fwd > 0).all()  # the base frame is at or behind the car: views move forward
    # Relative to frame ``base`` the path itself has turned by frac x (heading change).
    turned = frac * (path.heading[base] - path.heading[base + 1])
    np.testing.assert_allclose(yaw, np.radians([3.0, -2.0]) + turned, atol=1e-12)
