"""Label-aware augmentation of training batches (numpy, backend-neutral).

Applied to training batches only; validation frames are never augmented. Each
transform acts on a random subset of the batch chosen with its own probability.
Images are float32 ``(N, 160, 320, 3)`` in 0..255; labels are steering in -1..1
(positive = right).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from training.geometry import shift_correction_per_pixel


@dataclass(frozen=True)
class AugmentConfig:
    #: Mirror left-right and negate the angle: the lake track turns mostly left.
    flip_p: float = 0.5
    #: Global gain, 0.5..1.3: recordings differ in time of day and track lighting.
    brightness_p: float = 0.5
    brightness_range: tuple[float, float] = (0.5, 1.3)
    #: Darken one side of a random line through the frame: trees and hills cast shadows.
    shadow_p: float = 0.3
    shadow_gain: tuple[float, float] = (0.45, 0.8)
    #: Horizontal shift, up to 20 px (about 8 deg of yaw), with the pure-pursuit
    #: correction per pixel from the camera geometry (training.geometry).
    shift_p: float = 0.5
    shift_max_px: int = 20
    shift_per_px: float = shift_correction_per_pixel()

    def __post_init__(self):
        for name in ("flip_p", "brightness_p", "shadow_p", "shift_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]. Received: {name}={p}")

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENT = AugmentConfig(flip_p=0.0, brightness_p=0.0, shadow_p=0.0, shift_p=0.0)


def flip(images: np.ndarray, labels: np.ndarray, which: np.ndarray) -> None:
    """Mirror the chosen frames in place and negate their steering."""
    images[which] = images[which, :, ::-1]
    labels[which] = -labels[which]


def brightness(images: np.ndarray, gains: np.ndarray) -> None:
    """Multiply each frame by its gain (1.0 leaves it unchanged), clipped to 0..255."""
    images *= gains.astype(np.float32)[:, None, None, None]
    np.clip(images, 0.0, 255.0, out=images)


def shadow(
    images: np.ndarray, top_x: np.ndarray, bottom_x: np.ndarray, left: np.ndarray, gains: np.ndarray
) -> None:
    """Darken, by ``gains``, the pixels left (or right) of the line from top_x to bottom_x."""
    n, h, w, _ = images.shape
    rows = np.arange(h, dtype=np.float32)[None, :, None] / max(h - 1, 1)
    cols = np.arange(w, dtype=np.float32)[None, None, :]
    boundary = top_x[:, None, None] + (bottom_x - top_x)[:, None, None] * rows
    mask = (cols < boundary) == left[:, None, None]
    factor = np.where(mask, gains.astype(np.float32)[:, None, None], np.float32(1.0))
    images *= factor[..., None]


def shift(images: np.ndarray, labels: np.ndarray, pixels: np.ndarray, per_px: float) -> None:
    """Shift each frame ``pixels[i]`` to the right (edge columns repeated) and correct steering.

    Frame content moving right is the view of a car yawed left, so steering goes
    right: ``label += pixels * per_px``, clipped to -1..1.
    """
    for i, t in enumerate(pixels.astype(int)):
        if t > 0:
            images[i, :, t:] = images[i, :, :-t].copy()
            images[i, :, :t] = images[i, :, t : t + 1]
        elif t < 0:
            images[i, :, :t] = images[i, :, -t:].copy()
            images[i, :, t:] = images[i, :, t - 1 : t]
    labels += pixels.astype(np.float32) * np.float32(per_px)
    np.clip(labels, -1.0, 1.0, out=labels)


def augment_batch(
    images: np.ndarray, labels: np.ndarray, config: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return augmented copies of a float32 batch and its labels."""
    images = np.array(images, dtype=np.float32, copy=True)
    labels = np.array(labels, dtype=np.float32, copy=True)
    n, _, w, _ = images.shape

    if config.shift_p:
        use = rng.random(n) < config.shift_p
        pixels = np.where(use, rng.integers(-config.shift_max_px, config.shift_max_px + 1, n), 0)
        shift(images, labels, pixels, config.shift_per_px)
    if config.flip_p:
        flip(images, labels, rng.random(n) < config.flip_p)
    if config.shadow_p:
        use = rng.random(n) < config.shadow_p
        lo, hi = config.shadow_gain
        gains = np.where(use, rng.uniform(lo, hi, n), 1.0)
        shadow(images, rng.uniform(0, w, n), rng.uniform(0, w, n), rng.random(n) < 0.5, gains)
    if config.brightness_p:
        use = rng.random(n) < config.brightness_p
        lo, hi = config.brightness_range
        brightness(images, np.where(use, rng.uniform(lo, hi, n), 1.0))
    return images, labels
