"""Keras steering model -> TFLite (LiteRT) flatbuffer, float, float16 or int8: the one
conversion, shared by ``drive.py`` (in memory, at start-up), ``export.py`` (written to a
file), ``evaluate.py`` and ``slim.py`` (through :func:`serving.runtime.load`).

Every path traces ``model(x, training=False)`` explicitly, never ``model(x)``: a
``Resizing`` layer would otherwise put BatchNorm in training mode
(../shared/docs/keras-pitfalls.md, item 1). ``models.layers.Resize`` cannot leak
``training``, but the explicit flag keeps conversions right for any layer, and
:func:`serving.runtime.load` checks every in-memory conversion against ``model.predict``.

The contract is the Keras one: input ``frame``, ``(N, 160, 320, 3)`` raw RGB pixels
0..255; output ``(N, 1)`` float32 steering. Float and float16 take a float32 input.
Int8 takes a **uint8** input with scale 1 and zero point 0, so a decoded frame is fed as
it is (full-integer quantisation with a representative set of frames: keras-pitfalls
item 3, dynamic-range int8 gave no speed-up and moved an EffNet's output by about one
output standard deviation). float16 stores weights as float16; the CPU computes in
float32.

Keras and TensorFlow are imported inside the functions: the serving runtime imports
this module, and serving a ``.tflite`` or ``.onnx`` file needs neither.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import numpy as np

from core.frames import FRAME_SHAPE as INPUT_SHAPE

QUANTIZATIONS = ("int8", "float16")
INPUT_NAME = "frame"


class ExportError(ValueError):
    """A conversion that cannot be made as asked (bad argument, unconvertible model)."""


def check_quantize(quantize: str | None, calibration: np.ndarray | None) -> None:
    if quantize not in (None, *QUANTIZATIONS):
        raise ExportError(
            f"quantize must be one of {', '.join(QUANTIZATIONS)} or None, got {quantize!r}"
        )
    if quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise ExportError(
                "int8 quantisation needs representative frames (training data), got none"
            )
        if calibration.shape[1:] != INPUT_SHAPE:
            raise ExportError(
                f"representative frames must be (N, {', '.join(map(str, INPUT_SHAPE))}), "
                f"got {calibration.shape}"
            )


def calibration_batches(frames: np.ndarray) -> Iterator[np.ndarray]:
    """Float32 single-frame batches; the first also holds a 0 and a 255 pixel.

    The calibrator takes the input's quantisation range from the values it sees; pinning
    it to 0..255 gives the uint8 input scale 1 and zero point 0 (raw pixels), whatever the
    frames hold. The two pixels sit in row 0, which every architecture crops away.
    """
    for i, frame in enumerate(frames):
        x = frame.astype(np.float32)[None].copy()
        if i == 0:
            x[0, 0, 0, 0], x[0, 0, 1, 0] = 0.0, 255.0
        yield x


def serving_function(model):
    """``model(frame, training=False)`` as a ``tf.function`` over batches of its input.

    The signature is the model's own input shape (a steering model's is ``(160, 320, 3)``),
    so a model with another contract still converts and the runtime names what it takes.
    """
    import tensorflow as tf  # heavy: imported on use

    shape = model.input_shape
    frame = tuple(shape[1:]) if isinstance(shape, tuple) else INPUT_SHAPE
    spec = tf.TensorSpec((None, *frame), tf.float32, name=INPUT_NAME)
    return tf.function(lambda frame: model(frame, training=False), input_signature=[spec])


def to_tflite(
    model,
    *,
    quantize: str | None = None,
    calibration: np.ndarray | None = None,
    int8_input: str = "uint8",
) -> bytes:
    """Convert to a TFLite flatbuffer using only builtin ops (no Flex/TF ops needed).

    ``calibration``: uint8 ``(N, 160, 320, 3)`` frames, required for ``quantize="int8"``.
    ``int8_input``: ``"uint8"`` (raw pixels) or ``"float32"`` for int8 models.
    """
    # heavy: imported on use (serving a .tflite or .onnx file never converts)
    import keras
    import tensorflow as tf

    check_quantize(quantize, calibration)
    if int8_input not in ("uint8", "float32"):
        raise ExportError(f"int8_input must be 'uint8' or 'float32', got {int8_input!r}")
    # Keras' own LiteRT export takes the same route (ExportArchive -> SavedModel ->
    # converter); doing it here lets us set the ops and quantisation ourselves.
    # from_concrete_functions left variables as READ_VARIABLE ops that int8 calibration
    # cannot run (TF 2.21).
    with tempfile.TemporaryDirectory(prefix="export-") as saved:
        archive = keras.export.ExportArchive()
        archive.track(model)
        fn = serving_function(model)
        archive.add_endpoint("serve", fn, input_signature=fn.input_signature)
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                [x] for x in calibration_batches(calibration)
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8 if int8_input == "uint8" else tf.float32
            converter.inference_output_type = tf.float32
        try:
            content = converter.convert()
        except Exception as exc:  # the converter raises many types, with long messages
            raise ExportError(
                f"TFLite conversion of {model.name!r} failed: {type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[-1][:300]}"
            ) from exc
    if quantize == "int8" and int8_input == "uint8":
        _check_uint8_input(content)
    return content


def _check_uint8_input(content: bytes) -> None:
    from ai_edge_litert.interpreter import Interpreter  # imported on use, as in runtime.py

    detail = Interpreter(model_content=content).get_input_details()[0]
    scale, zero = detail["quantization"]
    if detail["dtype"] != np.uint8 or scale != 1.0 or zero != 0:
        raise ExportError(
            "int8 TFLite input should be uint8 raw pixels (scale 1, zero point 0), got "
            f"{np.dtype(detail['dtype']).name} scale {scale} zero point {zero}"
        )
