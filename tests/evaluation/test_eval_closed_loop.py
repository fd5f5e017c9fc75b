"""The intervention criteria, the car's response, latency, recovery trials and the
autonomy formula on constructed trajectories whose answers are computed by hand."""

import math

import numpy as np
import pytest

from evaluation.closed_loop.car_model import CarResponse
from evaluation.closed_loop.kinematics import build_path
from evaluation.closed_loop.loop import MAX_CURVATURE, LoopConfig, NonFiniteSteering, run_cars
from evaluation.closed_loop.policies import ConstantPolicy, HumanReplayPolicy, Policy
from evaluation.closed_loop.recovery import (
    gap_to_twin,
    recovery_starts,
    recovery_summary,
    recovery_trials,
)
from evaluation.closed_loop.road import RoadEdges
from evaluation.closed_loop.scores import autonomy, score

#: One decision per 0.1 s frame interval: the hand computations step 1 m at a time.
NVIDIA = dict(criterion="nvidia", control_hz=10.0)


def blank_views(base, right, forward, yaw):
    """A view source for blind policies: grey frames, every pixel valid."""
    return np.full((160, 320, 3), 128, np.uint8), np.ones((160, 320), bool)


def straight(n=200, v=10.0, dt=0.1, steering=0.0):
    return build_path(np.arange(n), np.arange(n) * dt, np.full(n, v), np.full(n, steering))


def flat_edges(n: int, left: float, right: float) -> RoadEdges:
    return RoadEdges(np.full(n, left), np.full(n, right), np.zeros((n, 2), np.int32))


def test_autonomy_formula():
    assert autonomy(0, 100.0) == (100.0, 100.0)
    a, b = autonomy(2, 120.0)
    assert a == pytest.approx(90.0)  # (1 - 12/120) x 100
    assert b == pytest.approx(100 * (1 - 12 / 132))
    a, b = autonomy(30, 60.0)
    assert a == pytest.approx(-200.0)  # NVIDIA's form goes negative
    assert b == pytest.approx(25.0)  # the bounded one does not
    assert all(math.isnan(v) for v in autonomy(1, 0.0))


def test_nvidia_interventions_of_a_constant_wrong_steering_by_hand():
    """Steering 0.15 (3.75 deg) on a straight path, 1 m per step.

    Hand computation: R = 2.87 / tan 3.75 deg = 43.79 m; after s metres from an aligned
    start the root (1.6 m ahead of the rear axle) is R (1 - cos(s/R)) + 1.6 sin(s/R)
    to the side: 0.813 m after 7 m, 1.020 m after 8 m. So every 8th step is an
    intervention; each period advances the root R sin(8/R) + 1.6 (cos(8/R) - 1) = 7.929 m
    along the 199 m path: 25 whole periods fit (198.2 m).
    """
    path = straight()
    cfg = LoopConfig(heading_limit_deg=30.0, **NVIDIA)  # isolate the offset limit
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


class DivergesAt(Policy):
    """Steers straight, then answers ``value`` from step ``step`` on (a model whose
    weights went to NaN)."""

    name = "diverged model"

    def __init__(self, step: int, value: float):
        self.step, self.value, self.calls = step, value, 0

    def __call__(self, views, ctx):
        self.calls += 1
        return np.full(len(ctx.frame), self.value if self.calls > self.step else 0.0)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_steering_stops_the_drive_with_a_clear_error(value):
    """NaN once made the car's pose NaN and hung the view synthesis; now it is named."""
    policy = DivergesAt(5, value)
    with pytest.raises(
        NonFiniteSteering, match=r"diverged model answered a steering of (nan|inf) at frame 5"
    ):
        run_cars(straight(), blank_views, policy, LoopConfig(**NVIDIA), start=np.array([0]))
    assert policy.calls == 6


def test_nvidia_heading_limit_counts_too():
    # 1.3085 deg of heading per metre at steering 0.15: 5.23 deg after 4 m, offset 0.33 m.
    tr = run_cars(
        straight(),
        blank_views,
        ConstantPolicy(-0.15),
        LoopConfig(heading_limit_deg=5.0, **NVIDIA),
        start=np.array([0]),
    )
    first = int(np.flatnonzero(tr.intervention[:, 0])[0])
    assert first == 3
    assert abs(tr.offset[first, 0]) == pytest.approx(0.329, abs=2e-3)
    assert math.degrees(abs(tr.heading_error[first, 0])) == pytest.approx(5.23, abs=0.02)


