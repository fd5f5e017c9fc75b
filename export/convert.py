"""Keras steering model -> TFLite (LiteRT) or ONNX bytes, float, float16 or int8.

Every path traces ``model(x, training=False)`` explicitly, never ``model(x)``: a
``Resizing`` layer would otherwise put BatchNorm in training mode
(../shared/docs/keras-pitfalls.md, item 1). ``models.layers.Resize`` cannot leak
``training``, but the explicit flag keeps exports right for any layer.

The exported contract is the Keras one: input ``frame``, ``(N, 160, 320, 3)`` raw RGB
pixels 0..255; output ``(N, 1)`` float32 steering. Float and float16 exports take a
float32 input. Int8 TFLite takes a **uint8** input with scale 1 and zero point 0, so a
decoded frame is fed as it is, with no conversion; int8 ONNX keeps a float32 input
(QuantizeLinear is the first node).

Int8 is full-integer quantisation with a representative set of frames (item 3:
dynamic-range int8 gave no speed-up and moved an EffNet's output by about one output
standard deviation). float16 stores weights as float16; the CPU computes in float32.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models import INPUT_SHAPE

logger = logging.getLogger(__name__)

FORMATS = {"tflite": ".tflite", "onnx": ".onnx"}
QUANTIZATIONS = ("int8", "float16")
INPUT_NAME = "frame"
OUTPUT_NAME = "steering"
#: ONNX opset: 17 is read by every onnxruntime of the last few years (1.13+).
ONNX_OPSET = 17


class ExportError(ValueError):
    """An export that cannot be made as asked (bad argument, unconvertible model)."""


def _check_quantize(quantize: str | None, calibration: np.ndarray | None) -> None:
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


def _calibration_batches(frames: np.ndarray) -> Iterator[np.ndarray]:
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


def _serving_function(model):
    import tensorflow as tf

    spec = tf.TensorSpec((None, *INPUT_SHAPE), tf.float32, name=INPUT_NAME)
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
    import keras
    import tensorflow as tf

    _check_quantize(quantize, calibration)
    if int8_input not in ("uint8", "float32"):
        raise ExportError(f"int8_input must be 'uint8' or 'float32', got {int8_input!r}")
    # Keras' own LiteRT export takes the same route (ExportArchive -> SavedModel ->
    # converter); doing it here lets us set the ops and quantisation ourselves.
    # from_concrete_functions left variables as READ_VARIABLE ops that int8 calibration
    # cannot run (TF 2.21).
    with tempfile.TemporaryDirectory(prefix="export-") as saved:
        archive = keras.export.ExportArchive()
        archive.track(model)
        fn = _serving_function(model)
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
                [x] for x in _calibration_batches(calibration)
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
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_content=content).get_input_details()[0]
    scale, zero = detail["quantization"]
    if detail["dtype"] != np.uint8 or scale != 1.0 or zero != 0:
        raise ExportError(
            "int8 TFLite input should be uint8 raw pixels (scale 1, zero point 0), got "
            f"{np.dtype(detail['dtype']).name} scale {scale} zero point {zero}"
        )


def to_onnx(
    model,
    *,
    quantize: str | None = None,
    calibration: np.ndarray | None = None,
    opset: int = ONNX_OPSET,
) -> bytes:
    """Convert to ONNX bytes with tf2onnx; float16 and int8 (static QDQ) via onnxruntime."""
    import onnx
    import tf2onnx

    _check_quantize(quantize, calibration)
    fn = _serving_function(model)
    try:
        proto, _ = tf2onnx.convert.from_function(
            fn, input_signature=fn.input_signature, opset=opset
        )
    except Exception as exc:
        raise ExportError(
            f"ONNX conversion of {model.name!r} failed: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[-1][:300]}"
        ) from exc
    _rename_output(proto, OUTPUT_NAME)
    if quantize == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel

        # keep_io_types: the server still feeds float32 frames and reads float32 steering.
        # The input/output Casts are appended at the end of the node list: sort, or the
        # checker (and stricter runtimes) reject the graph.
        wrapped = OnnxModel(convert_float_to_float16(proto, keep_io_types=True))
        wrapped.topological_sort()
        proto = wrapped.model
    elif quantize == "int8":
        proto = _onnx_int8(proto, calibration)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _rename_output(proto, name: str) -> None:
    """tf2onnx names the output ``Identity:0``; give it a stable, meaningful name."""
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    proto.graph.output[0].name = name


def _onnx_int8(proto, calibration: np.ndarray):
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = _calibration_batches(calibration)

        def get_next(self):
            x = next(self._batches, None)
            return None if x is None else {INPUT_NAME: x}

    with tempfile.TemporaryDirectory(prefix="export-onnx-") as tmp:
        src, pre, out = (os.path.join(tmp, n) for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(proto, src)
        # ONNX's own shape inference and graph optimisation run; the symbolic one is
        # skipped. It exists for symbolic dimensions (sequence lengths) and needs
        # sympy, which onnxruntime does not declare: requirements.txt alone could not
        # quantise (issue 17). Every shape here is fixed but the batch, and the int8
        # outputs are identical with and without it for all six architectures (max
        # |diff| 0.0 on 32 frames; only the stored shape annotations differ).
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        # The node giving the output stays float: quantised, its output range is the one
        # seen in calibration, and steering beyond it was clipped (trained base, held-out
        # frames: max error 0.138 -> 0.044). reduce_range (7-bit weights) avoids the int16
        # saturation of AVX2's VPMADDUBSW on CPUs without VNNI such as this one (MAE
        # 0.0168 -> 0.0067). Both together: MAE 0.0026 (benchmarks/export_parity.md).
        last = [n.name for n in onnx.load(pre).graph.node if OUTPUT_NAME in n.output]
        quantize_static(
            pre,
            out,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=last,
        )
        return onnx.load(out)


def convert(
    model,
    fmt: str,
    *,
    quantize: str | None = None,
    calibration: np.ndarray | None = None,
) -> bytes:
    """Bytes of ``model`` in ``fmt`` (``"tflite"`` or ``"onnx"``)."""
    if fmt == "tflite":
        return to_tflite(model, quantize=quantize, calibration=calibration)
    if fmt == "onnx":
        return to_onnx(model, quantize=quantize, calibration=calibration)
    raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def write_new(path: str | os.PathLike, content: bytes, *, overwrite: bool = False) -> Path:
    """Write ``content`` to ``path`` atomically; refuse an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ExportError(f"{path} already exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise ExportError(f"output folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        if not overwrite and path.exists():  # appeared while we converted
            raise ExportError(f"{path} already exists; pass --overwrite to replace it")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
