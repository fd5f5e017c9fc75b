"""Training throughput: the project's device pipeline against naive ``model.fit``.

Run on any backend (the GPU machine has JAX, no TensorFlow)::

    KERAS_BACKEND=jax python -m benchmarks.train_throughput --data REC [REC ...]
    python -m benchmarks.train_throughput            # CPU, generated frames

For each architecture at batch 256 it prints images/s of

- ``naive``: ``model.fit`` on a float32 numpy array (no augmentation), the baseline;
- ``device``: frames as uint8 on the accelerator, label-aware augmentation in the
  compiled step (training.device_pipeline), float32;
- ``device-recovery``: the same with recovery views on 80% of the samples
  (training.augment: a batched homography warp per sample);
- ``device-noaug``: the same without augmentation (what augmentation costs);
- ``device-bf16``: the device pipeline with bfloat16 compute;
- ``model-only``: forward+backward on a device-resident float32 batch, no gather
  (the network's own ceiling),

all in the same process, then adds the printed table to ``--output``
(benchmarks/train_throughput.md, newest first) and a JSON of the figures to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import keras
import numpy as np

import models
from benchmarks.mdreport import Echo
from core.allocator import retain_freed_memory
from core.recordings import decode_images, read_recordings
from training.augment import NO_AUGMENT, AugmentConfig, draw
from training.device_pipeline import AugmentedTraining


def frames_for(args) -> np.ndarray:
    if args.data:
        recs = read_recordings(args.data)
        paths = [
            p
            for rec in recs
            for cam in (rec.centre_paths, rec.left_paths, rec.right_paths)
            for p in cam
            if p is not None
        ]
        return decode_images(paths[: args.frames], progress=False)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (args.frames, 160, 320, 3), dtype=np.uint8)


def rate(fn, images: int, repeats: int) -> float:
    fn()  # compile and warm up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = max(best, images / (time.perf_counter() - t0))
    return best


def measure(arch: str, frames: np.ndarray, args) -> dict:
    n, bs = len(frames), args.batch_size
    steps = n // bs
    labels = np.random.default_rng(1).uniform(-0.5, 0.5, (n, 1)).astype(np.float32)
    idx = np.arange(n, dtype=np.int32)
    out = {}

    def compiled(model):
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.MeanSquaredError(),
            steps_per_execution=args.steps_per_execution,
        )
        return model

    # Naive: float32 host arrays through model.fit.
    naive_n = min(n, args.naive_frames)
    x32 = frames[:naive_n].astype(np.float32)
    m = compiled(models.build_model(arch))
    out["naive"] = rate(
        lambda: m.fit(x32, labels[:naive_n], batch_size=bs, epochs=1, verbose=0, shuffle=False),
        naive_n // bs * bs,
        args.repeats,
    )

    for name, aug, policy in (
        ("device", AugmentConfig(), "float32"),
        ("device-recovery", AugmentConfig(recovery_p=0.8), "float32"),
        ("device-noaug", NO_AUGMENT, "float32"),
        ("device-bf16", AugmentConfig(), "mixed_bfloat16"),
    ):
        keras.config.set_dtype_policy(policy)
        inner = models.build_model(arch)
        keras.config.set_dtype_policy("float32")
        w = compiled(AugmentedTraining(inner, aug, frames))
        # Recovery views from the frame itself (these frames carry no side cameras).
        x = {
            "source": idx,
            "centre": idx,
            "source_x": np.zeros(n, np.float32),
            "label": labels[:, 0],
            **draw(n, aug, np.random.default_rng(2), width=frames.shape[2]),
        }
        x = {k: v[: steps * bs] for k, v in x.items()}
        out[name] = rate(
            lambda w=w, x=x: w.fit(
                x,
                labels[: steps * bs],
                batch_size=bs,
                epochs=1,
                verbose=0,
                shuffle=False,
            ),
            steps * bs,
            args.repeats,
        )

    # The network alone on one device-resident batch, repeated.
    m = compiled(models.build_model(arch))
    xb = keras.ops.convert_to_tensor(frames[:bs].astype(np.float32))
    yb = keras.ops.convert_to_tensor(labels[:bs])
    k = max(1, steps)

    def model_only():
        for _ in range(k):
            logs = m.train_on_batch(xb, yb)
        return logs

    out["model-only"] = rate(model_only, k * bs, args.repeats)
    out["speedup_vs_naive"] = out["device"] / out["naive"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.train_throughput", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--data", nargs="*", default=[], help="recordings for real frames")
    p.add_argument("--arch", nargs="+", default=["pilotnet", "base", "eff"])
    p.add_argument("--frames", type=int, default=8192)
    p.add_argument("--naive-frames", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps-per-execution", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).with_name("train_throughput.md"),
        help="results file (default: %(default)s)",
    )
    args = p.parse_args()
    retain_freed_memory()  # as train.py: measure the step it trains with

    frames = frames_for(args)
    device = "cpu"
    if keras.backend.backend() == "jax":
        import jax  # optional (tests/test_imports.py): only under Keras' JAX backend

        device = str(jax.devices()[0].device_kind)
    results = {
        "backend": keras.backend.backend(),
        "device": device,
        "frames": len(frames),
        "batch_size": args.batch_size,
        "steps_per_execution": args.steps_per_execution,
        "host": platform.node(),
        "date": time.strftime("%Y-%m-%d"),
        "archs": {},
    }
    cols = ("naive", "device", "device-recovery", "device-noaug", "device-bf16", "model-only")
    echo = Echo()
    echo(f"{keras.backend.backend()} on {device}, batch {args.batch_size}, images/s")
    echo(f"{'arch':10s}" + "".join(f"{c:>14s}" for c in cols) + f"{'x naive':>9s}", flush=True)
    for arch in args.arch:
        r = measure(arch, frames, args)
        results["archs"][arch] = r
        echo(
            f"{arch:10s}"
            + "".join(f"{r[c]:14,.0f}" for c in cols)
            + f"{r['speedup_vs_naive']:9.1f}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    echo.write(
        args.output,
        "# Training throughput\n\n`python -m benchmarks.train_throughput` (see its docstring), "
        "newest first.\n",
    )


if __name__ == "__main__":
    main()
