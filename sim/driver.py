"""The demo road's scripted driver: a weaving pure-pursuit driver with recoveries.

World frame and track coordinates as in :mod:`sim.track`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.camera import MAX_STEER_DEG, MPH_PER_MPS, WHEELBASE_M, curvature_to_steering
from sim.track import Track


@dataclass(frozen=True, eq=False)
class DemoDrive:
    """Frame-by-frame record of a scripted drive (arrays of length n_frames).

    Poses are those at which the frames were rendered; ``steering`` etc. are the
    commands recorded with each frame (applied until the next one).
    """

    track: Track
    time_s: np.ndarray  # since the first frame
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    s: np.ndarray  # arc length of the rear axle's foot point
    lateral_m: np.ndarray  # rear axle right of the centreline
    yaw_rad: np.ndarray  # car turned right of the road's heading
    steering: np.ndarray  # -1..1, > 0 right
    throttle: np.ndarray
    brake: np.ndarray
    speed_mph: np.ndarray
    mode: np.ndarray  # 0 follow, 1 drift, 2 recover


_FOLLOW, _DRIFT, _RECOVER = 0, 1, 2
_ACCEL_MPS2 = 3.0  # full throttle, low speed
_DRAG_PER_S = 0.133  # throttle 0.2 holds 10 mph (4.5 m/s): a plausible choice, not measured
_BRAKE_MPS2 = 6.0
_TOP_SPEED_MPS = 30.0 / MPH_PER_MPS  # the simulator's 30 mph limit
_STEER_RATE_PER_S = 2.5  # a hand moves the wheel lock to lock in about 0.8 s
_STEER_LAG_S = 0.15  # reaction smoothing of the human driver


def _pure_pursuit(track: Track, x, y, heading, s, offset_m: float, lookahead_m: float) -> float:
    """Steering (-1..1, > 0 right) towards the track point ``lookahead_m`` ahead,
    ``offset_m`` right of the centreline (pure pursuit from the rear axle)."""
    tx, ty, _ = track.pose_at(min(s + lookahead_m, track.length_m), offset_m)
    dx, dy = tx - x, ty - y
    # Lateral coordinate of the target in the car frame, right-positive.
    lat = dx * math.sin(heading) - dy * math.cos(heading)
    dist2 = max(dx * dx + dy * dy, 1.0)
    return float(curvature_to_steering(2.0 * lat / dist2))


def drive_demo(track: Track, n_frames: int, seed: int = 0, *, start_s: float = 20.0) -> DemoDrive:
    """Drive the track with a weaving pure-pursuit driver (deterministic per seed).

    The driver alternates three modes so that recoveries are in the data:
    FOLLOW (pure pursuit, 7-14 m lookahead, to a slowly wandering offset within
    +-0.4 m; 2 s + an exponential 5 s), DRIFT (inattention: the wheel held at the
    bend's feed-forward angle plus a 0.02-0.07 bias, so the car drifts 1.0-3.0 m
    off-centre, alternating sides 3 times in 4) and RECOVER (pure pursuit to the
    centre with a short 6-10 m lookahead: firm corrections).  The first drift
    starts 1.5-4 s in, so even short recordings hold a recovery.  Speed aims at
    9-20 mph, slower in tight bends (2.5 m/s^2 of lateral acceleration at most).
    Frames are 60-74 ms apart (the simulator samples about every 67 ms).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1. Received: n_frames={n_frames}")
    rng = np.random.default_rng([seed, 3])
    x, y, heading = track.pose_at(start_s)
    s = start_s
    v = 0.0  # the simulator's recordings start from rest
    steer = 0.0
    mode = _FOLLOW
    mode_left = rng.uniform(1.5, 4.0)  # first drift early: short recordings have one
    drift_side = 1.0 if rng.random() < 0.5 else -1.0
    drift_bias = drift_limit = 0.0
    wander_phase = rng.uniform(0, 2 * np.pi)
    speed_phase = rng.uniform(0, 2 * np.pi)
    cols = {k: np.zeros(n_frames) for k in DemoDrive.__dataclass_fields__ if k != "track"}
    cols["mode"] = np.zeros(n_frames, dtype=np.int8)
    t = 0.0
    for f in range(n_frames):
        s, lat = track.locate(x, y, s)
        if s + 80.0 > track.length_m:
            raise ValueError(
                f"the track ({track.length_m:.0f} m) is too short for {n_frames} frames; "
                "pass a longer track"
            )
        i = int(round(s / track.ds))
        yaw = (track.heading[i] - heading + np.pi) % (2 * np.pi) - np.pi
        kappa = float(track.curvature[i])

        # --- mode machine
        if mode == _FOLLOW and mode_left <= 0:
            mode = _DRIFT
            # Alternate sides 3 times in 4 so both sides get recoveries.
            drift_side = -drift_side if rng.random() < 0.75 else drift_side
            drift_bias = drift_side * rng.uniform(0.02, 0.07)
            drift_limit = rng.uniform(1.0, 3.0)
            mode_left = 8.0
        elif mode == _DRIFT and (abs(lat) > drift_limit or mode_left <= 0):
            mode = _RECOVER
            recover_lookahead = rng.uniform(6.0, 10.0)
        elif mode == _RECOVER and abs(lat) < 0.3 and abs(yaw) < math.radians(3.0):
            mode = _FOLLOW
            mode_left = rng.exponential(5.0) + 2.0

        # --- steering target
        if mode == _FOLLOW:
            wander = 0.4 * math.sin(0.35 * t + wander_phase)
            lookahead = float(np.clip(1.2 * v, 7.0, 14.0))
            target = _pure_pursuit(track, x, y, heading, s, wander, lookahead)
        elif mode == _DRIFT:
            target = float(curvature_to_steering(kappa)) + drift_bias
        else:
            target = _pure_pursuit(track, x, y, heading, s, 0.0, recover_lookahead)

        throttle, brake = _pedals(v, t, speed_phase, kappa)
        steer = _human_steering(steer, target)  # recorded with this frame

        for key, val in (
            ("time_s", t), ("x", x), ("y", y), ("heading", heading), ("s", s),
            ("lateral_m", lat), ("yaw_rad", yaw), ("steering", steer), ("throttle", throttle),
            ("brake", brake), ("speed_mph", v * MPH_PER_MPS), ("mode", mode),
        ):  # fmt: skip
            cols[key][f] = val

        dt_frame = rng.integers(60, 75) / 1000.0
        x, y, heading, v = _advance(x, y, heading, v, steer, throttle, brake, dt_frame)
        t += dt_frame
        mode_left -= dt_frame
    return DemoDrive(track=track, **cols)