def _front_right_wheel(s: float, radius: float) -> float:
    """By hand: a car starting aligned on a straight path and turning right on a
    circle of ``radius`` about its rear axle; after s metres, how far right of the
    path its front-right wheel is, plus the swing-out a crossing is certain to add
    (the front turning back at full lock: (1 - cos psi) / kappa_max)."""
    psi = s / radius
    axle = radius * (1.0 - math.cos(psi))
    wheel = axle + 2.87 * math.sin(psi) + 1.0 * math.cos(psi)
    return wheel + (1.0 - math.cos(psi)) / MAX_CURVATURE


def test_road_criterion_counts_a_wheel_leaving_the_road_by_hand():
    """Road edges 3 m either side of a straight path; steering 0.15 at 1 m per step.

    The car leaves on the right when its front-right wheel (1.0 m right of the
    centre line of the car, 2.87 m ahead of the rear axle), plus the swing-out that
    makes the crossing certain, passes 3.0 m: computed here from the circle's
    geometry, independently of the closed loop's code."""
    radius = 2.87 / math.tan(math.radians(0.15 * 25.0))
    expected = next(s for s in range(1, 100) if _front_right_wheel(s, radius) > 3.0)
    path = straight()
    edges = flat_edges(len(path), -3.0, 3.0)
    cfg = LoopConfig(control_hz=10.0)  # the road criterion is the default
    tr = run_cars(path, blank_views, ConstantPolicy(0.15), cfg, start=np.array([0]), edges=edges)
    steps = np.flatnonzero(tr.intervention[:, 0])
    assert steps[0] + 1 == expected  # step k ends k metres along
    # The margin just before is positive and agrees with the hand geometry.
    k = expected - 2
    assert tr.margin[k, 0] == pytest.approx(3.0 - _front_right_wheel(k + 1, radius), abs=0.02)
    assert tr.margin[k + 1, 0] < 0
    # Each intervention puts the car back: the same crossing repeats periodically.
    assert len(set(np.diff(steps).tolist())) == 1
    # A road twice as wide lets the same policy run longer before the first crossing.
    wide = run_cars(
        path,
        blank_views,
        ConstantPolicy(0.15),
        cfg,
        start=np.array([0]),
        edges=flat_edges(len(path), -6.0, 6.0),
    )
    assert np.flatnonzero(wide.intervention[:, 0])[0] > steps[0]


def test_the_road_criterion_needs_edges():
    with pytest.raises(ValueError, match="edges"):
        run_cars(straight(), blank_views, ConstantPolicy(0.0), LoopConfig(), start=np.array([0]))


def test_replayed_human_follows_a_curved_path_exactly():
    path = straight(n=150, v=9.0, dt=0.07, steering=0.1)  # a 65.7 m circle
    edges = flat_edges(len(path), -3.0, 3.0)
    tr = run_cars(
        path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), start=np.array([0]), edges=edges
    )
    s = score([tr])
    assert s["interventions"] == 0
    assert s["lateral_offset_m"]["max"] < 0.01
    assert s["time_within_0.3m"] == 1.0
    assert s["autonomy_percent"] == 100.0
    assert s["road_margin_m"]["min"] == pytest.approx(2.0, abs=0.01)  # 3 m edges, 1 m wheels


