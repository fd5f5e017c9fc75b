"""Fixtures for the export tests: real-looking frames and models with varied outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from export_testkit import INT8_FRAMES, make_model, real_or_generated_frames


@pytest.fixture(scope="session")
def frames(ci) -> np.ndarray:
    """16 uint8 frames: real ones from ../shared when present, else generated road scenes."""
    return real_or_generated_frames(16, phase=0.5, seed=1, ci=ci)


@pytest.fixture(scope="session")
def int8_frames(ci) -> np.ndarray:
    """INT8_FRAMES frames for judging int8 exports, disjoint from the calibration ones."""
    return real_or_generated_frames(INT8_FRAMES, phase=0.5, seed=2, ci=ci)


@pytest.fixture(scope="session")
def calibration_frames(ci):
    """``calibration_frames(n)``: frames like the checked ones but never the same, as
    training data is to driving (int8 calibration)."""
    return lambda n: real_or_generated_frames(n, phase=0.25, seed=7, ci=ci)


@pytest.fixture(scope="session")
def model_factory(frames):
    """``model_factory("eff")``: one model per architecture for the session."""
    cache: dict[str, keras.Model] = {}

    def get(name: str) -> keras.Model:
        if name not in cache:
            cache[name] = make_model(name, frames)
        return cache[name]

    return get
