"""Closed-loop evaluation on recorded logs (NVIDIA, Bojarski et al. 2016, sections 6-7.1).

A virtual car follows the reference path of a recording
(:mod:`evaluation.closed_loop.reference`: turning measured from the frames, distance from the
logged speed) at the recorded speed, steered by a policy
(:mod:`evaluation.closed_loop.policies`). At every step the view of the displaced car is
synthesised from the recorded frame at or just behind it, from whichever of the
centre, left and right cameras is nearest the virtual camera, nothing left black
(:func:`sim.camera.synthesize_view`: flat ground below the horizon, rotation only
above, unsourced pixels from the nearest recorded one, the bonnet fixed to the
car). The policy answers, the car's wheel angle follows the command as the
simulator's car does (:mod:`evaluation.closed_loop.car_model`) and the car moves one frame
interval along the arc of that wheel angle.

Interventions (the car is put back on the path and 6 s are charged):

* ``criterion="road"`` (default): a wheel of the car (track 2.0 m, axles 1.6 m
  behind and 1.27 m ahead of its centre) is beyond a road edge estimated from the
  recording (:mod:`evaluation.closed_loop.road`), or the heading error makes crossing one
  certain: even at full lock (a 6.15 m radius) the front wheel would swing past
  the edge before the car is straight again;
* ``criterion="nvidia"``: NVIDIA's rule, the car's centre more than
  ``offset_limit_m`` from the path or its heading more than ``heading_limit_deg``
  off.

Scores: NVIDIA's autonomy ``(1 - 6 s x N / T) x 100`` (negative for poor policies),
the bounded form ``(1 - 6N / (T + 6N)) x 100``, interventions per km, offset,
heading and edge-margin statistics, time within 0.3 m / 0.5 m of the path and the
share of synthesised pixels that had no source. Recovery trials start cars 0.5 m
and 1.0 m to either side or turned 5 degrees at spread-out points, beside an
undisturbed twin started on the path; a trial succeeds when, after 5 s without an
intervention, the car is within 0.3 m of its twin: the disturbance has died out,
whatever line the policy keeps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from evaluation.closed_loop.car_model import BICYCLE, CarResponse, ResponseState
from evaluation.closed_loop.kinematics import (
    ReferencePath,
    arc_step,
    pose_on_path,
    project,
    relative_pose,
)
from evaluation.closed_loop.policies import Policy, StepContext
from evaluation.closed_loop.reference import side_cameras
from evaluation.closed_loop.road import RoadEdges
from sim.camera import (
    MPH_PER_MPS,
    ROOT_AHEAD_OF_REAR_AXLE_M,
    WHEELBASE_M,
    Camera,
    bonnet_mask,
    camera_offset_for_car_pose,
    steering_to_curvature,
    synthesize_view,
)

logger = logging.getLogger(__name__)

#: NVIDIA's cost of one intervention: a human takes over, re-centres and hands back.
PENALTY_S = 6.0
CRITERIA = ("road", "nvidia")
OFFSET_LIMIT_M = 1.0  # NVIDIA: more than 1 m from the lane centre
#: NVIDIA's heading limit as this project first set it (--criterion nvidia).
HEADING_LIMIT_DEG = 10.0
HALF_TRACK_M = 1.0  # track width 2.0 m (../shared/docs/camera-model.md)
#: Wheels relative to the car's centre (the root, 1.6 m ahead of the rear axle):
#: (right, forward) in metres.
WHEELS = tuple(
    (side * HALF_TRACK_M, fwd)
    for fwd in (-ROOT_AHEAD_OF_REAR_AXLE_M, WHEELBASE_M - ROOT_AHEAD_OF_REAR_AXLE_M)
    for side in (-1.0, 1.0)
)
#: Full lock: the tightest the car can turn back (radius 6.15 m).
MAX_CURVATURE = float(steering_to_curvature(1.0))
WITHIN_M = (0.3, 0.5)
RECOVERY_OFFSETS_M = (-1.0, -0.5, 0.5, 1.0)
RECOVERY_YAWS_DEG = (-5.0, 5.0)
#: A disturbed car has recovered when it is this close to its undisturbed twin.
RECOVERY_BAND_M = 0.3
RECOVERY_TIME_S = 5.0
#: The simulator's nominal sampling rate (a frame about every 0.067 s).
CONTROL_HZ = 15.0


@dataclass(frozen=True)
class LoopConfig:
    criterion: str = "road"
    offset_limit_m: float = OFFSET_LIMIT_M
    heading_limit_deg: float = HEADING_LIMIT_DEG
    latency_frames: int = 0
    response: CarResponse = BICYCLE
    camera: Camera = field(default_factory=Camera)
    #: Decisions per second at least: a recorded frame interval longer than
    #: 1.25 / control_hz is driven in several steps (views synthesised ahead of the
    #: frame), as the real simulator asks for a steering command on every frame it
    #: renders, not only every 0.1 s like some recordings.
    control_hz: float = CONTROL_HZ

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}. Received: {self.criterion!r}")
        if self.offset_limit_m <= 0:
            raise ValueError(f"offset_limit_m must be > 0. Received: {self.offset_limit_m}")
        if not 0 < self.heading_limit_deg <= 90:
            raise ValueError(
                f"heading_limit_deg must be in (0, 90]. Received: {self.heading_limit_deg}"
            )
        if not 0 <= self.latency_frames <= 10:
            raise ValueError(f"latency_frames must be in 0..10. Received: {self.latency_frames}")
        if not 1.0 <= self.control_hz <= 100.0:
            raise ValueError(f"control_hz must be in [1, 100]. Received: {self.control_hz}")

    def describe(self) -> str:
        if self.criterion == "nvidia":
            return (
                f"the car's centre more than {self.offset_limit_m:g} m from the recorded path "
                f"or its heading more than {self.heading_limit_deg:g} deg off (NVIDIA)"
            )
        return (
            "a wheel beyond a road edge estimated from the recording, or a heading that "
            "makes crossing one certain"
        )


class SynthesizedViews:
    """Views of a displaced car synthesised from the recorded frames.

    ``sides`` holds the left and right frames when the recording has them; each view
    is then synthesised from whichever camera is nearest the virtual camera
    sideways, and pixels that camera never saw get the nearest recorded pixel
    (``fill=None``; pass a grey level to paint them instead). With ``bonnet`` the
    car's bonnet is kept where the frames show it.
    """

    def __init__(
        self,
        frames: np.ndarray,
        camera: Camera,
        sides: dict[str, np.ndarray] | None = None,
        *,
        bonnet: bool = False,
        fill: int | None = None,
    ):
        self.frames = frames
        self.camera = camera
        self.cams: list[tuple[Camera, np.ndarray]] = [(camera, frames)]
        for name, cam in side_cameras(camera).items():
            if sides and name in sides:
                self.cams.append((cam, sides[name]))
        self.keep = bonnet_mask(camera) if bonnet else None
        self.fill = fill

    def __call__(self, base: int, right: float, forward: float, yaw: float):
        lat, fwd, yaw_c = camera_offset_for_car_pose(self.camera, float(right), float(yaw))
        target_x = self.camera.lateral_m + lat
        src_cam, src = min(self.cams, key=lambda s: abs(s[0].lateral_m - target_x))
        return synthesize_view(
            src[base],
            lat,
            yaw_c,
            self.camera,
            forward_m=fwd + float(forward),
            fill=self.fill,
            source=src_cam,
            keep=self.keep,
            keep_image=self.frames[base],
        )


ViewSource = Callable[[int, float, float, float], tuple[np.ndarray, np.ndarray]]


class TransformedViews:
    """A view source whose views pass through ``transform(view, key)`` before the
    policy sees them (the robustness benchmark's corruptions); ``keys[base]`` names
    the recorded frame a view was made from (its row in the recording), so a random
    corruption is the same whenever that frame is the source."""

    def __init__(self, views: ViewSource, transform, keys: np.ndarray):
        self.views, self.transform, self.keys = views, transform, np.asarray(keys)

    def __call__(self, base: int, right: float, forward: float, yaw: float):
        view, valid = self.views(base, right, forward, yaw)
        return self.transform(view, int(self.keys[base])), valid


@dataclass
class Trace:
    """Per-step record of K cars (arrays of shape (steps, K); ``active`` masks)."""

    time: np.ndarray  # seconds since the car's start, after the step
    frame: np.ndarray  # reference frame (path index) used for the view
    offset: np.ndarray  # car centre right of the path after the step, before any reset, m
    heading_error: np.ndarray  # rad, > 0 turned right of the path
    margin: np.ndarray  # distance of the nearest wheel inside its road edge, m (< 0 outside)
    output: np.ndarray  # policy output at this step
    applied: np.ndarray  # command the car drove with (after latency)
    wheel: np.ndarray  # mean wheel position over the step (the car's response)
    human: np.ndarray
    invalid: np.ndarray  # share of view pixels with no source
    dt: np.ndarray
    ds: np.ndarray
    intervention: np.ndarray  # bool
    active: np.ndarray  # bool


def _edge_at(path: ReferencePath, edges: RoadEdges, s: np.ndarray):
    """Left and right edge offsets at arc lengths ``s`` of the path's root."""
    return np.interp(s, path.s, edges.left), np.interp(s, path.s, edges.right)


def road_margin(
    path: ReferencePath,
    edges: RoadEdges,
    base: np.ndarray,
    frac: np.ndarray,
    offset: np.ndarray,
    heading_error: np.ndarray,
) -> np.ndarray:
    """How far the car's wheels are inside the road (m; < 0: a wheel is outside, or
    crossing is certain), for cars at (base, frac) with ``offset`` and
    ``heading_error`` relative to the path (arrays of K)."""
    s0 = path.s[base] + frac * (path.s[np.minimum(base + 1, len(path) - 1)] - path.s[base])
    c, sn = np.cos(heading_error), np.sin(heading_error)
    margin = np.full(len(base), np.inf)
    for right, fwd in WHEELS:
        lat = offset + right * c + fwd * sn
        along = s0 + fwd * c - right * sn
        left_e, right_e = _edge_at(path, edges, along)
        margin = np.minimum(margin, np.minimum(lat - left_e, right_e - lat))
    # Turned towards an edge by psi, the front of the car swings out at least
    # (1 - cos psi) / kappa_max further before it can be straight again.
    front = WHEELBASE_M - ROOT_AHEAD_OF_REAR_AXLE_M
    extra = (1.0 - c) / MAX_CURVATURE
    along = s0 + front * c
    left_e, right_e = _edge_at(path, edges, along)
    lat_r = offset + HALF_TRACK_M * c + front * sn
    lat_l = offset - HALF_TRACK_M * c + front * sn
    certain = np.where(heading_error > 0, right_e - (lat_r + extra), (lat_l - extra) - left_e)
    return np.minimum(margin, certain)


def run_cars(
    path: ReferencePath,
    views: ViewSource,
    policy: Policy,
    config: LoopConfig,
    *,
    start: np.ndarray,
    edges: RoadEdges | None = None,
    offset_m: np.ndarray | float = 0.0,
    yaw_rad: np.ndarray | float = 0.0,
    max_time_s: float | None = None,
    reset: bool = True,
    on_step: Callable[[int, np.ndarray, dict], None] | None = None,
    progress: bool = False,
    desc: str = "closed loop",
) -> Trace:
    """Drive K cars in lock-step from path frames ``start`` until the path ends (or
    ``max_time_s``). With ``reset`` an intervention puts the car back on the path;
    without it the car stops there (recovery trials). The road criterion needs
    ``edges``."""
    if config.criterion == "road" and edges is None:
        raise ValueError("the road criterion needs the road's edges; pass edges=")
    start = np.atleast_1d(np.asarray(start, dtype=np.int64))
    k = len(start)
    offset0 = np.broadcast_to(np.asarray(offset_m, dtype=np.float64), (k,))
    yaw0 = np.broadcast_to(np.asarray(yaw_rad, dtype=np.float64), (k,))
    x, y, h = pose_on_path(path, start, np.zeros(k), offset0, yaw0)
    hint = start.copy()
    t_car = np.zeros(k)
    active = np.ones(k, dtype=bool)
    # Commands in flight: with latency L the car drives the answer given L steps ago.
    # The queue starts with the human's command, as if the policy had been driving;
    # the wheel starts where the human's command had put it.
    human0 = path.steering[start].astype(np.float64)
    pending = [human0.copy() for _ in range(config.latency_frames)]
    applied_now = human0.copy()
    car = ResponseState(config.response, human0)
    heading_limit = math.radians(config.heading_limit_deg)
    cols: dict[str, list[np.ndarray]] = {name: [] for name in Trace.__dataclass_fields__}
    n = len(path)
    total = n - int(start.min()) if max_time_s is None else None
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)
    step = 0
    try:
        while active.any():
            p = project(path, x, y, h, hint)
            hint = p.base
            active &= ~p.at_end
            if max_time_s is not None:
                active &= t_car < max_time_s - 1e-9
            if not active.any():
                break
            idx = np.flatnonzero(active)
            right, fwd, yaw = relative_pose(path, p.base, x, y, h)
            frames = np.empty((len(idx), config.camera.height, config.camera.width, 3), np.uint8)
            invalid = np.zeros(k)
            for j, c in enumerate(idx):
                frames[j], valid = views(int(p.base[c]), right[c], fwd[c], yaw[c])
                invalid[c] = 1.0 - float(valid.mean())
            nxt = np.minimum(p.base + 1, n - 1)
            speed = path.speed[p.base] + p.frac * (path.speed[nxt] - path.speed[p.base])
            human = path.steering[p.base]
            ctx = StepContext(
                frame=p.base[idx],
                human=human[idx],
                speed_mph=speed[idx] * MPH_PER_MPS,
                steering=applied_now[idx],
            )
            output = np.zeros(k)
            output[idx] = np.clip(np.asarray(policy(frames, ctx), dtype=np.float64), -1.0, 1.0)
            if pending:
                pending.append(output.copy())
                applied = pending.pop(0)
            else:
                applied = output
            applied = np.where(active, applied, 0.0)
            applied_now = applied
            interval = path.t[nxt] - path.t[p.base]
            substeps = np.maximum(np.ceil(interval * config.control_hz - 0.25), 1.0)
            dt = np.where(active, interval / substeps, 0.0)
            ds = speed * dt
            wheel = car.step(applied, dt)
            nx, ny, nh = arc_step(x, y, h, steering_to_curvature(wheel), ds)
            x, y, h = np.where(active, nx, x), np.where(active, ny, y), np.where(active, nh, h)
            t_car = t_car + dt
            q = project(path, x, y, h, p.base)
            hint = q.base
            if edges is not None:
                margin = road_margin(path, edges, q.base, q.frac, q.offset, q.heading_error)
            else:
                margin = np.full(k, np.nan)
            if config.criterion == "road":
                out_of_road = margin < 0
            else:
                out_of_road = (np.abs(q.offset) > config.offset_limit_m) | (
                    np.abs(q.heading_error) > heading_limit
                )
            over = active & out_of_road
            row = dict(
                time=t_car.copy(),
                frame=p.base.copy(),
                offset=q.offset,
                heading_error=q.heading_error,
                margin=margin,
                output=output,
                applied=applied,
                wheel=wheel.copy(),
                human=human,
                invalid=invalid,
                dt=dt,
                ds=ds,
                intervention=over,
                active=active.copy(),
            )
            for name, value in row.items():
                cols[name].append(np.asarray(value))
            if on_step is not None and k == 1:
                on_step(step, frames[0], {name: value[0] for name, value in row.items()})
            if over.any():
                if reset:
                    rx, ry, rh = pose_on_path(path, q.base, q.frac)
                    x, y, h = np.where(over, rx, x), np.where(over, ry, y), np.where(over, rh, h)
                    # The human hands back with the wheel where the recording had it.
                    car.reset(over, path.steering[q.base])
                else:
                    active &= ~over
            step += 1
            bar.update(1)
    finally:
        bar.close()
    if not cols["time"]:
        empty = np.zeros((0, k))
        return Trace(**{name: empty for name in Trace.__dataclass_fields__})
    return Trace(**{name: np.stack(v) for name, v in cols.items()})


