"""The demo road's renderer: the true view of any car pose through any camera.

Because the world is exactly flat and the sky is infinitely far, this is the
ground truth for the NVIDIA view synthesis of :mod:`sim.camera`: :func:`render_view`
renders the true view of *any* pose (world frame and track coordinates as in
:mod:`sim.track`).

Rendering maps every pixel below the horizon to its flat-ground point through the
same :class:`~sim.camera.Camera` and evaluates the road there procedurally (road,
lane markings, verges) with analytic box-filter antialiasing sized by the pixel's
ground footprint; pixels above the horizon show a sky gradient, two ridges of hills
and clouds that depend only on the heading (points at infinity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.camera import Camera, first_ground_row, pack_rgb, sample_packed
from sim.track import (
    DASH_LENGTH_M,
    DASH_PERIOD_M,
    EDGE_LINE_INSET_M,
    EDGE_LINE_WIDTH_M,
    Track,
)

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
    fine, patch = _ground_noise(track, geo, px, py, i0)
    ground = _shade_ground(track, geo, s, d, w_d, w_s, idx, fine, patch)

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


def _ground_noise(
    track: Track, geo: _ViewGeometry, px: np.ndarray, py: np.ndarray, i0: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fine grain and large patches at the ground pixels, faded by their footprint."""
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
    return fine, patch


def _shade_ground(track, geo, s, d, w_d, w_s, idx, fine, patch) -> np.ndarray:
    """RGB of the ground pixels, (3, pixels) float32 (+ 0.5 for rounding), from their
    track coordinates ``s, d``, footprint ``w_d, w_s`` (across, along) and noise."""
    ad = np.abs(d)
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
        plane.fill(0.5)  # rounds render_view's uint8 cast
        for k in range(9):
            plane += _MATERIALS[k, ch] * weights[k].ravel()
    return ground


# Rows: grass, dirt, asphalt, white, yellow, haze, fine noise, grass patch, asphalt patch.
_MATERIALS = np.stack(
    [_GRASS, _DIRT, _ASPHALT, _WHITE, _YELLOW, _HAZE, np.ones(3), _GRASS_DRY, np.full(3, 6.0)]
).astype(np.float32)
