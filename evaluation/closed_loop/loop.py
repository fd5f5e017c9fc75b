"""Closed-loop evaluation on recorded logs (NVIDIA, Bojarski et al. 2016, sections 6-7.1).

A virtual car follows the reference path of a recording
(:mod:`evaluation.closed_loop.reference`: turning measured from the frames, distance from the
logged speed) at the recorded speed, steered by a policy
(:mod:`evaluation.closed_loop.policies`). At every step the view of the displaced car is
synthesised from the recorded frame at or just behind it, from whichever of the
centre, left and right cameras is nearest the virtual camera, nothing left black
(:mod:`evaluation.closed_loop.views` through :func:`sim.camera.synthesize_view`: flat
ground below the horizon, rotation only above, unsourced pixels from the nearest
recorded one, the bonnet fixed to the car). The policy answers, the car's wheel
angle follows the command as the simulator's car does
(:mod:`evaluation.closed_loop.car_model`) and the car moves one frame interval along
the arc of that wheel angle.

Interventions (the car is put back on the path and 6 s are charged):

* ``criterion="road"`` (default): a wheel of the car (track 2.0 m, axles 1.6 m
  behind and 1.27 m ahead of its centre) is beyond a road edge estimated from the
  recording (:mod:`evaluation.closed_loop.road`), or the heading error makes crossing one
  certain: even at full lock (a 6.15 m radius) the front wheel would swing past
  the edge before the car is straight again;
* ``criterion="nvidia"``: NVIDIA's rule, the car's centre more than
  ``offset_limit_m`` from the path or its heading more than ``heading_limit_deg``
  off.

Scores of a drive: :mod:`evaluation.closed_loop.scores`; recovery trials (cars
started displaced beside an undisturbed twin): :mod:`evaluation.closed_loop.recovery`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
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
from evaluation.closed_loop.road import RoadEdges
from evaluation.closed_loop.views import ViewSource
from sim.camera import (
    MPH_PER_MPS,
    ROOT_AHEAD_OF_REAR_AXLE_M,
    WHEELBASE_M,
    Camera,
    steering_to_curvature,
)

logger = logging.getLogger(__name__)

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
#: The simulator's nominal sampling rate (a frame about every 0.067 s).
CONTROL_HZ = 15.0


class NonFiniteSteering(ValueError):
    """A policy answered NaN or infinity: no car can follow it (a diverged model)."""


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


@dataclass
class _Cars:
    """The K cars of :func:`run_cars` between steps (arrays of K)."""

    x: np.ndarray  # rear axle, world m
    y: np.ndarray
    h: np.ndarray  # heading, rad
    hint: np.ndarray  # path frame each car was last found at
    t: np.ndarray  # seconds since the car's start
    active: np.ndarray  # bool
    #: Commands in flight: with latency L the car drives the answer given L steps ago.
    pending: list[np.ndarray]
    applied: np.ndarray  # the command the cars drove the last step with
    response: ResponseState  # the wheel's answer to the commands

    @classmethod
    def start(cls, path: ReferencePath, config: LoopConfig, start: np.ndarray, offset_m, yaw_rad):
        k = len(start)
        offset0 = np.broadcast_to(np.asarray(offset_m, dtype=np.float64), (k,))
        yaw0 = np.broadcast_to(np.asarray(yaw_rad, dtype=np.float64), (k,))
        x, y, h = pose_on_path(path, start, np.zeros(k), offset0, yaw0)
        # The queue starts with the human's command, as if the policy had been driving;
        # the wheel starts where the human's command had put it.
        human0 = path.steering[start].astype(np.float64)
        return cls(
            x=x,
            y=y,
            h=h,
            hint=start.copy(),
            t=np.zeros(k),
            active=np.ones(k, dtype=bool),
            pending=[human0.copy() for _ in range(config.latency_frames)],
            applied=human0.copy(),
            response=ResponseState(config.response, human0),
        )

    def delay(self, output: np.ndarray) -> np.ndarray:
        """The command the cars drive with now: ``output`` after the latency, 0 for
        stopped cars."""
        if self.pending:
            self.pending.append(output.copy())
            applied = self.pending.pop(0)
        else:
            applied = output
        self.applied = np.where(self.active, applied, 0.0)
        return self.applied


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
    cars = _Cars.start(path, config, start, offset_m, yaw_rad)
    cols: dict[str, list[np.ndarray]] = {name: [] for name in Trace.__dataclass_fields__}
    total = len(path) - int(start.min()) if max_time_s is None else None
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)
    step = 0
    try:
        while cars.active.any():
            p = project(path, cars.x, cars.y, cars.h, cars.hint)
            cars.hint = p.base
            cars.active &= ~p.at_end
            if max_time_s is not None:
                cars.active &= cars.t < max_time_s - 1e-9
            if not cars.active.any():
                break
            pose = relative_pose(path, p.base, cars.x, cars.y, cars.h)
            frames, invalid = _look(path, views, config.camera, cars, p, pose)
            speed = _speed(path, p)
            output = _answer(policy, frames, path, cars, p, speed, pose)
            applied = cars.delay(output)
            dt, ds, wheel = _move(path, config, cars, p, speed, applied)
            q, margin, over = _judge(path, edges, config, cars, p.base)
            row = dict(
                time=cars.t.copy(),
                frame=p.base.copy(),
                offset=q.offset,
                heading_error=q.heading_error,
                margin=margin,
                output=output,
                applied=applied,
                wheel=wheel.copy(),
                human=path.steering[p.base],
                invalid=invalid,
                dt=dt,
                ds=ds,
                intervention=over,
                active=cars.active.copy(),
            )
            for name, value in row.items():
                cols[name].append(np.asarray(value))
            if on_step is not None and k == 1:
                on_step(step, frames[0], {name: value[0] for name, value in row.items()})
            if over.any():
                _intervene(path, cars, q, over, reset)
            step += 1
            bar.update(1)
    finally:
        bar.close()
    if not cols["time"]:
        empty = np.zeros((0, k))
        return Trace(**{name: empty for name in Trace.__dataclass_fields__})
    return Trace(**{name: np.stack(v) for name, v in cols.items()})


def _look(path: ReferencePath, views: ViewSource, camera: Camera, cars: _Cars, p, pose):
    """The views of the active cars at their places ``p`` on the path and ``pose``
    against those frames (:func:`relative_pose`): (active cars, H, W, 3), and every
    car's share of view pixels without a source."""
    idx = np.flatnonzero(cars.active)
    right, fwd, yaw = pose
    frames = np.empty((len(idx), camera.height, camera.width, 3), np.uint8)
    invalid = np.zeros(len(cars.active))
    for j, c in enumerate(idx):
        frames[j], valid = views(int(p.base[c]), right[c], fwd[c], yaw[c])
        invalid[c] = 1.0 - float(valid.mean())
    return frames, invalid


