"""Open-loop replay: the model on every recorded centre frame, against the human.

Writes into the output folder:

- ``predictions.csv``: recording, csv line, frame, time, human, model, error;
- ``summary.json`` and ``summary.md``: metrics pooled and per recording
  (:func:`evaluation.metrics.steering_metrics`), frames/s;
- ``steering_over_time.png``, ``error_histogram.png``, ``worst_frames.png`` (the
  frames with the largest |error|, both steering paths drawn on the road).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.recordings import load_image
from evaluation import plots
from evaluation.inference import ModelSpec, Timing, predict_paths
from evaluation.metrics import BUCKETS, METRIC_ROWS, steering_metrics
from evaluation.outputs import markdown_table, write_csv, write_json

logger = logging.getLogger(__name__)

WORST_FRAMES = 12


@dataclass
class LogReplay:
    """Predictions on one recording."""

    name: str
    csv_path: Path
    lines: np.ndarray
    frames: np.ndarray  # object array of Path
    timestamps: np.ndarray  # seconds, NaN if unknown
    human: np.ndarray
    pred: np.ndarray

    @property
    def error(self) -> np.ndarray:
        return self.pred - self.human

    def time_axis(self) -> tuple[np.ndarray, str]:
        t = self.timestamps
        if len(t) and np.isfinite(t).all():
            return t - t[0], "time (s)"
        return np.arange(len(self.human), dtype=np.float64), "frame"


@dataclass
class ReplayResult:
    model: str
    logs: list[LogReplay]
    timing: Timing = field(default_factory=Timing)

    def pooled(self) -> dict:
        pred = np.concatenate([r.pred for r in self.logs])
        human = np.concatenate([r.human for r in self.logs])
        return steering_metrics(pred, human, [len(r.pred) for r in self.logs])


def run_replay(
    predictor, recordings, *, label: str = "model", progress: bool = True
) -> ReplayResult:
    """Predict every centre frame of ``recordings`` (from :func:`read_recording`)."""
    result = ReplayResult(model=label, logs=[])
    for rec in recordings:
        pred = predict_paths(
            predictor,
            rec.centre_paths,
            progress=progress,
            desc=f"replay {rec.name}",
            timing=result.timing,
        )
        result.logs.append(
            LogReplay(
                name=rec.name,
                csv_path=rec.csv_path,
                lines=np.asarray(rec.lines),
                frames=rec.centre_paths,
                timestamps=np.asarray(rec.timestamps),
                human=np.asarray(rec.steering, dtype=np.float32),
                pred=pred,
            )
        )
    logger.info(
        "replayed %d frames in %.1f s: %.0f frames/s end to end (decode + model), "
        "%.0f frames/s in the model",
        result.timing.frames,
        result.timing.wall_s,
        result.timing.fps,
        result.timing.infer_fps,
    )
    return result


def summarise(result: ReplayResult, spec: ModelSpec | None = None, runtime: str = "") -> dict:
    return {
        "model": result.model,
        "model_path": spec.path if spec else None,
        "arch": spec.arch if spec else None,
        "runtime": runtime,
        "frames": result.timing.frames,
        "frames_per_s": result.timing.fps,
        "model_frames_per_s": result.timing.infer_fps,
        "pooled": result.pooled(),
        "logs": {
            r.name: {"csv": r.csv_path, **steering_metrics(r.pred, r.human)} for r in result.logs
        },
    }


def summary_markdown(summary: dict) -> str:
    names = list(summary["logs"])
    cols = ["all", *names] if len(names) > 1 else names
    data = [summary["pooled"], *summary["logs"].values()] if len(names) > 1 else [summary["pooled"]]
    out = [f"# Open-loop replay of {summary['model']}\n"]
    out.append(
        f"{summary['frames']:,} frames; {summary['frames_per_s']:.0f} frames/s end to end, "
        f"{summary['model_frames_per_s']:.0f} frames/s in the model "
        f"({summary['runtime'] or 'runtime n/a'}).\n"
    )
    rows = [[label, *[d[key] for d in data]] for label, key in METRIC_ROWS]
    out.append(markdown_table(["metric", *cols], rows))
    out.append(
        "\nError by steering bucket (|human| <= 0.02 straight, <= 0.15 gentle, else sharp):\n"
    )
    brow = []
    for b in BUCKETS:
        for key in ("n", "mae", "rmse", "bias"):
            brow.append([f"{b} {key}", *[d["buckets"][b][key] for d in data]])
    out.append(markdown_table(["bucket", *cols], brow))
    return "\n".join(out)


def write_outputs(
    result: ReplayResult, out: Path, summary: dict, *, worst: int = WORST_FRAMES
) -> None:
    """predictions.csv, summary.json/.md and the three figures."""
    logs = result.logs
    write_csv(
        out / "predictions.csv",
        {
            "recording": [r.name for r in logs for _ in range(len(r.pred))],
            "line": np.concatenate([r.lines for r in logs]).tolist(),
            "frame": [p.name for r in logs for p in r.frames],
            "time_s": np.concatenate([r.time_axis()[0] for r in logs]).tolist(),
            "human": np.concatenate([r.human for r in logs]).astype(float).tolist(),
            "model": np.concatenate([r.pred for r in logs]).astype(float).tolist(),
            "error": np.concatenate([r.error for r in logs]).astype(float).tolist(),
        },
    )
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")

    series = []
    for r in logs:
        t, xlabel = r.time_axis()
        series.append({"name": r.name, "t": t, "human": r.human, "pred": r.pred, "xlabel": xlabel})
    plots.steering_over_time(series, out / "steering_over_time.png", f"replay: {result.model}")
    errors = np.concatenate([r.error for r in logs])
    plots.error_histogram(errors, out / "error_histogram.png", f"model - human: {result.model}")

    flat = [(abs(float(e)), li, i) for li, r in enumerate(logs) for i, e in enumerate(r.error)]
    flat.sort(reverse=True)
    tiles = []
    for _, li, i in flat[:worst]:
        r = logs[li]
        tiles.append(
            plots.draw_steering(
                load_image(r.frames[i]),
                {
                    "human": (float(r.human[i]), plots.HUMAN_COLOUR),
                    "model": (float(r.pred[i]), plots.MODEL_COLOUR),
                },
                caption=f"{r.name} line {int(r.lines[i])}",
            )
        )
    if tiles:
        plots.image_grid(tiles, out / "worst_frames.png")
