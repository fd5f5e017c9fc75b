"""How much the car turned between two frames, measured from the frames themselves.

The recorded steering is a poor record of the car's motion: keyboard recordings are
70-80% exact zeros with near full-lock taps, and the simulator's car answers a tap
with a smoothed turn (:mod:`evaluation.closed_loop.car_model`). So the closed loop's reference
path takes its turning from the images and its forward distance from the logged
speed and frame times (:mod:`evaluation.closed_loop.kinematics`).

Method (two-view geometry with a known motion model): corners are tracked from
frame ``i`` to ``i + 1`` with pyramidal Lucas-Kanade (OpenCV), kept only when the
backward track returns within 0.3 px. Between the two frames the car's rear axle
moves along a chord of an arc and the car turns by ``psi`` (> 0 right), so the
camera, 2.6 m ahead of the axle, both turns by ``psi`` and moves along a direction
that depends only on ``psi`` and the distance. For every candidate ``psi`` this
fixes the essential matrix ``E = [t]x R``; every static point, near or far, ground or
scenery, must lie on its epipolar line whatever its depth. The answer is the
``psi`` that puts the most tracks on their lines (truncated squared Sampson
distance, a coarse grid then a fine one). Unlike "distant scenery shifts by
``fx tan(psi)``", this is not biased by the parallax of nearby trees and hills, which
on the lake track alone turned a lap by 60 degrees too many.

Measured on real recordings (``docs/evaluation.md``): 300-400 tracks agree per frame
pair on the lake track; the turning follows the logged steering through the car's
lag (``R^2`` 0.89 on akbari_lake against 0.54 for the steering as logged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from sim.camera import Camera

#: Rows below this are the car's bonnet (it moves with the camera: no information).
BONNET_ROW = 132
#: A pair with fewer tracks than this on their epipolar lines is not trusted.
MIN_INLIERS = 30
#: Sampson distance (px) within which a track counts as agreeing.
INLIER_PX = 0.5
_TRUNCATE_PX = 1.0
_COARSE = np.linspace(-0.15, 0.15, 151)  # +-8.6 degrees per frame pair, 0.002 rad steps
_FINE_STEPS = 41
#: Pitch change between frames searched with the turn: +-0.02 rad (1.1 degrees).
_PITCH_COARSE = np.linspace(-0.02, 0.02, 9)
_MAX_CORNERS = 400
#: Lucas-Kanade window and pyramid levels, chosen on the demo road (truth known) and
#: on laps of nicholas_t1_lake (a lap must turn 360 degrees): the 21 px / 4 level
#: default of OpenCV smooths the flow and under-reads the turn by 1.7% on the demo
#: road (path error over 30 m 0.33 m RMS); 13 px / 3 levels, iterated to 0.001 px,
#: reads it within 0.1% (0.12 m) and a lap of the lake at 355 instead of 351 degrees.
LK_WINDOW = 13
LK_LEVELS = 3
_LK_STOP = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 0.001)


@dataclass(frozen=True)
class PairMotion:
    """Turning between two frames: ``yaw`` (rad, > 0 right; NaN when unmeasured),
    the tracks that agree with it and all tracks kept."""

    yaw: float
    inliers: int
    tracks: int


def _rays(camera: Camera, uv: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) -> viewing rays (N, 3) in the level camera frame (x right, y
    down, z forward), normalised to z = 1."""
    hom = np.concatenate([uv, np.ones((len(uv), 1))], axis=1) @ np.linalg.inv(camera.intrinsics()).T
    level = hom @ camera._pitch_matrix()  # undo the pitch: R^T x, row-vector form
    return level / level[:, 2:3]


def camera_translation(psi: np.ndarray, ds: float, camera: Camera) -> np.ndarray:
    """Camera displacement (K, 3) in the first level camera frame when the rear axle
    moves ``ds`` metres along the chord of an arc turning by ``psi`` (K,)."""
    half = psi / 2.0
    zc = camera.z_in_car_m
    x = ds * np.sin(half) + zc * np.sin(psi)
    z = ds * np.cos(half) + zc * np.cos(psi) - zc
    return np.stack([x, np.zeros_like(psi), z], axis=1)


