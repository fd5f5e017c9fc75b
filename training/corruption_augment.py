"""Corruption augmentation in ``keras.ops``: the robustness benchmark's corruptions.

The last transform of :func:`training.augment.apply` (off by default; ``train.py
--augment-corruptions P``): with probability ``corruption_p`` one corruption of
:data:`TRAIN_CORRUPTIONS` at an intensity drawn from 1-5, with the robustness
benchmark's formulas and severities (:mod:`evaluation.robustness.corruptions`, whose
shared pieces live in :mod:`core.corruption_formulas`), then rounded and clipped to
0..255 as the benchmark's uint8 frames are. :data:`HELD_OUT_CORRUPTIONS` are never
trained on, so the benchmark can show whether a gain carries to corruptions the model
never saw.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from keras import ops

from core.corruption_formulas import FOG_MAP_SIDE, SEVERITIES, disk_kernel, fog_map

#: Corruptions written here in ``keras.ops`` and drawn from in training: one of each
#: family the benchmark has (noise, blur, light, digital, weather).
TRAIN_CORRUPTIONS = (
    "gaussian_noise",
    "defocus_blur",
    "brightness_up",
    "brightness_down",
    "contrast",
    "fog",
)
#: The benchmark's other corruptions, never trained on (ImageNet-C's practice of
#: held-out corruptions): an unseen blur (motion: a line of up to 41 taps at any angle
#: needs an 81 x 81 kernel, 15x the defocus convolution's cost), an unseen codec
#: (JPEG), unseen weather (snow, rain). The shadow band is held out of this set, but
#: the default shadow augmentation (a darkened half-plane, gain 0.45-0.8) is close to
#: its intensities 1-2.
HELD_OUT_CORRUPTIONS = ("motion_blur", "jpeg", "snow", "rain", "shadow")
#: Drawn parameters of the corruption (all zero when it is off): the corruption (0 =
#: none, else 1 + its index in TRAIN_CORRUPTIONS), its intensity 1-5, where the noise
#: field and the fog map are cut from their banks (fractions in 0..1).
CORRUPTION_PARAMS = (
    "corruption",
    "corruption_intensity",
    "noise_row",
    "noise_col",
    "fog_map",
    "fog_row",
)
#: Fixed random fields the corruptions cut per-sample windows from (the window's place
#: is drawn with the training seed): standard normal noise twice the frame in each
#: direction, and ImageNet-C fog maps (core.corruption_formulas.fog_map, decay 1.7 as
#: at every benchmark intensity).
NOISE_BANK_SEED = 16
FOG_BANK_SEED = 17
FOG_BANK_MAPS = 16


def draw_corruptions(
    n: int, probability: float, corruptions: tuple[str, ...], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The corruption's parameters for ``n`` samples, one of ``corruptions`` each with
    ``probability``; off, all zero and no draw, so the random stream (and every other
    parameter of this and later batches) is exactly as without it."""
    if not probability:
        return {k: np.zeros(n) for k in CORRUPTION_PARAMS}
    hit = rng.random(n) < probability
    kinds = np.array([TRAIN_CORRUPTIONS.index(name) + 1 for name in corruptions])
    return {
        "corruption": np.where(hit, kinds[rng.integers(0, len(kinds), n)], 0),
        "corruption_intensity": np.where(hit, rng.integers(1, 6, n), 0),
        "noise_row": rng.random(n),
        "noise_col": rng.random(n),
        "fog_map": rng.random(n),
        "fog_row": rng.random(n),
    }


# The benchmark's formulas (evaluation.robustness.corruptions) on 0..255 pixels: a parameter of
# the 0..1 formulas that is a pixel value is scaled by 255. Each takes the batch and the
# per-sample intensity (0 = the identity) and the drawn parameters.
def _at_intensity(values, intensity, identity: float = 0.0, scale: float = 1.0):
    """Each sample's entry of ``values`` (intensities 1-5) scaled; ``identity`` at 0."""
    table = np.asarray([identity, *(scale * v for v in values)], np.float32)
    return ops.take(ops.convert_to_tensor(table), ops.cast(intensity, "int32"), axis=0)


def _index(fraction, count: int):
    """floor(fraction * count) as int32, kept below ``count``."""
    return ops.cast(ops.minimum(ops.floor(fraction * count), count - 1), "int32")


def _windows(bank: np.ndarray, which, top, left, h: int, w: int):
    """(N, h, w, C) windows of a (K, BH, BW, C) bank, map ``which`` cut at (top, left)."""
    _, bh, bw, c = bank.shape
    rows = top[:, None] + ops.arange(h, dtype="int32")[None, :]
    cols = left[:, None] + ops.arange(w, dtype="int32")[None, :]
    idx = (which[:, None, None] * bh + rows[:, :, None]) * bw + cols[:, None, :]
    return ops.take(ops.reshape(ops.convert_to_tensor(bank), (-1, c)), idx, axis=0)


@lru_cache(maxsize=4)
def noise_bank(h: int, w: int) -> np.ndarray:
    """(1, 2h, 2w, 3) standard normal values: each sample's noise is an h x w window."""
    rng = np.random.default_rng(NOISE_BANK_SEED)
    return rng.standard_normal((1, 2 * h, 2 * w, 3), dtype=np.float32)


@lru_cache(maxsize=1)
def fog_bank() -> np.ndarray:
    """(FOG_BANK_MAPS, S, S, 1) fog maps as the benchmark draws them (its one decay)."""
    decays = {d for _, d in SEVERITIES["fog"]}
    (decay,) = decays
    rng = np.random.default_rng(FOG_BANK_SEED)
    return np.stack([fog_map(rng, decay) for _ in range(FOG_BANK_MAPS)])[..., None]