def _pedals(v: float, t: float, speed_phase: float, kappa: float) -> tuple[float, float]:
    """Throttle and brake towards a 9-20 mph target speed, slower in bends."""
    v_cruise = (14.5 + 5.5 * math.sin(0.05 * t + speed_phase)) / MPH_PER_MPS
    v_bend = math.sqrt(2.5 / max(abs(kappa), 1e-4))
    v_target = min(v_cruise, v_bend)
    throttle = float(np.clip(_DRAG_PER_S * v_target / _ACCEL_MPS2 + 0.5 * (v_target - v), 0, 1))
    brake = float(np.clip(0.25 * (v - v_target - 1.0), 0.0, 1.0))
    if brake > 0:
        throttle = 0.0
    return throttle, brake


def _human_steering(steer: float, target: float) -> float:
    """The next frame's steering: a human-like lag, then a rate limit."""
    step = 0.067
    want = steer + (target - steer) * min(step / _STEER_LAG_S, 1.0)
    max_change = _STEER_RATE_PER_S * step
    return float(np.clip(np.clip(want, steer - max_change, steer + max_change), -1.0, 1.0))


def _advance(x, y, heading, v, steer, throttle, brake, dt_frame):
    """The pose and speed ``dt_frame`` later (kinematic bicycle, 4 sub-steps)."""
    wheel = math.radians(steer * MAX_STEER_DEG)
    for _ in range(4):
        h = dt_frame / 4
        v += (_ACCEL_MPS2 * throttle - _DRAG_PER_S * v - _BRAKE_MPS2 * brake) * h
        v = min(max(v, 0.0), _TOP_SPEED_MPS)
        heading -= v * math.tan(wheel) / WHEELBASE_M * h  # right turn: heading falls
        x += v * math.cos(heading) * h
        y += v * math.sin(heading) * h
    return x, y, heading, v