# --------------------------------------------------------------------------- scores


def autonomy(interventions: int, elapsed_s: float) -> tuple[float, float]:
    """NVIDIA's autonomy in percent, and the bounded form ``1 - 6N / (T + 6N)`` in
    percent (0..100: equal to NVIDIA's for few interventions, never negative)."""
    if elapsed_s <= 0:
        return math.nan, math.nan
    penalty = PENALTY_S * interventions
    return (1.0 - penalty / elapsed_s) * 100.0, (1.0 - penalty / (elapsed_s + penalty)) * 100.0


def _stats(a: np.ndarray) -> dict:
    a = a[np.isfinite(a)]
    if not a.size:
        return {"mean": math.nan, "p95": math.nan, "max": math.nan}
    return {"mean": float(a.mean()), "p95": float(np.percentile(a, 95)), "max": float(a.max())}


def score(traces: Sequence[Trace]) -> dict:
    """Scores of single-car runs (one Trace per driven segment)."""

    def col(name: str) -> np.ndarray:
        parts = [getattr(tr, name)[:, 0][tr.active[:, 0]] for tr in traces if len(tr.time)]
        return np.concatenate(parts) if parts else np.zeros(0)

    dt, ds = col("dt"), col("ds")
    off = np.abs(col("offset"))
    head = np.degrees(np.abs(col("heading_error")))
    margin = col("margin")
    n_int = int(sum(int(tr.intervention[:, 0].sum()) for tr in traces if len(tr.time)))
    elapsed = float(dt.sum())
    dist_km = float(ds.sum()) / 1000.0
    auto, bounded = autonomy(n_int, elapsed)
    finite = margin[np.isfinite(margin)]
    out = {
        "steps": int(dt.size),
        "elapsed_s": elapsed,
        "distance_km": dist_km,
        "interventions": n_int,
        "autonomy_percent": auto,
        "autonomy_bounded_percent": bounded,
        "interventions_per_km": n_int / dist_km if dist_km > 0 else math.nan,
        "lateral_offset_m": _stats(off),
        "heading_error_deg": _stats(head),
        "road_margin_m": {
            "min": float(finite.min()) if finite.size else math.nan,
            "p5": float(np.percentile(finite, 5)) if finite.size else math.nan,
            "mean": float(finite.mean()) if finite.size else math.nan,
        },
        "invalid_pixel_share": _stats(col("invalid")),
    }
    for w in WITHIN_M:
        out[f"time_within_{w:g}m"] = (
            float(dt[off <= w].sum() / elapsed) if elapsed > 0 else math.nan
        )
    return out


