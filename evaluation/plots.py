"""Figures and annotated frames. Matplotlib through ``Figure`` objects only (no
pyplot, no global backend switch), so importing this never touches a display."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from sim.camera import Camera, steering_to_curvature

logger = logging.getLogger(__name__)

HUMAN_COLOUR = (40, 220, 60)
MODEL_COLOUR = (240, 40, 40)
#: Arc drawn from 4 m ahead of the rear axle (just below the bottom row's ground
#: point, 4.7 m ahead with the default camera) to 22 m, where a 25-degree lock has
#: turned the car by more than 90 degrees.
ARC_FROM_M, ARC_TO_M = 4.0, 22.0


def _arc_points(steering: float, camera) -> np.ndarray:
    """Pixels of the ground path a kinematic bicycle follows with ``steering``."""
    k = float(steering_to_curvature(float(np.clip(steering, -1.0, 1.0))))
    length = np.linspace(ARC_FROM_M, ARC_TO_M, 40)
    if abs(k) < 1e-6:
        pts = np.stack([0.5 * k * length**2, length], axis=-1)
    else:  # circle of radius 1/k through the rear axle, > 0 turning right
        pts = np.stack([(1.0 - np.cos(k * length)) / k, np.sin(k * length) / k], axis=-1)
    uv = camera.ground_to_pixel(pts)
    return uv[np.isfinite(uv).all(axis=1)]


def draw_steering(
    image: np.ndarray,
    lines: Mapping[str, tuple[float, tuple[int, int, int]]],
    camera=None,
    *,
    scale: int = 2,
    caption: str | None = None,
) -> Image.Image:
    """The frame enlarged ``scale`` times with the ground path of each steering
    value drawn on it (``{label: (steering, rgb)}``) and a caption line."""
    camera = camera or Camera()
    im = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize(
        (image.shape[1] * scale, image.shape[0] * scale), Image.Resampling.BILINEAR
    )
    draw = ImageDraw.Draw(im)
    text = []
    for label, (value, colour) in lines.items():
        pts = _arc_points(value, camera) * scale
        if len(pts) >= 2:
            draw.line([tuple(p) for p in pts], fill=colour, width=max(2, scale + 1))
        text.append((f"{label} {value:+.3f}", colour))
    x = 4
    for t, colour in text:
        draw.rectangle((x - 2, 2, x + 7 * len(t) + 2, 14), fill=(0, 0, 0))
        draw.text((x, 3), t, fill=colour)
        x += 7 * len(t) + 10
    if caption:
        h = im.size[1]
        draw.rectangle((0, h - 14, 7 * len(caption) + 6, h), fill=(0, 0, 0))
        draw.text((3, h - 13), caption, fill=(255, 255, 255))
    return im


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    logger.debug("wrote %s", path)
    return path


def steering_over_time(series: Sequence[dict], path: Path, title: str = "") -> Path:
    """One panel per recording: ``{"name", "t", "human", "pred"}``."""
    n = len(series)
    fig = Figure(figsize=(12, 2.8 * n))
    for i, s in enumerate(series):
        ax = fig.add_subplot(n, 1, i + 1)
        ax.plot(s["t"], s["human"], color="tab:green", lw=1.0, label="human (recorded)")
        ax.plot(s["t"], s["pred"], color="tab:red", lw=1.0, alpha=0.85, label="model")
        ax.set_ylabel("steering (-1..1)")
        ax.set_title(s["name"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.set_xlabel(s.get("xlabel", "time (s)"))
        if i == 0:
            ax.legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def error_histogram(errors: np.ndarray, path: Path, title: str = "") -> Path:
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    lim = max(0.05, float(np.nanpercentile(np.abs(errors), 99.5))) if errors.size else 1.0
    ax.hist(np.clip(errors, -lim, lim), bins=80, color="tab:blue", alpha=0.8)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel("model - human steering (clipped to the 99.5th percentile)")
    ax.set_ylabel("frames")
    ax.set_title(title or "error histogram")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def image_grid(images: Sequence[Image.Image], path: Path, columns: int = 3) -> Path:
    """Paste equally sized PIL images into one PNG."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    w, h = images[0].size
    rows = math.ceil(len(images) / columns)
    sheet = Image.new("RGB", (columns * w + (columns - 1) * 4, rows * h + (rows - 1) * 4), "white")
    for i, im in enumerate(images):
        sheet.paste(im, ((i % columns) * (w + 4), (i // columns) * (h + 4)))
    sheet.save(path)
    return path


def offset_over_time(
    t: np.ndarray,
    offset: np.ndarray,
    heading_deg: np.ndarray,
    interventions: np.ndarray,
    path: Path,
    *,
    limit_m: float,
    title: str = "",
) -> Path:
    """Lateral offset and heading error over time, interventions marked."""
    fig = Figure(figsize=(12, 5))
    ax = fig.add_subplot(2, 1, 1)
    ax.plot(t, offset, color="tab:blue", lw=1.0)
    for sign in (-1, 1):
        ax.axhline(sign * limit_m, color="tab:red", ls="--", lw=0.8)
    if len(interventions):
        ax.scatter(
            t[interventions],
            offset[interventions],
            color="tab:red",
            marker="x",
            zorder=3,
            label=f"interventions ({len(interventions)})",
        )
        ax.legend(loc="upper right", fontsize=8)
    ax.set_ylabel("lateral offset (m, > 0 right)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
    ax2.plot(t, heading_deg, color="tab:purple", lw=1.0)
    ax2.set_ylabel("heading error (deg)")
    ax2.set_xlabel("time (s)")
    ax2.grid(alpha=0.3)
    return _save(fig, path)


def bar_chart(
    labels: Sequence[str], values: Sequence[float], path: Path, *, ylabel: str, title: str
) -> Path:
    fig = Figure(figsize=(max(5, 1.3 * len(labels) + 2), 4))
    ax = fig.add_subplot(1, 1, 1)
    vals = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
    bars = ax.bar(range(len(labels)), vals, color="tab:blue")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    for b, v in zip(bars, values, strict=True):
        text = "n/a" if v is None or not math.isfinite(v) else f"{v:,.4g}"
        ax.annotate(
            text,
            (b.get_x() + b.get_width() / 2, b.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def scatter(
    labels: Sequence[str],
    x: Sequence[float],
    y: Sequence[float],
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = True,
) -> Path:
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for lab, xi, yi in zip(labels, x, y, strict=True):
        if xi is None or yi is None or not (math.isfinite(xi) and math.isfinite(yi)):
            continue
        ax.scatter([xi], [yi], s=40)
        ax.annotate(lab, (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


class VideoWriter:
    """MP4 (H.264 through imageio-ffmpeg) written frame by frame; on any failure it
    logs a warning once and stops (the filmstrip remains)."""

    def __init__(self, path: Path, fps: float = 15.0):
        self.path = path
        self.fps = fps
        self.frames = 0
        self._writer = None
        self._failed = False

    def append(self, image) -> None:
        if self._failed:
            return
        try:
            if self._writer is None:
                # Imported on the first frame: without imageio or ffmpeg only the video
                # is skipped (below).
                import imageio.v2 as imageio

                self._writer = imageio.get_writer(
                    self.path, fps=self.fps, codec="libx264", quality=7, macro_block_size=16
                )
            self._writer.append_data(np.asarray(image))
            self.frames += 1
        except Exception as exc:  # imageio or ffmpeg missing or failing
            logger.warning("could not write %s (%s): see the filmstrip instead", self.path, exc)
            self._failed = True
            self.close()
            self.path.unlink(missing_ok=True)

    def close(self) -> Path | None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:
                logger.warning("could not finish %s (%s)", self.path, exc)
                self._failed = True
            self._writer = None
        return None if self._failed or not self.frames else self.path


LAP_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")


def path_map(
    segments: Sequence[dict],
    path: Path,
    *,
    title: str = "",
) -> Path:
    """Top view of a recording's reference path(s) with the road edges.

    Each item of ``segments`` has world arrays ``x``, ``y`` (the car's centre),
    optional ``left``/``right`` edge points (``(n, 2)``), ``laps`` (lap index per
    frame, for colours) and ``interventions`` (frame indices to mark).
    """
    fig = Figure(figsize=(8, 8))
    ax = fig.add_subplot(1, 1, 1)
    shown: set[int] = set()
    for seg in segments:
        for side in ("left", "right"):
            pts = seg.get(side)
            if pts is not None:
                ax.plot(pts[:, 0], pts[:, 1], color="0.55", lw=0.6)
        laps = seg.get("laps")
        laps = np.zeros(len(seg["x"]), dtype=int) if laps is None else np.asarray(laps)
        for lap in np.unique(laps):
            sel = laps == lap
            label = f"lap {lap + 1}" if lap not in shown else None
            shown.add(int(lap))
            ax.plot(
                seg["x"][sel], seg["y"][sel], ".", ms=1.5,
                color=LAP_COLOURS[int(lap) % len(LAP_COLOURS)], label=label,
            )  # fmt: skip
        ints = np.asarray(seg.get("interventions", []), dtype=int)
        if ints.size:
            ax.scatter(seg["x"][ints], seg["y"][ints], marker="x", color="tab:red", s=25, zorder=3)
        ax.plot(seg["x"][:1], seg["y"][:1], "k*", ms=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(alpha=0.3)
    if len(shown) > 1:
        ax.legend(loc="best", fontsize=8, markerscale=6)
    ax.set_title(title + "\n(grey: road edges; star: start; x: interventions)")
    return _save(fig, path)


def draw_ground_points(
    image: np.ndarray, points: dict[str, tuple[np.ndarray, tuple[int, int, int]]], camera
) -> Image.Image:
    """The frame, scaled 2x, with ground points (car frame (x right, z ahead of the
    rear axle), ``(n, 2)``) drawn as dots in the given colours."""
    scale = 2
    im = Image.fromarray(image).resize(
        (image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST
    )
    draw = ImageDraw.Draw(im)
    for pts, colour in points.values():
        uv = camera.ground_to_pixel(np.asarray(pts, dtype=np.float64).reshape(-1, 2))
        for u, v in uv:
            if np.isfinite(u) and np.isfinite(v) and 0 <= u < image.shape[1] and 0 <= v < 132:
                draw.ellipse(
                    (u * scale - 2, v * scale - 2, u * scale + 2, v * scale + 2), fill=colour
                )
    return im
