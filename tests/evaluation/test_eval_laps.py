"""Laps found in the frames and closed on the path (evaluation.closed_loop.laps)."""

import math

import numpy as np
import pytest

from evaluation.closed_loop.laps import (
    PlaceMatch,
    _integrate,
    close_loops,
    lap_index,
    match_places,
    overlay,
)


def test_a_place_seen_again_a_lap_later_is_matched_frame_by_frame():
    """Two laps of 420 distinct views 0.1 s apart (a lap is 42 s): every frame of the
    second lap after the first sequence is matched to the same view of the first."""
    rng = np.random.default_rng(0)
    views = rng.integers(0, 256, (420, 160, 320, 3), dtype=np.uint8)
    frames = np.concatenate([views, views])
    frames[420:] = np.clip(
        frames[420:].astype(int) + rng.integers(-8, 9, frames[420:].shape), 0, 255
    )
    t = np.arange(len(frames)) * 0.1
    matches = match_places(frames, t)
    assert len(matches) >= 400
    assert all(m.i - m.j == 420 for m in matches)
    laps = lap_index(len(frames), matches)
    assert laps[:420].max() == 0 and laps[-1] == 1


def test_no_match_within_40_s_or_without_a_repeat():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (300, 160, 320, 3), dtype=np.uint8)
    assert match_places(frames, np.arange(300) * 0.1) == []


def _circle_laps(n_per_lap: int, laps: int, bias: float):
    """Turns and distances of ``laps`` laps of a closed, egg-shaped track (1 m a
    frame; the turn varies around the lap and sums to one revolution), the turns
    read with a constant ``bias`` per interval, and the matches between laps."""
    n = n_per_lap * laps
    k = np.arange(n - 1)
    ds = np.full(n - 1, 1.0)
    # Two identical halves: the curve is symmetric under a half turn, so it closes.
    yaw = 2 * math.pi / n_per_lap * (1 + 0.8 * np.sin(4 * math.pi * k / n_per_lap)) + bias
    matches = [PlaceMatch(i, i - n_per_lap, 0.9, 0.2) for i in range(n_per_lap, n)]
    return yaw, ds, matches


def test_overlay_measures_the_drift_and_closing_the_loops_removes_it():
    yaw, ds, matches = _circle_laps(300, 3, bias=0.001)
    seg = np.zeros(len(yaw) + 1, dtype=np.int64)
    starts = np.zeros(len(seg), bool)
    starts[0] = True
    xy = _integrate(yaw, ds, starts)[:, :2]
    drifted = overlay(xy, seg, matches)
    # 300 x 0.001 = 0.3 rad (17 degrees) too much per lap: each lap starts turned
    # against the last and the 300 m laps no longer lie on top of each other.
    assert drifted["rms_m"] > 4.0 and drifted["laps"] == 3
    fit = [m for m in matches if (m.i // 50) % 2 == 0]
    held = [m for m in matches if (m.i // 50) % 2 == 1]
    corrected, placed = close_loops(yaw, ds, seg, fit)
    closed = overlay(placed, seg, held)
    assert closed["rms_m"] < 0.8, closed  # the 1.5 m pass spread lets a little stay
    # The correction is the bias, spread evenly: the path's shape is kept.
    assert np.median(corrected - yaw) == pytest.approx(-0.001, abs=1e-4)


def test_a_restarted_stretch_is_placed_by_its_matches():
    """The same lap driven twice from a restart: the second stretch has its own
    origin (0, 0, heading 0 in a different place); the rigid alignment in overlay and
    the free placement in close_loops both put it on the first."""
    yaw, ds, _ = _circle_laps(300, 1, bias=0.0)
    yaw2 = np.concatenate([yaw, [0.0], yaw])  # the interval across the restart is ignored
    ds2 = np.concatenate([ds, [0.0], ds])
    seg = np.repeat([0, 1], 300)
    matches = [PlaceMatch(300 + k, k, 0.9, 0.2) for k in range(20, 280)]
    starts = np.r_[True, seg[1:] != seg[:-1]]
    xy = _integrate(yaw2, ds2, starts)[:, :2]
    assert overlay(xy, seg, matches)["rms_m"] < 1e-6
    _, placed = close_loops(yaw2, ds2, seg, matches)
    assert overlay(placed, np.zeros_like(seg), matches)["rms_m"] < 0.05
