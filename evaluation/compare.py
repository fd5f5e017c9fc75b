"""``evaluate.py compare``: models side by side (the seeds' slimming table, measured).

For every model: parameters (trainable/total), multiply-accumulates per frame
(:mod:`models.macs`, with a per-layer profile), file sizes (``.h5`` without and
with Adam optimizer state, ``.keras``; re-saved so every model is measured the same
way), CPU latency per frame at batch 1 on the fastest path the drive server has
(:func:`serving.load`: LiteRT, else a compiled Keras call), the
run's validation MSE, open-loop replay MAE and closed-loop autonomy on the given
logs. Writes ``report.md``, ``compare.json``, ``profiles.md`` and bar charts plus
an accuracy-vs-MACs scatter.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evaluation import plots
from evaluation.inference import ModelSpec, load_predictor
from evaluation.outputs import markdown_table, write_json

if TYPE_CHECKING:
    from models.macs import LayerRow

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
    import keras

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
    hist = spec.run_dir / "history.csv" if spec.run_dir else None
    if hist is not None and hist.is_file():
        import csv

        with hist.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        vals = [float(r["val_loss"]) for r in rows if r.get("val_loss") not in (None, "")]
        return min(vals) if vals else None
    return None


def compare_models(
    specs: list[ModelSpec],
    recordings: list,
    *,
    references: list | None = None,
    criterion: str = "road",
    recovery_points: int = 0,
    latency_runs: int = LATENCY_FRAMES,
    runtime: str = "auto",
    threads: int | None = 2,
    progress: bool = True,
) -> list[dict]:
    # heavy: imported on use (the models package loads keras)
    import models
    from core.recordings import decode_images
    from evaluation.closed_loop.loop import LoopConfig
    from evaluation.closed_loop.policies import ModelPolicy
    from evaluation.closed_loop.run import closed_loop_figures
    from evaluation.replay import run_replay
    from models.macs import profile
    from serving import probe_frames

    if recordings:
        r0 = recordings[0]
        pick = np.linspace(0, len(r0) - 1, min(32, len(r0))).astype(int)
        lat_frames = decode_images(r0.centre_paths[pick], progress=False)
    else:
        lat_frames = probe_frames(32)
    config = LoopConfig(criterion=criterion)
    refs = references or []
    used = set()
    out = []
    for spec in specs:
        label = spec.label if spec.label not in used else f"{spec.label}#{len(used)}"
        used.add(label)
        logger.info("comparing %s (%s)", label, spec.path)
        model = models.load_model(spec.path)
        counts = models.parameter_counts(model)
        rows = profile(model)
        row: dict = {
            "label": label,
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
            "stored_files": {
                p.name: p.stat().st_size
                for p in (
                    [spec.run_dir / "model.h5", spec.run_dir / "model.keras"]
                    if spec.run_dir
                    else [spec.path]
                )
                if p.is_file()
            },
            "val_mse": _val_mse(spec),
        }
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
                    refs, ModelPolicy(predictor, label), config, recovery_points, progress
                )
        out.append(row)
        del model
    return out


def baseline_figures(
    references: list, *, criterion: str = "road", recovery_points: int = 0, progress: bool = True
) -> dict[str, dict]:
    """The blind baselines' closed-loop figures on the same references (steering
    straight and the replayed human + 0.02), for the report's baseline rows."""
    from evaluation.closed_loop.loop import LoopConfig
    from evaluation.closed_loop.policies import baseline_policies
    from evaluation.closed_loop.run import closed_loop_figures

    config = LoopConfig(criterion=criterion)
    return {
        p.name: closed_loop_figures(references, p, config, recovery_points, progress)
        for p in baseline_policies()
    }


def _get(row: dict, *keys):
    v = row
    for k in keys:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def profile_markdown(rows: list[LayerRow], title: str = "") -> str:
    """A thop-like table: layer, type, output shape, params, MACs, share of the total."""
    total = sum(r.macs for r in rows) or 1
    body = [
        [
            r.name,
            r.type,
            "x".join(str(d) for d in r.output_shape[1:]),
            r.params,
            r.macs,
            f"{100.0 * r.macs / total:.1f}%" + ("" if r.counted else " (no rule)"),
        ]
        for r in rows
    ]
    body.append(["total", "", "", sum(r.params for r in rows), sum(r.macs for r in rows), "100%"])
    head = f"### {title}\n\n" if title else ""
    return head + markdown_table(["layer", "type", "output", "params", "MACs", "share"], body)


