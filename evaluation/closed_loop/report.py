"""What ``evaluate.py closed-loop`` writes (:mod:`evaluation.closed_loop.run` drives).

``summary.json``/``summary.md`` (scores overall and per recording, recovery trials,
configuration), ``steps.csv`` (every step of every driven segment),
``offset_<recording>.png`` (lateral offset and heading error over time,
interventions marked), ``path_<recording>.png`` (the reference path and its road
edges), ``edges_<recording>.png`` (the edges drawn on real frames),
``filmstrip.png`` and ``views.mp4`` (synthesised views with the applied and the
human steering drawn as ground paths, collected while driving by :class:`Visuals`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation import plots
from evaluation.closed_loop.kinematics import ReferencePath, to_local
from evaluation.closed_loop.reference import Reference
from evaluation.closed_loop.run import Driven, drive_counts
from evaluation.outputs import markdown_table, write_csv, write_json
from sim.camera import Camera

FILMSTRIP_EVEN = 8
FILMSTRIP_INTERVENTIONS = 8


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


def _recovered(s: dict) -> float:
    return s["recovery"]["success_share"]


SCORE_ROWS = (
    ("elapsed (s)", lambda s: s["elapsed_s"]),
    ("distance (km)", lambda s: s["distance_km"]),
    ("interventions", lambda s: s["interventions"]),
    ("autonomy, NVIDIA (%)", lambda s: s["autonomy_percent"]),
    ("autonomy, bounded (%)", lambda s: s["autonomy_bounded_percent"]),
    ("interventions per km", lambda s: s["interventions_per_km"]),
    ("mean abs lateral offset from the path (m)", lambda s: s["lateral_offset_m"]["mean"]),
    ("p95 abs lateral offset (m)", lambda s: s["lateral_offset_m"]["p95"]),
    ("mean abs heading error (deg)", lambda s: s["heading_error_deg"]["mean"]),
    ("p95 abs heading error (deg)", lambda s: s["heading_error_deg"]["p95"]),
    ("road margin of the nearest wheel, p5 (m)", lambda s: s["road_margin_m"]["p5"]),
    ("road margin, min (m)", lambda s: s["road_margin_m"]["min"]),
    ("time within 0.3 m of the path", lambda s: s["time_within_0.3m"]),
    ("time within 0.5 m of the path", lambda s: s["time_within_0.5m"]),
    ("synthesised pixels without source, mean", lambda s: s["invalid_pixel_share"]["mean"]),
    ("synthesised pixels without source, p95", lambda s: s["invalid_pixel_share"]["p95"]),
    ("recovery trials judged", lambda s: s["recovery"]["trials"]),
    (
        "recovery trials not judged: the undisturbed twin met the criterion first",
        lambda s: s["recovery"]["skipped_twin_intervention"],
    ),
    ("recovered (within 0.3 m of the undisturbed twin after 5 s)", _recovered),
)

BASELINE_KEYS = (
    "interventions",
    "autonomy, NVIDIA (%)",
    "autonomy, bounded (%)",
    "interventions per km",
    "mean abs lateral offset from the path (m)",
    "recovered (within 0.3 m of the undisturbed twin after 5 s)",
)


def driven_policies(summary: dict) -> dict[str, dict]:
    """Every policy a closed-loop summary holds, by name: the model, the blind
    baselines, the expert (when driven)."""
    return {
        summary["policy"]: summary,
        **summary.get("baselines", {}),
        **summary.get("expert", {}),
    }


def summary_markdown(summary: dict) -> str:
    names = list(summary["logs"])
    cols = ["all", *names] if len(names) > 1 else names
    data = (
        [summary["overall"], *summary["logs"].values()] if len(names) > 1 else [summary["overall"]]
    )
    out = [f"# Closed-loop evaluation of {summary['policy']}\n"]
    cfg = summary["config"]
    out.append(
        f"Intervention: {cfg['criterion_text']} (`--criterion {cfg['criterion']}`). Reference "
        f"path turning from {'the frames' if cfg['path'] == 'images' else 'the logged steering'}"
        f"; car response {cfg['car']}; added latency {cfg['latency_frames']} frame(s); camera "
        f"pitch {cfg['camera']['pitch_deg']:g} deg, height {cfg['camera']['height_m']:g} m, "
        f"vertical FOV {cfg['camera']['vfov_deg']:g} deg.\n"
    )
    funcs = dict(SCORE_ROWS)
    if summary.get("baselines"):
        expert = summary.get("expert", {})
        out.append(
            "Beside the blind baselines (they never see the road)"
            + (
                f" and {', '.join(expert)} (the recorded steering plus the recovery label's "
                "pure pursuit from the car's true pose, which no camera sees: the ceiling of "
                "the labels, not a baseline)"
                if expert
                else ""
            )
            + ":\n"
        )
        pols = driven_policies(summary)
        header = ["policy", "recording", *BASELINE_KEYS]
        rows = []
        for name, sm in pols.items():
            for log, sc in ([("all", sm["overall"])] if len(names) > 1 else []) + list(
                sm["logs"].items()
            ):
                rows.append([name, log, *[funcs[k](sc) for k in BASELINE_KEYS]])
        out.append(markdown_table(header, rows))
        out.append("")
    out.extend(_spread_section(summary, names))
    out.append(f"## {summary['policy']}\n")
    out.append(
        markdown_table(["score", *cols], [[lab, *[f(d) for d in data]] for lab, f in SCORE_ROWS])
    )
    rec = summary["overall"]["recovery"]
    if rec["trials"]:
        out.append(
            "\nRecovery trials (started displaced or turned beside an undisturbed twin; "
            "success: no intervention and within 0.3 m of the twin after 5 s; a trial whose "
            "twin met the intervention criterion is a failure when the disturbed car met it "
            "first, else not judged):\n"
        )
        out.append(
            markdown_table(
                [
                    "start",
                    "trials",
                    "success share",
                    "interventions",
                    "median final gap (m)",
                    "median time to the band (s)",
                ],
                [
                    [
                        k,
                        v["trials"],
                        v["success_share"],
                        v["interventions"],
                        v["final_gap_m_p50"],
                        v["time_to_band_s_p50"],
                    ]
                    for k, v in rec["by_start"].items()
                ],
            )  # fmt: skip
        )
    if rec.get("skipped_off_road"):
        out.append(f"\n{rec['skipped_off_road']} trial start(s) already off the road: not run.")
    if rec.get("skipped_twin_intervention"):
        out.append(
            f"\n{rec['skipped_twin_intervention']} trial(s) not judged: the undisturbed twin "
            "met the intervention criterion inside the 5 s, and the disturbed car did not "
            "meet it first."
        )
    refs = summary.get("references") or {}
    if refs:
        out.append("\n## The recordings as the evaluator sees them\n")
        header = [
            "recording",
            "turning measured from the frames",
            "car response (delay, lag, gain)",
            "R^2 fitted / bicycle",
            "road width median (p10-p90) m",
        ]
        out.append(markdown_table(header, [_reference_row(n, r) for n, r in refs.items()]))
    return "\n".join(out)


def _spread_section(summary: dict, names: list[str]) -> list[str]:
    """The repeated drives' table (``--repeats``): each drive's interventions, their
    mean, standard deviation and range, per policy and recording."""
    rep = summary["overall"].get("repeats")
    if rep is None:
        return []
    noise = summary["config"]["repeat_noise"]
    out = [
        f"Each log driven {rep['drives']} times by each policy: the first as it steers, the "
        f"others with a steering noise of {noise:g} (Ornstein-Uhlenbeck, 0.5 s) added. Counts "
        "that differ by less than their spread do not tell two policies apart.\n"
    ]
    header = [
        "policy",
        "recording",
        "interventions per drive",
        "mean",
        "sd",
        "range",
        "autonomy, NVIDIA (%) range",
    ]
    rows = []
    pols = driven_policies(summary)
    for name, sm in pols.items():
        scopes = [("all", sm["overall"])] if len(names) > 1 else []
        for log, sc in scopes + list(sm["logs"].items()):
            r = sc["repeats"]
            n, a = r["interventions"], r["autonomy_percent"]
            rows.append(
                [
                    name,
                    log,
                    drive_counts(n),
                    f"{n['mean']:.1f}",
                    f"{n['sd']:.1f}",
                    f"{n['min']:.0f}-{n['max']:.0f}",
                    f"{a['min']:.1f} to {a['max']:.1f}",
                ]
            )
    out.append(markdown_table(header, rows))
    out.append("")
    return out


def _reference_row(name: str, r: dict) -> list:
    resp, width, fit = r["car_response"], r["road_width_m"], r.get("car_fit")
    return [
        name,
        r["yaw_measured_share"],
        f"{resp['delay_s']:.2f} s, {resp['lag_s']:.2f} s, {resp['gain']:.2f}",
        f"{fit['r2']:.2f} / {fit['bicycle_r2']:.2f}" if fit else "bicycle",
        f"{width['median']:.1f} ({width['p10']:.1f}-{width['p90']:.1f})",
    ]


def world_edges(p: ReferencePath, offsets: np.ndarray) -> np.ndarray:
    """World points ``offsets`` metres right of the path's root at each frame."""
    return np.stack(
        [p.root_x + offsets * np.sin(p.heading), p.root_y - offsets * np.cos(p.heading)], axis=1
    )


