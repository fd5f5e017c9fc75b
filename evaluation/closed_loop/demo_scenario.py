"""The procedural demo road's truth, for the closed-loop checks of
:mod:`evaluation.closed_loop.demo_check`.

On the demo road (:mod:`sim.track`) the world is exactly flat and the sky infinitely
far, and the true view of any pose can be rendered: :func:`clean_drive` drives the
centreline and renders what a recording would hold, :class:`RenderedViews` renders
the view of any displaced car (the truth beside the synthesised views),
:func:`path_error` and :func:`true_edges` measure a reference path and its road
edges against the road itself.

The road follower (:class:`RoadFollower`) is a transparent vision policy for this
road only: it finds the grey asphalt in rows 5-25 m ahead, back-projects its centre
to the ground with the camera model and steers there by pure pursuit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from evaluation.closed_loop.kinematics import ReferencePath, build_path, to_local, wrap_angle
from evaluation.closed_loop.policies import Policy
from sim.camera import (
    MPH_PER_MPS,
    ROOT_AHEAD_OF_REAR_AXLE_M,
    Camera,
    curvature_to_steering,
    first_ground_row,
)
from sim.render import render_view
from sim.track import Track, make_track


class RoadFollower(Policy):
    """Pure pursuit on the asphalt seen in the image (demo road only).

    Asphalt and its white lines are grey (channel spread < 28) and neither black
    (no-source pixels of a synthesised view) nor haze-bright; grass, dirt and the
    yellow centre dashes are coloured. In each of a band of rows the grey run around
    the image centre is taken (gaps up to 12 px, the dashes, bridged); runs that
    touch the image border are unreliable and skipped. The run centres are
    back-projected to the ground, a line x(z) is fitted and the car steers by pure
    pursuit to its point ``lookahead_m`` ahead of the rear axle.
    """

    name = "road follower (vision)"

    def __init__(self, camera: Camera | None = None, lookahead_m: float = 10.0):
        self.camera = camera or Camera()
        self.lookahead_m = lookahead_m
        lo = max(first_ground_row(self.camera) + 8, 0)
        self.rows = np.arange(lo, min(lo + 40, self.camera.height - 30), 2)

    def steer(self, view: np.ndarray) -> float:
        band = view[self.rows].astype(np.int16)
        spread = band.max(axis=2) - band.min(axis=2)
        mean = band.mean(axis=2)
        grey = (spread < 28) & (mean > 30) & (mean < 200)
        w = view.shape[1]
        pts = []
        for r, row in zip(self.rows, grey, strict=True):
            run = _run_around(row, w // 2, gap=12)
            if run is None:
                continue
            left, right = run
            if left <= 0 or right >= w - 1 or right - left < 6:
                continue
            pts.append(((left + right + 1) / 2.0, r + 0.5))
        if len(pts) < 3:
            return 0.0
        ground = self.camera.pixel_to_ground(np.array(pts))
        ground = ground[np.isfinite(ground).all(axis=1)]
        if len(ground) < 3:
            return 0.0
        slope, icpt = np.polyfit(ground[:, 1], ground[:, 0], 1)
        z = self.lookahead_m
        x = slope * z + icpt
        return float(curvature_to_steering(2.0 * x / (x * x + z * z)))

    def __call__(self, views, ctx):
        return np.array([self.steer(v) for v in views])


def _run_around(row: np.ndarray, centre: int, gap: int) -> tuple[int, int] | None:
    """[left, right] of the True run nearest ``centre``, bridging gaps up to ``gap``."""
    idx = np.flatnonzero(row)
    if not idx.size:
        return None
    j = int(np.argmin(np.abs(idx - centre)))
    lo = hi = j
    while lo > 0 and idx[lo] - idx[lo - 1] <= gap:
        lo -= 1
    while hi < idx.size - 1 and idx[hi + 1] - idx[hi] <= gap:
        hi += 1
    return int(idx[lo]), int(idx[hi])


@dataclass
class CleanDrive:
    """A car driven exactly along the centreline, with what a recording would hold."""

    track: Track
    s: np.ndarray  # arc length of the rear axle of each frame
    poses: np.ndarray  # (n, 3) world x, y, heading
    path: ReferencePath  # rebuilt from the recorded speed, steering and times
    frames: np.ndarray  # rendered centre views (n, 160, 320, 3)


def clean_drive(seed: int, n_frames: int, camera: Camera, progress: bool = True) -> CleanDrive:
    """Frames every 60-74 ms (like the simulator) at 8-12 m/s along the centreline;
    recorded steering = the road's curvature at the frame (what a perfect driver
    holds), speed in mph and time stamps as a recording stores them."""
    rng = np.random.default_rng([seed, 7])
    track = make_track(seed, length_m=0.9 * n_frames + 400.0)
    dt = rng.integers(60, 75, size=n_frames - 1) / 1000.0
    t = np.concatenate([[0.0], np.cumsum(dt)])
    speed = 10.0 + 2.0 * np.sin(0.15 * t + rng.uniform(0, 6.28))  # m/s
    s = 20.0 + np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * dt)])
    idx = np.round(s / track.ds).astype(int)
    steering = curvature_to_steering(track.curvature[idx])
    # The recording stores mph with float32 precision; the path is rebuilt from that.
    speed_rec = (speed * MPH_PER_MPS).astype(np.float32) / MPH_PER_MPS
    path = build_path(np.arange(n_frames), t, speed_rec, steering)
    poses = np.array([track.pose_at(float(si)) for si in s])
    frames = np.empty((n_frames, camera.height, camera.width, 3), dtype=np.uint8)
    for i in tqdm(range(n_frames), desc="rendering demo drive", disable=not progress):
        frames[i] = render_view(track, *poses[i], camera, s_hint=float(s[i]))
    return CleanDrive(track, s, poses, path, frames)


class RenderedViews:
    """Ground truth: the rendered view of the displaced car. The car's pose relative
    to reference frame ``base`` is applied to that frame's true world pose."""

    def __init__(self, drive: CleanDrive, camera: Camera):
        self.drive = drive
        self.camera = camera

    def __call__(self, base: int, right: float, forward: float, yaw: float):
        x, y, h = self.drive.poses[base]
        wx = x + forward * math.cos(h) + right * math.sin(h)
        wy = y + forward * math.sin(h) - right * math.cos(h)
        view = render_view(
            self.drive.track, wx, wy, h - yaw, self.camera, s_hint=float(self.drive.s[base])
        )
        return view, np.ones(view.shape[:2], dtype=bool)