def report_markdown(rows: list[dict], logs: list[str], baselines: dict | None = None) -> str:
    header = [
        "model",
        "arch",
        "params (trainable / total)",
        "MACs / frame",
        ".h5 no opt (KB)",
        ".h5 + Adam (KB)",
        ".keras (KB)",
        "latency p50 / p99 (ms)",
        "runtime",
        "val MSE",
        "replay MAE",
        "autonomy (%)",
        "bounded (%)",
        "interventions",
    ]
    body = []
    for r in rows:
        lat = r["latency"]
        body.append(
            [
                r["label"],
                r["arch"],
                f"{r['params_trainable']:,} / {r['params_total']:,}",
                r["macs"],
                r["size_bytes"]["h5_no_optimizer"] // 1024,
                r["size_bytes"]["h5_with_optimizer"] // 1024,
                r["size_bytes"]["keras"] // 1024,
                f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}",
                r["runtime"],
                r["val_mse"],
                _get(r, "replay", "mae"),
                _get(r, "closed_loop", "autonomy_percent"),
                _get(r, "closed_loop", "autonomy_bounded_percent"),
                _get(r, "closed_loop", "interventions"),
            ]
        )
    text = ["# Model comparison\n"]
    text.append(
        "Logs: " + (", ".join(logs) if logs else "none (replay and closed loop skipped)") + ". "
        "Latency: batch 1 on this machine's CPU through the drive server's fastest runtime. "
        "MACs: multiply-accumulates per frame, conventions in models/macs.py. Sizes: the "
        "model re-saved (.keras and .h5 without optimizer; .h5 with Adam moments).\n"
    )
    text.append(markdown_table(header, body))
    if baselines:
        text.append(
            "\nClosed loop beside the blind baselines (the same logs, criterion and car; a "
            "model that does not beat steering straight clearly does not drive):\n"
        )
        keys = ("interventions", "autonomy_percent", "autonomy_bounded_percent",
                "interventions_per_km", "recovered_share")  # fmt: skip
        text.append(
            markdown_table(
                ["policy", *keys],
                [[r["label"], *[_get(r, "closed_loop", k) for k in keys]] for r in rows]
                + [[name, *[b.get(k) for k in keys]] for name, b in baselines.items()],
            )
        )
    text.append("\nPer-layer profiles: profiles.md. Figures: bar_*.png, scatter_*.png.\n")
    return "\n".join(text)


def write_outputs(
    rows: list[dict],
    logs: list[str],
    out: Path,
    baselines: dict | None = None,
    robustness: tuple[list[dict], str] | None = None,
) -> None:
    """Everything ``compare`` writes; ``robustness`` is
    :func:`evaluation.robustness.benchmark.for_compare`'s (rows, baseline label)."""
    data = {"logs": logs, "models": rows, "baselines": baselines}
    text = report_markdown(rows, logs, baselines)
    if robustness:
        text += _robustness_outputs(data, *robustness, out)
    write_json(out / "compare.json", data)
    (out / "report.md").write_text(text, encoding="utf-8")
    from models.macs import LayerRow  # heavy: imported on use (the models package loads keras)

    prof = []
    for r in rows:
        lr = [
            LayerRow(
                p["layer"], p["type"], (None, *p["output"]), p["params"], p["macs"], p["counted"]
            )
            for p in r["profile"]
        ]
        prof.append(profile_markdown(lr, f"{r['label']} ({r['arch']})"))
    (out / "profiles.md").write_text("# Per-layer profiles\n\n" + "\n".join(prof), encoding="utf-8")

    labels = [r["label"] for r in rows]
    plots.bar_chart(
        labels,
        [r["params_total"] for r in rows],
        out / "bar_params.png",
        ylabel="parameters",
        title="parameters (total)",
    )
    plots.bar_chart(
        labels,
        [r["macs"] / 1e6 for r in rows],
        out / "bar_macs.png",
        ylabel="million MACs / frame",
        title="multiply-accumulates per frame",
    )
    plots.bar_chart(
        labels,
        [r["size_bytes"]["h5_no_optimizer"] / 1024 for r in rows],
        out / "bar_size.png",
        ylabel="KB",
        title=".h5 file size (no optimizer)",
    )
    plots.bar_chart(
        labels,
        [r["latency"]["p50_ms"] for r in rows],
        out / "bar_latency.png",
        ylabel="ms",
        title="CPU latency per frame, batch 1 (p50)",
    )
    err = [_get(r, "replay", "mae") for r in rows]
    err_label = "replay MAE"
    if all(e is None for e in err):
        err = [r["val_mse"] for r in rows]
        err_label = "validation MSE"
    plots.bar_chart(
        labels,
        [math.nan if e is None else e for e in err],
        out / "bar_error.png",
        ylabel=err_label,
        title=err_label,
    )
    plots.scatter(
        labels,
        [r["macs"] for r in rows],
        [math.nan if e is None else e for e in err],
        out / "scatter_error_vs_macs.png",
        xlabel="MACs per frame",
        ylabel=err_label,
        title=f"{err_label} vs MACs",
    )
    auto = [_get(r, "closed_loop", "autonomy_bounded_percent") for r in rows]
    if any(a is not None for a in auto):
        plots.bar_chart(
            labels,
            [math.nan if a is None else a for a in auto],
            out / "bar_autonomy.png",
            ylabel="%",
            title="closed-loop autonomy (bounded)",
        )
        plots.scatter(
            labels,
            [r["macs"] for r in rows],
            [math.nan if a is None else a for a in auto],
            out / "scatter_autonomy_vs_macs.png",
            xlabel="MACs per frame",
            ylabel="autonomy, bounded (%)",
            title="autonomy vs MACs",
        )


def _robustness_outputs(data: dict, rows: list[dict], baseline: str, out: Path) -> str:
    """The robustness comparison into ``data`` and two bar charts; its markdown."""
    from evaluation.robustness.report import comparison_markdown

    data["robustness"] = {"baseline": baseline, "models": rows}
    labels = [r["label"] for r in rows]
    plots.bar_chart(
        labels,
        [r["mce"] for r in rows],
        out / "bar_mce.png",
        ylabel=f"mCE (1 = {baseline})",
        title="mean corruption error, open loop",
    )
    auto = [_get(r, "closed_loop", "mean_autonomy_bounded_percent") for r in rows]
    if any(a is not None for a in auto):
        plots.bar_chart(
            labels,
            [math.nan if a is None else a for a in auto],
            out / "bar_autonomy_corrupted.png",
            ylabel="%",
            title="closed-loop autonomy under corruption (bounded, mean)",
        )
    return comparison_markdown(rows, baseline)


__all__ = ["compare_models", "file_sizes", "latency", "report_markdown", "write_outputs"]
