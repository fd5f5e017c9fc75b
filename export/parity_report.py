"""Parity, size and latency of every export of trained runs, on a held-out recording.

``python -m export.parity_report RUN [RUN ...] --recording DIR`` prints one markdown
table row per (run, export): error against Keras on every centre frame of the
recording (MAE, p99, max, MAE / Keras output std), the Keras and export errors against
the recorded steering, the file size and the batch-1 latency. Int8 is calibrated on the
run's own training data (its config's ``"data"``), as ``export.py`` does; the recording
should be one the run was not trained on. Figures: benchmarks/export_parity.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

import models
from core.cli import HelpFormatter, error_exit, setup_logging
from core.recordings import ImageError, RecordingError, decode_images, read_recording
from core.runs import ModelLoadError
from export.cli import DEFAULT_SAMPLES, median_ms, parity, resolve_source
from export.convert import FORMATS, ExportError, convert, to_tflite
from export.frames import FramesError, recording_frames
from serving import load

#: (label, format, quantize, int8 input type)
VARIANTS = (
    ("tflite float32", "tflite", None, None),
    ("tflite float16", "tflite", "float16", None),
    ("tflite int8, uint8 in", "tflite", "int8", "uint8"),
    ("tflite int8, float32 in", "tflite", "int8", "float32"),
    ("onnx float32", "onnx", None, None),
    ("onnx float16", "onnx", "float16", None),
    ("onnx int8", "onnx", "int8", None),
)

logger = logging.getLogger(__name__)


def held_out(recording: str) -> tuple[np.ndarray, np.ndarray]:
    """Every centre frame of ``recording`` (uint8) and its recorded steering."""
    rec = read_recording(recording)
    return decode_images(rec.centre_paths, progress=False), np.asarray(rec.steering)


def report(run: str, frames: np.ndarray, steering: np.ndarray, samples: int) -> list[str]:
    source = resolve_source(run)
    model = models.load_model(source.model_file)
    calibration = recording_frames(source.data, samples, phase=0.25).frames
    expected = model.predict(frames.astype(np.float32), batch_size=32, verbose=0)
    keras_mae = float(np.abs(expected[:, 0] - steering).mean())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, fmt, quantize, int8_input in VARIANTS:
            path = Path(tmp) / f"m{FORMATS[fmt]}"
            if int8_input:
                content = to_tflite(
                    model, quantize=quantize, calibration=calibration, int8_input=int8_input
                )
            else:
                content = convert(model, fmt, quantize=quantize, calibration=calibration)
            path.write_bytes(content)
            predictor = load(path, threads=os.cpu_count() or 1)
            got = predictor.predict_batch(frames)[:, None]
            stats = parity(expected, got)
            p99 = float(np.percentile(np.abs(got - expected), 99))
            export_mae = float(np.abs(got[:, 0] - steering).mean())
            ms = median_ms(predictor, frames[0])
            rows.append(
                f"| {model.name} | {label} | {stats['mae']:.2g} | {p99:.2g} | "
                f"{stats['max_abs']:.2g} | {stats['mae_over_std']:.3f} | "
                f"{keras_mae:.4f} / {export_mae:.4f} | {path.stat().st_size / 1e6:.2f} | "
                f"{ms:.2f} |"
            )
            print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.parity_report",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="training run folders or model files")
    p.add_argument("--recording", required=True, help="held-out recording to measure on")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="calibration frames")
    args = p.parse_args(argv)
    setup_logging()
    try:
        return run(args)
    except (ExportError, FramesError, ModelLoadError, RecordingError, ImageError) as exc:
        return error_exit(exc, logger)


def run(args: argparse.Namespace) -> int:
    frames, steering = held_out(args.recording)
    print(f"{len(frames)} frames of {args.recording}; load average {os.getloadavg()[0]:.1f}")
    print(
        "| model | export | MAE | p99 | max | MAE/std | steering MAE keras / export "
        "| MB | ms/frame |\n|---|---|---|---|---|---|---|---|---|"
    )
    for model in args.runs:
        report(model, frames, steering, args.samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
