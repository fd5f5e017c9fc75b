"""Procedural road, renderer and scripted driver that write demo recordings.

This is the project's built-in training data and the source of every test
fixture (no binaries are committed).  Because the world is exactly flat and the
sky is infinitely far, it is also the ground truth for the NVIDIA view synthesis
of :mod:`sim.camera`: :func:`render_view` renders the true view of *any* pose.

World frame: ``x`` east, ``y`` north, metres; ``heading`` in radians,
counter-clockwise from +x, so a right turn (steering > 0) *decreases* it.  A car
pose ``(x, y, heading)`` is the position of the centre of the rear axle, as in the
kinematic bicycle model.  Track coordinates: arc length ``s`` along the centreline
and signed offset ``d`` from it, **d > 0 to the right** (same sign as the lateral
offsets of :mod:`sim.camera`).

Rendering maps every pixel below the horizon to its flat-ground point through the
same :class:`~sim.camera.Camera` and evaluates the road there procedurally (road,
lane markings, verges) with analytic box-filter antialiasing sized by the pixel's
ground footprint; pixels above the horizon show a sky gradient, two ridges of hills
and clouds that depend only on the heading (points at infinity).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from sim.camera import (
    LEFT_CAMERA_X_M,
    MAX_STEER_DEG,
    MPH_PER_MPS,
    RIGHT_CAMERA_X_M,
    WHEELBASE_M,
    Camera,
    curvature_to_steering,
    first_ground_row,
    pack_rgb,
    sample_packed,
)

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------- geometry
ROAD_HALF_WIDTH_M = 3.75  # 7.5 m road: two 3.75 m lanes (a common two-lane width)
EDGE_LINE_WIDTH_M = 0.15  # painted lines 15 cm wide (US MUTCD 4-6 in)
EDGE_LINE_INSET_M = 0.30  # edge line's outer side 30 cm inside the asphalt edge
DASH_LENGTH_M = 3.0  # centre line: 3 m dashes every 12 m (10 ft line, 30 ft gap)
DASH_PERIOD_M = 12.0
TRACK_DS_M = 0.25  # centreline sampling; curvature error of one step < 1 mm
TEXEL_FINE_M = 0.08  # grain of grass/asphalt noise
TEXEL_PATCH_M = 2.0  # size of large colour patches
FOG_DISTANCE_M = 250.0  # e-folding distance of the haze towards the horizon

# Colours (RGB, 0..255), picked to resemble the simulator's lake track.
_GRASS = np.array([66.0, 108.0, 44.0], dtype=np.float32)
_GRASS_DRY = np.array([26.0, 4.0, 6.0], dtype=np.float32)  # added by positive patches
_DIRT = np.array([142.0, 120.0, 90.0], dtype=np.float32)
_ASPHALT = np.array([96.0, 96.0, 100.0], dtype=np.float32)
_WHITE = np.array([228.0, 228.0, 222.0], dtype=np.float32)
_YELLOW = np.array([222.0, 186.0, 64.0], dtype=np.float32)
_HAZE = np.array([182.0, 196.0, 208.0], dtype=np.float32)
_SKY_HORIZON = np.array([204.0, 218.0, 234.0], dtype=np.float32)
_SKY_ZENITH = np.array([78.0, 128.0, 204.0], dtype=np.float32)
_FAR_HILLS = np.array([128.0, 146.0, 166.0], dtype=np.float32)
_NEAR_HILLS = np.array([72.0, 102.0, 70.0], dtype=np.float32)
_CLOUD = np.array([246.0, 246.0, 250.0], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Track:
    """A long, smoothly curving road, sampled every ``ds`` metres of arc length.

    ``curvature`` is > 0 where the road turns right (project-wide sign); the
    heading is counter-clockwise from +x, so ``d heading / ds = -curvature``.
    """

    seed: int
    ds: float
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    curvature: np.ndarray
    shoulder_m: np.ndarray  # width of the dirt verge beyond the asphalt, per sample
    texture: np.ndarray  # (256, 256) float32 tileable 1/f^1.6 noise (patches, clouds)
    grain: np.ndarray  # (256, 256) float32 tileable 1/f^0.6 noise (grass, gravel grain)
    far_ridge: np.ndarray  # (4096,) elevation (rad) of the far hills vs azimuth
    near_ridge: np.ndarray  # (4096,) elevation (rad) of the near hills vs azimuth
    half_width_m: float = ROAD_HALF_WIDTH_M
    # float32 copies for the renderer's gathers (half the memory traffic).
    cos_heading: np.ndarray = field(init=False, repr=False)
    sin_heading: np.ndarray = field(init=False, repr=False)
    curvature32: np.ndarray = field(init=False, repr=False)
    shoulder32: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cos_heading", np.cos(self.heading).astype(np.float32))
        object.__setattr__(self, "sin_heading", np.sin(self.heading).astype(np.float32))
        object.__setattr__(self, "curvature32", self.curvature.astype(np.float32))
        object.__setattr__(self, "shoulder32", self.shoulder_m.astype(np.float32))

    @property
    def length_m(self) -> float:
        return (self.x.size - 1) * self.ds

    def pose_at(
        self, s: float, lateral_m: float = 0.0, yaw_rad: float = 0.0
    ) -> tuple[float, float, float]:
        """Car pose (x, y, heading) with the rear axle ``lateral_m`` right of the
        centreline at arc length ``s`` and the car turned ``yaw_rad`` right of it."""
        if not 0.0 <= s <= self.length_m:
            raise ValueError(f"s must be in [0, {self.length_m:.1f}]. Received: s={s}")
        i = min(int(s / self.ds), self.x.size - 2)
        f = s / self.ds - i
        x = self.x[i] + f * (self.x[i + 1] - self.x[i])
        y = self.y[i] + f * (self.y[i + 1] - self.y[i])
        th = self.heading[i] + f * (self.heading[i + 1] - self.heading[i])
        # Right normal of a heading th (counter-clockwise from +x) is (sin th, -cos th).
        return (
            float(x + lateral_m * math.sin(th)),
            float(y - lateral_m * math.cos(th)),
            float(th - yaw_rad),
        )

    def locate(self, x: float, y: float, s_hint: float | None = None) -> tuple[float, float]:
        """Track coordinates (s, d) of a world point; d > 0 right of the centreline.

        Without ``s_hint`` the whole track is searched; with it only +-60 m around.
        """
        if s_hint is None:
            lo, hi = 0, self.x.size
        else:
            c = int(s_hint / self.ds)
            lo, hi = max(c - 240, 0), min(c + 241, self.x.size)
        d2 = (self.x[lo:hi] - x) ** 2 + (self.y[lo:hi] - y) ** 2
        i = lo + int(np.argmin(d2))
        dx, dy = x - self.x[i], y - self.y[i]
        c, s = math.cos(self.heading[i]), math.sin(self.heading[i])
        along = dx * c + dy * s
        return i * self.ds + along, dx * s - dy * c


def _tileable_noise(rng: np.random.Generator, size: int = 256, slope: float = 1.6) -> np.ndarray:
    """Tileable noise with a 1/f^slope spectrum (FFT of white noise), std 1."""
    white = rng.standard_normal((size, size))
    f = np.fft.fftfreq(size)
    radius = np.hypot(f[:, None], f[None, :])
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(white) / radius**slope
    spectrum[0, 0] = 0.0
    noise = np.real(np.fft.ifft2(spectrum))
    return (noise / noise.std()).astype(np.float32)


def _ridge(rng: np.random.Generator, base: float, amp: float, n_terms: int) -> np.ndarray:
    """Hill profile: elevation (rad) over 4096 azimuth steps, periodic over 2 pi."""
    phi = np.linspace(0.0, 2.0 * np.pi, 4096, endpoint=False)
    prof = np.zeros_like(phi)
    for k in range(1, n_terms + 1):
        # 1/k amplitudes: broad hills with finer bumps (tree lines) on top.
        prof += rng.normal(0.0, 1.0) / k * np.sin(k * phi + rng.uniform(0.0, 2.0 * np.pi))
    prof = (prof - prof.min()) / max(prof.max() - prof.min(), 1e-9)
    return (base + amp * prof).astype(np.float32)


def make_track(
    seed: int = 0,
    length_m: float = 2000.0,
    *,
    min_radius_m: float = 35.0,
    max_heading_swing_rad: float = 1.0,
) -> Track:
    """A seeded road of ``length_m`` metres.

    Curvature is a sum of five random sinusoids (wavelengths 60-320 m), so bends go
    both ways about equally; it peaks at 1 / ``min_radius_m`` (35 m: the lake
    track's tighter bends at 20 mph need about 2.3 m/s^2 of lateral grip).  The
    heading never strays more than ``max_heading_swing_rad`` (57 deg) from its mean,
    so the road never turns back on itself: far parts of it cannot overlap.
    """
    if length_m < 200.0:
        raise ValueError(f"length_m must be >= 200. Received: length_m={length_m}")
    if min_radius_m < 10.0:
        raise ValueError(f"min_radius_m must be >= 10. Received: min_radius_m={min_radius_m}")
    rng = np.random.default_rng([seed, 1])
    n = int(math.ceil(length_m / TRACK_DS_M)) + 1
    s = np.arange(n) * TRACK_DS_M
    curv = np.zeros(n)
    for _ in range(5):
        wavelength = math.exp(rng.uniform(math.log(60.0), math.log(320.0)))
        curv += rng.normal() * np.sin(2.0 * np.pi * s / wavelength + rng.uniform(0, 2 * np.pi))
    curv *= (1.0 / min_radius_m) / np.abs(curv).max()
    heading = -np.concatenate([[0.0], np.cumsum(0.5 * (curv[1:] + curv[:-1]) * TRACK_DS_M)])
    swing = np.abs(heading - heading.mean()).max()
    if swing > max_heading_swing_rad:
        # Straighten the road (and soften its bends) rather than let it loop back.
        curv *= max_heading_swing_rad / swing
        heading *= max_heading_swing_rad / swing
    heading += rng.uniform(0.0, 2.0 * np.pi) - heading[0]
    x = np.concatenate([[0.0], np.cumsum(np.cos(0.5 * (heading[1:] + heading[:-1])))]) * TRACK_DS_M
    y = np.concatenate([[0.0], np.cumsum(np.sin(0.5 * (heading[1:] + heading[:-1])))]) * TRACK_DS_M
    # Verge width wanders between 0.4 and 1.8 m with a ~40 m wavelength.
    shoulder = 1.1 + 0.7 * np.sin(2 * np.pi * s / 41.0 + rng.uniform(0, 6.3)) * np.sin(
        2 * np.pi * s / 97.0 + rng.uniform(0, 6.3)
    )
    tex_rng = np.random.default_rng([seed, 2])
    return Track(
        seed=seed,
        ds=TRACK_DS_M,
        x=x,
        y=y,
        heading=heading,
        curvature=curv,
        shoulder_m=shoulder,
        texture=_tileable_noise(tex_rng),
        grain=_tileable_noise(tex_rng, slope=0.6),
        far_ridge=_ridge(tex_rng, 0.025, 0.06, 12),
        near_ridge=_ridge(tex_rng, 0.004, 0.03, 48),
    )


# -------------------------------------------------------------------- rendering
_PANO_WIDTH = 2048  # sky panorama columns over 360 deg: 2.4 columns per image pixel
_PANO_ELEV_MIN = -0.02  # rad; sky rows start just above the horizon
_PANO_ELEV_STEP = 1.0 / 300.0  # rad per panorama row: 2.2 rows per image pixel
_PANO_ROWS = 280  # up to 0.91 rad (52 deg) above the horizon; the image top is at 40
_PANO_MARGIN = 640  # wrapped columns each side (+-112 deg): no per-pixel modulo
NEWTON_STEPS = 2  # after the per-row first guess; a 3rd step changed < 0.01 grey levels


@dataclass(frozen=True, eq=False)
class _ViewGeometry:
    """Pose-independent per-pixel quantities of one camera (cached)."""

    split: int  # first ground row
    gx: np.ndarray  # ground point, car frame (x right, z forward), (rows, W)
    gz: np.ndarray
    row_z: np.ndarray  # car-frame z of each ground row (constant along a row)
    du_x: np.ndarray  # ground displacement per pixel step in u and v, car frame
    du_z: np.ndarray
    dv_x: np.ndarray
    dv_z: np.ndarray
    fine_amp: np.ndarray  # contrast of the fine noise after footprint filtering
    patch_amp: np.ndarray
    fog: np.ndarray  # 0 (clear) .. 1 (haze)
    sky_col: np.ndarray  # panorama column offset of each sky pixel (azimuth, right > 0)
    sky_row: np.ndarray  # panorama row coordinate of each sky pixel (elevation)


@lru_cache(maxsize=8)
def _view_geometry(camera: Camera) -> _ViewGeometry:
    split = first_ground_row(camera)
    u = np.arange(camera.width) + 0.5
    v = np.arange(split, camera.height) + 0.5
    uu, vv = np.meshgrid(u, v)

    def ground(du: float, dv: float) -> np.ndarray:
        return camera.pixel_to_ground(np.stack([uu + du, vv + dv], axis=-1))

    g = ground(0.0, 0.0)
    # Central difference across; along v one-sided, because at the first ground
    # row v - 0.5 may already be above the horizon.
    gu = ground(0.5, 0.0) - ground(-0.5, 0.0)
    gv = 2.0 * (ground(0.0, 0.5) - g)
    footprint = np.sqrt(np.abs(gu[..., 0] * gv[..., 1] - gu[..., 1] * gv[..., 0]))
    dist = np.sqrt(
        (g[..., 0] - camera.lateral_m) ** 2
        + (g[..., 1] - camera.z_in_car_m) ** 2
        + camera.height_m**2
    )
    # Rays of the sky rows in the level car frame: elevation and azimuth.
    us, vs = np.meshgrid(u, np.arange(split) + 0.5)
    rx = (us - camera.cx) / camera.fx
    ry = (vs - camera.cy) / camera.fy
    cp, sp = math.cos(camera.pitch_rad), math.sin(camera.pitch_rad)
    y_down = cp * ry + sp  # inverse of the pitch rotation in sim.camera
    z_fwd = -sp * ry + cp
    elev = np.arctan2(-y_down, np.hypot(rx, z_fwd))
    azim = np.arctan2(rx, z_fwd)

    pano_row = (elev - _PANO_ELEV_MIN) / _PANO_ELEV_STEP
    if np.abs(azim).max() * _PANO_WIDTH / (2 * np.pi) > _PANO_MARGIN - 2 or (
        pano_row.size and not 0.0 <= pano_row.min() <= pano_row.max() <= _PANO_ROWS - 2
    ):
        raise ValueError(
            "camera sees beyond the sky panorama (+-112 deg azimuth, -1..52 deg "
            f"elevation). Received: {camera}"
        )

    def f32(a: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(a, dtype=np.float32)
        out.setflags(write=False)
        return out

    return _ViewGeometry(
        split=split,
        gx=f32(g[..., 0]),
        gz=f32(g[..., 1]),
        row_z=f32(g[:, 0, 1]),
        du_x=f32(gu[..., 0]),
        du_z=f32(gu[..., 1]),
        dv_x=f32(gv[..., 0]),
        dv_z=f32(gv[..., 1]),
        # A box filter of the footprint averages noise of texel size t down by about
        # t / footprint: fade the grain out instead of letting it alias into sparkle.
        fine_amp=f32(1.0 / (1.0 + footprint / (3.0 * TEXEL_FINE_M))),
        patch_amp=f32(1.0 / (1.0 + (footprint / (2.0 * TEXEL_PATCH_M)) ** 2)),
        fog=f32(1.0 - np.exp(-dist / FOG_DISTANCE_M)),
        # + 0.5: the sampler's pixel centres; heading's column is added per view.
        sky_col=f32(_PANO_MARGIN + 0.5 - azim.ravel() * (_PANO_WIDTH / (2.0 * np.pi))),
        sky_row=f32(pano_row.ravel() + 0.5),
    )


@lru_cache(maxsize=4)
def _sky_panorama(track: Track) -> np.ndarray:
    """Packed RGB panorama of the sky and hills (points at infinity), rendered once.

    Column k holds world azimuth (k - 640) * 2 pi / 2048 (counter-clockwise, like
    the heading); the 640 columns each side repeat the other end, so a view's
    lookups never need wrapping.
    """
    cols = np.arange(-_PANO_MARGIN, _PANO_WIDTH + _PANO_MARGIN)
    az = (cols * (2.0 * np.pi / _PANO_WIDTH))[None, :]
    e = (_PANO_ELEV_MIN + np.arange(_PANO_ROWS) * _PANO_ELEV_STEP)[:, None]
    az_b, e_b = np.broadcast_arrays(az, e)
    t = np.clip(e_b / 0.6, 0.0, 1.0) ** 0.7
    sky = _SKY_HORIZON + (_SKY_ZENITH - _SKY_HORIZON) * t[..., None]
    ju = az_b * (256 / (2.0 * np.pi))
    cloud = _sample_noise(track.texture, ju, e_b * 120.0)
    a_cloud = np.clip((cloud - 0.6) * 0.8, 0.0, 0.85) * np.clip(e_b * 8.0, 0.0, 1.0)
    sky += (_CLOUD - sky) * a_cloud[..., None]
    j = cols % _PANO_WIDTH * (4096 // _PANO_WIDTH)
    # Ridge edges antialiased over one panorama row.
    a_far = np.clip((track.far_ridge[j][None, :] - e_b) / _PANO_ELEV_STEP + 0.5, 0.0, 1.0)
    sky += (_FAR_HILLS - sky) * a_far[..., None]
    a_near = np.clip((track.near_ridge[j][None, :] - e_b) / _PANO_ELEV_STEP + 0.5, 0.0, 1.0)
    trees = _sample_noise(track.texture, ju * 32.0, e_b * 2000.0)
    near = _NEAR_HILLS + 10.0 * trees[..., None]
    sky += (near - sky) * a_near[..., None]
    img = np.clip(sky + 0.5, 0, 255).astype(np.uint8)
    return pack_rgb(img)


def _sample_noise(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping lookup of a (256, 256) tileable texture at texel coords."""
    x0f = np.floor(x)
    y0f = np.floor(y)
    fx = x - x0f
    fy = y - y0f
    x0 = x0f.astype(np.int32) & 255
    y0 = y0f.astype(np.int32) & 255
    x1 = (x0 + 1) & 255
    y1 = (y0 + 1) & 255
    flat = tex.ravel()
    r0 = y0 * 256
    r1 = y1 * 256
    a = np.take(flat, r0 + x0)
    b = np.take(flat, r0 + x1)
    c = np.take(flat, r1 + x0)
    d = np.take(flat, r1 + x1)
    top = a + (b - a) * fx
    bot = c + (d - c) * fx
    return top + (bot - top) * fy


def _box(pos: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray, w: np.ndarray):
    """Fraction of the box [pos - w/2, pos + w/2] inside [lo, hi] (antialiased step)."""
    half = 0.5 * w
    cover = np.minimum(hi, pos + half)
    cover -= np.maximum(lo, pos - half)
    cover /= w
    return np.clip(cover, 0.0, 1.0, out=cover)


def _dash_integral(s: np.ndarray) -> np.ndarray:
    """Painted length of the dashed line between 0 and s (for box filtering)."""
    k = np.floor(s / DASH_PERIOD_M)
    return k * DASH_LENGTH_M + np.clip(s - k * DASH_PERIOD_M, 0.0, DASH_LENGTH_M)


def _project_to_track(
    track: Track, px: np.ndarray, py: np.ndarray, i0: int, row_guess: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Track coordinates of the ground pixels (rows, W) by Newton iterations.

    ``px, py`` are relative to centreline sample ``i0``; ``row_guess`` is a first
    sample index per image row.  Works on a float32 window of the track from 60 m
    behind to 320 m ahead (the first ground row sees about 270 m ahead).  Returns
    (s, d, tangent x, tangent y, sample index, converged).
    """
    lo = max(i0 - 240, 0)
    hi = min(i0 + 1281, track.x.size)
    n = hi - lo
    win = _track_window(track, lo, hi, i0)
    cx, cy, tx, ty, kr = win
    inv_ds = np.float32(1.0 / track.ds)
    i = np.clip(row_guess - lo, 0, n - 1).astype(np.int32)[:, None]
    for _ in range(NEWTON_STEPS):
        dx = px - np.take(cx, i)
        dy = py - np.take(cy, i)
        t_x = np.take(tx, i)
        t_y = np.take(ty, i)
        along = dx * t_x
        along += dy * t_y
        across = dx * t_y
        across -= dy * t_x  # right-positive offset
        # On a bend of right-curvature kr a point at right offset d moves along the
        # centreline at rate 1 - kr d: this makes the step exact on circular arcs.
        rate = np.take(kr, i) * across
        np.subtract(1.0, rate, out=rate)
        np.clip(rate, 0.3, 3.0, out=rate)
        along /= rate
        along *= inv_ds
        k = along + (i + np.float32(0.5))  # + 0.5: the truncation rounds to nearest
        i = np.clip(k, 0, n - 1).astype(np.int32)
    dx = px - np.take(cx, i)
    dy = py - np.take(cy, i)
    t_x = np.take(tx, i)
    t_y = np.take(ty, i)
    along = dx * t_x + dy * t_y
    across = dx * t_y - dy * t_x
    # Unconverged foot points (far off the road, beyond the window) are not road.
    ok = (np.abs(along) <= 0.75 * track.ds) & (i > 0) & (i < n - 1)
    s = (i + lo).astype(np.float32) * np.float32(track.ds) + along
    return s, across, t_x, t_y, i + lo, ok


def _track_window(track: Track, lo: int, hi: int, i0: int) -> tuple[np.ndarray, ...]:
    """float32 centreline samples lo..hi relative to sample i0 (1 mm at 10 km)."""
    return (
        (track.x[lo:hi] - track.x[i0]).astype(np.float32),
        (track.y[lo:hi] - track.y[i0]).astype(np.float32),
        track.cos_heading[lo:hi],
        track.sin_heading[lo:hi],
        track.curvature32[lo:hi],
    )


def render_view(
    track: Track,
    x: float,
    y: float,
    heading: float,
    camera: Camera = Camera(),  # noqa: B008 - frozen, immutable default
    *,
    s_hint: float | None = None,
) -> np.ndarray:
    """The camera's view (uint8 (H, W, 3) RGB) from a car pose in the world frame.

    ``(x, y)`` is the centre of the rear axle in metres and ``heading`` is counter-
    clockwise from +x in radians; the camera sits where ``camera`` says on that car
    (2.6 m ahead of the axle, ``camera.lateral_m`` to the right).  ``s_hint`` (arc
    length near the car) only speeds up locating the car on the track.
    """
    geo = _view_geometry(camera)
    s_car, _ = track.locate(x, y, s_hint)
    i0 = int(round(min(max(s_car, 0.0), track.length_m) / track.ds))
    ch, sh = math.cos(heading), math.sin(heading)
    # Ground points relative to the track sample i0, float32.
    ox, oy = float(x - track.x[i0]), float(y - track.y[i0])
    px = np.float32(ox) + geo.gx * np.float32(sh) + geo.gz * np.float32(ch)
    py = np.float32(oy) - geo.gx * np.float32(ch) + geo.gz * np.float32(sh)
    # First guess per image row (a row is one car-frame distance z ahead): the first
    # centreline sample at least that far ahead.
    lo = max(i0 - 240, 0)
    z_ahead = (track.x[lo : i0 + 1281] - x) * ch + (track.y[lo : i0 + 1281] - y) * sh
    row_guess = lo + np.searchsorted(np.maximum.accumulate(z_ahead), geo.row_z)
    s, d, t_x, t_y, idx, ok = _project_to_track(track, px, py, i0, row_guess)
    d[~ok] = 1e4
    # Footprint of the pixel across (w_d) and along (w_s) the road: the car-frame
    # pixel steps dotted with the road's normal/tangent, turned by the relative
    # heading.  Lines seen end-on stay sharp; far dashes blur into a faint line.
    cr = t_x * np.float32(ch) + t_y * np.float32(sh)  # cos(road heading - car heading)
    sr = t_y * np.float32(ch) - t_x * np.float32(sh)
    w_d = np.abs(geo.du_x * cr + geo.du_z * sr) + np.abs(geo.dv_x * cr + geo.dv_z * sr) + 1e-3
    w_s = np.abs(geo.du_z * cr - geo.du_x * sr) + np.abs(geo.dv_z * cr - geo.dv_x * sr) + 1e-3
    ad = np.abs(d)

    # Noise in absolute world texel coordinates (wrapped to the 256-texel tile).
    tile_f = 256 * TEXEL_FINE_M
    tile_p = 256 * TEXEL_PATCH_M
    bx, by = float(track.x[i0]), float(track.y[i0])
    fine = _sample_noise(
        track.grain,
        (px + np.float32(bx % tile_f)) * np.float32(1.0 / TEXEL_FINE_M),
        (py + np.float32(by % tile_f)) * np.float32(1.0 / TEXEL_FINE_M),
    )
    patch = _sample_noise(
        track.texture,
        (py + np.float32(by % tile_p)) * np.float32(1.0 / TEXEL_PATCH_M),  # swapped axes:
        (px + np.float32(bx % tile_p)) * np.float32(1.0 / TEXEL_PATCH_M),  # decorrelated
    )
    fine *= geo.fine_amp
    patch *= geo.patch_amp

    # Coverage of each layer, outside in: grass, dirt verge, asphalt, edge lines,
    # centre dashes, haze.  Compositing them in order gives one weight per
    # material; the colour is then one small matrix product.
    shoulder = np.take(track.shoulder32, idx) + np.float32(0.25) * patch
    a_dirt = _box(ad, -1.0, track.half_width_m + shoulder, np.maximum(w_d, 0.12))
    a_road = _box(ad, -1.0, track.half_width_m, w_d)
    outer = track.half_width_m - EDGE_LINE_INSET_M
    a_edge = _box(ad, outer - EDGE_LINE_WIDTH_M, outer, w_d)
    half_line = 0.5 * EDGE_LINE_WIDTH_M
    dash = _dash_integral(s + 0.5 * w_s) - _dash_integral(s - 0.5 * w_s)
    dash /= w_s
    a_centre = _box(d, -half_line, half_line, w_d) * dash
    weights = np.empty((9,) + ad.shape, dtype=np.float32)
    keep = 1.0 - geo.fog
    weights[5] = geo.fog
    for layer, alpha in ((4, a_centre), (3, a_edge), (2, a_road), (1, a_dirt)):
        np.multiply(keep, alpha, out=weights[layer])
        keep -= weights[layer]
    weights[0] = keep
    weights[6] = (18.0 * weights[0] + 14.0 * weights[1] + 6.0 * weights[2]) * fine
    weights[7] = weights[0] * patch
    weights[8] = weights[2] * patch
    # Per-channel sums instead of a BLAS product: OpenBLAS threads on a (33k, 9) @
    # (9, 3) product were 5x slower on a busy 2-core machine.
    ground = np.empty((3, weights[0].size), dtype=np.float32)
    for ch, plane in enumerate(ground):
        plane.fill(0.5)  # rounds the uint8 cast below
        for k in range(9):
            plane += _MATERIALS[k, ch] * weights[k].ravel()

    sky, _ = sample_packed(
        _sky_panorama(track),
        _PANO_WIDTH + 2 * _PANO_MARGIN,
        _PANO_ROWS,
        geo.sky_col + np.float32((heading * _PANO_WIDTH / (2.0 * np.pi)) % _PANO_WIDTH),
        geo.sky_row,
    )
    out = np.empty((camera.height * camera.width, 3), dtype=np.uint8)
    n_sky = geo.split * camera.width
    out[:n_sky] = sky
    np.clip(ground, 0, 255, out=ground)
    out[n_sky:] = ground.T
    return out.reshape(camera.height, camera.width, 3)


# Rows: grass, dirt, asphalt, white, yellow, haze, fine noise, grass patch, asphalt patch.
_MATERIALS = np.stack(
    [_GRASS, _DIRT, _ASPHALT, _WHITE, _YELLOW, _HAZE, np.ones(3), _GRASS_DRY, np.full(3, 6.0)]
).astype(np.float32)


# ----------------------------------------------------------------------- driver
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

        # --- speed target: 9-20 mph, slower in bends
        v_cruise = (14.5 + 5.5 * math.sin(0.05 * t + speed_phase)) / MPH_PER_MPS
        v_bend = math.sqrt(2.5 / max(abs(kappa), 1e-4))
        v_target = min(v_cruise, v_bend)
        throttle = float(np.clip(_DRAG_PER_S * v_target / _ACCEL_MPS2 + 0.5 * (v_target - v), 0, 1))
        brake = float(np.clip(0.25 * (v - v_target - 1.0), 0.0, 1.0))
        if brake > 0:
            throttle = 0.0

        # --- human-like steering: lag then rate limit; recorded with this frame
        step = 0.067
        want = steer + (target - steer) * min(step / _STEER_LAG_S, 1.0)
        max_change = _STEER_RATE_PER_S * step
        steer = float(np.clip(np.clip(want, steer - max_change, steer + max_change), -1.0, 1.0))

        for key, val in (
            ("time_s", t), ("x", x), ("y", y), ("heading", heading), ("s", s),
            ("lateral_m", lat), ("yaw_rad", yaw), ("steering", steer), ("throttle", throttle),
            ("brake", brake), ("speed_mph", v * MPH_PER_MPS), ("mode", mode),
        ):  # fmt: skip
            cols[key][f] = val

        # --- integrate to the next frame (kinematic bicycle, 4 sub-steps)
        dt_frame = rng.integers(60, 75) / 1000.0
        wheel = math.radians(steer * MAX_STEER_DEG)
        for _ in range(4):
            h = dt_frame / 4
            v += (_ACCEL_MPS2 * throttle - _DRAG_PER_S * v - _BRAKE_MPS2 * brake) * h
            v = min(max(v, 0.0), _TOP_SPEED_MPS)
            heading -= v * math.tan(wheel) / WHEELBASE_M * h  # right turn: heading falls
            x += v * math.cos(heading) * h
            y += v * math.sin(heading) * h
        t += dt_frame
        mode_left -= dt_frame
    return DemoDrive(track=track, **cols)


# -------------------------------------------------------------------- recording
_START_TIME = dt.datetime(2020, 1, 1, 12, 0, 0)  # fixed fake date: output is deterministic
_CAMERAS = (
    ("center", Camera()),
    ("left", Camera(lateral_m=LEFT_CAMERA_X_M)),
    ("right", Camera(lateral_m=RIGHT_CAMERA_X_M)),
)


def format_number(value: float) -> str:
    """A number as the simulator (C# float.ToString) writes it: 7 significant
    digits, ``E-06`` exponents below 1e-4, no trailing zeros: ``0``, ``-0.05``,
    ``12.91324``, ``6.457884E-06``."""
    text = f"{float(np.float32(value)):.7G}"
    return "0" if text in ("0", "-0") else text


def _timestamp_name(camera: str, when: dt.datetime) -> str:
    return f"{camera}_{when:%Y_%m_%d_%H_%M_%S}_{when.microsecond // 1000:03d}.jpg"


def write_demo_recording(
    out_dir: str | Path,
    n_frames: int = 1000,
    seed: int = 0,
    *,
    overwrite: bool = False,
    jpeg_quality: int = 75,
) -> Path:
    """Write a procedurally generated recording in the simulator's format.

    Creates ``out_dir/driving_log.csv`` (no header; center, left, right, steering,
    throttle, brake, speed; absolute image paths) and ``out_dir/IMG/{center,left,
    right}_YYYY_MM_DD_HH_MM_SS_mmm.jpg`` (JPEG quality 75 like Unity's encoder).
    Output depends only on ``seed`` and ``n_frames`` (and the folder's path).
    Refuses a non-empty ``out_dir`` unless ``overwrite``; overwriting replaces the
    csv and same-named images but deletes nothing.  Returns the csv path.

    A new recording is rendered into a hidden sibling folder and renamed into place
    when complete, so an interrupted render (Ctrl-C) never leaves a half recording
    under ``out_dir``'s name: there is a whole recording or none.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1. Received: n_frames={n_frames}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100. Received: jpeg_quality={jpeg_quality}")
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir must be a folder. Received a file: {out}")
    in_place = out.exists() and any(out.iterdir())
    if in_place and not overwrite:
        raise FileExistsError(
            f"refusing to write a demo recording into non-empty folder {out}; "
            "choose an empty or new folder, or pass overwrite=True (--overwrite)"
        )
    if in_place:
        return _render_recording(out, out, n_frames, seed, jpeg_quality)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)  # left by a killed run of this process id
    partial.mkdir(parents=True)
    try:
        _render_recording(partial, out, n_frames, seed, jpeg_quality)
        os.rename(partial, out)  # atomic; replaces an empty ``out`` folder
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out / "driving_log.csv"


def _render_recording(folder: Path, out: Path, n_frames: int, seed: int, quality: int) -> Path:
    """Render into ``folder``, naming the images by their place in ``out`` in the csv."""
    img_dir = folder / "IMG"
    img_dir.mkdir(parents=True, exist_ok=True)
    logger.info(
        "writing PROCEDURALLY GENERATED demo data (not a simulator recording): "
        "%d frames, seed %d, into %s",
        n_frames,
        seed,
        out,
    )
    # 20 mph top cruise x 74 ms frames is 0.66 m a frame; plus 300 m for the view.
    track = make_track(seed, length_m=0.7 * n_frames + 300.0)
    drive = drive_demo(track, n_frames, seed)
    lines = []
    for f in range(n_frames):
        when = _START_TIME + dt.timedelta(milliseconds=round(drive.time_s[f] * 1000.0))
        paths = []
        for name, cam in _CAMERAS:
            view = render_view(
                track, drive.x[f], drive.y[f], drive.heading[f], cam, s_hint=drive.s[f]
            )
            file_name = _timestamp_name(name, when)
            Image.fromarray(view).save(img_dir / file_name, quality=quality)
            paths.append(str(out / "IMG" / file_name))
        numbers = (drive.steering[f], drive.throttle[f], drive.brake[f], drive.speed_mph[f])
        lines.append(",".join(paths + [format_number(n) for n in numbers]) + "\n")
    csv_path = folder / "driving_log.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        fh.writelines(lines)
    logger.info(
        "demo recording done: %s (steering mean %+.3f, |steering| mean %.3f, "
        "lateral offset %.2f..%.2f m)",
        out / "driving_log.csv",
        float(drive.steering.mean()),
        float(np.abs(drive.steering).mean()),
        float(drive.lateral_m.min()),
        float(drive.lateral_m.max()),
    )
    return csv_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.demo_road",
        description="Write a procedurally generated demo recording in the Udacity "
        "simulator's format (driving_log.csv + IMG/).",
    )
    parser.add_argument("out_dir", type=Path, help="new or empty output folder")
    parser.add_argument("--frames", type=int, default=1000, help="number of frames (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="track and driver seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="allow a non-empty out_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        write_demo_recording(args.out_dir, args.frames, args.seed, overwrite=args.overwrite)
    except (FileExistsError, NotADirectoryError, ValueError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
