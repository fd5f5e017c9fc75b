"""Image corruptions of the model's input frames, each at intensities 1-5 (0 = clean).

Eleven corruptions in the manner of ImageNet-C (Hendrycks & Dietterich, "Benchmarking
Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019; its
reference code is ``hendrycks/robustness``, ``ImageNet-C/imagenet_c/corruptions.py``).
Where ImageNet-C defines a corruption, its five severities' parameters are used as
they are: ImageNet-C's frames are 224 x 224 and ours 160 x 320, whose geometric-mean
side, sqrt(160 x 320) = 226 px, is within 1% of 224, so blur radii and noise scales in
pixels need no rescaling. Its fog map (256 x 256 for a 224-wide frame) is resized by
1.25 to span our 320 columns. Rain streaks and the shadow band are not in ImageNet-C;
their parameters are ours, chosen so that intensity 5 is as severe to look at as
ImageNet-C's severity 5 (the grid ``corruptions.png`` shows them side by side).

Everything is NumPy, with OpenCV for the JPEG codec, box/Gaussian kernels and drawing
(no ImageMagick, scikit-image or SciPy as ImageNet-C's code needs). Pixel values are
worked on as float32 in 0..1 and returned as uint8 (rounded, clipped).
The severities, the defocus disk and the fog map live in :mod:`core.corruption_formulas`,
shared with training's corruption augmentation (:mod:`training.augment`, ``keras.ops``).

Deterministic: every random draw comes from ``numpy.random.default_rng([seed, key])``,
where ``key`` identifies the frame (its row in the recording, or the recorded frame a
synthesised view was made from). A frame's random field (noise, blur angle, fog map,
flakes, streaks, band) is the same at every intensity; only its strength changes, so
a higher intensity changes the pixels more (tested).

The formula of each corruption is in :data:`CORRUPTIONS` (``formula``) and in
``docs/evaluation.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.corruption_formulas import SEVERITIES, disk_kernel, fog_map

INTENSITIES = (1, 2, 3, 4, 5)


class CorruptionError(ValueError):
    """An unknown corruption name or an intensity outside 0-5."""


@dataclass(frozen=True)
class Corruption:
    name: str
    apply: Callable[[np.ndarray, object, np.random.Generator], np.ndarray]
    params: tuple  # one entry per intensity 1..5
    formula: str
    source: str  # where the severities come from


# ------------------------------------------------------------------------- helpers


def line_blur(x: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """ImageMagick's motion blur (which ImageNet-C calls): a one-sided line of
    ``2 ceil(radius) + 1`` taps at offsets ``i (cos a, sin a)``, i = 0, 1, ..., weighted
    ``exp(-i^2 / 2 sigma^2)`` and normalised; borders reflected. ``x`` is (H, W) or
    (H, W, C) float32."""
    taps = int(2 * np.ceil(radius) + 1)
    i = np.arange(taps, dtype=np.float64)
    w = np.exp(-(i**2) / (2.0 * sigma**2))
    w /= w.sum()
    a = np.radians(angle_deg)
    dx = np.round(i * np.cos(a)).astype(int)
    dy = np.round(i * np.sin(a)).astype(int)
    pad = taps
    h, wd = x.shape[:2]
    padded = cv2.copyMakeBorder(x, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    out = np.zeros_like(x)
    tmp = np.empty_like(x)
    for weight, ox, oy in zip(w, dx, dy, strict=True):
        np.multiply(padded[pad + oy : pad + oy + h, pad + ox : pad + ox + wd], weight, out=tmp)
        out += tmp
    return out


def centre_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """The centre 1/``factor`` of ``x`` enlarged back to its size (bilinear)."""
    h, w = x.shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(x[top : top + ch, left : left + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def _hsv_value_shift(x: np.ndarray, delta: float) -> np.ndarray:
    """Add ``delta`` to the HSV value (max of R, G, B) with hue and saturation kept:
    every channel scaled by ``clip(v + delta) / v`` (a black pixel becomes grey)."""
    v = np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])
    nv = np.clip(v + np.float32(delta), 0.0, 1.0)
    out = x * (nv / np.maximum(v, np.float32(1e-12)))[..., None]
    black = v <= 0
    if black.any():
        out[black] = nv[black, None]
    return out


# ---------------------------------------------------------------------- corruptions


def gaussian_noise(x, c, rng):
    return x + np.float32(c) * rng.standard_normal(x.shape, dtype=np.float32)


def motion_blur(x, c, rng):
    radius, sigma = c
    return line_blur(x, radius, sigma, rng.uniform(-45.0, 45.0))


def defocus_blur(x, c, rng):
    radius, alias = c
    return cv2.filter2D(x, -1, disk_kernel(radius, alias), borderType=cv2.BORDER_REFLECT_101)


def jpeg(x, quality, rng):
    bgr = np.ascontiguousarray(_to_uint8(x)[..., ::-1])
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def brightness_up(x, c, rng):
    return _hsv_value_shift(x, c)


def brightness_down(x, c, rng):
    return _hsv_value_shift(x, -c)


def contrast(x, c, rng):
    mean = np.asarray(cv2.mean(x)[:3], dtype=np.float32)
    return (x - mean) * np.float32(c) + mean


def fog(x, c, rng):
    strength, decay = c
    h, w = x.shape[:2]
    haze = fog_map(rng, decay)
    top = max(x.max(), 1e-6)
    return (x + np.float32(strength) * haze[:h, :w, None]) * (top / (top + strength))


def snow(x, c, rng):
    loc, scale, zoom, thresh, radius, sigma, keep = c
    h, w = x.shape[:2]
    flakes = rng.normal(loc, scale, (h, w)).astype(np.float32)
    flakes = centre_zoom(flakes, zoom)
    flakes[flakes < thresh] = 0.0
    flakes = np.round(np.clip(flakes, 0.0, 1.0) * 255.0) / 255.0
    flakes = line_blur(flakes.astype(np.float32), radius, sigma, rng.uniform(-135.0, -45.0))
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = keep * x + (1.0 - keep) * np.maximum(x, grey * 1.5 + 0.5)
    return x + flakes[..., None] + np.rot90(flakes, 2)[..., None]


#: Rain streaks at intensity 5 (the first n of them at lower intensities).
RAIN_MAX_STREAKS = 400


def rain(x, c, rng):
    streaks, length, blur, dim = c
    h, w = x.shape[:2]
    slant = int(rng.integers(-10, 11))
    xs = rng.integers(0, w, RAIN_MAX_STREAKS)
    ys = rng.integers(-length, h, RAIN_MAX_STREAKS)
    out = np.ascontiguousarray(x * np.float32(dim))
    grey = (200 / 255.0,) * 3
    for px, py in zip(xs[:streaks], ys[:streaks], strict=True):
        cv2.line(out, (int(px), int(py)), (int(px) + slant, int(py) + length), grey, 1)
    return cv2.blur(out, (blur, blur)) if blur > 1 else out


def shadow(x, gain, rng):
    h, w = x.shape[:2]
    top, bottom = rng.uniform(-0.1 * w, 0.9 * w, 2)
    width = rng.uniform(0.2, 0.35) * w
    poly = np.array([[top, 0], [top + width, 0], [bottom + width, h], [bottom, h]])
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    return x * np.where(mask[..., None] > 0, np.float32(gain), np.float32(1.0))


_IMAGENET_C = "ImageNet-C"
CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption(
            "gaussian_noise",
            gaussian_noise,
            SEVERITIES["gaussian_noise"],
            "x + N(0, c^2) per pixel and channel; c = sigma",
            _IMAGENET_C,
        ),
        Corruption(
            "motion_blur",
            motion_blur,
            SEVERITIES["motion_blur"],
            "sum_i w_i x(p + i (cos a, sin a)), i = 0..2r, w_i ~ exp(-i^2 / 2 s^2), "
            "a ~ U(-45, 45) deg; c = (r, s)",
            _IMAGENET_C,
        ),
        Corruption(
            "defocus_blur",
            defocus_blur,
            SEVERITIES["defocus_blur"],
            "x * disk(r), the disk anti-aliased by a Gaussian of sigma s; c = (r, s)",
            _IMAGENET_C,
        ),
        Corruption(
            "jpeg",
            jpeg,
            SEVERITIES["jpeg"],
            "JPEG-encoded at quality q and decoded (OpenCV/libjpeg); c = q",
            _IMAGENET_C,
        ),
        Corruption(
            "brightness_up",
            brightness_up,
            SEVERITIES["brightness_up"],
            "HSV value v -> min(v + c, 1), hue and saturation kept",
            _IMAGENET_C,
        ),
        Corruption(
            "brightness_down",
            brightness_down,
            SEVERITIES["brightness_down"],
            "HSV value v -> max(v - c, 0), hue and saturation kept",
            "ImageNet-C's brightness, negated",
        ),
        Corruption(
            "contrast",
            contrast,
            SEVERITIES["contrast"],
            "(x - mean) c + mean, mean per channel over the frame",
            _IMAGENET_C,
        ),
        Corruption(
            "fog",
            fog,
            SEVERITIES["fog"],
            "(x + t F) max(x) / (max(x) + t), F a diamond-square map with decay d "
            "(256 px, resized x1.25); c = (t, d)",
            "ImageNet-C's t but 2.75 at 4, one decay (1.7): its decays 2-1.4 left 3 and 4 "
            "unordered",
        ),
        Corruption(
            "snow",
            snow,
            SEVERITIES["snow"],
            "flakes L: N(m, s^2) zoomed z, zeroed below t, motion-blurred (r, sg, angle "
            "U(-135, -45)); k x + (1 - k) max(x, 1.5 grey + 0.5) + L + rot180(L); "
            "c = (m, s, z, t, r, sg, k)",
            "ImageNet-C, but k = 0.675 at 3 (its 0.7 left 2 and 3 unordered)",
        ),
        Corruption(
            "rain",
            rain,
            SEVERITIES["rain"],
            "x d, then n grey (200) 1-px streaks of length L and slant U(-10, 10) px drawn "
            "over it, then a b x b box blur; c = (n, L, b, d)",
            "ours, after Automold's add_rain (grey streaks, box blur, darkened)",
        ),
        Corruption(
            "shadow",
            shadow,
            SEVERITIES["shadow"],
            "x g inside a band 20-35% of the width, from a random top to a random bottom "
            "position; c = g",
            "ours (training augments shadows of gain 0.45-0.8)",
        ),
    )
}


def check(name: str, intensity: int) -> Corruption | None:
    """The corruption ``name`` (None for intensity 0), or :class:`CorruptionError`."""
    if name not in CORRUPTIONS:
        raise CorruptionError(
            f"unknown corruption {name!r}; expected one of: {', '.join(CORRUPTIONS)}"
        )
    if isinstance(intensity, bool) or int(intensity) != intensity or not 0 <= intensity <= 5:
        raise CorruptionError(
            f"intensity {intensity!r} of {name} is outside 0-5 (0 = clean, 5 = most severe)"
        )
    return CORRUPTIONS[name] if intensity else None


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """0..1 floats to uint8, rounded and saturated (OpenCV: 8x faster than NumPy)."""
    return cv2.convertScaleAbs(np.maximum(x, np.float32(0.0)), alpha=255.0)


def corrupt(
    image: np.ndarray, name: str, intensity: int, *, seed: int = 0, key: int = 0
) -> np.ndarray:
    """``image`` (uint8, H x W x 3, RGB) with corruption ``name`` at ``intensity``;
    the same ``seed`` and ``key`` give the same pixels."""
    spec = check(name, intensity)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CorruptionError(
            f"expected a uint8 H x W x 3 RGB frame; got {image.dtype} {image.shape}"
        )
    if spec is None:
        return image.copy()
    rng = np.random.default_rng([int(seed), int(key)])
    x = image.astype(np.float32) / np.float32(255.0)
    return _to_uint8(spec.apply(x, spec.params[intensity - 1], rng))


def corrupt_batch(
    frames: np.ndarray, name: str, intensity: int, *, seed: int = 0, keys: Sequence[int]
) -> np.ndarray:
    """:func:`corrupt` on each of (N, H, W, 3) ``frames``, frame i with ``keys[i]``."""
    out = np.empty_like(frames)
    for i, (frame, key) in enumerate(zip(frames, keys, strict=True)):
        out[i] = corrupt(frame, name, intensity, seed=seed, key=key)
    return out


def parse_names(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Corruption names from a comma list (``all`` or None: every one), checked."""
    if text is None or text == "all":
        return tuple(CORRUPTIONS)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(n.strip() for n in items if n.strip()))
    for n in names:
        check(n, 0)
    if not names:
        raise CorruptionError(f"expected corruption names; got {text!r}")
    return names


def parse_intensities(text: str | Sequence[int]) -> tuple[int, ...]:
    """Intensities from a comma list such as ``1,3,5``, each checked to be 1-5."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            value = int(item)
        except ValueError:
            raise CorruptionError(f"intensity {item!r} is not an integer 1-5") from None
        if not 1 <= value <= 5:
            raise CorruptionError(f"intensity {value} is outside 1-5 (0, clean, is always run)")
        out.append(value)
    if not out:
        raise CorruptionError(f"expected intensities 1-5 such as 1,3,5; got {text!r}")
    return tuple(sorted(set(out)))