def test_a_lagging_car_turns_later_than_the_bicycle():
    """The fitted response (lag 0.1 s) against the plain bicycle: the same command
    moves the wheel, hence the heading, more slowly at first."""
    path = straight(n=40)
    edges = flat_edges(len(path), -50.0, 50.0)
    runs = {}
    for name, resp in (("bicycle", CarResponse()), ("lag", CarResponse(lag_s=0.1))):
        cfg = LoopConfig(response=resp, control_hz=10.0)
        tr = run_cars(path, blank_views, ConstantPolicy(0.2), cfg, start=np.array([0]), edges=edges)
        runs[name] = tr
    # Mean wheel position over the first 0.1 s: 0.2 (bicycle) and, by hand,
    # 0.2 (1 - 0.1 / 0.1 (1 - e^-1)) = 0.07358 (lag).
    assert runs["bicycle"].wheel[0, 0] == pytest.approx(0.2)
    assert runs["lag"].wheel[0, 0] == pytest.approx(0.2 * math.exp(-1.0), abs=1e-6)
    assert abs(runs["lag"].heading_error[5, 0]) < abs(runs["bicycle"].heading_error[5, 0])
    # Settled, both turn alike.
    assert runs["lag"].wheel[20, 0] == pytest.approx(0.2, abs=1e-6)


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
        path,
        blank_views,
        Counter(),
        LoopConfig(latency_frames=latency, **NVIDIA),
        start=np.array([0]),
    )
    out, applied = tr.output[:, 0], tr.applied[:, 0]
    np.testing.assert_allclose(applied[latency:], out[: len(out) - latency])
    np.testing.assert_allclose(applied[:latency], 0.0)  # the human's command at the start


def test_smoothing_weighs_the_answer_against_the_wheel_the_car_applies():
    """alpha 0.5 on answers 0.001, 0.002, 0.003 from a wheel at 0 (the human's at the
    start): 0.0005, then 0.5 * 0.002 + 0.5 * 0.0005 = 0.00125, then 0.5 * 0.003 + 0.5 *
    0.00125 = 0.002125; alpha 1 is the policy itself; a weight outside (0, 1] is refused."""
    from evaluation.closed_loop.policies import SmoothedPolicy

    path = straight(n=30, steering=0.0)
    tr = run_cars(
        path, blank_views, SmoothedPolicy(Counter(), 0.5), LoopConfig(**NVIDIA), start=np.array([0])
    )
    np.testing.assert_allclose(tr.output[:3, 0], [0.0005, 0.00125, 0.002125])
    np.testing.assert_allclose(tr.applied[:, 0], tr.output[:, 0])
    plain = run_cars(path, blank_views, Counter(), LoopConfig(**NVIDIA), start=np.array([0]))
    same = run_cars(
        path, blank_views, SmoothedPolicy(Counter(), 1.0), LoopConfig(**NVIDIA), start=np.array([0])
    )
    np.testing.assert_array_equal(same.output, plain.output)
    for alpha in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=r"weight on the new answer in \(0, 1\], got"):
            SmoothedPolicy(Counter(), alpha)


def test_frame_intervals_are_split_to_the_control_rate():
    """A 0.1 s recording driven at the simulator's 15 Hz: two decisions a frame."""
    path = straight(n=30)
    tr = run_cars(path, blank_views, Counter(), LoopConfig(criterion="nvidia"), start=[0])
    assert tr.dt[0, 0] == pytest.approx(0.05)
    assert len(tr.time) == pytest.approx(2 * 29, abs=2)


def test_recovery_trials_of_a_blind_policy():
    path = straight(n=120, v=10.0, dt=0.1)
    edges = flat_edges(len(path), -4.0, 4.0)
    trials = recovery_trials(
        path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), points=2, edges=edges
    )
    assert len(trials) == 2 * 6
    by = {(t["offset_m"], t["yaw_deg"]): t for t in trials}
    # Blind and straight: a displaced car stays displaced, beside its twin on the path.
    assert by[(0.5, 0.0)]["final_gap_m"] == pytest.approx(0.5, abs=1e-6)
    assert by[(1.0, 0.0)]["final_offset_m"] == pytest.approx(1.0, abs=1e-6)
    assert not any(t["success"] for t in trials)
    # 5 degrees off at 10 m/s: the front wheel reaches the edge 3 m away in about 3.3 s.
    assert by[(0.0, 5.0)]["intervention"] and by[(0.0, -5.0)]["intervention"]
    assert not by[(1.0, 0.0)]["intervention"]
    summary = recovery_summary(trials)
    assert summary["trials"] == 12 and summary["success_share"] == 0.0
    assert summary["final_gap_m"]["p50"] == pytest.approx(0.75, abs=0.3)
    assert set(summary["by_start"]) == {
        "offset -1 m",
        "offset -0.5 m",
        "offset +0.5 m",
        "offset +1 m",
        "yaw -5 deg",
        "yaw +5 deg",
    }


