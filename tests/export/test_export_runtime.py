"""``export.load_runtime``: loading errors, input forms and shapes."""

from __future__ import annotations

import numpy as np
import pytest

from export import RuntimeLoadError, convert, load_runtime


@pytest.fixture(scope="module")
def tflite_path(tmp_path_factory, model_factory):
    path = tmp_path_factory.mktemp("rt") / "pilotnet.tflite"
    path.write_bytes(convert(model_factory("pilotnet"), "tflite"))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(RuntimeLoadError, match="exported model not found: .*none.onnx"):
        load_runtime(tmp_path / "none.onnx")


def test_wrong_suffix(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"x")
    with pytest.raises(RuntimeLoadError, match=r"expected a .tflite or .onnx file, got 'm.keras'"):
        load_runtime(tmp_path / "m.keras")


def test_corrupt_file(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"not a model")
    with pytest.raises(RuntimeLoadError, match="could not load .*m.onnx"):
        load_runtime(tmp_path / "m.onnx")


def test_single_frame_uint8_and_float_batches_agree(tflite_path, frames):
    runtime = load_runtime(tflite_path)
    batch = runtime.predict(frames[:3])
    assert batch.shape == (3, 1) and batch.dtype == np.float32
    np.testing.assert_allclose(runtime.predict(frames[1]), batch[1:2], atol=1e-6)
    np.testing.assert_allclose(runtime.predict(frames[:3].astype(np.float32)), batch, atol=1e-6)


def test_wrong_frame_shape_is_named(tflite_path):
    runtime = load_runtime(tflite_path)
    with pytest.raises(
        ValueError, match=r"expected frames of shape \(N, 160, 320, 3\).*\(2, 66, 200, 3\)"
    ):
        runtime.predict(np.zeros((2, 66, 200, 3), np.uint8))