def sampson_px(
    r0: np.ndarray,
    r1: np.ndarray,
    psi: np.ndarray,
    ds: float,
    camera: Camera,
    pitch: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Sampson distances (K, N) in pixels of N ray pairs for K candidate turns.

    ``r0`` are rays in the first frame, ``r1`` in the second (level frames, z = 1);
    the second camera is turned right by ``psi`` (and its nose down by ``pitch``,
    the car cresting a hill) and displaced as :func:`camera_translation` says, so
    ``r0 ~ R r1 * depth + t``.
    """
    psi = np.atleast_1d(np.asarray(psi, dtype=np.float64))
    theta = np.broadcast_to(np.asarray(pitch, dtype=np.float64), psi.shape)
    c, s = np.cos(psi), np.sin(psi)
    cp, sp = np.cos(theta), np.sin(theta)
    t = camera_translation(psi, ds, camera)
    # R maps second-frame level coords to first-frame ones: turned right by psi
    # about the vertical, then pitched down by theta about its own x axis (y down).
    yaw = np.zeros((len(psi), 3, 3))
    yaw[:, 0, 0], yaw[:, 0, 2], yaw[:, 1, 1], yaw[:, 2, 0], yaw[:, 2, 2] = c, s, 1.0, -s, c
    tilt = np.zeros((len(psi), 3, 3))
    tilt[:, 0, 0], tilt[:, 1, 1], tilt[:, 1, 2], tilt[:, 2, 1], tilt[:, 2, 2] = 1.0, cp, sp, -sp, cp
    rot = yaw @ tilt
    tx = np.zeros((len(psi), 3, 3))
    tx[:, 0, 1], tx[:, 0, 2] = -t[:, 2], t[:, 1]
    tx[:, 1, 0], tx[:, 1, 2] = t[:, 2], -t[:, 0]
    tx[:, 2, 0], tx[:, 2, 1] = -t[:, 1], t[:, 0]
    e = tx @ rot  # r0^T E r1 = 0
    x0, y0 = r0[None, :, 0], r0[None, :, 1]
    x1, y1 = r1[None, :, 0], r1[None, :, 1]
    ek = [[e[:, i, j][:, None] for j in range(3)] for i in range(3)]
    # E r1 and E^T r0, component by component (K, N): cheaper than einsum here.
    a0 = ek[0][0] * x1 + ek[0][1] * y1 + ek[0][2]
    a1 = ek[1][0] * x1 + ek[1][1] * y1 + ek[1][2]
    a2 = ek[2][0] * x1 + ek[2][1] * y1 + ek[2][2]
    b0 = ek[0][0] * x0 + ek[1][0] * y0 + ek[2][0]
    b1 = ek[0][1] * x0 + ek[1][1] * y0 + ek[2][1]
    num = x0 * a0 + y0 * a1 + a2
    den = a0**2 + a1**2 + b0**2 + b1**2
    return np.abs(num) / np.sqrt(den + 1e-18) * camera.fx


def track_corners(
    grey0: np.ndarray, grey1: np.ndarray, max_corners: int = _MAX_CORNERS
) -> tuple[np.ndarray, np.ndarray]:
    """Corners of ``grey0`` above the bonnet and where they went in ``grey1``
    (pixel coordinates of :mod:`sim.camera`, centre of pixel [r, c] at (c+.5, r+.5)),
    kept when tracking back lands within 0.3 px of the start."""
    mask = np.zeros(grey0.shape, np.uint8)
    mask[:BONNET_ROW] = 255
    p0 = cv2.goodFeaturesToTrack(grey0, max_corners, 0.005, 4, mask=mask, blockSize=5)
    if p0 is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    lk = dict(winSize=(LK_WINDOW, LK_WINDOW), maxLevel=LK_LEVELS, criteria=_LK_STOP)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(grey0, grey1, p0, None, **lk)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(grey1, grey0, p1, None, **lk)
    ok = (st1[:, 0] == 1) & (st2[:, 0] == 1) & (np.hypot(*(back - p0)[:, 0].T) < 0.3)
    return p0[ok, 0].astype(np.float64) + 0.5, p1[ok, 0].astype(np.float64) + 0.5


def pair_yaw(grey0: np.ndarray, grey1: np.ndarray, ds: float, camera: Camera) -> PairMotion:
    """The turn between two grey frames taken ``ds`` metres apart (module docstring).

    The car's pitch change between the frames (hills) is searched together with the
    turn and not reported: unmodelled, it leaves most tracks off their lines."""
    a, b = track_corners(grey0, grey1)
    if len(a) < MIN_INLIERS:
        return PairMotion(math.nan, 0, len(a))
    r0, r1 = _rays(camera, a), _rays(camera, b)

    def cost(psi: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        d = np.minimum(sampson_px(r0, r1, psi, ds, camera, pitch), _TRUNCATE_PX)
        return (d**2).sum(axis=1)

    pp, tt = np.meshgrid(_COARSE, _PITCH_COARSE, indexing="ij")
    c = cost(pp.ravel(), tt.ravel()).reshape(pp.shape)
    i, j = np.unravel_index(int(np.argmin(c)), c.shape)
    fine_psi = np.linspace(_COARSE[max(i - 1, 0)], _COARSE[min(i + 1, len(_COARSE) - 1)], 21)
    step = _PITCH_COARSE[1] - _PITCH_COARSE[0]
    fine_pitch = np.linspace(_PITCH_COARSE[j] - step, _PITCH_COARSE[j] + step, 9)
    pp, tt = np.meshgrid(fine_psi, fine_pitch, indexing="ij")
    c = cost(pp.ravel(), tt.ravel())
    k = int(np.argmin(c))
    psi, pitch = float(pp.ravel()[k]), float(tt.ravel()[k])
    d = sampson_px(r0, r1, np.array([psi]), ds, camera, np.array([pitch]))[0]
    inliers = int((d < INLIER_PX).sum())
    if inliers < MIN_INLIERS:
        return PairMotion(math.nan, inliers, len(a))
    return PairMotion(psi, inliers, len(a))


@dataclass(frozen=True)
class YawTrack:
    """Turning between consecutive frames of a recording (arrays of n - 1)."""

    yaw: np.ndarray  # rad, > 0 right; NaN where not measured
    inliers: np.ndarray
    tracks: np.ndarray

    @property
    def measured(self) -> np.ndarray:
        return np.isfinite(self.yaw)


def measure_yaw(
    frames: np.ndarray,
    ds: np.ndarray,
    camera: Camera = Camera(),  # noqa: B008 - frozen, immutable default
    *,
    progress: bool = False,
    desc: str = "visual odometry",
) -> YawTrack:
    """Turning between each pair of consecutive RGB ``frames`` (n, H, W, 3), the
    car having covered ``ds[i]`` metres between frame i and i + 1."""
    n = len(frames)
    if len(ds) != n - 1:
        raise ValueError(f"expected {n - 1} distances for {n} frames. Received: {len(ds)}")
    yaw = np.full(max(n - 1, 0), np.nan)
    inl = np.zeros(max(n - 1, 0), dtype=np.int32)
    trk = np.zeros(max(n - 1, 0), dtype=np.int32)
    prev = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY) if n else None
    for i in tqdm(range(n - 1), desc=desc, unit="frame", disable=not progress, leave=False):
        cur = cv2.cvtColor(frames[i + 1], cv2.COLOR_RGB2GRAY)
        if ds[i] > 0.05:  # standing still: nothing to measure, and nothing turns
            m = pair_yaw(prev, cur, float(ds[i]), camera)
            yaw[i], inl[i], trk[i] = m.yaw, m.inliers, m.tracks
        else:
            yaw[i] = 0.0
        prev = cur
    return YawTrack(yaw, inl, trk)
