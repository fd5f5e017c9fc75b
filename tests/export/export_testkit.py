"""Helpers for the export tests: real-looking frames, models with varied outputs, recordings."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import models
from export.frames import recording_frames, synthetic_frames
from models.blocks import BN_MOMENTUM

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
UDACITY = SHARED / "data" / "udacity"
MOUNTAIN = UDACITY / "jclc_mountain"
#: Spread of the test models' steering output, about that of real driving (0.2-0.3).
OUTPUT_STD = 0.3
#: Frames an int8 export is judged on: enough that an output unrelated to the model's
#: cannot reach the correlation bounds by chance (its correlation has std 1/sqrt(127)).
INT8_FRAMES = 128


def real_frames(n: int, phase: float = 0.5) -> np.ndarray | None:
    """``n`` centre frames of the mountain recording, or None when ../shared is absent."""
    if not MOUNTAIN.is_dir():
        return None
    return recording_frames([MOUNTAIN], n, phase=phase).frames


def real_or_generated_frames(n: int, *, phase: float, seed: int, ci: bool) -> np.ndarray:
    """Real frames; without ../shared, generated road scenes, saying so (failing under CI)."""
    real = real_frames(n, phase=phase)
    if real is not None:
        return real
    if ci:
        pytest.fail(f"{MOUNTAIN} is absent: under CI the exports are checked on real frames")
    warnings.warn(
        f"{MOUNTAIN} is absent: export tests use generated road frames "
        f"(export.frames.synthetic_frames, seed {seed}) instead of real ones",
        stacklevel=2,
    )
    return synthetic_frames(n, seed=seed).frames


def make_model(name: str, frames: np.ndarray, seed: int = 0) -> keras.Model:
    """A fresh ``name`` model whose outputs vary like a trained one's.

    Untrained, BatchNorm's unit statistics shrink EffNet activations by ~1e-10 and every
    model gives a nearly constant output, so parity would be trivially met. BatchNorm
    statistics are therefore set from a batch of frames (momentum 0 for one training-mode
    pass), and the steering layer is rescaled to an output std of ``OUTPUT_STD``.
    """
    keras.utils.set_random_seed(seed)
    model = models.build_model(name)
    x = frames.astype(np.float32)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    if norms:
        model(x, training=True)
    for layer in norms:
        layer.momentum = BN_MOMENTUM
    steering = model.get_layer("steering")
    kernel, bias = steering.get_weights()
    if not kernel.any():  # eff's output layer starts at zero (models/blocks.py)
        kernel = np.random.default_rng(seed).normal(0.0, 0.05, kernel.shape).astype(np.float32)
        steering.set_weights([kernel, bias])
    out = model.predict(x, verbose=0)
    gain = OUTPUT_STD / max(float(out.std()), 1e-12)
    steering.set_weights([kernel * gain, (bias - out.mean()) * gain])
    return model


def write_recording(folder: Path, frames: np.ndarray) -> Path:
    """A simulator recording: Windows absolute paths in the csv, JPEGs in ``IMG/``."""
    img = folder / "IMG"
    img.mkdir(parents=True)
    with open(folder / "driving_log.csv", "w", newline="") as f:
        writer = csv.writer(f)
        for i, frame in enumerate(frames):
            names = [
                f"{cam}_2024_01_01_10_00_{i // 10:02d}_{i % 10:03d}.jpg"
                for cam in ("center", "left", "right")
            ]
            Image.fromarray(frame).save(img / names[0], quality=95)
            paths = [rf"C:\Users\me\sim data\IMG\{n}" for n in names]
            writer.writerow([*paths, f"{(i % 7 - 3) / 10:.2f}", "0.5", "0", "20.1"])
    return folder