# ------------------------------------------------------------------------ recovery


def recovery_starts(path: ReferencePath, points: int, duration_s: float) -> np.ndarray:
    """Up to ``points`` evenly spread start frames with ``duration_s`` + 1 s of path ahead."""
    last_t = path.t[-1] - duration_s - 1.0
    usable = np.flatnonzero((path.t >= 1.0) & (path.t <= last_t))
    if not usable.size or points <= 0:
        return np.zeros(0, dtype=np.int64)
    pick = np.linspace(0, usable.size - 1, min(points, usable.size) + 2)[1:-1]
    return usable[np.round(pick).astype(np.int64)]


def recovery_trials(
    path: ReferencePath,
    views: ViewSource,
    policy: Policy,
    config: LoopConfig,
    *,
    points: int,
    edges: RoadEdges | None = None,
    duration_s: float = RECOVERY_TIME_S,
    band_m: float = RECOVERY_BAND_M,
    offsets_m: Sequence[float] = RECOVERY_OFFSETS_M,
    yaws_deg: Sequence[float] = RECOVERY_YAWS_DEG,
    progress: bool = False,
) -> list[dict]:
    """Cars started displaced (``offsets_m``, heading 0) or turned (``yaws_deg``,
    offset 0) at ``points`` spread-out frames, each beside an undisturbed twin, run
    for ``duration_s`` without resets. A trial succeeds when the car never met the
    intervention criterion and ends within ``band_m`` of its twin. Starts that are
    already an intervention (a wheel off a narrow road) are reported, not run."""
    starts = recovery_starts(path, points, duration_s)
    kinds = [(0.0, 0.0)] + [(o, 0.0) for o in offsets_m] + [(0.0, y) for y in yaws_deg]
    if not starts.size or len(kinds) == 1:
        return []
    start = np.repeat(starts, len(kinds))
    off = np.tile([kd[0] for kd in kinds], len(starts))
    yaw = np.radians(np.tile([kd[1] for kd in kinds], len(starts)))
    tr = run_cars(
        path,
        views,
        policy,
        config,
        start=start,
        edges=edges,
        offset_m=off,
        yaw_rad=yaw,
        max_time_s=duration_s,
        reset=False,
        progress=progress,
        desc="recovery trials",
    )
    out = []
    for c in range(len(start)):
        if c % len(kinds) == 0:
            twin = c
            continue
        act = tr.active[:, c]
        offs = tr.offset[act, c]
        times = tr.time[act, c]
        twin_act = tr.active[:, twin]
        steps = int(act.sum())
        gap = np.abs(tr.offset[:steps, c] - tr.offset[:steps, twin])
        gap = np.where(twin_act[:steps], gap, np.nan)
        failed = bool(tr.intervention[act, c].any())
        at_start = failed and steps >= 1 and bool(tr.intervention[0, c]) and abs(off[c]) > 0
        reached = bool(times.size) and times[-1] >= duration_s - 1e-6
        final_gap = float(gap[-1]) if gap.size else math.nan
        # Back within the band after the disturbance was largest (a turned start
        # begins on its twin's line and leaves it first).
        peak = int(np.nanargmax(gap)) if np.isfinite(gap).any() else 0
        inside = peak + np.flatnonzero(gap[peak:] <= band_m)
        out.append(
            {
                "start_frame": int(start[c]),
                "offset_m": float(off[c]),
                "yaw_deg": float(np.degrees(yaw[c])),
                "success": bool(reached and not failed and final_gap <= band_m),
                "intervention": failed,
                "off_road_at_start": at_start,
                "final_offset_m": float(abs(offs[-1])) if offs.size else math.nan,
                "final_gap_m": final_gap,
                "first_within_s": float(times[inside[0]]) if inside.size else math.nan,
            }
        )
    return out