def _speed(path: ReferencePath, p) -> np.ndarray:
    """The recorded speed (m/s) at each car's place ``p`` on the path."""
    nxt = np.minimum(p.base + 1, len(path) - 1)
    return path.speed[p.base] + p.frac * (path.speed[nxt] - path.speed[p.base])


def _answer(policy: Policy, frames, path: ReferencePath, cars: _Cars, p, speed, pose) -> np.ndarray:
    """The policy's steering for the active cars' views, clipped to [-1, 1] (0 for
    stopped cars); ``pose`` (:func:`relative_pose`) is there for the expert."""
    idx = np.flatnonzero(cars.active)
    right, _, yaw = pose
    ctx = StepContext(
        frame=p.base[idx],
        human=path.steering[p.base][idx],
        speed_mph=speed[idx] * MPH_PER_MPS,
        steering=cars.applied[idx],
        offset_m=right[idx],
        yaw_rad=yaw[idx],
    )
    answer = np.asarray(policy(frames, ctx), dtype=np.float64)
    if not np.all(np.isfinite(answer)):
        raise NonFiniteSteering(
            f"{policy.name} answered a steering of {answer[~np.isfinite(answer)][0]} at "
            f"frame {int(ctx.frame[0])}: a model whose weights diverged cannot drive"
        )
    output = np.zeros(len(cars.active))
    output[idx] = np.clip(answer, -1.0, 1.0)
    return output


def _move(path: ReferencePath, config: LoopConfig, cars: _Cars, p, speed, applied):
    """Move the active cars one recorded frame interval (or a control step of it,
    :attr:`LoopConfig.control_hz`) along the arc of their wheel angle; the step's
    time, distance and mean wheel position."""
    nxt = np.minimum(p.base + 1, len(path) - 1)
    interval = path.t[nxt] - path.t[p.base]
    substeps = np.maximum(np.ceil(interval * config.control_hz - 0.25), 1.0)
    dt = np.where(cars.active, interval / substeps, 0.0)
    ds = speed * dt
    wheel = cars.response.step(applied, dt)
    nx, ny, nh = arc_step(cars.x, cars.y, cars.h, steering_to_curvature(wheel), ds)
    cars.x = np.where(cars.active, nx, cars.x)
    cars.y = np.where(cars.active, ny, cars.y)
    cars.h = np.where(cars.active, nh, cars.h)
    cars.t = cars.t + dt
    return dt, ds, wheel


def _judge(path: ReferencePath, edges: RoadEdges | None, config: LoopConfig, cars: _Cars, base):
    """The cars' place on the path after the step, their road margin and which
    active cars meet the intervention criterion."""
    q = project(path, cars.x, cars.y, cars.h, base)
    cars.hint = q.base
    if edges is not None:
        margin = road_margin(path, edges, q.base, q.frac, q.offset, q.heading_error)
    else:
        margin = np.full(len(cars.x), np.nan)
    if config.criterion == "road":
        out_of_road = margin < 0
    else:
        out_of_road = (np.abs(q.offset) > config.offset_limit_m) | (
            np.abs(q.heading_error) > math.radians(config.heading_limit_deg)
        )
    return q, margin, cars.active & out_of_road


def _intervene(path: ReferencePath, cars: _Cars, q, over: np.ndarray, reset: bool) -> None:
    """Cars ``over`` the criterion put back on the path (``reset``) or stopped."""
    if reset:
        rx, ry, rh = pose_on_path(path, q.base, q.frac)
        cars.x = np.where(over, rx, cars.x)
        cars.y = np.where(over, ry, cars.y)
        cars.h = np.where(over, rh, cars.h)
        # The human hands back with the wheel where the recording had it.
        cars.response.reset(over, path.steering[q.base])
    else:
        cars.active &= ~over