def edge_sheet(ref: Reference, path: Path, frames: int = 12) -> Path | None:
    """Real frames with the road edges the evaluator estimated drawn on them (red
    left, blue right, green the reference path) so a person can check them."""
    tiles = []
    segs = [s for s in ref.segments if s.edges is not None]
    total = sum(len(s.path) for s in segs)
    if not total:
        return None
    picks = np.linspace(0, total - 1, frames + 2)[1:-1].astype(int)
    camera = Camera()
    for g in picks:
        for seg in segs:
            if g < len(seg.path):
                break
            g -= len(seg.path)
        p, e = seg.path, seg.edges
        ahead = np.flatnonzero((p.s > p.s[g] + 3.0) & (p.s < p.s[g] + 30.0))
        pts = {}
        for name, offs, colour in (
            ("left", e.left, (255, 40, 40)),
            ("right", e.right, (60, 120, 255)),
            ("path", np.zeros(len(p)), (40, 220, 40)),
        ):
            w = world_edges(p, offs)[ahead]
            x, z = to_local(p.x[g], p.y[g], p.heading[g], w[:, 0], w[:, 1])
            pts[name] = (np.stack([x, z], axis=1), colour)
        tiles.append(plots.draw_ground_points(seg.centre[g], pts, camera))
    return plots.image_grid(tiles, path, columns=4)