def test_recovery_starts_off_the_road_are_not_run():
    path = straight(n=120, v=10.0, dt=0.1)
    edges = flat_edges(len(path), -1.2, 1.2)  # 1 m to the side puts a wheel off
    trials = recovery_trials(
        path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), points=1, edges=edges
    )
    off = [t for t in trials if t["off_road_at_start"]]
    assert {t["offset_m"] for t in off} == {-1.0, -0.5, 0.5, 1.0}
    summary = recovery_summary(trials)
    assert summary["skipped_off_road"] == 4 and summary["trials"] == 2


def test_recovery_trials_need_their_twin():
    """3.5 s after the start the road's left edge moves 4.5 m to the right over 10 m,
    past the path, so the undisturbed twin leaves the road there. Cars that left it
    before their twin have failed: both turned ones (about 3.3 s, as above) and the
    ones displaced to the left, whose wheels meet the moving edge first; the cars
    displaced to the right meet it after the twin and are not judged."""
    path = straight(n=120, v=10.0, dt=0.1)
    start = int(recovery_starts(path, 1, 5.0)[0])
    left, right = np.full(len(path), -4.0), np.full(len(path), 4.0)
    left[start + 35 : start + 46] = np.linspace(-4.0, 0.5, 11)
    left[start + 46 :] = 0.5
    edges = RoadEdges(left, right, np.zeros((len(path), 2), np.int32))
    trials = recovery_trials(
        path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), points=1, edges=edges
    )
    by = {(t["offset_m"], t["yaw_deg"]): t for t in trials}
    for start_kind in [(0.0, -5.0), (0.0, 5.0), (-1.0, 0.0), (-0.5, 0.0)]:
        t = by[start_kind]
        assert t["intervention"] and not t["twin_intervention"] and not t["success"]
    for off in (0.5, 1.0):
        assert by[(off, 0.0)]["twin_intervention"] and not by[(off, 0.0)]["success"]
    summary = recovery_summary(trials)
    assert summary["trials"] == 4 and summary["skipped_twin_intervention"] == 2
    assert summary["success_share"] == 0.0
    assert set(summary["by_start"]) == {"yaw -5 deg", "yaw +5 deg", "offset -1 m", "offset -0.5 m"}
    # Without the step every trial has its twin and is judged.
    wide = recovery_trials(
        path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), points=1,
        edges=flat_edges(len(path), -4.0, 4.0),
    )  # fmt: skip
    assert not any(t["twin_intervention"] for t in wide)
    assert recovery_summary(wide)["trials"] == 6


def test_the_gap_to_the_twin_is_taken_at_the_same_time_by_hand():
    twin_t, twin_off = np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.1, 0.2])
    car_t, car_off = np.array([0.15, 0.25, 0.35]), np.array([0.5, 0.4, 0.2])
    # The twin at 0.15 s and 0.25 s is halfway between its steps: 0.05 m and 0.15 m;
    # at 0.35 s it has ended, on time, at 0.2 m.
    gap = gap_to_twin(car_t, car_off, twin_t, twin_off, twin_reached=True)
    np.testing.assert_allclose(gap, [0.45, 0.25, 0.0], atol=1e-12)
    # A twin that stopped at 0.3 s (an intervention) has no place at 0.35 s.
    gap = gap_to_twin(car_t, car_off, twin_t, twin_off, twin_reached=False)
    np.testing.assert_allclose(gap[:2], [0.45, 0.25], atol=1e-12)
    assert math.isnan(gap[2])
    assert np.isnan(gap_to_twin(car_t, car_off, twin_t[:0], twin_off[:0], twin_reached=True)).all()


def offset_views(base, right, forward, yaw):
    """A view source that writes the car's offset and yaw into two pixels."""
    frame = np.zeros((160, 320, 3), np.uint8)
    frame[0, 0, 0] = round(np.clip(128 + 100 * right, 0, 255))
    frame[0, 1, 0] = round(np.clip(128 + 500 * yaw, 0, 255))
    return frame, np.ones((160, 320), bool)