def path_error(path: ReferencePath, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> dict:
    """How far a path's shape is from the truth over 30 m: for every 5th frame, the
    poses of the frames up to 30 m ahead are expressed relative to that frame, in
    the estimate and in the truth (``x``, ``y``, ``heading`` of the same frames);
    RMS, p95 and max of the position differences in metres."""
    errs = []
    for i in range(0, len(path), 5):
        js = np.flatnonzero((path.s >= path.s[i]) & (path.s <= path.s[i] + 30.0))
        ex, ez = to_local(path.x[i], path.y[i], path.heading[i], path.x[js], path.y[js])
        tx, tz = to_local(x[i], y[i], heading[i], x[js], y[js])
        errs.append(np.hypot(ex - tx, ez - tz))
    e = np.concatenate(errs)
    return {
        "rms_m": float(np.sqrt(np.mean(e**2))),
        "p95_m": float(np.percentile(e, 95)),
        "max_m": float(e.max()),
    }


def true_edges(track: Track, x, y, heading, s_hint) -> tuple:
    """The road's true edges measured from the path's root along the path's normal,
    as :class:`evaluation.closed_loop.road.RoadEdges` holds them (``x``, ``y``, ``heading``: the
    true rear-axle poses of the path's frames; ``s_hint`` their arc lengths)."""
    rx = x + ROOT_AHEAD_OF_REAR_AXLE_M * np.cos(heading)
    ry = y + ROOT_AHEAD_OF_REAR_AXLE_M * np.sin(heading)
    hints = np.asarray(s_hint, dtype=np.float64)
    sd = np.array(
        [track.locate(a, b, s_hint=float(h)) for a, b, h in zip(rx, ry, hints, strict=True)]
    )
    road_heading = np.interp(sd[:, 0], np.arange(track.heading.size) * track.ds, track.heading)
    cos = np.cos(wrap_angle(road_heading - heading))
    return (-track.half_width_m - sd[:, 1]) / cos, (track.half_width_m - sd[:, 1]) / cos
