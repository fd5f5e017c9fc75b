"""The intervention counter, latency and the autonomy formula on constructed trajectories."""

import math

import numpy as np
import pytest

from evaluation.closed_loop import (
    LoopConfig,
    autonomy,
    recovery_summary,
    recovery_trials,
    run_cars,
    score,
)
from evaluation.kinematics import build_path
from evaluation.policies import ConstantPolicy, HumanReplayPolicy, Policy


def blank_views(base, right, forward, yaw):
    """A view source for blind policies: grey frames, every pixel valid."""
    return np.full((160, 320, 3), 128, np.uint8), np.ones((160, 320), bool)


def straight(n=200, v=10.0, dt=0.1, steering=0.0):
    return build_path(np.arange(n), np.arange(n) * dt, np.full(n, v), np.full(n, steering))


def test_autonomy_formula():
    assert autonomy(0, 100.0) == (100.0, 100.0)
    a, b = autonomy(2, 120.0)
    assert a == pytest.approx(90.0)  # (1 - 12/120) x 100
    assert b == pytest.approx(100 * (1 - 12 / 132))
    a, b = autonomy(30, 60.0)
    assert a == pytest.approx(-200.0)  # NVIDIA's form goes negative
    assert b == pytest.approx(25.0)  # the bounded one does not
    assert all(math.isnan(v) for v in autonomy(1, 0.0))


def test_interventions_of_a_constant_wrong_steering_by_hand():
    """Steering 0.15 (3.75 deg) on a straight path, 1 m per step.

    Hand computation: R = 2.87 / tan 3.75 deg = 43.79 m; after s metres from an aligned
    start the root (1.6 m ahead of the rear axle) is R (1 - cos(s/R)) + 1.6 sin(s/R)
    to the side: 0.813 m after 7 m, 1.020 m after 8 m. So every 8th step is an
    intervention; each period advances the root R sin(8/R) + 1.6 (cos(8/R) - 1) = 7.929 m
    along the 199 m path: 25 whole periods fit (198.2 m).
    """
    path = straight()
    cfg = LoopConfig(heading_limit_deg=30.0)  # isolate the offset limit
    tr = run_cars(path, blank_views, ConstantPolicy(0.15), cfg, start=np.array([0]))
    steps = np.flatnonzero(tr.intervention[:, 0])
    assert len(steps) == 25
    assert np.diff(steps).tolist() == [8] * 24 and steps[0] == 7
    assert tr.offset[6, 0] == pytest.approx(0.813, abs=2e-3)
    assert tr.offset[7, 0] == pytest.approx(1.020, abs=2e-3)
    s = score([tr])
    assert s["interventions"] == 25
    assert s["elapsed_s"] == pytest.approx(0.1 * len(tr.time))
    assert s["autonomy_percent"] == pytest.approx((1 - 150 / s["elapsed_s"]) * 100)
    assert s["interventions_per_km"] == pytest.approx(25 / s["distance_km"])
    assert s["lateral_offset_m"]["max"] == pytest.approx(1.020, abs=2e-3)


def test_heading_limit_counts_too():
    # 1.3085 deg of heading per metre at steering 0.15: 5.23 deg after 4 m, offset 0.33 m.
    tr = run_cars(
        straight(),
        blank_views,
        ConstantPolicy(-0.15),
        LoopConfig(heading_limit_deg=5.0),
        start=np.array([0]),
    )
    first = int(np.flatnonzero(tr.intervention[:, 0])[0])
    assert first == 3
    assert abs(tr.offset[first, 0]) == pytest.approx(0.329, abs=2e-3)
    assert math.degrees(abs(tr.heading_error[first, 0])) == pytest.approx(5.23, abs=0.02)


def test_replayed_human_follows_a_curved_path_exactly():
    path = straight(n=150, v=9.0, dt=0.07, steering=0.1)  # a 65.7 m circle
    tr = run_cars(path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), start=np.array([0]))
    s = score([tr])
    assert s["interventions"] == 0
    assert s["lateral_offset_m"]["max"] < 0.01
    assert s["time_within_0.3m"] == 1.0
    assert s["autonomy_percent"] == 100.0


class Counter(Policy):
    name = "counter"

    def __init__(self):
        self.k = 0

    def __call__(self, views, ctx):
        self.k += 1
        return np.full(len(views), self.k * 1e-3)


@pytest.mark.parametrize("latency", [0, 1, 2])
def test_latency_delays_commands_by_whole_frames(latency):
    path = straight(n=30, steering=0.0)
    tr = run_cars(
        path, blank_views, Counter(), LoopConfig(latency_frames=latency), start=np.array([0])
    )
    out, applied = tr.output[:, 0], tr.applied[:, 0]
    np.testing.assert_allclose(applied[latency:], out[: len(out) - latency])
    np.testing.assert_allclose(applied[:latency], 0.0)  # the human's command at the start


def test_recovery_trials_of_a_blind_policy():
    path = straight(n=120, v=10.0, dt=0.1)
    trials = recovery_trials(path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), points=2)
    assert len(trials) == 2 * 6
    by = {(t["offset_m"], t["yaw_deg"]): t for t in trials}
    # Blind and straight: a displaced car stays displaced; a turned car leaves.
    assert by[(0.5, 0.0)]["final_offset_m"] == pytest.approx(0.5, abs=1e-6)
    assert not any(t["success"] for t in trials)
    # 5 degrees off at 10 m/s: 1 m off the path after about 1.1 s (root already 0.14 m).
    assert by[(0.0, 5.0)]["intervention"] and by[(0.0, -5.0)]["intervention"]
    assert not by[(1.0, 0.0)]["intervention"]
    summary = recovery_summary(trials)
    assert summary["trials"] == 12 and summary["success_share"] == 0.0
    assert set(summary["by_start"]) == {
        "offset -1 m",
        "offset -0.5 m",
        "offset +0.5 m",
        "offset +1 m",
        "yaw -5 deg",
        "yaw +5 deg",
    }


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="offset_limit_m"):
        LoopConfig(offset_limit_m=0.0)
    with pytest.raises(ValueError, match="latency_frames"):
        LoopConfig(latency_frames=-1)
