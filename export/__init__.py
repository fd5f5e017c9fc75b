"""Export steering models to TFLite (LiteRT) and ONNX, float, float16 or int8.

The exported model keeps the Keras contract: input ``frame``, ``(N, 160, 320, 3)`` raw
RGB pixels 0..255 (float32; **uint8** for int8 TFLite, scale 1 and zero point 0, so a
decoded frame goes in as it is); output ``(N, 1)`` float32 steering.

CLI: ``python export.py MODEL --to tflite|onnx [--quantize int8|float16] [--out PATH]``.
Exports run through the one serving runtime: ``serving.load(path).predict_batch(frames)``.
"""

from export.convert import (
    FORMATS,
    QUANTIZATIONS,
    ExportError,
    convert,
    to_onnx,
    to_tflite,
)
from export.frames import FramesError, FrameSet, recording_frames, synthetic_frames

__all__ = [
    "FORMATS",
    "QUANTIZATIONS",
    "ExportError",
    "FrameSet",
    "FramesError",
    "convert",
    "recording_frames",
    "synthetic_frames",
    "to_onnx",
    "to_tflite",
]
