"""A minimal loader of exported models for parity checks and timing.

``load_runtime(path).predict(frames)`` takes ``(N, 160, 320, 3)`` (or one
``(160, 320, 3)`` frame) raw RGB pixels, uint8 or float, and returns ``(N, 1)`` float32
steering, whatever the file's input type. Files run on LiteRT (``ai_edge_litert``) or
onnxruntime, never TensorFlow (this package still imports keras through ``models``).
The drive server has its own loader (``drive/runtime.py``); this one exists to compare
exports with Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.registry import INPUT_SHAPE


class RuntimeLoadError(ValueError):
    """An exported model file that is missing or not loadable."""


def _as_batch(frames) -> np.ndarray:
    x = np.asarray(frames)
    if x.shape == INPUT_SHAPE:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != INPUT_SHAPE:
        raise ValueError(
            f"expected frames of shape (N, {', '.join(map(str, INPUT_SHAPE))}) or one "
            f"{INPUT_SHAPE} frame, got {x.shape}"
        )
    return x


def _to_input(x: np.ndarray, dtype, scale: float, zero: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    if dtype == x.dtype and scale == 1.0 and zero == 0:
        return x  # raw uint8 pixels into a uint8 input: no conversion at all
    info = np.iinfo(dtype)
    q = np.rint(x.astype(np.float32) / scale) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


class TFLiteRuntime:
    """A LiteRT interpreter; resizes its batch dimension to the batch it is given."""

    def __init__(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.threads = threads or os.cpu_count() or 1
        self._it = Interpreter(model_path=str(path), num_threads=self.threads)
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self._batch = None
        self.input_dtype = np.dtype(self._in["dtype"])

    def predict(self, frames) -> np.ndarray:
        x = _as_batch(frames)
        if x.shape[0] != self._batch:
            self._it.resize_tensor_input(self._in["index"], list(x.shape))
            self._it.allocate_tensors()
            self._batch = x.shape[0]
        scale, zero = self._in["quantization"]
        self._it.set_tensor(self._in["index"], _to_input(x, self.input_dtype, scale, zero))
        self._it.invoke()
        y = self._it.get_tensor(self._out["index"])
        out_scale, out_zero = self._out["quantization"]
        if np.dtype(self._out["dtype"]).kind != "f":
            y = (y.astype(np.float32) - out_zero) * out_scale
        return y.astype(np.float32).reshape(-1, 1)


class OnnxRuntime:
    """An onnxruntime CPU session."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = path
        self.threads = threads or os.cpu_count() or 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        types = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8}
        if inp.type not in types:
            raise RuntimeLoadError(f"{path}: expected a float or uint8 input, got {inp.type}")
        self.input_dtype = np.dtype(types[inp.type])

    def predict(self, frames) -> np.ndarray:
        x = _as_batch(frames)
        y = self._session.run(None, {self._input_name: _to_input(x, self.input_dtype, 1.0, 0)})[0]
        return np.asarray(y, dtype=np.float32).reshape(-1, 1)


def load_runtime(
    path: str | os.PathLike, threads: int | None = None
) -> TFLiteRuntime | OnnxRuntime:
    """Load a ``.tflite`` or ``.onnx`` file; ``threads`` defaults to the CPU count."""
    path = Path(path)
    if not path.is_file():
        raise RuntimeLoadError(f"exported model not found: {path}")
    loaders = {".tflite": TFLiteRuntime, ".onnx": OnnxRuntime}
    if path.suffix not in loaders:
        raise RuntimeLoadError(f"expected a .tflite or .onnx file, got {path.name!r}")
    try:
        return loaders[path.suffix](path, threads)
    except RuntimeLoadError:
        raise
    except Exception as exc:
        raise RuntimeLoadError(
            f"could not load {path}: {type(exc).__name__}: {str(exc).strip()[:300]}"
        ) from exc
