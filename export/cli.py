"""``python export.py MODEL --to tflite|onnx [--quantize int8|float16] [--out PATH]``.

MODEL is a ``.keras``/``.h5`` file or a training run folder (``model.keras`` or
``model.h5`` plus ``config.json``, whose ``"data"`` lists the training recordings).
The export goes next to MODEL by default (``model.tflite``, ``model.int8.tflite``, ...)
and never replaces an existing file without ``--overwrite``. After writing, the file is
loaded back with LiteRT/onnxruntime and compared with Keras ``predict``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import models
from core.cli import HelpFormatter, error_exit, setup_logging
from core.outputs import check_new_file, write_atomic
from core.runs import (
    EXPORT_SUFFIXES,
    KERAS_SUFFIXES,
    ModelLoadError,
    config_path,
    read_config,
    resolve_model,
)
from export.convert import FORMATS, QUANTIZATIONS, ExportError, convert
from export.frames import FramesError, FrameSet, recording_frames, synthetic_frames
from serving import load

logger = logging.getLogger(__name__)

#: Representative frames: a few hundred cover every track's light and colours; more
#: only slows calibration (about 10 ms a frame for eff on this 2-core CPU).
DEFAULT_SAMPLES = 300
#: Calls timed at batch 1; the median of a few hundred is stable to about 0.1 ms here.
TIMING_CALLS = 300


@dataclass(frozen=True)
class Source:
    """The Keras file to export and the training data its run config names (if any)."""

    model_file: Path
    data: tuple[str, ...]
    config_file: Path | None


def resolve_source(model: str | os.PathLike) -> Source:
    """A model file or a run folder -> the Keras file and the run's data folders."""
    model_file = resolve_model(model, KERAS_SUFFIXES)
    config = read_config(model_file)
    config_file = config_path(model_file) if config_path(model_file).is_file() else None
    data: tuple[str, ...] = ()
    if config:
        raw = config.get("data", [])
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
            raise ExportError(
                f'{config_file}: expected "data" to be a list of recording folders, got {raw!r}'
            )
        data = tuple(raw)
    return Source(model_file, data, config_file)


def default_output(model_file: Path, fmt: str, quantize: str | None) -> Path:
    """``run/model.keras`` -> ``run/model.tflite``; quantised: ``run/model.int8.tflite``."""
    tag = f".{quantize}" if quantize else ""
    return model_file.with_name(f"{model_file.stem}{tag}{FORMATS[fmt]}")


