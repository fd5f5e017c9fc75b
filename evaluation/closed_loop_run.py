"""``evaluate.py closed-loop``: the closed-loop method over whole recordings, and its outputs.

Writes ``summary.json``/``summary.md`` (scores overall and per recording, recovery
trials, configuration), ``steps.csv`` (every step of every driven segment),
``offset_<recording>.png`` (lateral offset and heading error over time,
interventions marked), ``filmstrip.png`` and ``views.mp4`` (synthesised views with
the applied and the human steering drawn as ground paths).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation import plots
from evaluation.closed_loop import (
    LoopConfig,
    SynthesizedViews,
    Trace,
    recovery_summary,
    recovery_trials,
    run_cars,
    score,
)
from evaluation.kinematics import ReferencePath, split_segments
from evaluation.outputs import markdown_table, write_csv, write_json
from evaluation.policies import Policy

logger = logging.getLogger(__name__)

FILMSTRIP_EVEN = 8
FILMSTRIP_INTERVENTIONS = 8


@dataclass
class Driven:
    """One driven segment of a recording."""

    log: str
    segment: int
    path: ReferencePath
    lines: np.ndarray  # csv line of each path frame
    trace: Trace


@dataclass
class Visuals:
    """Collects annotated views while driving: every step for the video, a few for
    the filmstrip (evenly spaced, and the step of each intervention)."""

    camera: Any
    video: plots.VideoWriter | None = None
    every: int = 100
    strip_even: list = field(default_factory=list)
    strip_int: list = field(default_factory=list)
    label: str = ""
    seen: int = 0

    def __call__(self, step: int, view: np.ndarray, row: dict) -> None:
        caption = (
            f"{self.label} t={row['time']:.1f}s offset={row['offset']:+.2f}m "
            f"yaw={math.degrees(row['heading_error']):+.1f}deg"
            + (" INTERVENTION" if row["intervention"] else "")
        )
        make = self.video is not None or self.seen % self.every == 0 or row["intervention"]
        if make:
            im = plots.draw_steering(
                view,
                {
                    "model": (float(row["applied"]), plots.MODEL_COLOUR),
                    "human": (float(row["human"]), plots.HUMAN_COLOUR),
                },
                self.camera,
                caption=caption,
            )
            if self.video is not None:
                self.video.append(im)
            if row["intervention"] and len(self.strip_int) < FILMSTRIP_INTERVENTIONS:
                self.strip_int.append(im)
            elif self.seen % self.every == 0 and len(self.strip_even) < FILMSTRIP_EVEN:
                self.strip_even.append(im)
        self.seen += 1


def evaluate_recordings(
    recordings,
    policy: Policy,
    config: LoopConfig,
    *,
    recovery_points: int = 8,
    visuals: Visuals | None = None,
    progress: bool = True,
) -> tuple[list[Driven], dict[str, list[dict]]]:
    """Drive every usable segment of every recording; run the recovery trials."""
    from training.recordings import decode_images

    driven: list[Driven] = []
    trials: dict[str, list[dict]] = {}
    for rec in recordings:
        segments = split_segments(rec.timestamps, rec.speed, rec.steering)
        if not segments:
            logger.warning(
                "%s: no stretch of at least 3 s with the car moving and regular frames; skipped",
                rec.name,
            )
            continue
        rows = np.unique(np.concatenate([s.rows for s in segments]))
        frames = np.zeros((len(rec), 160, 320, 3), dtype=np.uint8)
        frames[rows] = decode_images(
            rec.centre_paths[rows], progress=progress, desc=f"decoding {rec.name}"
        )
        total_s = sum(s.duration_s for s in segments)
        trials[rec.name] = []
        for i, seg in enumerate(segments):
            views = SynthesizedViews(frames[seg.rows], config.camera)
            if visuals is not None:
                visuals.label = rec.name
            tr = run_cars(
                seg,
                views,
                policy,
                config,
                start=np.array([0]),
                on_step=visuals,
                progress=progress,
                desc=f"{rec.name} segment {i + 1}/{len(segments)}",
            )
            driven.append(Driven(rec.name, i, seg, np.asarray(rec.lines)[seg.rows], tr))
            points = int(round(recovery_points * seg.duration_s / total_s)) if total_s else 0
            if points:
                trials[rec.name] += recovery_trials(
                    seg, views, policy, config, points=points, progress=progress
                )
        s = score([d.trace for d in driven if d.log == rec.name])
        logger.info(
            "%s: %d interventions in %.0f s (%.2f km): autonomy %.1f%%, mean |offset| %.2f m",
            rec.name,
            s["interventions"],
            s["elapsed_s"],
            s["distance_km"],
            s["autonomy_percent"],
            s["lateral_offset_m"]["mean"],
        )
    return driven, trials


def summarise(driven: list[Driven], trials: dict[str, list[dict]], meta: dict) -> dict:
    logs = list(dict.fromkeys(d.log for d in driven))
    all_trials = [t for v in trials.values() for t in v]
    return {
        **meta,
        "overall": {**score([d.trace for d in driven]), "recovery": recovery_summary(all_trials)},
        "logs": {
            name: {
                **score([d.trace for d in driven if d.log == name]),
                "segments": sum(d.log == name for d in driven),
                "recovery": recovery_summary(trials.get(name, [])),
            }
            for name in logs
        },
    }


SCORE_ROWS = (
    ("elapsed (s)", lambda s: s["elapsed_s"]),
    ("distance (km)", lambda s: s["distance_km"]),
    ("interventions", lambda s: s["interventions"]),
    ("autonomy, NVIDIA (%)", lambda s: s["autonomy_percent"]),
    ("autonomy, bounded (%)", lambda s: s["autonomy_bounded_percent"]),
    ("interventions per km", lambda s: s["interventions_per_km"]),
    ("mean abs lateral offset (m)", lambda s: s["lateral_offset_m"]["mean"]),
    ("p95 abs lateral offset (m)", lambda s: s["lateral_offset_m"]["p95"]),
    ("max abs lateral offset (m)", lambda s: s["lateral_offset_m"]["max"]),
    ("mean abs heading error (deg)", lambda s: s["heading_error_deg"]["mean"]),
    ("p95 abs heading error (deg)", lambda s: s["heading_error_deg"]["p95"]),
    ("max abs heading error (deg)", lambda s: s["heading_error_deg"]["max"]),
    ("time within 0.3 m", lambda s: s["time_within_0.3m"]),
    ("time within 0.5 m", lambda s: s["time_within_0.5m"]),
    ("synthesised pixels without source, mean", lambda s: s["invalid_pixel_share"]["mean"]),
    ("synthesised pixels without source, p95", lambda s: s["invalid_pixel_share"]["p95"]),
    ("recovery trials", lambda s: s["recovery"]["trials"]),
    ("recovered within 0.3 m in 3 s", lambda s: s["recovery"]["success_share"]),
)


def summary_markdown(summary: dict) -> str:
    names = list(summary["logs"])
    cols = ["all", *names] if len(names) > 1 else names
    data = (
        [summary["overall"], *summary["logs"].values()] if len(names) > 1 else [summary["overall"]]
    )
    out = [f"# Closed-loop evaluation of {summary['policy']}\n"]
    cfg = summary["config"]
    out.append(
        f"Intervention when the car is more than {cfg['offset_limit_m']:g} m from the recorded "
        f"path or more than {cfg['heading_limit_deg']:g} deg off its heading; added latency "
        f"{cfg['latency_frames']} frame(s); camera pitch {cfg['camera']['pitch_deg']:g} deg, "
        f"height {cfg['camera']['height_m']:g} m, vertical FOV {cfg['camera']['vfov_deg']:g} deg.\n"
    )
    out.append(
        markdown_table(["score", *cols], [[lab, *[f(d) for d in data]] for lab, f in SCORE_ROWS])
    )
    rec = summary["overall"]["recovery"]
    if rec["trials"]:
        out.append("\nRecovery trials (share back within 0.3 m after 3 s, no intervention):\n")
        out.append(
            markdown_table(
                ["start", "trials", "success share", "mean final abs offset (m)"],
                [
                    [k, v["trials"], v["success_share"], v["mean_final_offset_m"]]
                    for k, v in rec["by_start"].items()
                ],
            )
        )
    if summary.get("baselines"):
        out.append("\nThe same logs driven by baselines (blind to the view):\n")
        pols = {summary["policy"]: summary["overall"], **summary["baselines"]}
        keys = (
            "interventions",
            "autonomy, NVIDIA (%)",
            "autonomy, bounded (%)",
            "mean abs lateral offset (m)",
            "time within 0.3 m",
        )
        funcs = dict(SCORE_ROWS)
        out.append(
            markdown_table(
                ["policy", *keys],
                [[name, *[funcs[k](s) for k in keys]] for name, s in pols.items()],
            )
        )
    return "\n".join(out)


def write_outputs(driven: list[Driven], summary: dict, out: Path, visuals: Visuals | None) -> None:
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    cols: dict[str, list] = {
        k: []
        for k in (
            "recording",
            "segment",
            "step",
            "time_s",
            "line",
            "offset_m",
            "heading_error_deg",
            "model",
            "applied",
            "human",
            "invalid_share",
            "intervention",
        )
    }
    t_offset: dict[str, float] = {}
    per_log: dict[str, dict[str, list]] = {}
    for d in driven:
        tr = d.trace
        act = tr.active[:, 0]
        t0 = t_offset.get(d.log, 0.0)
        t = tr.time[act, 0] + t0
        t_offset[d.log] = (t[-1] if t.size else t0) + 1.0  # a 1 s gap between segments
        n = int(act.sum())
        cols["recording"] += [d.log] * n
        cols["segment"] += [d.segment] * n
        cols["step"] += list(range(n))
        cols["time_s"] += t.tolist()
        cols["line"] += d.lines[tr.frame[act, 0]].tolist()
        cols["offset_m"] += tr.offset[act, 0].tolist()
        cols["heading_error_deg"] += np.degrees(tr.heading_error[act, 0]).tolist()
        cols["model"] += tr.output[act, 0].tolist()
        cols["applied"] += tr.applied[act, 0].tolist()
        cols["human"] += tr.human[act, 0].tolist()
        cols["invalid_share"] += tr.invalid[act, 0].tolist()
        cols["intervention"] += tr.intervention[act, 0].astype(int).tolist()
        pl = per_log.setdefault(d.log, {"t": [], "off": [], "head": [], "int": []})
        pl["t"].append(t)
        pl["off"].append(tr.offset[act, 0])
        pl["head"].append(np.degrees(tr.heading_error[act, 0]))
        pl["int"].append(tr.intervention[act, 0])
    write_csv(out / "steps.csv", cols)
    limit = summary["config"]["offset_limit_m"]
    for name, pl in per_log.items():
        inter = np.concatenate(pl["int"])
        plots.offset_over_time(
            np.concatenate(pl["t"]),
            np.concatenate(pl["off"]),
            np.concatenate(pl["head"]),
            np.flatnonzero(inter),
            out / f"offset_{_safe(name)}.png",
            limit_m=limit,
            title=f"{summary['policy']} on {name}: {int(inter.sum())} interventions",
        )
    if visuals is not None:
        strip = visuals.strip_even + visuals.strip_int
        if strip:
            plots.image_grid(strip, out / "filmstrip.png", columns=4)
        if visuals.video is not None:
            visuals.video.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
