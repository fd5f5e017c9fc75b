"""Helpers for the drive tests: generated JPEGs and models, a stub predictor.

Imported by name (pytest puts this folder on sys.path; it has no __init__.py so
that it cannot shadow the ``drive`` package).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serving import Predictor

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "udacity"


def make_jpeg(width: int = 320, height: int = 160, seed: int = 0, quality: int = 75) -> bytes:
    """A road-like JPEG: a grey trapezoid on green, plus noise, made with PIL."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    road = np.abs(x - width / 2) < (y / height) * width * 0.45
    frame = np.where(road[..., None], [110, 110, 110], [60, 140, 60]).astype(np.float32)
    frame += rng.normal(0, 12, frame.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


class StubPredictor(Predictor):
    """Returns a fixed value (or raises), and remembers the frames it saw."""

    name = "stub"

    def __init__(self, value: float | Exception = 0.25):
        super().__init__()
        self.value = value
        self.frames: list[np.ndarray] = []

    def _predict(self, frame):
        self.frames.append(frame)
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def tiny_model(outputs: int = 1, input_shape=(160, 320, 3)):
    """A small steering-contract model (crop, resize, conv, BatchNorm, dense): converts in ~1 s."""
    # heavy: imported on use (Keras loads TensorFlow; the tools tests import this kit too)
    import keras

    from models.layers import Resize

    frame = keras.Input(shape=input_shape, name="frame")
    x = keras.layers.Cropping2D(((60, 20), (0, 0)))(frame)
    x = Resize(20, 40)(x)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(outputs, activation="tanh")(x)
    return keras.Model(frame, out, name="tiny")


def shared_data_or_skip() -> Path:
    if not (SHARED_DATA / "akbari_lake" / "driving_log.csv").is_file():
        pytest.skip(f"shared recordings not found at {SHARED_DATA}")
    return SHARED_DATA