class SeesItsOffset(Policy):
    """Steers back to the path from the offset and yaw its view shows."""

    name = "sees its offset"

    def __call__(self, views, ctx):
        right = (views[:, 0, 0, 0].astype(np.float64) - 128) / 100
        yaw = (views[:, 0, 1, 0].astype(np.float64) - 128) / 500
        return np.clip(-0.5 * right - 2.0 * yaw, -1.0, 1.0)


def test_a_car_that_steers_back_recovers_on_irregular_frame_intervals():
    """Frames 0.2 s and 0.01 s apart in turn: each car steps by the interval where it
    is, so a recovering car, a little behind its twin, takes other steps and ends the
    5 s on a step count of its own. It is judged against its twin at the same time
    (step by step, the last step found no twin and every trial failed)."""
    n = 120
    t = np.concatenate([[0.0], np.cumsum(np.where(np.arange(n - 1) % 2 == 0, 0.2, 0.01))])
    path = build_path(np.arange(n), t, np.full(n, 10.0), np.zeros(n))
    trials = recovery_trials(
        path, offset_views, SeesItsOffset(), LoopConfig(), points=1,
        edges=flat_edges(n, -4.0, 4.0),
    )  # fmt: skip
    assert len(trials) == 6
    for trial in trials:
        assert trial["success"], trial
        assert trial["final_gap_m"] < 0.05
        assert trial["first_within_s"] < 1.0
    assert recovery_summary(trials)["success_share"] == 1.0


def test_the_expert_steers_the_label_from_its_true_pose_by_hand():
    """1 m right of the path, heading along it, look-ahead 4 m, the human straight:
    the path point 4 m ahead lies x = -1 m to the car's side, so pure pursuit's
    curvature is 2 x / L^2 = -0.125 1/m, a wheel angle atan(0.125 x 2.87 m) = 19.734 deg
    to the left: -19.734 / 25 = -0.7894. On a turn the recorded steering adds in
    curvature: 0.2 (5 deg) on the path is tan(5 deg) / 2.87 = 0.0305 1/m, and from the
    same pose -0.09452 1/m, atan(0.09452 x 2.87) = 15.177 deg left: -0.6071."""
    from evaluation.closed_loop.policies import ExpertPolicy, StepContext, check_expert

    expert = ExpertPolicy(4.0)
    assert expert.name == "expert 4 m"
    views = np.zeros((2, 160, 320, 3), np.uint8)
    ctx = StepContext(
        np.zeros(2, int), np.array([0.0, 0.2]), np.zeros(2), np.zeros(2),
        offset_m=np.array([1.0, 1.0]), yaw_rad=np.zeros(2),
    )  # fmt: skip
    assert expert(views, ctx) == pytest.approx([-0.7894, -0.6071], abs=1e-4)
    turned = StepContext(
        np.zeros(1, int), np.zeros(1), np.zeros(1), np.zeros(1),
        offset_m=np.zeros(1), yaw_rad=np.radians([5.0]),
    )  # fmt: skip
    # Turned 5 deg right on the path: x = -4 sin 5 deg = -0.3486 m, curvature -0.04358,
    # atan(0.04358 x 2.87) = 7.129 deg left.
    assert float(expert(views[:1], turned)[0]) == pytest.approx(-0.2852, abs=1e-4)
    blind = StepContext(np.zeros(1, int), np.zeros(1), np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="true pose"):
        expert(views[:1], blind)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="look-ahead in metres"):
            check_expert(bad)
    with pytest.raises(ValueError, match="look-ahead > 0"):
        ExpertPolicy(0.0)


