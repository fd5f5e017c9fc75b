"""The recorded path, rebuilt from speed, steering and frame times (kinematic bicycle).

World frame as in :mod:`sim.track`: ``x`` east, ``y`` north, ``heading``
counter-clockwise from +x, so a right turn (steering > 0) *decreases* it. A pose is
the centre of the rear axle. Lateral offsets and yaw errors are > 0 to the right,
as in :mod:`sim.camera`.

Between two frames the recorded steering is held (the simulator records the
command in force until the next sample) and the car covers ``(v_i + v_i+1) / 2 x
dt``; each interval is integrated exactly as an arc of constant curvature
``tan(steering x 25 deg) / 2.87 m``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from sim.camera import MPH_PER_MPS, ROOT_AHEAD_OF_REAR_AXLE_M, steering_to_curvature

logger = logging.getLogger(__name__)

#: Below this speed the car is treated as standing (the simulator's recordings
#: start from rest); 1 m/s is 2.2 mph.
MIN_SPEED_MPS = 1.0
#: A frame gap above this is a pause in recording (the simulator samples every
#: 60-120 ms): the path is split there rather than bridged.
MAX_GAP_S = 0.5
#: Frame interval assumed when file names carry no time stamp (the simulator's
#: nominal sampling interval, ../shared/docs/simulator-protocol.md).
NOMINAL_DT_S = 0.067
#: Segments shorter than this are not worth driving (the car needs a few seconds
#: to show anything).
MIN_SEGMENT_S = 3.0


def arc_step(
    x: np.ndarray, y: np.ndarray, heading: np.ndarray, curvature: np.ndarray, ds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move poses ``ds`` metres along arcs of right-positive ``curvature`` (exact)."""
    dth = -np.asarray(curvature) * ds
    half = 0.5 * dth
    # chord = ds * sin(half) / half, with the limit ds for a straight step
    chord = ds * np.sinc(half / np.pi)
    mid = heading + half
    return x + chord * np.cos(mid), y + chord * np.sin(mid), heading + dth