def recovery_summary(trials: Sequence[dict]) -> dict:
    run = [t for t in trials if not t.get("off_road_at_start")]
    if not run:
        return {
            "trials": 0,
            "skipped_off_road": len(trials),
            "success_share": math.nan,
            "by_start": {},
        }
    by: dict[str, list[dict]] = {}
    for t in run:
        key = f"yaw {t['yaw_deg']:+g} deg" if t["yaw_deg"] else f"offset {t['offset_m']:+g} m"
        by.setdefault(key, []).append(t)

    def pct(v: list[float], q: float) -> float:
        a = np.asarray([x for x in v if math.isfinite(x)])
        return float(np.percentile(a, q)) if a.size else math.nan

    return {
        "trials": len(run),
        "skipped_off_road": len(trials) - len(run),
        "success_share": float(np.mean([t["success"] for t in run])),
        "final_gap_m": {
            "p50": pct([t["final_gap_m"] for t in run], 50),
            "p90": pct([t["final_gap_m"] for t in run], 90),
        },
        "by_start": {
            key: {
                "trials": len(v),
                "success_share": float(np.mean([t["success"] for t in v])),
                "interventions": int(sum(t["intervention"] for t in v)),
                "final_gap_m_p50": pct([t["final_gap_m"] for t in v], 50),
                "time_to_band_s_p50": pct([t["first_within_s"] for t in v], 50),
            }
            for key, v in by.items()
        },
    }
