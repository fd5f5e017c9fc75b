"""Frames for int8 calibration and parity checks: from recordings, or generated.

Recordings are read with ``core.recordings``: it already resolves the centre column's
Windows/Linux/relative paths by basename into ``IMG/``, handles ``", "`` separators,
headers and bad rows, and decodes to RGB exactly as training does. A second, smaller
csv reader here would be a near-copy that drifts (keras-pitfalls item 6: decoders
differ by a few grey levels).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.recordings import decode_images, read_recordings
from models import INPUT_SHAPE

logger = logging.getLogger(__name__)


class FramesError(ValueError):
    """No usable frames: recordings missing, unreadable or empty."""


@dataclass(frozen=True)
class FrameSet:
    """uint8 ``(N, 160, 320, 3)`` RGB frames and where they came from, for summaries."""

    frames: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.frames)


def recording_frames(dirs: Sequence[str | os.PathLike], n: int, *, phase: float = 0.5) -> FrameSet:
    """``n`` centre frames spread evenly over the recordings in ``dirs``.

    Each recording gives an equal share (so a short track is not swamped by a long one);
    within a recording the frames are evenly spaced in time. ``phase`` (0..1) shifts the
    positions by a fraction of the spacing, so ``phase=0.25`` and ``phase=0.75`` give two
    disjoint, interleaved sets (calibration and parity frames).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1. Received: n={n}")
    if not 0.0 <= phase < 1.0:
        raise ValueError(f"phase must be in [0, 1). Received: phase={phase}")
    if not dirs:
        raise FramesError("no recording folders given: expected at least one")
    missing = [str(d) for d in dirs if not Path(d).exists()]
    if missing:
        raise FramesError(
            f"recording folder(s) not found: {', '.join(missing)}; expected folders holding "
            "driving_log.csv and IMG/ (pass --data DIR ... to choose others)"
        )
    try:
        recordings = read_recordings(dirs)
    except ValueError as exc:  # RecordingError names the folder, what was expected and found
        raise FramesError(str(exc)) from exc
    shares = [n // len(recordings) + (i < n % len(recordings)) for i in range(len(recordings))]
    paths = []
    for rec, share in zip(recordings, shares, strict=True):
        if share == 0:
            continue
        positions = (np.arange(share) + phase) * len(rec) / share
        idx = np.minimum(positions.astype(int), len(rec) - 1)
        paths.extend(rec.centre_paths[idx])
    try:
        frames = decode_images(paths, progress=False)
    except ValueError as exc:  # ImageError: unreadable or wrongly sized frame
        raise FramesError(str(exc)) from exc
    names = ", ".join(r.name for r in recordings)
    return FrameSet(frames, f"{len(frames)} frames of {len(recordings)} recording(s) ({names})")


def synthetic_frames(n: int, seed: int = 0) -> FrameSet:
    """``n`` generated frames that look roughly like a road scene, not like pure noise.

    Sky gradient, a horizon at a random row, grass texture, a grey road narrowing to a
    vanishing point with two lane lines and a shifting curve, smooth blotches and sensor
    noise. Quantisation ranges and conv responses then resemble those of real frames.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1. Received: n={n}")
    rng = np.random.default_rng(seed)
    h, w, _ = INPUT_SHAPE
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    out = np.empty((n, *INPUT_SHAPE), dtype=np.uint8)
    for i in range(n):
        horizon = rng.uniform(55, 80)
        sky_top, sky_low = rng.uniform(120, 200, 3), rng.uniform(180, 250, 3)
        ground = rng.uniform(60, 140, 3)
        t = np.clip(rows / horizon, 0, 1)[..., None]
        img = np.where(
            (rows < horizon)[..., None],
            sky_top * (1 - t) + sky_low * t,
            ground * (0.7 + 0.3 * (rows - horizon)[..., None] / (h - horizon)),
        ) * np.ones((1, w, 1), np.float32)
        # Road: a trapezoid from the bottom edge to a vanishing point that drifts with a curve.
        depth = np.clip((rows - horizon) / (h - horizon), 0, 1)
        centre = w / 2 + rng.uniform(-60, 60) * (1 - depth) ** 2 + rng.uniform(-20, 20)
        half = 8 + depth * rng.uniform(110, 170)
        dist = np.abs(cols - centre)
        road = (dist < half) & (rows > horizon)
        img = np.where(road[..., None], rng.uniform(70, 130) + 15 * depth[..., None], img)
        lines = road & (np.abs(dist - half * 0.92) < 1 + 2.5 * depth)
        img = np.where(lines[..., None], np.array([230.0, 220.0, rng.uniform(60, 230)]), img)
        # Smooth blotches (shadows, trees) and sensor noise.
        for _ in range(rng.integers(2, 6)):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 50)
            blob = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * r * r))
            img = img * (1 - rng.uniform(-0.4, 0.4) * blob[..., None])
        img = img + rng.normal(0, 5, img.shape)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return FrameSet(out, f"{n} generated road-like frames (no recording available)")
