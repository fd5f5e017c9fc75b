"""Fixtures for the slimming tests: tiny steering models with KxK convolutions and generated
recordings (sim.demo_recording), never committed binaries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def recordings(tmp_path_factory) -> tuple[Path, Path]:
    """(training, validation) demo recordings: 40 and 16 frames, different seeds."""
    from sim.demo_recording import write_demo_recording

    root = tmp_path_factory.mktemp("slim_data")
    write_demo_recording(root / "train", n_frames=40, seed=3)
    write_demo_recording(root / "val", n_frames=16, seed=4)
    return root / "train", root / "val"
