"""Throughput of ``evaluate.py replay``: the model alone and end to end (JPEG decode + model).

    python -m benchmarks.replay_speed [--archs eff pilotnet base] [--frames 512] [--output FILE]

For each architecture a fresh model (throughput does not depend on the weights) is
saved to a temporary ``.keras`` file and loaded as ``evaluate.py`` loads it. Paths
timed on the same in-memory real frames:

- ``litert b1 t1``: LiteRT, one frame per call, one thread (what replay uses);
- ``litert b1 t2``: the same with two threads;
- ``litert b32 t2``: LiteRT with batches of 32 frames, two threads;
- ``tf.function b64``: the Keras model in a compiled TensorFlow call, batches of 64.

End to end: :func:`evaluation.replay.run_replay` over whole shared recordings,
JPEG decoding of the next chunk overlapping inference. Frames come from
``../shared/data/udacity`` (never copied); without it, generated demo frames.
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
from core.cli import HelpFormatter, setup_logging
from core.recordings import decode_images, read_recording
from evaluation.inference import load_predictor, resolve_model
from evaluation.replay import run_replay
from serving import probe_frames, to_tflite

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data" / "udacity"
SECONDS = 4.0  # each path is timed for at least this long
E2E_THREADS = 2  # evaluate.py's default --threads
LARGEST_BATCH = 64  # tf.function b64


CPU_MS: dict[str, float] = {}  # CPU time per frame of the last _rate call, by label


def _rate(fn, frames: np.ndarray, batch: int, label: str = "") -> float:
    """Frames per second (wall clock); CPU milliseconds per frame go to CPU_MS[label].

    On a shared machine the wall-clock rate falls with other people's load; the
    process CPU time per frame does much less, and bounds what idle cores could do.
    """
    fn(frames[:batch])  # warm-up: allocation, XNNPACK packing, tracing
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < SECONDS:
        for lo in range(0, len(frames) - batch + 1, batch):
            fn(frames[lo : lo + batch])
            n += batch
    CPU_MS[label] = (time.process_time() - cpu) * 1e3 / n
    return n / (time.perf_counter() - start)


def litert_batched(blob: bytes, batch: int, threads: int):
    try:  # imported on use, as in serving/runtime.py
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    it = Interpreter(model_content=blob, num_threads=threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.resize_tensor_input(inp["index"], [batch, 160, 320, 3])
    it.allocate_tensors()

    def run(x):
        np.copyto(it.tensor(inp["index"])(), x, casting="unsafe")
        it.invoke()
        return it.get_tensor(out["index"])

    return run


def model_only(arch: str, frames: np.ndarray) -> dict[str, float]:
    import tensorflow as tf  # heavy: imported on use, as models (Keras) below

    import models

    model = models.build_model(arch)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{arch}.keras"
        model.save(path)
        spec = resolve_model(path)
        for threads in (1, 2):
            pred = load_predictor(spec, "auto", threads)
            rates[f"litert b1 t{threads}"] = _rate(
                lambda x, p=pred: p.predict_batch(x), frames, 1, f"t{threads}"
            )
    blob = to_tflite(model)
    rates["litert b32 t2"] = _rate(litert_batched(blob, 32, 2), frames, 32)
    fn = tf.function(
        lambda x: model(tf.cast(x, tf.float32), training=False),
        input_signature=[tf.TensorSpec((None, 160, 320, 3), tf.uint8)],
    )
    rates["tf.function b64"] = _rate(lambda x: fn(x).numpy(), frames, LARGEST_BATCH)
    return rates


def end_to_end(arch: str, logs: list[Path]) -> list[dict]:
    import models  # heavy: imported on use (Keras)

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{arch}.keras"
        models.build_model(arch).save(path)
        pred = load_predictor(resolve_model(path), "auto", E2E_THREADS)
        for log in logs:
            rec = read_recording(log)
            res = run_replay(pred, [rec], label=arch, progress=False)
            out.append(
                {
                    "log": rec.name,
                    "frames": res.timing.frames,
                    "fps": res.timing.fps,
                    "model_fps": res.timing.infer_fps,
                }
            )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.replay_speed",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument("--archs", nargs="+", default=["eff", "pilotnet", "base"])
    p.add_argument("--frames", type=int, default=256, help="in-memory frames for model-only")
    p.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "replay_speed.md")
    args = p.parse_args(argv)
    if args.frames < LARGEST_BATCH:
        p.error(f"--frames must be >= {LARGEST_BATCH} (the largest batch timed), got {args.frames}")
    setup_logging(quiet=True)
    logs = [DATA / n for n in ("akbari_lake", "jclc_mountain") if (DATA / n).is_dir()]
    if logs:
        rec = read_recording(logs[0])
        pick = np.linspace(0, len(rec) - 1, args.frames).astype(int)
        frames = decode_images(rec.centre_paths[pick], progress=False)
        source = f"{rec.name} ({args.frames} centre frames)"
    else:
        frames, source = probe_frames(args.frames), "generated probe frames"
    load = os.getloadavg()[0]
    lines = [
        "# Replay throughput",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {load:.1f} at start; frames: {source}. "
        "Frames per second, higher is better.",
        "",
        "| arch | litert b1 t1 | CPU ms/frame (b1 t1) | bound, 2 idle cores | litert b1 t2 | "
        "litert b32 t2 | tf.function b64 | end to end (decode + model, b1 t2) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for arch in args.archs:
        r = model_only(arch, frames)
        e2e = end_to_end(arch, logs) if logs else []
        e2e_text = "; ".join(f"{e['log']}: {e['fps']:.0f} ({e['frames']} frames)" for e in e2e)
        lines.append(
            f"| {arch} | {r['litert b1 t1']:.0f} | {CPU_MS['t1']:.2f} | "
            f"{2000.0 / CPU_MS['t1']:.0f} | {r['litert b1 t2']:.0f} | "
            f"{r['litert b32 t2']:.0f} | {r['tf.function b64']:.0f} | {e2e_text or 'n/a'} |"
        )
        print(lines[-1], flush=True)
    lines.append("")
    lines.append(
        f"Load average at the end: {os.getloadavg()[0]:.1f}. The machine is shared, so the "
        "wall-clock rates fall with other people's load; 'CPU ms/frame' is the process CPU "
        "time of one single-threaded LiteRT call and 'bound, 2 idle cores' = 2000 / that: "
        "the most the model alone could reach with both cores to itself, before JPEG "
        "decoding (about 0.23 ms of CPU per frame with simplejpeg, core/frames.py) is paid."
    )
    lines[0] = f"## {datetime.datetime.now():%Y-%m-%d %H:%M}"
    prepend_section(
        args.output,
        "\n".join(lines),
        "# Replay throughput\n\n`python -m benchmarks.replay_speed`, newest first.\n",
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
