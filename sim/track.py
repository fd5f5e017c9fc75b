"""The demo road: a seeded, smoothly curving track and its coordinates.

World frame: ``x`` east, ``y`` north, metres; ``heading`` in radians,
counter-clockwise from +x, so a right turn (steering > 0) *decreases* it.  A car
pose ``(x, y, heading)`` is the position of the centre of the rear axle, as in the
kinematic bicycle model.  Track coordinates: arc length ``s`` along the centreline
and signed offset ``d`` from it, **d > 0 to the right** (same sign as the lateral
offsets of :mod:`sim.camera`).

The road is drawn by :mod:`sim.render`, driven by :mod:`sim.driver` and written as a
simulator recording by :mod:`sim.demo_recording`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ROAD_HALF_WIDTH_M = 3.75  # 7.5 m road: two 3.75 m lanes (a common two-lane width)
EDGE_LINE_WIDTH_M = 0.15  # painted lines 15 cm wide (US MUTCD 4-6 in)
EDGE_LINE_INSET_M = 0.30  # edge line's outer side 30 cm inside the asphalt edge
DASH_LENGTH_M = 3.0  # centre line: 3 m dashes every 12 m (10 ft line, 30 ft gap)
DASH_PERIOD_M = 12.0
TRACK_DS_M = 0.25  # centreline sampling; curvature error of one step < 1 mm


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
