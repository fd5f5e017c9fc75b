"""``evaluate.py closed-loop``: the closed-loop method over whole recordings.

Builds each recording's reference (:mod:`evaluation.closed_loop.reference`), drives
every stretch with a policy (:mod:`evaluation.closed_loop.loop`), runs the recovery
trials (:mod:`evaluation.closed_loop.recovery`) and scores the drives
(:mod:`evaluation.closed_loop.scores`). What the command writes:
:mod:`evaluation.closed_loop.report`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from evaluation.closed_loop.kinematics import ReferencePath
from evaluation.closed_loop.loop import LoopConfig, Trace, run_cars
from evaluation.closed_loop.policies import Policy
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
) -> tuple[list[Driven], dict[str, list[dict]]]:
    """Drive every segment of every reference; run the recovery trials. The car
    responds as each reference's fitted (or bicycle) response says. ``transform(view,
    row)`` changes each synthesised view before the policy sees it (corruptions);
    ``max_time_s`` ends each segment's drive after that many seconds."""
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
            driven.append(Driven(ref.name, i, seg.path, ref.lines[seg.path.rows], tr))
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


def closed_loop_figures(
    refs, policy, config, recovery_points: int, progress: bool, **drive
) -> dict:
    """The closed loop's headline figures for one policy over the references
    (``drive``: ``transform``, ``max_time_s`` as :func:`evaluate_recordings` takes)."""
    driven, trials = evaluate_recordings(
        refs, policy, config, recovery_points=recovery_points, progress=progress, **drive
    )
    if not driven:
        return {}
    o = summarise(driven, trials, {})["overall"]
    s = score([d.trace for d in driven])
    return {
        "autonomy_percent": s["autonomy_percent"],
        "autonomy_bounded_percent": s["autonomy_bounded_percent"],
        "interventions": s["interventions"],
        "elapsed_s": s["elapsed_s"],
        "interventions_per_km": s["interventions_per_km"],
        "mean_offset_m": s["lateral_offset_m"]["mean"],
        "recovered_share": o["recovery"]["success_share"],
    }
