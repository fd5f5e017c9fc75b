"""``evaluate.py closed-loop``: the closed-loop method over whole recordings.

Builds each recording's reference (:mod:`evaluation.closed_loop.reference`), drives
every stretch with a policy (:mod:`evaluation.closed_loop.loop`), runs the recovery
trials (:mod:`evaluation.closed_loop.recovery`) and scores the drives
(:mod:`evaluation.closed_loop.scores`). What the command writes:
:mod:`evaluation.closed_loop.report`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from evaluation.closed_loop.kinematics import ReferencePath
from evaluation.closed_loop.loop import LoopConfig, Trace, run_cars
from evaluation.closed_loop.policies import REPEAT_NOISE, NoisyPolicy, Policy
from evaluation.closed_loop.recovery import recovery_summary, recovery_trials
from evaluation.closed_loop.reference import Reference, build_reference
from evaluation.closed_loop.scores import score
from evaluation.closed_loop.views import SynthesizedViews, TransformedViews

if TYPE_CHECKING:
    from evaluation.closed_loop.report import Visuals

logger = logging.getLogger(__name__)


@dataclass
class Driven:
    """One driven segment of a recording."""

    log: str
    segment: int
    path: ReferencePath
    lines: np.ndarray  # csv line of each path frame
    trace: Trace
    #: The same segment driven again with a tiny steering noise (``repeats``), one
    #: trace each, for the spread of the figures.
    repeats: list[Trace] = field(default_factory=list)


def build_references(
    recordings,
    camera,
    *,
    path: str = "images",
    car: str = "fitted",
    criterion: str = "road",
    progress: bool = True,
) -> list[Reference]:
    """The :class:`evaluation.closed_loop.reference.Reference` of each recording (path, road
    edges, car response, frames); recordings with no drivable stretch are skipped
    with a warning."""
    out = []
    for rec in recordings:
        ref = build_reference(
            rec, camera, path=path, car=car, edges=criterion == "road", progress=progress
        )
        if not ref.segments:
            logger.warning(
                "%s: no stretch of at least 3 s with the car moving and regular frames; skipped",
                rec.name,
            )
            continue
        fit = ref.fit
        logger.info(
            "%s: %d stretch(es); turning measured from the frames on %.0f%% of frame pairs; "
            "car response %s%s; road width median %.1f m",
            rec.name,
            len(ref.segments),
            100 * ref.yaw_measured_share,
            ref.response,
            f" (R^2 {fit['r2']:.2f}, bicycle {fit['bicycle_r2']:.2f})" if fit else "",
            ref.summary()["road_width_m"]["median"],
        )
        out.append(ref)
    return out


def evaluate_recordings(
    references: list[Reference],
    policy: Policy,
    config: LoopConfig,
    *,
    recovery_points: int = 8,
    visuals: Visuals | None = None,
    progress: bool = True,
    transform=None,
    max_time_s: float | None = None,
    repeats: int = 1,
    repeat_noise: float = REPEAT_NOISE,
) -> tuple[list[Driven], dict[str, list[dict]]]:
    """Drive every segment of every reference; run the recovery trials. The car
    responds as each reference's fitted (or bicycle) response says. ``transform(view,
    row)`` changes each synthesised view before the policy sees it (corruptions);
    ``max_time_s`` ends each segment's drive after that many seconds. With
    ``repeats`` > 1 each segment is driven ``repeats - 1`` more times with the
    policy plus a steering noise of ``repeat_noise`` (each its own seed), for the
    spread of the figures; the first drive is the policy's own."""
    check_repeats(repeats, repeat_noise)
    driven: list[Driven] = []
    trials: dict[str, list[dict]] = {}
    for ref in references:
        cfg = replace(config, response=ref.response)
        total_s = sum(seg.path.duration_s for seg in ref.segments)
        trials[ref.name] = []
        for i, seg in enumerate(ref.segments):
            views = SynthesizedViews(seg.centre, cfg.camera, seg.sides, bonnet=ref.bonnet)
            if transform is not None:
                views = TransformedViews(views, transform, seg.path.rows)
            if visuals is not None:
                visuals.label = ref.name
            tr = run_cars(
                seg.path,
                views,
                policy,
                cfg,
                start=np.array([0]),
                edges=seg.edges,
                max_time_s=max_time_s,
                on_step=visuals,
                progress=progress,
                desc=f"{ref.name} segment {i + 1}/{len(ref.segments)}",
            )
            again = [
                run_cars(
                    seg.path,
                    views,
                    # The wrapper is not closed: closing it would close ``policy``.
                    NoisyPolicy(policy, repeat_noise, seed=1000 * i + r),
                    cfg,
                    start=np.array([0]),
                    edges=seg.edges,
                    max_time_s=max_time_s,
                    progress=progress,
                    desc=f"{ref.name} segment {i + 1}/{len(ref.segments)}, drive {r + 1}/{repeats}",
                )
                for r in range(1, repeats)
            ]
            driven.append(Driven(ref.name, i, seg.path, ref.lines[seg.path.rows], tr, again))
            points = int(round(recovery_points * seg.path.duration_s / total_s)) if total_s else 0
            if points:
                trials[ref.name] += recovery_trials(
                    seg.path,
                    views,
                    policy,
                    cfg,
                    points=points,
                    edges=seg.edges,
                    progress=progress,
                )
        s = score([d.trace for d in driven if d.log == ref.name])
        logger.info(
            "%s, %s: %d interventions in %.0f s (%.2f km): autonomy %.1f%%, mean |offset| %.2f m",
            policy.name,
            ref.name,
            s["interventions"],
            s["elapsed_s"],
            s["distance_km"],
            s["autonomy_percent"],
            s["lateral_offset_m"]["mean"],
        )
    return driven, trials


