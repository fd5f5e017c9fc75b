"""Fixtures for the export tests: real-looking frames and models with varied outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from export_testkit import make_model, real_frames

from export.frames import synthetic_frames


@pytest.fixture(scope="session")
def frames() -> np.ndarray:
    """16 uint8 frames: real ones from ../shared when present, else generated road scenes."""
    real = real_frames(16)
    return real if real is not None else synthetic_frames(16, seed=1).frames


@pytest.fixture(scope="session")
def model_factory(frames):
    """``model_factory("eff")``: one model per architecture for the session."""
    cache: dict[str, keras.Model] = {}

    def get(name: str) -> keras.Model:
        if name not in cache:
            cache[name] = make_model(name, frames)
        return cache[name]

    return get