def test_the_expert_drives_a_bend_and_recovers_where_the_human_replay_cannot():
    """The closed loop hands the expert each car's pose: on a bend (the human's
    constant 0.1) it recovers from every displaced or turned start and ends on its
    twin's line, where the blind replay of the same steering recovers from none."""
    from evaluation.closed_loop.policies import ExpertPolicy

    n = 150
    path = build_path(np.arange(n), np.arange(n) * 0.1, np.full(n, 10.0), np.full(n, 0.1))
    edges = flat_edges(n, -4.0, 4.0)
    kw = dict(points=2, edges=edges)
    expert = recovery_trials(path, blank_views, ExpertPolicy(4.0), LoopConfig(), **kw)
    assert len(expert) == 12
    for trial in expert:
        assert trial["success"] and not trial["intervention"], trial
        assert trial["final_gap_m"] < 0.05
    blind = recovery_trials(path, blank_views, HumanReplayPolicy(0.0), LoopConfig(), **kw)
    assert recovery_summary(blind)["success_share"] == 0.0


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="offset_limit_m"):
        LoopConfig(offset_limit_m=0.0)
    with pytest.raises(ValueError, match="latency_frames"):
        LoopConfig(latency_frames=-1)
    with pytest.raises(ValueError, match="criterion"):
        LoopConfig(criterion="lane")
    with pytest.raises(ValueError, match="control_hz"):
        LoopConfig(control_hz=0.0)


def test_the_spread_of_repeated_drives_by_hand():
    """Three drives of one segment: 25, 0 and 25 interventions (steering 0.15 gives 25
    on this path, by hand above; straight gives none): mean 50/3, sd by hand."""
    from evaluation.closed_loop.run import Driven, spread

    path = straight()
    cfg = LoopConfig(heading_limit_deg=30.0, **NVIDIA)

    def drive(value):
        return run_cars(path, blank_views, ConstantPolicy(value), cfg, start=np.array([0]))

    lines = np.arange(len(path))
    assert spread([Driven("log", 0, path, lines, drive(0.15))]) is None  # one drive
    d = Driven("log", 0, path, lines, drive(0.15), repeats=[drive(0.0), drive(0.15)])
    rep = spread([d])
    n = rep["interventions"]
    assert rep["drives"] == 3 and n["values"] == [25.0, 0.0, 25.0]
    assert n["mean"] == pytest.approx(50 / 3)
    # sample sd: deviations 25/3, -50/3, 25/3 -> sqrt((625 + 2500 + 625) / 9 / 2) = 14.43
    assert n["sd"] == pytest.approx(math.sqrt(3750 / 18), rel=1e-9)
    assert (n["min"], n["max"]) == (0.0, 25.0)
    a = rep["autonomy_percent"]
    assert a["max"] == pytest.approx(100.0) and a["values"][0] == pytest.approx(a["min"])
    assert a["min"] == pytest.approx(score([d.trace])["autonomy_percent"])


def test_noisy_policy_adds_held_noise_of_the_asked_size():
    """Ornstein-Uhlenbeck noise: stationary sd sigma, correlated over tau (0.5 s at
    15 Hz: lag-1 correlation exp(-1/7.5) = 0.875); sigma 0 changes nothing."""
    from evaluation.closed_loop.policies import NoisyPolicy, StepContext

    ctx = StepContext(np.zeros(1, int), np.zeros(1), np.zeros(1), np.zeros(1))
    views = np.zeros((1, 160, 320, 3), np.uint8)
    quiet = NoisyPolicy(ConstantPolicy(0.3), 0.0, seed=1)
    assert [float(quiet(views, ctx)[0]) for _ in range(5)] == [0.3] * 5
    noisy = NoisyPolicy(ConstantPolicy(0.0), 0.01, seed=1)
    x = np.array([float(noisy(views, ctx)[0]) for _ in range(40000)])[1000:]
    assert x.std() == pytest.approx(0.01, rel=0.1)
    assert np.corrcoef(x[:-1], x[1:])[0, 1] == pytest.approx(math.exp(-1 / 7.5), abs=0.02)
    a = NoisyPolicy(ConstantPolicy(0.0), 0.01, seed=2)
    b = NoisyPolicy(ConstantPolicy(0.0), 0.01, seed=2)
    assert [float(a(views, ctx)[0]) for _ in range(3)] == [
        float(b(views, ctx)[0]) for _ in range(3)
    ]


def test_repeats_are_checked():
    from evaluation.closed_loop.run import check_repeats

    check_repeats(1, 0.0)
    with pytest.raises(ValueError, match="repeats must be at least 1.*Received: 0"):
        check_repeats(0, 0.001)
    with pytest.raises(ValueError, match="repeat noise must be >= 0.*Received: -0.1"):
        check_repeats(3, -0.1)