def write_outputs(
    driven: list[Driven],
    summary: dict,
    out: Path,
    visuals: Visuals | None,
    references: list[Reference] = (),
) -> None:
    """Everything ``evaluate.py closed-loop`` writes into ``out`` (module docstring)."""
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    cols, per_log = _steps(driven)
    write_csv(out / "steps.csv", cols)
    _offset_plots(per_log, summary, out)
    for ref in references:
        path_map(
            ref,
            out / f"path_{safe_name(ref.name)}.png",
            f"{ref.name}: reference path ({ref.path_source}), {summary['policy']}",
            driven,
        )
        edge_sheet(ref, out / f"edges_{safe_name(ref.name)}.png")
    if visuals is not None:
        strip = visuals.strip_even + visuals.strip_int
        if strip:
            plots.image_grid(strip, out / "filmstrip.png", columns=4)
        if visuals.video is not None:
            visuals.video.close()


STEP_COLUMNS = (
    "recording",
    "segment",
    "step",
    "time_s",
    "line",
    "offset_m",
    "heading_error_deg",
    "road_margin_m",
    "model",
    "applied",
    "wheel",
    "human",
    "invalid_share",
    "intervention",
)


def _steps(driven: list[Driven]) -> tuple[dict[str, list], dict[str, dict[str, list]]]:
    """The columns of ``steps.csv`` (every active step of every segment, time running
    on across a recording's segments with a 1 s gap), and per recording the time,
    offset, heading error and interventions for its offset plot."""
    cols: dict[str, list] = {k: [] for k in STEP_COLUMNS}
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
        cols["road_margin_m"] += tr.margin[act, 0].tolist()
        cols["model"] += tr.output[act, 0].tolist()
        cols["applied"] += tr.applied[act, 0].tolist()
        cols["wheel"] += tr.wheel[act, 0].tolist()
        cols["human"] += tr.human[act, 0].tolist()
        cols["invalid_share"] += tr.invalid[act, 0].tolist()
        cols["intervention"] += tr.intervention[act, 0].astype(int).tolist()
        pl = per_log.setdefault(d.log, {"t": [], "off": [], "head": [], "int": []})
        pl["t"].append(t)
        pl["off"].append(tr.offset[act, 0])
        pl["head"].append(np.degrees(tr.heading_error[act, 0]))
        pl["int"].append(tr.intervention[act, 0])
    return cols, per_log


def _offset_plots(per_log: dict[str, dict[str, list]], summary: dict, out: Path) -> None:
    """``offset_<recording>.png``: offset and heading error over time, interventions marked."""
    limit = summary["config"]["offset_limit_m"]
    for name, pl in per_log.items():
        inter = np.concatenate(pl["int"])
        plots.offset_over_time(
            np.concatenate(pl["t"]),
            np.concatenate(pl["off"]),
            np.concatenate(pl["head"]),
            np.flatnonzero(inter),
            out / f"offset_{safe_name(name)}.png",
            limit_m=limit,
            title=f"{summary['policy']} on {name}: {int(inter.sum())} interventions",
        )


def path_map(ref: Reference, path: Path, title: str, driven: list[Driven] = ()) -> None:
    """The reference path of every segment of ``ref`` with its road edges, its laps
    and the interventions of the ``driven`` segments along it."""
    segs = []
    for seg in ref.segments:
        item = {"x": seg.path.root_x, "y": seg.path.root_y}
        if seg.edges is not None:
            item["left"] = world_edges(seg.path, seg.edges.left)
            item["right"] = world_edges(seg.path, seg.edges.right)
        if seg.laps is not None:
            item["laps"] = seg.laps
        ints = [
            d.trace.frame[d.trace.intervention[:, 0], 0]
            for d in driven
            if d.log == ref.name and d.path is seg.path
        ]
        item["interventions"] = np.concatenate(ints) if ints else []
        segs.append(item)
    plots.path_map(segs, path, title=title)


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits and ``-_.`` made ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