def check_repeats(repeats: int, noise: float) -> None:
    """ValueError naming the bad value when ``repeats`` or ``noise`` make no sense."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1 (the drive itself). Received: {repeats}")
    if not noise >= 0:
        raise ValueError(f"repeat noise must be >= 0 (steering units). Received: {noise}")


def spread(driven: list[Driven]) -> dict | None:
    """The figures of each drive of ``driven`` (the first is the policy's own, the
    others its repeats with steering noise), with their mean, standard deviation and
    range; None when the segments were driven once."""
    n = 1 + min((len(d.repeats) for d in driven), default=0)
    if n < 2:
        return None
    drives = [score([d.trace if r == 0 else d.repeats[r - 1] for d in driven]) for r in range(n)]

    def stats(key: str) -> dict:
        v = np.array([s[key] for s in drives], dtype=np.float64)
        return {
            "values": v.tolist(),
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "min": float(v.min()),
            "max": float(v.max()),
        }

    return {
        "drives": n,
        "interventions": stats("interventions"),
        "autonomy_percent": stats("autonomy_percent"),
        "interventions_per_km": stats("interventions_per_km"),
    }


def drive_counts(stats: dict) -> str:
    """Each drive's count of one :func:`spread` figure, as the reports write it: "1, 1, 2"."""
    return ", ".join(f"{v:.0f}" for v in stats["values"])


def summarise(driven: list[Driven], trials: dict[str, list[dict]], meta: dict) -> dict:
    logs = list(dict.fromkeys(d.log for d in driven))
    all_trials = [t for v in trials.values() for t in v]

    def figures(ds: list[Driven], recovery: dict) -> dict:
        out = {**score([d.trace for d in ds]), "recovery": recovery}
        rep = spread(ds)
        if rep is not None:
            out["repeats"] = rep
        return out

    return {
        **meta,
        "overall": figures(driven, recovery_summary(all_trials)),
        "logs": {
            name: {
                **figures(
                    [d for d in driven if d.log == name], recovery_summary(trials.get(name, []))
                ),
                "segments": sum(d.log == name for d in driven),
            }
            for name in logs
        },
    }


def closed_loop_figures(
    refs, policy, config, recovery_points: int, progress: bool, **drive
) -> dict:
    """The closed loop's headline figures for one policy over the references, and
    each log's interventions (``drive``: ``transform``, ``max_time_s``, ``repeats``,
    ``repeat_noise`` as :func:`evaluate_recordings` takes). With repeats, ``repeats``
    holds the spread of the drives' figures (:func:`spread`), overall and per log."""
    driven, trials = evaluate_recordings(
        refs, policy, config, recovery_points=recovery_points, progress=progress, **drive
    )
    if not driven:
        return {}
    summary = summarise(driven, trials, {})
    o = summary["overall"]
    out = {
        "autonomy_percent": o["autonomy_percent"],
        "autonomy_bounded_percent": o["autonomy_bounded_percent"],
        "interventions": o["interventions"],
        "elapsed_s": o["elapsed_s"],
        "interventions_per_km": o["interventions_per_km"],
        "mean_offset_m": o["lateral_offset_m"]["mean"],
        "recovered_share": o["recovery"]["success_share"],
        "recovery_trials_judged": o["recovery"]["trials"],
        "recovery_trials_not_judged": o["recovery"]["skipped_twin_intervention"],
        "logs": {
            name: {k: f[k] for k in ("interventions", "autonomy_percent", "repeats") if k in f}
            for name, f in summary["logs"].items()
        },
    }
    if "repeats" in o:
        out["repeats"] = o["repeats"]
    return out
