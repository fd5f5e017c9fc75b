"""The image corruptions' shared formula pieces: severities, the defocus disk, the fog map.

Two implementations use them: the robustness benchmark (:mod:`evaluation.robustness.corruptions`,
NumPy/OpenCV, one frame at a time) and corruption augmentation during training
(:mod:`training.augment`, ``keras.ops`` inside the compiled train step). Each number and
kernel lives here once, so a severity tuned for the benchmark is the severity training
draws from; this module sits in the bottom layer because training may not import
evaluation (evaluation reads recordings through training) and neither owns these
formulas more than the other. NumPy and OpenCV only, nothing of the project.

Sources and the reasons for each departure from ImageNet-C are in
:data:`evaluation.robustness.corruptions.CORRUPTIONS` and ``docs/evaluation.md``.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Each corruption's parameter at intensities 1..5 (pixel values in 0..1).
SEVERITIES: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # sigma
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),  # (radius, sigma)
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),  # (radius, alias)
    "jpeg": (25, 18, 15, 10, 7),  # quality
    "brightness_up": (0.1, 0.2, 0.3, 0.4, 0.5),  # added to the HSV value
    "brightness_down": (0.1, 0.2, 0.3, 0.4, 0.5),  # subtracted from the HSV value
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # gain about the channel mean
    "fog": ((1.5, 1.7), (2.0, 1.7), (2.5, 1.7), (2.75, 1.7), (3.0, 1.7)),  # (t, decay)
    "snow": (
        (0.1, 0.3, 3.0, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2.0, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4.0, 0.9, 12, 8, 0.675),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "rain": (
        (50, 10, 1, 0.95),
        (100, 12, 3, 0.9),
        (200, 15, 3, 0.85),
        (300, 18, 5, 0.8),
        (400, 20, 7, 0.7),
    ),  # (streaks, length, box blur, dim)
    "shadow": (0.8, 0.65, 0.5, 0.35, 0.2),  # gain inside the band
}

#: ImageNet-C's fog map is 256 px for a 224-wide frame; resized x1.25 it spans 320 columns.
FOG_MAP_SIZE = 256
FOG_MAP_SIDE = int(round(FOG_MAP_SIZE * 1.25))


def disk_kernel(radius: int, alias_blur: float) -> np.ndarray:
    """ImageNet-C's defocus kernel: the disk ``x^2 + y^2 <= r^2`` on a grid of at least
    17 x 17, anti-aliased by a Gaussian of sigma ``alias_blur``, then normalised (ImageNet-C
    normalises before the anti-aliasing, whose reflected border then adds up to 1% for a
    disk that fills its grid: a flat frame would brighten)."""
    half = max(8, radius)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    ksize = (3, 3) if radius <= 8 else (5, 5)
    disk = cv2.GaussianBlur(disk / disk.sum(), ksize, sigmaX=alias_blur)
    return disk / disk.sum()


def plasma_fractal(rng: np.random.Generator, size: int = 256, decay: float = 3.0) -> np.ndarray:
    """A diamond-square height map in 0..1 (``size`` a power of two): each level's
    midpoints are the mean of their four neighbours plus uniform noise of amplitude
    ``w^2`` in +-w, w = 100 at the coarsest level, divided by ``decay`` at each finer
    one (ImageNet-C's fog map)."""
    m = np.zeros((size, size), dtype=np.float64)
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        corners = m[0:size:step, 0:size:step]
        sq = corners + np.roll(corners, -1, axis=0)
        sq = sq + np.roll(sq, -1, axis=1)
        m[half:size:step, half:size:step] = sq / 4 + wibble * rng.uniform(-wibble, wibble, sq.shape)
        centres = m[half:size:step, half:size:step]
        corners = m[0:size:step, 0:size:step]
        across = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        m[0:size:step, half:size:step] = across / 4 + wibble * rng.uniform(
            -wibble, wibble, across.shape
        )
        down = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        m[half:size:step, 0:size:step] = down / 4 + wibble * rng.uniform(
            -wibble, wibble, down.shape
        )
        step //= 2
        wibble /= decay
    m -= m.min()
    return m / m.max()


def fog_map(rng: np.random.Generator, decay: float) -> np.ndarray:
    """The fog's haze field: a :func:`plasma_fractal` of :data:`FOG_MAP_SIZE` resized
    (bilinear) to :data:`FOG_MAP_SIDE` square, float32 in 0..1; a frame takes its top-left
    H x W."""
    haze = plasma_fractal(rng, FOG_MAP_SIZE, decay).astype(np.float32)
    return cv2.resize(haze, (FOG_MAP_SIDE, FOG_MAP_SIDE))