def check_output(out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse an ``--out`` of the wrong suffix, an existing file (without ``overwrite``,
    :func:`core.outputs.check_new_file`) or a folder that does not exist."""
    if out.suffix != FORMATS[fmt]:
        raise ExportError(f"--to {fmt} writes a {FORMATS[fmt]} file, got --out {out}")
    check_new_file(out, overwrite=overwrite, error=ExportError)
    if not out.parent.is_dir():
        raise ExportError(f"output folder {out.parent} does not exist")


def pick_frames(
    data: tuple[str, ...], samples: int, *, int8: bool, explicit: bool, origin: str
) -> tuple[FrameSet | None, FrameSet]:
    """(calibration, parity) frames from the recordings: interleaved, never the same ones.

    Calibration frames are read for int8 only; int8 without recordings is an error, and
    so is a ``--data`` folder that cannot be read. A float export whose run config names
    recordings absent from this machine is checked on generated frames instead.
    """
    if not data:
        if int8:
            raise ExportError(
                "int8 quantisation needs representative frames from the training data: "
                f'expected --data DIR [DIR ...] or a run config listing "data", got none '
                f"({origin})"
            )
        return None, synthetic_frames(samples)
    try:
        calibration = recording_frames(data, samples, phase=0.25) if int8 else None
        return calibration, recording_frames(data, samples, phase=0.75)
    except FramesError as exc:
        if int8 or explicit:
            need = "int8 quantisation needs representative frames" if int8 else "--data"
            raise ExportError(f"{need}: {exc}") from exc
        logger.warning("%s (%s); checking parity on generated frames instead", exc, origin)
        return None, synthetic_frames(samples)


def median_ms(predictor, frame: np.ndarray, calls: int = TIMING_CALLS) -> float:
    """Median wall time of ``predictor.predict`` on one frame (batch 1), after a warm-up."""
    for _ in range(10):
        predictor.predict(frame)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        predictor.predict(frame)
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e3)


def parity(keras_out: np.ndarray, export_out: np.ndarray) -> dict[str, float]:
    diff = np.abs(export_out.reshape(-1) - keras_out.reshape(-1))
    std = float(keras_out.std())
    return {
        "max_abs": float(diff.max()),
        "mae": float(diff.mean()),
        "keras_std": std,
        "mae_over_std": float(diff.mean() / std) if std > 0 else float("nan"),
    }


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


def load_keras(path: Path):
    try:
        return models.load_model(path)
    except ValueError as exc:  # models.io.ModelLoadError names the file and the problem
        raise ExportError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="export.py",
        description="Export a steering model to TFLite (LiteRT) or ONNX; check it against Keras.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .keras/.h5 file or a training run folder")
    p.add_argument("--to", required=True, choices=sorted(FORMATS), help="output format")
    p.add_argument("--quantize", choices=QUANTIZATIONS, help="int8 (full integer) or float16")
    p.add_argument("--out", type=Path, help="output file (default: next to MODEL)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--data",
        nargs="+",
        metavar="DIR",
        help="recordings for representative frames (default: the run config's data)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        metavar="N",
        help=f"frames, spread evenly over the recordings (default {DEFAULT_SAMPLES})",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # "Assets written to" lines
    try:
        return run(args)
    except (ExportError, FramesError, ModelLoadError) as exc:
        return error_exit(exc, logger)


def run(args: argparse.Namespace) -> int:
    if args.samples < 1:
        raise ExportError(f"--samples must be >= 1, got {args.samples}")
    source = resolve_source(args.model)
    out = args.out or default_output(source.model_file, args.to, args.quantize)
    check_output(out, args.to, args.overwrite)
    data = tuple(args.data) if args.data else source.data
    origin = f"run config {source.config_file}" if source.config_file else "no run config.json"
    calibration, check = pick_frames(
        data,
        args.samples,
        int8=args.quantize == "int8",
        explicit=bool(args.data),
        origin="--data" if args.data else origin,
    )
    model = load_keras(source.model_file)
    start = time.perf_counter()
    content = convert(
        model,
        args.to,
        quantize=args.quantize,
        calibration=None if calibration is None else calibration.frames,
    )
    seconds = time.perf_counter() - start
    check_output(out, args.to, args.overwrite)  # again: it may have appeared meanwhile
    write_atomic(out, content)

    predictor = load(out, threads=os.cpu_count() or 1, suffixes=EXPORT_SUFFIXES)
    expected = model.predict(check.frames.astype(np.float32), batch_size=32, verbose=0)
    got = predictor.predict_batch(check.frames)
    stats = parity(expected, got)
    ms = median_ms(predictor, check.frames[0])

    kind = args.quantize or "float32"
    print(f"exported {source.model_file} -> {out} ({args.to}, {kind}, {seconds:.1f} s)")
    print(f"  size: keras {_mb(source.model_file)}, export {_mb(out)}")
    if calibration is not None:
        print(f"  calibrated on {calibration.source}")
    disjoint = " (not the calibration ones)" if calibration is not None else ""
    print(
        f"  parity on {check.source}{disjoint}:"
        f" max |diff| {stats['max_abs']:.3g}, MAE {stats['mae']:.3g}"
        f" (Keras output std {stats['keras_std']:.3g}; MAE/std {stats['mae_over_std']:.3g})"
    )
    print(
        f"  latency: {ms:.2f} ms per frame at batch 1 (median of {TIMING_CALLS} calls, "
        f"{predictor.info['threads']} threads, input {predictor.input_dtype.name})"
    )
    return 0
