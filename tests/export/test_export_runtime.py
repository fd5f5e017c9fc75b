"""Exports through ``serving.load``: loading errors, input forms and shapes."""

from __future__ import annotations

import numpy as np
import pytest

from core.runs import EXPORT_SUFFIXES, ModelLoadError
from export import convert
from serving import load


@pytest.fixture(scope="module")
def tflite_path(tmp_path_factory, model_factory):
    path = tmp_path_factory.mktemp("rt") / "pilotnet.tflite"
    path.write_bytes(convert(model_factory("pilotnet"), "tflite"))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="exported model not found: .*none.onnx"):
        load(tmp_path / "none.onnx", suffixes=EXPORT_SUFFIXES)


def test_wrong_suffix(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"expected a .tflite or .onnx file, got 'm.keras'"):
        load(tmp_path / "m.keras", suffixes=EXPORT_SUFFIXES)


def test_corrupt_file(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="could not load .*m.onnx"):
        load(tmp_path / "m.onnx")


def test_single_frame_uint8_and_float_batches_agree(tflite_path, frames):
    runtime = load(tflite_path)
    batch = runtime.predict_batch(frames[:3])
    assert batch.shape == (3,) and batch.dtype == np.float32
    np.testing.assert_allclose(runtime.predict(frames[1]), batch[1], atol=1e-6)
    np.testing.assert_allclose(
        runtime.predict_batch(frames[:3].astype(np.float32)), batch, atol=1e-6
    )


def test_wrong_frame_shape_is_named(tflite_path):
    runtime = load(tflite_path)
    with pytest.raises(
        ValueError, match=r"expected frames of shape \(N, 160, 320, 3\).*\(2, 66, 200, 3\)"
    ):
        runtime.predict_batch(np.zeros((2, 66, 200, 3), np.uint8))