@lru_cache(maxsize=1)
def defocus_bank() -> np.ndarray:
    """(6, K, K): the identity (a centred 1) and the five defocus disks, centred."""
    disks = [disk_kernel(r, a) for r, a in SEVERITIES["defocus_blur"]]
    size = max(k.shape[0] for k in disks)
    bank = np.zeros((len(disks) + 1, size, size), np.float32)
    bank[0, size // 2, size // 2] = 1.0
    for i, k in enumerate(disks, start=1):
        o = (size - k.shape[0]) // 2
        bank[i, o : o + k.shape[0], o : o + k.shape[0]] = k
    return bank


def corrupt_noise(images, intensity, p):
    """x + 255 sigma N(0, 1) per pixel and channel."""
    h, w = images.shape[1], images.shape[2]
    top, left = _index(p["noise_row"], h + 1), _index(p["noise_col"], w + 1)
    noise = _windows(noise_bank(h, w), ops.zeros_like(top), top, left, h, w)
    sigma = _at_intensity(SEVERITIES["gaussian_noise"], intensity, scale=255.0)
    return images + sigma[:, None, None, None] * noise


def corrupt_defocus(images, intensity, p=None):
    """The defocus disk of each sample's intensity, borders reflected (as cv2.filter2D
    with BORDER_REFLECT_101): one depthwise convolution for the whole batch, whose
    samples become channels, each with its own kernel."""
    bank = defocus_bank()
    r = bank.shape[1] // 2
    h, w = images.shape[1], images.shape[2]
    x = ops.pad(images, [[0, 0], [r, r], [r, r], [0, 0]], mode="reflect")
    x = ops.reshape(ops.transpose(x, (1, 2, 0, 3)), (1, h + 2 * r, w + 2 * r, -1))
    k = ops.take(ops.convert_to_tensor(bank), ops.cast(intensity, "int32"), axis=0)
    k = ops.repeat(ops.transpose(k, (1, 2, 0)), 3, axis=2)[..., None]
    y = ops.depthwise_conv(x, k, padding="valid")
    return ops.transpose(ops.reshape(y, (h, w, -1, 3)), (2, 0, 1, 3))


def value_shift(images, delta):
    """HSV value v = max(R, G, B) -> clip(v + delta) with hue and saturation kept: every
    channel scaled by the ratio (a black pixel becomes grey)."""
    v = ops.max(images, axis=-1, keepdims=True)
    nv = ops.clip(v + delta[:, None, None, None], 0.0, 255.0)
    return ops.where(v > 0, images * (nv / ops.maximum(v, 1e-12)), nv)


def corrupt_brightness_up(images, intensity, p=None):
    return value_shift(images, _at_intensity(SEVERITIES["brightness_up"], intensity, 0, 255))


def corrupt_brightness_down(images, intensity, p=None):
    return value_shift(images, _at_intensity(SEVERITIES["brightness_down"], intensity, 0, -255))


def corrupt_contrast(images, intensity, p=None):
    """(x - mean) c + mean, the mean per channel over the frame."""
    c = _at_intensity(SEVERITIES["contrast"], intensity, identity=1.0)[:, None, None, None]
    mean = ops.mean(images, axis=(1, 2), keepdims=True)
    return (images - mean) * c + mean


def corrupt_fog(images, intensity, p):
    """(x + 255 t F) max(x) / (max(x) + 255 t), F a window of a fog map."""
    bank = fog_bank()
    h, w = images.shape[1], images.shape[2]
    if h > FOG_MAP_SIDE or w > FOG_MAP_SIDE:
        raise ValueError(f"fog maps are {FOG_MAP_SIDE} px square; frames are {h} x {w}")
    which = _index(p["fog_map"], len(bank))
    top = _index(p["fog_row"], FOG_MAP_SIDE - h + 1)
    haze = _windows(bank, which, top, ops.zeros_like(top), h, w)
    t = _at_intensity([s for s, _ in SEVERITIES["fog"]], intensity, scale=255.0)
    t = t[:, None, None, None]
    top_value = ops.maximum(ops.max(images, axis=(1, 2, 3), keepdims=True), 255e-6)
    return (images + t * haze) * (top_value / (top_value + t))


CORRUPT = {
    "gaussian_noise": corrupt_noise,
    "defocus_blur": corrupt_defocus,
    "brightness_up": corrupt_brightness_up,
    "brightness_down": corrupt_brightness_down,
    "contrast": corrupt_contrast,
    "fog": corrupt_fog,
}


def corrupt(images, params, corruptions=TRAIN_CORRUPTIONS):
    """Each sample with its drawn corruption at its intensity, rounded and clipped to
    0..255 as the benchmark's uint8 frames; a sample without one is left exactly as it
    is. Only the corruptions named are computed."""
    kind = ops.cast(params["corruption"], "int32")
    level = ops.cast(params["corruption_intensity"], "int32")
    out = images
    for i, name in enumerate(TRAIN_CORRUPTIONS, start=1):
        if name not in corruptions:
            continue
        chosen = ops.equal(kind, i)
        y = CORRUPT[name](images, ops.where(chosen, level, 0), params)
        out = ops.where(chosen[:, None, None, None], y, out)
    hit = (kind > 0)[:, None, None, None]
    return ops.where(hit, ops.round(ops.clip(out, 0.0, 255.0)), images)