def integrate_path(
    dt: np.ndarray,
    speed_mps: np.ndarray,
    steering: np.ndarray,
    yaw: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Poses (x, y, heading) and arc length s of n frames from n-1 intervals ``dt``.

    Starts at the origin heading +x. Each interval is an arc turning by ``yaw[i]``
    (rad, > 0 right: the turn measured from the frames) or, without ``yaw``, by the
    kinematic bicycle's turn for ``steering[i]`` held from frame i to i+1.
    """
    n = len(speed_mps)
    if len(steering) != n or len(dt) != n - 1:
        raise ValueError(
            f"expected n speeds and steerings and n-1 intervals. Received: {n} speeds, "
            f"{len(steering)} steerings, {len(dt)} intervals"
        )
    v = np.asarray(speed_mps, dtype=np.float64)
    ds = 0.5 * (v[1:] + v[:-1]) * np.asarray(dt, dtype=np.float64)
    if yaw is None:
        k = steering_to_curvature(np.asarray(steering[:-1], dtype=np.float64))
    else:
        if len(yaw) != n - 1:
            raise ValueError(f"expected {n - 1} turns for {n} frames. Received: {len(yaw)}")
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(ds > 1e-9, np.asarray(yaw, dtype=np.float64) / ds, 0.0)
    x, y, h = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n - 1):
        x[i + 1], y[i + 1], h[i + 1] = arc_step(x[i], y[i], h[i], k[i], ds[i])
    return x, y, h, np.concatenate([[0.0], np.cumsum(ds)])


def to_local(ref_x, ref_y, ref_heading, x, y) -> tuple[np.ndarray, np.ndarray]:
    """(right, forward) coordinates of world points in the frame of a reference pose."""
    dx, dy = np.asarray(x) - ref_x, np.asarray(y) - ref_y
    c, s = np.cos(ref_heading), np.sin(ref_heading)
    return dx * s - dy * c, dx * c + dy * s


def wrap_angle(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass(frozen=True)
class ReferencePath:
    """A stretch of recorded driving: frame indices into the recording and poses."""

    rows: np.ndarray  # indices into the recording's rows (int)
    t: np.ndarray  # seconds since the first frame of the segment
    speed: np.ndarray  # m/s
    steering: np.ndarray  # recorded human steering, -1..1
    x: np.ndarray  # rear-axle poses
    y: np.ndarray
    heading: np.ndarray
    s: np.ndarray  # arc length, m

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def dt(self) -> np.ndarray:
        return np.diff(self.t)

    @property
    def duration_s(self) -> float:
        return float(self.t[-1] - self.t[0])

    @property
    def root_x(self) -> np.ndarray:
        return self.x + ROOT_AHEAD_OF_REAR_AXLE_M * np.cos(self.heading)

    @property
    def root_y(self) -> np.ndarray:
        return self.y + ROOT_AHEAD_OF_REAR_AXLE_M * np.sin(self.heading)


def build_path(
    rows: np.ndarray,
    t: np.ndarray,
    speed_mps: np.ndarray,
    steering: np.ndarray,
    yaw: np.ndarray | None = None,
) -> ReferencePath:
    """The path of frames ``rows``; turning from ``yaw`` per interval when given
    (measured from the frames), else from ``steering`` (kinematic bicycle)."""
    x, y, h, s = integrate_path(np.diff(t), speed_mps, steering, yaw)
    return ReferencePath(
        rows=np.asarray(rows),
        t=np.asarray(t, dtype=np.float64) - t[0],
        speed=np.asarray(speed_mps, dtype=np.float64),
        steering=np.asarray(steering, dtype=np.float64),
        x=x,
        y=y,
        heading=h,
        s=s,
    )


def split_segments(
    timestamps: np.ndarray,
    speed_mph: np.ndarray,
    steering: np.ndarray,
    *,
    min_speed_mps: float = MIN_SPEED_MPS,
    max_gap_s: float = MAX_GAP_S,
    min_segment_s: float = MIN_SEGMENT_S,
) -> list[ReferencePath]:
    """Reference paths of the stretches where the car moves and frames are regular.

    Frames below ``min_speed_mps``, gaps above ``max_gap_s`` or backwards in time
    split the recording; stretches shorter than ``min_segment_s`` are dropped.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    n = len(ts)
    if not np.isfinite(ts).all():
        logger.warning(
            "frame file names carry no time stamp: assuming %.3f s between frames", NOMINAL_DT_S
        )
        ts = np.arange(n) * NOMINAL_DT_S
    v = np.asarray(speed_mph, dtype=np.float64) / MPH_PER_MPS
    moving = v >= min_speed_mps
    gaps = np.diff(ts)
    breaks = (gaps <= 0) | (gaps > max_gap_s)
    out: list[ReferencePath] = []
    start = None
    for i in range(n + 1):
        ok = i < n and moving[i] and (start is None or not breaks[i - 1])
        if ok and start is None:
            start = i
            continue
        if not ok and start is not None:
            rows = np.arange(start, i)
            if len(rows) >= 3 and ts[i - 1] - ts[start] >= min_segment_s:
                out.append(build_path(rows, ts[rows], v[rows], np.asarray(steering)[rows]))
            start = i if (i < n and moving[i]) else None
    return out


@dataclass
class Projection:
    """Where cars stand relative to a reference path (arrays of K cars)."""

    base: np.ndarray  # frame at or behind the car (int)
    frac: np.ndarray  # 0..1 towards base + 1
    offset: np.ndarray  # car root right of the path, m
    heading_error: np.ndarray  # car turned right of the path, rad
    at_end: np.ndarray  # bool: past the last interval


def project(path: ReferencePath, x, y, heading, hint: np.ndarray, window: int = 40) -> Projection:
    """Project the cars' roots (1.6 m ahead of the rear axle) onto the path's roots.

    ``hint`` is each car's previous base index; the search looks ``window`` frames
    either side (a car covers about one frame interval per step).
    """
    x, y, heading = np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(heading)
    rx = x + ROOT_AHEAD_OF_REAR_AXLE_M * np.cos(heading)
    ry = y + ROOT_AHEAD_OF_REAR_AXLE_M * np.sin(heading)
    px, py = path.root_x, path.root_y
    n = len(path)
    k = len(x)
    base = np.empty(k, dtype=np.int64)
    for c in range(k):
        lo = max(int(hint[c]) - window, 0)
        hi = min(int(hint[c]) + window + 1, n)
        j = lo + int(np.argmin((px[lo:hi] - rx[c]) ** 2 + (py[lo:hi] - ry[c]) ** 2))
        _, fwd = to_local(px[j], py[j], path.heading[j], rx[c], ry[c])
        if fwd < 0 and j > 0:
            j -= 1
        base[c] = min(j, n - 2)
    nxt = base + 1
    # Position along the chord between the two roots.
    cx, cy = px[nxt] - px[base], py[nxt] - py[base]
    length = np.maximum(np.hypot(cx, cy), 1e-9)
    ux, uy = cx / length, cy / length
    dx, dy = rx - px[base], ry - py[base]
    along = dx * ux + dy * uy
    frac = np.clip(along / length, 0.0, 1.0)
    offset = dx * uy - dy * ux  # right of the chord
    ref_heading = path.heading[base] + frac * (path.heading[nxt] - path.heading[base])
    return Projection(
        base=base,
        frac=frac,
        offset=offset,
        heading_error=wrap_angle(ref_heading - heading),
        at_end=(base >= n - 2) & (along >= length),
    )


def pose_on_path(
    path: ReferencePath, base: np.ndarray, frac: np.ndarray, offset_m=0.0, yaw_rad=0.0
):
    """Rear-axle pose of a car whose root is ``offset_m`` right of the path at
    (base, frac), turned ``yaw_rad`` right of the path about its root."""
    base = np.minimum(np.asarray(base), len(path) - 2)
    nxt = base + 1
    cx = path.root_x[nxt] - path.root_x[base]
    cy = path.root_y[nxt] - path.root_y[base]
    rx = path.root_x[base] + frac * cx
    ry = path.root_y[base] + frac * cy
    # Displaced along the normal of the root path (as :func:`project` measures), which
    # on a bend is turned from the car's heading by atan(1.6 m / radius).
    length = np.maximum(np.hypot(cx, cy), 1e-9)
    rx = rx + offset_m * cy / length
    ry = ry - offset_m * cx / length
    h = path.heading[base] + frac * (path.heading[nxt] - path.heading[base]) - yaw_rad
    return (
        rx - ROOT_AHEAD_OF_REAR_AXLE_M * np.cos(h),
        ry - ROOT_AHEAD_OF_REAR_AXLE_M * np.sin(h),
        h,
    )


def relative_pose(path: ReferencePath, base: np.ndarray, x, y, heading):
    """Car rear axle relative to frame ``base``'s rear axle: (right, forward, yaw right)."""
    right, fwd = to_local(path.x[base], path.y[base], path.heading[base], x, y)
    return right, fwd, wrap_angle(path.heading[base] - heading)


def circle_fit_radius(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares circle radius through points (Kasa fit), for tests and checks."""
    a = np.stack([x, y, np.ones_like(x)], axis=1)
    b = x**2 + y**2
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = sol[0] / 2, sol[1] / 2
    return math.sqrt(sol[2] + cx**2 + cy**2)
