"""Fixtures for the evaluation tests: generated recordings and small models, never
committed binaries. Recordings come from the procedural demo road (sim.demo_recording)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(__file__).resolve().parents[3] / "shared"


def tiny_steering_model(seed: int = 0):
    """A steering model that converts and runs in well under a second."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    frame = keras.Input(shape=(160, 320, 3), name="frame")
    x = layers.Cropping2D(((60, 20), (0, 0)))(frame)
    x = layers.AveragePooling2D(8)(x)
    x = layers.Rescaling(1.0 / 255.0, offset=-0.5)(x)
    x = layers.Conv2D(4, 3, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(1, activation="tanh", name="steering")(x)
    return keras.Model(frame, out, name="tiny")


@pytest.fixture(scope="session")
def demo_log(tmp_path_factory) -> Path:
    """A 100-frame procedural recording (about 7 s of driving), all three cameras."""
    from sim.demo_recording import write_demo_recording

    folder = tmp_path_factory.mktemp("demo") / "demo_rec"
    write_demo_recording(folder, n_frames=100, seed=3)
    return folder


@pytest.fixture(scope="session")
def demo_log_long(tmp_path_factory) -> Path:
    """A 170-frame procedural recording (about 11.5 s): long enough for the closed
    loop's recovery trials (5 s each, 1 s clear either side)."""
    from sim.demo_recording import write_demo_recording

    folder = tmp_path_factory.mktemp("demo_long") / "demo_long"
    write_demo_recording(folder, n_frames=170, seed=4)
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    tiny_steering_model().save(path)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder as train.py writes it (model files, config.json, history.csv)."""
    import json

    run = tmp_path_factory.mktemp("runs") / "20250101-000000_tiny"
    run.mkdir()
    model = tiny_steering_model(seed=1)
    model.save(run / "model.keras")
    model.save(run / "model.h5")
    (run / "config.json").write_text(json.dumps({"arch": "tiny", "best_val_mse": 0.0123}))
    (run / "history.csv").write_text("epoch,loss,val_loss\n0,0.05,0.02\n1,0.03,0.0123\n")
    return run
