"""The one runtime: ``load(path, runtime, threads) -> Predictor``, for every model format.

``drive.py`` serves through it, ``evaluate.py`` measures exactly what the server runs,
and ``export.py`` checks its exports with it. ``Predictor.predict(frame) -> float`` runs
one frame, ``predict_batch(frames)`` an ``(N, 160, 320, 3)`` batch, one frame at a time
(batch 1 was the fastest path measured for ``eff`` on this 2-core CPU,
``benchmarks/replay_speed.py``). :data:`RUNTIMES` is the one list of ``--runtime``
choices every command offers.

Backends (donkeycar's idea: serving hides the format behind ``predict``):

- :class:`LiteRTPredictor` runs a ``.tflite`` file, or a Keras model converted in
  memory at start-up by :func:`serving.convert.to_tflite` (the conversion ``export.py``
  writes to a file) and checked against ``model.predict``. About 1-3 ms per frame on
  the 2-core CPU; the default.
- :class:`OnnxPredictor` runs a ``.onnx`` file with ONNX Runtime.
- :class:`KerasPredictor` runs a compiled call of the Keras model (a ``tf.function``
  with a fixed input signature under TensorFlow): 3-15 ms, the fallback.

``model.predict`` is never used per frame: it costs ~100 ms on this CPU
(../shared/docs/keras-pitfalls.md item 2). Every backend takes the raw
``(160, 320, 3)`` ``uint8`` RGB frame; the model does its own preprocessing.
Keras and TensorFlow are imported only when a Keras model is loaded, so serving a
``.tflite`` or ``.onnx`` file starts in well under a second.

This package sits below ``drive``, ``export`` and ``evaluation`` (which all use it) and
above ``models`` (imported only to load a Keras file), so none of those three imports
another to run a model; ``models`` itself is not its home because importing it imports
Keras, which a ``.tflite`` or ``.onnx`` server never needs.

Why one file of this length: the :class:`Predictor` contract, its three backends and
:func:`load` answer one question, which library runs this model, and :func:`load`'s
fallback (a Keras model converted to LiteRT and checked against ``model.predict`` by
:func:`check_parity`, else the compiled Keras call) uses every backend and the check.
Each backend alone is some sixty lines of one library's calls. The conversion, which
``export.py`` writes to a file, is already apart (:mod:`serving.convert`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from core.frames import FRAME_SHAPE
from core.runs import MODEL_SUFFIXES, ModelLoadError, read_config, resolve_model
from serving.convert import to_tflite

log = logging.getLogger(__name__)

#: The ``--runtime`` choices of every command: ``auto`` serves an exported file as it is
#: and a Keras model converted to LiteRT (compiled Keras call if that fails); ``keras``
#: the compiled Keras call; ``tflite`` LiteRT or fail; ``onnx`` an ``.onnx`` file.
RUNTIMES = ("auto", "keras", "tflite", "onnx")
#: Largest |difference| accepted between a converted model and ``model.predict``:
#: 1e-3 of a command is 0.025 degrees of wheel angle. Float32 conversions agree
#: to about 1e-6; a larger gap means the graph changed (e.g. BatchNorm mode).
PARITY_ATOL = 1e-3
#: Runs before serving, so the first real frame does not pay for allocation,
#: XNNPACK packing or tracing.
WARMUP_FRAMES = 5


class Predictor(ABC):
    """A steering model ready to serve: raw RGB frame in, steering command out.

    ``predict`` is thread-safe (several simulator clients may be connected).
    """

    #: Short backend name: "litert", "onnx" or "keras".
    name: str = "?"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: What was loaded: source path, arch, parameters, the run's config.
        self.info: dict[str, Any] = {}

    def predict(self, frame: np.ndarray) -> float:
        """Steering for one ``(160, 320, 3)`` ``uint8`` RGB frame."""
        if frame.shape != FRAME_SHAPE:
            raise ValueError(f"expected a frame of shape {FRAME_SHAPE}, got {frame.shape}")
        with self._lock:
            return float(self._predict(frame))

    @abstractmethod
    def _predict(self, frame: np.ndarray) -> float: ...

    def predict_batch(self, frames: np.ndarray) -> np.ndarray:
        """Steering for ``(N, 160, 320, 3)`` frames (uint8 or float), float32 ``(N,)``.

        One frame at a time: batch 1 is the path the server runs, and on this CPU the
        fastest one measured (batches of 8-32 were slower for ``eff``).
        """
        frames = np.asarray(frames)
        if len(frames) and (frames.ndim != 4 or frames.shape[1:] != FRAME_SHAPE):
            raise ValueError(
                f"expected frames of shape (N, {', '.join(map(str, FRAME_SHAPE))}), "
                f"got {frames.shape}"
            )
        out = np.empty(len(frames), dtype=np.float32)
        for i, frame in enumerate(frames):
            out[i] = self.predict(frame)
        return out

    def warm_up(self, n: int = WARMUP_FRAMES) -> float:
        """Run ``n`` frames; returns the last latency in milliseconds."""
        frames = probe_frames(n)
        elapsed = 0.0
        for f in frames:
            start = time.perf_counter()
            self.predict(f)
            elapsed = time.perf_counter() - start
        return elapsed * 1e3

    def describe(self) -> str:
        bits = [self.name]
        for key in ("arch", "params", "source"):
            if key in self.info:
                value = self.info[key]
                bits.append(f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}")
        return " ".join(bits)


def probe_frames(n: int, seed: int = 0) -> np.ndarray:
    """Deterministic frames for warm-up and parity checks: noise and smooth gradients.

    Noise exercises every pixel path; gradients look more like a road (large smooth
    areas) and give less extreme activations.
    """
    rng = np.random.default_rng(seed)
    h, w, c = FRAME_SHAPE
    frames = np.empty((n, h, w, c), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        if i % 2 == 0:
            frames[i] = rng.integers(0, 256, FRAME_SHAPE, dtype=np.uint8)
        else:
            angle = rng.uniform(0, np.pi)
            base = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * 200
            for ch in range(c):
                frames[i, :, :, ch] = np.clip(base + rng.uniform(0, 55), 0, 255)
    return frames


# --------------------------------------------------------------------------- LiteRT


def _litert_interpreter_class():
    """LiteRT's standalone interpreter if installed, else TensorFlow's copy."""
    try:  # imported on use: only .tflite models need it
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on the environment
        try:
            import tensorflow as tf
        except ImportError:
            raise ModelLoadError(
                "running .tflite models needs ai-edge-litert (or tensorflow) installed"
            ) from None
        return tf.lite.Interpreter
    return Interpreter


class LiteRTPredictor(Predictor):
    name = "litert"

    def __init__(self, model_content: bytes, *, threads: int | None = None, source: str = ""):
        super().__init__()
        interpreter_class = _litert_interpreter_class()
        try:
            self._interp = interpreter_class(model_content=model_content, num_threads=threads)
            self._interp.allocate_tensors()
        except Exception as exc:
            raise ModelLoadError(
                f"could not load {source or 'LiteRT model'}: not a loadable .tflite model ({exc})"
            ) from exc
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        shape_ok = len(inputs) == 1 and len(outputs) == 1
        if shape_ok:
            self._in, self._out = inputs[0], outputs[0]
            shape_ok = (
                tuple(self._in["shape"][1:]) == FRAME_SHAPE
                and int(np.prod(self._out["shape"][1:])) == 1
            )
        if not shape_ok:
            got = [tuple(d["shape"]) for d in inputs], [tuple(d["shape"]) for d in outputs]
            raise ModelLoadError(
                f"{source or 'LiteRT model'}: expected one (1, 160, 320, 3) input and one "
                f"(1, 1) output; it has inputs {got[0]} and outputs {got[1]}"
            )
        if tuple(self._in["shape"]) != (1, *FRAME_SHAPE):
            self._interp.resize_tensor_input(self._in["index"], (1, *FRAME_SHAPE))
            self._interp.allocate_tensors()
        self._in_dtype = np.dtype(self._in["dtype"])
        if self._in_dtype not in (np.float32, np.uint8, np.int8):
            raise ModelLoadError(
                f"{source or 'LiteRT model'}: input type {self._in_dtype} is not supported "
                "(expected float32, or uint8/int8 for quantised models)"
            )
        self._in_quant = tuple(self._in.get("quantization", (0.0, 0)))
        self._out_quant = tuple(self._out.get("quantization", (0.0, 0)))
        # float32 input, or an int8 export's uint8 input of raw pixels (scale 1, zero
        # point 0): the frame is copied in as it is.
        self._direct = self._in_dtype == np.float32 or (
            self._in_dtype == np.uint8 and self._in_quant == (1.0, 0)
        )
        self.input_dtype = self._in_dtype
        self.info.update(source=source, threads=threads or "default")

    def _predict(self, frame: np.ndarray) -> float:
        if self._direct:
            # Write the frame straight into the input buffer: at most one uint8->float32 pass.
            np.copyto(self._interp.tensor(self._in["index"])()[0], frame, casting="unsafe")
        else:  # another quantised input: map pixels with its scale and zero point
            scale, zero = self._in_quant
            x = frame.astype(np.float32) / (scale or 1.0) + zero
            info = np.iinfo(self._in_dtype)
            x = np.clip(np.round(x), info.min, info.max).astype(self._in_dtype)
            self._interp.set_tensor(self._in["index"], x[None])
        self._interp.invoke()
        y = float(self._interp.get_tensor(self._out["index"]).reshape(-1)[0])
        scale, zero = self._out_quant
        if np.dtype(self._out["dtype"]).kind != "f" and scale:
            return (y - zero) * scale
        return y


# --------------------------------------------------------------------------- ONNX


class OnnxPredictor(Predictor):
    name = "onnx"

    def __init__(self, path: str | Path, *, threads: int | None = None):
        super().__init__()
        try:  # imported on use: only .onnx models need it
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError("running .onnx models needs onnxruntime installed") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(
                f"could not load {path}: not a loadable .onnx model ({exc})"
            ) from exc
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        in_shape = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None
        types = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8}
        if in_shape != FRAME_SHAPE or len(outputs) != 1 or inputs[0].type not in types:
            raise ModelLoadError(
                f"{path}: expected one float or uint8 (N, 160, 320, 3) input and one output; "
                f"it has inputs {[(i.name, i.shape, i.type) for i in inputs]} and outputs "
                f"{[(o.name, o.shape) for o in outputs]}"
            )
        self._in_name = inputs[0].name
        self.input_dtype = np.dtype(types[inputs[0].type])
        self._x = np.empty((1, *FRAME_SHAPE), dtype=self.input_dtype)
        self.info.update(source=str(path), threads=threads or "default")

    def _predict(self, frame: np.ndarray) -> float:
        np.copyto(self._x[0], frame, casting="unsafe")
        (y,) = self._sess.run(None, {self._in_name: self._x})
        return float(np.asarray(y).reshape(-1)[0])


# --------------------------------------------------------------------------- Keras


class KerasPredictor(Predictor):
    """A compiled call of the Keras model with ``training=False``.

    Under TensorFlow a ``tf.function`` with a fixed ``(1, 160, 320, 3)`` float32
    signature (traced once, never retraced); under other backends the eager call.
    ``training=False`` is explicit: a ``Resizing`` layer would otherwise switch
    BatchNorm to training mode (keras-pitfalls item 1).
    """

    name = "keras"

    def __init__(self, model):
        super().__init__()
        import keras  # heavy: imported on use

        self.model = model
        self._x = np.empty((1, *FRAME_SHAPE), dtype=np.float32)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self._fn = tf.function(
                lambda x: model(x, training=False),
                input_signature=[tf.TensorSpec((1, *FRAME_SHAPE), tf.float32)],
                autograph=False,
            )
            self.name = "keras-tf.function"
        else:  # pragma: no cover - the project serves under TensorFlow
            self._fn = lambda x: model(x, training=False)
            self.name = f"keras-{keras.backend.backend()}"

    def _predict(self, frame: np.ndarray) -> float:
        np.copyto(self._x[0], frame, casting="unsafe")
        y = self._fn(self._x)
        return float(np.asarray(y).reshape(-1)[0])


def check_parity(predictor: Predictor, reference: np.ndarray, frames: np.ndarray) -> float:
    """Largest |difference| between ``predictor`` and reference outputs for ``frames``."""
    got = predictor.predict_batch(frames)
    diff = float(np.max(np.abs(got - reference.reshape(-1))))
    if not np.isfinite(diff) or diff > PARITY_ATOL:
        raise ModelLoadError(
            f"{predictor.name} output differs from model.predict by {diff:.3g} "
            f"(> {PARITY_ATOL}) on {len(frames)} probe frames"
        )
    return diff


# --------------------------------------------------------------------------- loading


def _load_keras(path: Path):
    # heavy: imported on use; keras/TensorFlow cost seconds to import and are not
    # needed for .tflite or .onnx files.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import models

    return models.load_model(path)  # raises ModelLoadError naming the file and problem


def load(
    path: str | Path,
    runtime: str = "auto",
    *,
    threads: int | None = None,
    parity_frames: int = 4,
    warm_up: bool = True,
    suffixes: tuple[str, ...] = MODEL_SUFFIXES,
) -> Predictor:
    """Load a model file or run folder (:func:`core.runs.resolve_model`) and return a
    warmed-up :class:`Predictor`.

    ``runtime``: ``auto`` serves ``.tflite``/``.onnx`` files as they are and
    converts Keras models to LiteRT in memory, checked against ``model.predict`` on
    ``parity_frames`` probe frames (falling back to the compiled Keras call, with a
    warning, if conversion or the check fails); ``keras`` forces the compiled Keras
    call; ``tflite`` requires LiteRT (conversion failures are errors); ``onnx``
    requires an ``.onnx`` file. ``suffixes`` narrows the model files taken (the
    caller's own MODEL argument, e.g. ``EXPORT_SUFFIXES``). The Keras conversion traces
    ``model(x, training=False)`` and the parity check compares it with ``model.predict``:
    both guard against the trap that puts BatchNorm in training mode (keras-pitfalls
    item 1). Every failure raises :class:`ModelLoadError`.
    """
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    model_path = resolve_model(path, suffixes)
    config = read_config(model_path)
    suffix = model_path.suffix.lower()
    info: dict[str, Any] = {"source": str(model_path)}
    if config:
        info["config"] = config
        for key in ("arch", "params", "best_val_mse"):
            if key in config:
                info[key] = config[key]

    if suffix == ".tflite":
        if runtime not in ("auto", "tflite"):
            raise ModelLoadError(f"{model_path}: a .tflite file runs with --runtime tflite/auto")
        predictor: Predictor = LiteRTPredictor(
            _read_bytes(model_path), threads=threads, source=str(model_path)
        )
    elif suffix == ".onnx":
        if runtime not in ("auto", "onnx"):
            raise ModelLoadError(f"{model_path}: a .onnx file runs with --runtime onnx/auto")
        predictor = OnnxPredictor(model_path, threads=threads)
    else:  # a Keras file: resolve_model took nothing else
        if runtime == "onnx":
            raise ModelLoadError(
                f"{model_path}: --runtime onnx needs a .onnx file (export it with export.py)"
            )
        predictor = _keras_predictor(model_path, runtime, threads, parity_frames, info)
    predictor.info = {**info, **predictor.info, "source": str(model_path)}
    if warm_up:
        ms = predictor.warm_up()
        predictor.info["warm_ms"] = round(ms, 2)
    return predictor


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


def _keras_predictor(
    model_path: Path, runtime: str, threads: int | None, parity_frames: int, info: dict
) -> Predictor:
    import models  # heavy: imported on use (Keras)

    model = _load_keras(model_path)
    counts = models.parameter_counts(model)
    info.setdefault("arch", model.name)
    info["params"] = counts["total"]
    frames = probe_frames(max(parity_frames, 1))
    reference = model.predict(frames.astype(np.float32), verbose=0, batch_size=len(frames))

    keras_predictor = KerasPredictor(model)
    keras_predictor.info.update(source=str(model_path))
    if runtime == "keras":
        info["parity_max_abs_diff"] = check_parity(keras_predictor, reference, frames)
        return keras_predictor
    try:
        start = time.perf_counter()
        litert = LiteRTPredictor(to_tflite(model), threads=threads, source=str(model_path))
        info["converted_s"] = round(time.perf_counter() - start, 1)
        info["parity_max_abs_diff"] = check_parity(litert, reference, frames)
        litert.info["converted_from"] = model_path.suffix
        return litert
    except Exception as exc:
        if runtime == "tflite":
            raise ModelLoadError(f"{model_path}: LiteRT conversion failed: {exc}") from exc
        log.warning(
            "LiteRT conversion of %s failed (%s); serving the compiled Keras call instead",
            model_path,
            exc,
        )
        info["parity_max_abs_diff"] = check_parity(keras_predictor, reference, frames)
        return keras_predictor
