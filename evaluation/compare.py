"""``evaluate.py compare``: models side by side (the seeds' slimming table, measured).

For every model: parameters (trainable/total), multiply-accumulates per frame
(:mod:`models.macs`, with a per-layer profile, :func:`models.macs.profile_markdown`), file sizes
(``.h5`` without and with Adam optimizer state, ``.keras``; re-saved so every model
is measured the same way), CPU latency per frame at batch 1 on the fastest path the
drive server has (:func:`serving.load`: LiteRT, else a compiled Keras call), the
run's validation MSE, open-loop replay MAE and closed-loop autonomy on the given
logs. The report (``report.md``, ``compare.json``, ``profiles.md``, bar charts and
scatters against MACs): :mod:`evaluation.compare_report`.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from core.recordings import decode_images
from evaluation.closed_loop.loop import LoopConfig
from evaluation.closed_loop.policies import REPEAT_NOISE, ModelPolicy, baseline_policies
from evaluation.closed_loop.run import closed_loop_figures
from evaluation.inference import ModelSpec, load_predictor
from evaluation.replay import run_replay
from serving import probe_frames
from training.history import best_epoch_row, read_history

logger = logging.getLogger(__name__)

LATENCY_FRAMES = 200
LATENCY_WARMUP = 20


def file_sizes(model) -> dict[str, int]:
    """Bytes of the model saved as ``.keras``, ``.h5`` without and with Adam state.

    ``.keras`` is saved first: saving ``.h5`` strips the optimizer from the live
    model (keras-pitfalls item 5). The model is compiled with Adam and its slots
    built, as after training, for the ``with optimizer`` size. Keras logs "saving
    your model as an HDF5 file ... legacy" through absl on each ``.h5`` save; here the
    ``.h5`` sizes are what was asked for, so that notice is held back.
    """
    import keras  # heavy: imported on use

    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            model.save(tmp / "m.keras")
            model.save(tmp / "m_noopt.h5", include_optimizer=False)
            model.compile(optimizer=keras.optimizers.Adam(), loss="mean_squared_error")
            model.optimizer.build(model.trainable_variables)
            model.save(tmp / "m_opt.h5")
            return {
                "keras": (tmp / "m.keras").stat().st_size,
                "h5_no_optimizer": (tmp / "m_noopt.h5").stat().st_size,
                "h5_with_optimizer": (tmp / "m_opt.h5").stat().st_size,
            }
    finally:
        absl_logger.setLevel(level)


def latency(predictor, frames: np.ndarray, n: int = LATENCY_FRAMES) -> dict[str, float]:
    """p50/p99 milliseconds of ``predictor.predict`` on single frames."""
    for f in frames[:LATENCY_WARMUP]:
        predictor.predict(f)
    times = np.empty(n)
    for i in range(n):
        f = frames[i % len(frames)]
        t0 = time.perf_counter()
        predictor.predict(f)
        times[i] = time.perf_counter() - t0
    return {
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p99_ms": float(np.percentile(times, 99) * 1e3),
        "runs": n,
    }


def _val_mse(spec: ModelSpec) -> float | None:
    value = spec.config.get("best_val_mse")
    if value is not None:
        return float(value)
    # A run stopped before its config got best_val_mse: the epoch whose checkpoint
    # model.keras holds, chosen as the trainer chooses it (closed loop, else val MSE).
    hist = spec.run_dir / "history.csv" if spec.run_dir else None
    if hist is not None and hist.is_file():
        rows = [
            r for r in read_history(hist, numbers=True) if math.isfinite(r.get("val_mse", math.nan))
        ]
        return float(best_epoch_row(rows)["val_mse"]) if rows else None
    return None


def compare_models(
    specs: list[ModelSpec],
    recordings: list,
    *,
    references: list | None = None,
    criterion: str = "road",
    recovery_points: int = 0,
    repeats: int = 1,
    repeat_noise: float = REPEAT_NOISE,
    latency_runs: int = LATENCY_FRAMES,
    runtime: str = "auto",
    threads: int | None = 2,
    progress: bool = True,
) -> list[dict]:
    """One row per model (module docstring): its build from :func:`model_figures`,
    then latency, replay and closed loop as measured through ``runtime`` (each log
    driven ``repeats`` times, the repeats with ``repeat_noise``: the spread)."""
    import models  # heavy: imported on use (the models package loads keras)

    lat_frames = _latency_frames(recordings)
    config = LoopConfig(criterion=criterion)
    refs = references or []
    used = set()
    out = []
    for spec in specs:
        label = spec.label if spec.label not in used else f"{spec.label}#{len(used)}"
        used.add(label)
        logger.info("comparing %s (%s)", label, spec.path)
        model = models.load_model(spec.path)
        row = {"label": label, **model_figures(spec, model)}
        predictor = load_predictor(spec, runtime, threads)
        row["runtime"] = predictor.name
        row["latency"] = latency(predictor, lat_frames, latency_runs)
        if recordings:
            rep = run_replay(predictor, recordings, label=label, progress=progress)
            pooled = rep.pooled()
            row["replay"] = {
                "mae": pooled["mae"],
                "mse": pooled["mse"],
                "frames_per_s": rep.timing.fps,
            }
            if refs:
                row["closed_loop"] = closed_loop_figures(
                    refs,
                    ModelPolicy(predictor, label),
                    config,
                    recovery_points,
                    progress,
                    repeats=repeats,
                    repeat_noise=repeat_noise,
                )
        out.append(row)
        del model
    return out


def _latency_frames(recordings: list) -> np.ndarray:
    """Up to 32 frames spread over the first recording (the probe frames without one)."""
    if not recordings:
        return probe_frames(32)
    r0 = recordings[0]
    pick = np.linspace(0, len(r0) - 1, min(32, len(r0))).astype(int)
    return decode_images(r0.centre_paths[pick], progress=False)


def model_figures(spec: ModelSpec, model) -> dict:
    """What the model's build says: parameters, MACs and the per-layer profile, file
    sizes re-saved and as stored, the run's validation MSE."""
    # heavy: imported on use (the models package loads keras)
    from models import parameter_counts
    from models.macs import profile

    counts = parameter_counts(model)
    rows = profile(model)
    stored = [spec.path]
    if spec.run_dir:
        stored = [spec.run_dir / "model.h5", spec.run_dir / "model.keras"]
    return {
        "path": spec.path,
        "arch": spec.arch or model.name,
        "params_trainable": counts["trainable"],
        "params_total": counts["total"],
        "macs": sum(r.macs for r in rows),
        "profile": [
            {
                "layer": r.name,
                "type": r.type,
                "output": r.output_shape[1:],
                "params": r.params,
                "macs": r.macs,
                "counted": r.counted,
            }
            for r in rows
        ],
        "size_bytes": file_sizes(model),
        "stored_files": {p.name: p.stat().st_size for p in stored if p.is_file()},
        "val_mse": _val_mse(spec),
    }


def baseline_figures(
    references: list,
    *,
    criterion: str = "road",
    recovery_points: int = 0,
    repeats: int = 1,
    repeat_noise: float = REPEAT_NOISE,
    progress: bool = True,
    policies: list | None = None,
) -> dict[str, dict]:
    """The blind baselines' closed-loop figures on the same references (steering
    straight and the replayed human + 0.02), driven as often as the models, for the
    report's baseline rows; ``policies`` drives others instead (the expert)."""
    config = LoopConfig(criterion=criterion)
    return {
        p.name: closed_loop_figures(
            references,
            p,
            config,
            recovery_points,
            progress,
            repeats=repeats,
            repeat_noise=repeat_noise,
        )
        for p in (baseline_policies() if policies is None else policies)
    }


__all__ = ["baseline_figures", "compare_models", "file_sizes", "latency"]
