"""Keras steering model -> TFLite (LiteRT) or ONNX bytes, float, float16 or int8.

The TFLite conversion is :func:`serving.convert.to_tflite`, the one the drive server runs
in memory; this module adds ONNX. The files are written by ``export.cli`` through
:mod:`core.outputs` (the one overwrite guard, atomic writes).

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

import numpy as np

from serving.convert import (
    INPUT_NAME,
    QUANTIZATIONS,
    ExportError,
    calibration_batches,
    check_quantize,
    serving_function,
    to_tflite,
)

logger = logging.getLogger(__name__)

#: to_tflite, QUANTIZATIONS and ExportError live in serving.convert and are exported here
#: as part of the export API.
__all__ = [
    "FORMATS",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "QUANTIZATIONS",
    "ExportError",
    "convert",
    "to_onnx",
    "to_tflite",
]

FORMATS = {"tflite": ".tflite", "onnx": ".onnx"}
OUTPUT_NAME = "steering"
#: ONNX opset: 17 is read by every onnxruntime of the last few years (1.13+).
ONNX_OPSET = 17


def to_onnx(
    model,
    *,
    quantize: str | None = None,
    calibration: np.ndarray | None = None,
    opset: int = ONNX_OPSET,
) -> bytes:
    """Convert to ONNX bytes with tf2onnx; float16 and int8 (static QDQ) via onnxruntime."""
    # heavy: imported on use (onnx, tf2onnx and onnxruntime load TensorFlow's converters)
    import onnx
    import tf2onnx

    check_quantize(quantize, calibration)
    fn = serving_function(model)
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
    # heavy: imported on use
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
            self._batches = calibration_batches(calibration)

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
