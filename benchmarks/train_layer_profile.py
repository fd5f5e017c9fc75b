"""Where a training step's time goes, layer by layer (any Keras backend).

Inference profiles (``python -m evaluation.explain --profile``) count MACs, and the
drive server times whole LiteRT calls; neither shows what *training* costs, where
BatchNorm runs on batch statistics in both directions instead of being folded into
the previous convolution. This script rebuilds every weighted layer of an
architecture as a one-layer model on a random input of the shape it receives in the
full network, and times ``train_on_batch`` (forward, backward, Adam update) on it::

    python -m benchmarks.train_layer_profile --arch eff-slim base --batch-size 16
    KERAS_BACKEND=jax python -m benchmarks.train_layer_profile --arch eff-slim   # GPU

The per-layer times do not add up to a full step exactly (a fused graph overlaps and
reuses memory; weightless layers such as pooling are not listed), so the script
also prints the full model's step time beside their sum. It keeps freed memory as
``train.py`` does (:mod:`core.allocator`; ``EFFNET_STEERING_MALLOC=system`` for glibc's
defaults, which the results before 2026-12-04 had). What it prints is added to
``--output`` (benchmarks/train_layer_profile.md), newest first.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import keras
import numpy as np

import models
from benchmarks.mdreport import Echo
from core.allocator import retain_freed_memory

RESULTS = Path(__file__).with_name("train_layer_profile.md")
TITLE = (
    "# Training step time by layer\n\n"
    "`python -m benchmarks.train_layer_profile` (see its docstring), newest first.\n"
)


def step_ms(model: keras.Model, x: np.ndarray, repeats: int) -> float:
    y = np.zeros((x.shape[0],) + tuple(model.output.shape[1:]), np.float32)
    model.train_on_batch(x, y)  # build, compile, warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def compiled(model: keras.Model, jit_compile: bool | str) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=jit_compile)
    return model


def one_layer_model(layer: keras.layers.Layer, shape: tuple, jit_compile: bool | str):
    config = layer.get_config()
    config["name"] = f"{layer.name}_alone"
    clone = type(layer).from_config(config)
    inp = keras.Input(shape)
    return compiled(keras.Model(inp, clone(inp)), jit_compile)


def profile(
    arch: str, batch: int, repeats: int, top: int, jit_compile: bool | str, echo=print
) -> None:
    net = models.build_model(arch)
    rng = np.random.default_rng(0)
    rows = []
    for layer in net.layers:
        if not layer.trainable_weights:
            continue
        shape = tuple(layer.input.shape[1:])
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        ms = step_ms(one_layer_model(layer, shape, jit_compile), x, repeats)
        rows.append((layer.name, type(layer).__name__, shape, ms))
    frames = rng.integers(0, 256, (batch, 160, 320, 3)).astype(np.float32)
    full = step_ms(compiled(net, jit_compile), frames, repeats)
    total = sum(r[3] for r in rows)
    by_type: dict[str, float] = {}
    for r in rows:
        by_type[r[1]] = by_type.get(r[1], 0.0) + r[3]
    echo(
        f"\n{arch}: batch {batch}, full train step {full:.1f} ms "
        f"({batch / full * 1e3:.0f} images/s); "
        f"sum of {len(rows)} weighted layers alone {total:.1f} ms"
    )
    echo(
        "  by layer type: "
        + ", ".join(
            f"{k} {v:.1f} ms ({100 * v / total:.0f}%)"
            for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])
        )
    )
    echo(f"  {'layer':24s} {'type':20s} {'input':16s} {'ms':>8s} {'share':>6s}")
    for name, kind, shape, ms in sorted(rows, key=lambda r: -r[3])[:top]:
        size = "x".join(map(str, shape))
        echo(f"  {name:24s} {kind:20s} {size:16s} {ms:8.1f} {100 * ms / total:5.1f}%")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.train_layer_profile", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--arch", nargs="+", default=["eff-slim", "base"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3, help="timed steps per layer (best is kept)")
    p.add_argument("--top", type=int, default=12, help="layers listed per architecture")
    p.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile with XLA (default: Keras' auto: XLA on JAX and on a TensorFlow GPU, "
        "not with TensorFlow on a CPU-only machine)",
    )
    p.add_argument(
        "--output", type=Path, default=RESULTS, help="results file (default: %(default)s)"
    )
    args = p.parse_args(argv)
    retain_freed_memory()  # as train.py: measure the step it trains with
    if args.batch_size < 1 or args.repeats < 1:
        p.error(
            f"--batch-size and --repeats must be >= 1, got {args.batch_size} and {args.repeats}"
        )
    echo = Echo()
    echo(
        f"{keras.backend.backend()} backend, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    for arch in args.arch:
        profile(arch, args.batch_size, args.repeats, args.top, args.jit_compile or "auto", echo)
    echo.write(args.output, TITLE)


if __name__ == "__main__":
    main()
