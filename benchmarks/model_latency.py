"""Per-frame CPU latency and file sizes of the registered architectures, against ``base``.

    python -m benchmarks.model_latency [--archs base eff eff-slim mnv2 pilotnet]
                                       [--calls 300] [--output benchmarks/model_latency.md]

The CPU half of the slimming study's targets (issue 6): for each architecture a
fresh model (latency and size do not depend on the weights; the int8 calibration
does, which is why its error against float is measured on trained models by
``export.py``, not here) is converted the way the drive server serves it:

- float32 LiteRT (``serving.convert.to_tflite``), and full-integer int8
  LiteRT calibrated on 100 real centre frames (the same ``to_tflite``);
- latency: ``serving.runtime.LiteRTPredictor.predict`` on real frames (the server's
  fastest path, batch 1), 1 and 2 threads, median and p99 of ``--calls`` calls after
  20 warm-up calls; the architectures are interleaved call by call, so a burst of
  load from other jobs hits all of them alike;
- ratios against ``base``: parameters, MACs (``models.macs``), latency;
- sizes: the ``.keras`` file (float32 weights, no optimizer state), the float32 and
  the int8 ``.tflite``. int8/float of the TFLite files cannot reach 1/4 for a model
  with biases: biases stay int32 (4 bytes, as in float) and every per-channel
  weight tensor adds a float32 scale and an int64 zero point per channel.

Frames come from ``../shared/data/udacity`` (generated ones when it is missing).
Results are appended to ``--output`` with the date, machine and load average.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np

from benchmarks.mdreport import prepend_section
from core.cli import HelpFormatter
from serving import probe_frames, to_tflite
from serving.runtime import LiteRTPredictor

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data" / "udacity"
WARMUP = 20
THREADS = (1, 2)


def frames_for(n: int) -> tuple[np.ndarray, str]:
    logs = [DATA / name for name in ("akbari_lake", "bsh_t2new_jungle") if (DATA / name).is_dir()]
    if logs:
        from export.frames import recording_frames  # heavy: imported on use (Keras)

        fs = recording_frames(logs, n)
        return fs.frames, fs.source
    return probe_frames(n), "generated probe frames"


def convert(arch: str, calibration: np.ndarray) -> dict:
    # heavy: imported on use (Keras)
    import models
    from models.macs import total_macs

    model = models.build_model(arch)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model.keras")
        keras_bytes = (Path(tmp) / "model.keras").stat().st_size
    return {
        "keras": keras_bytes,
        "arch": arch,
        "params": model.count_params(),
        "macs": total_macs(model),
        "float": to_tflite(model),
        "int8": to_tflite(model, quantize="int8", calibration=calibration),
    }


def time_interleaved(predictors: dict, frames: np.ndarray, calls: int) -> dict:
    """Median/p99 ms per predictor, calling each in turn on the same frame."""
    for p in predictors.values():
        for i in range(WARMUP):
            p.predict(frames[i % len(frames)])
    times = {key: np.empty(calls) for key in predictors}
    for i in range(calls):
        frame = frames[i % len(frames)]
        for key, p in predictors.items():
            start = time.perf_counter()
            p.predict(frame)
            times[key][i] = time.perf_counter() - start
    return {
        key: (float(np.median(t)) * 1e3, float(np.percentile(t, 99)) * 1e3)
        for key, t in times.items()
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.model_latency",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument("--archs", nargs="+", default=["base", "eff", "eff-slim", "mnv2", "pilotnet"])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "model_latency.md",
        help="add a markdown section here, newest first (default: %(default)s)",
    )
    args = p.parse_args(argv)
    if "base" not in args.archs:
        args.archs.insert(0, "base")
    frames, source = frames_for(200)
    calibration, evaluation = frames[::2], frames[1::2]
    load_before = os.getloadavg()
    rows = []
    for arch in args.archs:
        print(f"converting {arch} (float32 and int8) ...", file=sys.stderr, flush=True)
        rows.append(convert(arch, calibration))
    results = {}
    for threads in THREADS:
        predictors = {}
        for r in rows:
            for kind in ("float", "int8"):
                predictors[(r["arch"], kind)] = LiteRTPredictor(
                    r[kind], threads=threads, source=f"{r['arch']} {kind}"
                )
        print(f"timing {len(predictors)} models, {threads} thread(s) ...", file=sys.stderr)
        for key, value in time_interleaved(predictors, evaluation, args.calls).items():
            results[(*key, threads)] = value
    load_after = os.getloadavg()

    base = next(r for r in rows if r["arch"] == "base")
    base_ms = {t: results[("base", "float", t)][0] for t in THREADS}
    lines = [
        f"## {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average (1 min) {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after; frames: {source}; {args.calls} calls per model and "
        "thread count, interleaved; LiteRT batch 1 through serving.runtime.LiteRTPredictor.",
        "",
        "| arch | params | % base | MACs | % base | .keras KB | float KB | int8 KB | "
        "int8/.keras | int8/float | "
        "float ms t1 (p99) | float ms t2 (p99) | int8 ms t2 | base/arch t1 | base/arch t2 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a = r["arch"]
        f1, f1p = results[(a, "float", 1)]
        f2, f2p = results[(a, "float", 2)]
        i2 = results[(a, "int8", 2)][0]
        lines.append(
            f"| {a} | {r['params']:,} | {100 * r['params'] / base['params']:.1f}% | "
            f"{r['macs'] / 1e6:.1f}M | {100 * r['macs'] / base['macs']:.1f}% | "
            f"{r['keras'] / 1024:.0f} | {len(r['float']) / 1024:.0f} | "
            f"{len(r['int8']) / 1024:.0f} | {len(r['int8']) / r['keras']:.3f} | "
            f"{len(r['int8']) / len(r['float']):.3f} | {f1:.2f} ({f1p:.2f}) | "
            f"{f2:.2f} ({f2p:.2f}) | {i2:.2f} | {base_ms[1] / f1:.1f}x | {base_ms[2] / f2:.1f}x |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        prepend_section(
            args.output,
            report,
            "# Model latency and size on the CPU\n\n"
            "`python -m benchmarks.model_latency --output benchmarks/model_latency.md` "
            "(see its docstring), newest first.\n",
        )
        print(f"appended to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
