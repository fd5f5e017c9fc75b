"""Recovery trials of the closed loop (:mod:`evaluation.closed_loop.loop`).

Cars start 0.5 m and 1.0 m to either side or turned 5 degrees at spread-out points,
each beside an undisturbed twin started on the path; a trial succeeds when, after
5 s without an intervention, the car is within 0.3 m of its twin: the disturbance
has died out, whatever line the policy keeps.

A trial needs its twin: where the undisturbed car itself meets the intervention
criterion inside the 5 s, there is no line to return to, and the trial says nothing
about the disturbance. Such a trial counts as a failure when the disturbed car left
first (the disturbance did it), and is otherwise reported, not judged (on a road the
policy cannot drive for 5 s from the path, every trial there used to count as a
failed recovery).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from evaluation.closed_loop.kinematics import ReferencePath
from evaluation.closed_loop.loop import LoopConfig, ViewSource, run_cars
from evaluation.closed_loop.policies import Policy
from evaluation.closed_loop.road import RoadEdges

RECOVERY_OFFSETS_M = (-1.0, -0.5, 0.5, 1.0)
RECOVERY_YAWS_DEG = (-5.0, 5.0)
#: A disturbed car has recovered when it is this close to its undisturbed twin.
RECOVERY_BAND_M = 0.3
RECOVERY_TIME_S = 5.0


def recovery_starts(path: ReferencePath, points: int, duration_s: float) -> np.ndarray:
    """Up to ``points`` evenly spread start frames with ``duration_s`` + 1 s of path ahead."""
    last_t = path.t[-1] - duration_s - 1.0
    usable = np.flatnonzero((path.t >= 1.0) & (path.t <= last_t))
    if not usable.size or points <= 0:
        return np.zeros(0, dtype=np.int64)
    pick = np.linspace(0, usable.size - 1, min(points, usable.size) + 2)[1:-1]
    return usable[np.round(pick).astype(np.int64)]


def recovery_trials(
    path: ReferencePath,
    views: ViewSource,
    policy: Policy,
    config: LoopConfig,
    *,
    points: int,
    edges: RoadEdges | None = None,
    duration_s: float = RECOVERY_TIME_S,
    band_m: float = RECOVERY_BAND_M,
    offsets_m: Sequence[float] = RECOVERY_OFFSETS_M,
    yaws_deg: Sequence[float] = RECOVERY_YAWS_DEG,
    progress: bool = False,
) -> list[dict]:
    """Cars started displaced (``offsets_m``, heading 0) or turned (``yaws_deg``,
    offset 0) at ``points`` spread-out frames, each beside an undisturbed twin, run
    for ``duration_s`` without resets. A trial succeeds when the car never met the
    intervention criterion and ends within ``band_m`` of its twin. Starts that are
    already an intervention (a wheel off a narrow road) are reported, not run; a
    trial whose twin met the criterion is judged only when the disturbed car met it
    at an earlier step (a failure), else reported as ``twin_intervention``."""
    starts = recovery_starts(path, points, duration_s)
    kinds = [(0.0, 0.0)] + [(o, 0.0) for o in offsets_m] + [(0.0, y) for y in yaws_deg]
    if not starts.size or len(kinds) == 1:
        return []
    start = np.repeat(starts, len(kinds))
    off = np.tile([kd[0] for kd in kinds], len(starts))
    yaw = np.radians(np.tile([kd[1] for kd in kinds], len(starts)))
    tr = run_cars(
        path,
        views,
        policy,
        config,
        start=start,
        edges=edges,
        offset_m=off,
        yaw_rad=yaw,
        max_time_s=duration_s,
        reset=False,
        progress=progress,
        desc="recovery trials",
    )
    out = []
    for c in range(len(start)):
        act = tr.active[:, c]
        offs = tr.offset[act, c]
        times = tr.time[act, c]
        if c % len(kinds) == 0:
            # The start point's undisturbed twin, read once for all its trials.
            twin_first, twin_t, twin_offset = _first(tr.intervention[:, c]), times, offs
            continue
        gap = gap_to_twin(times, offs, twin_t, twin_offset, twin_reached=twin_first is None)
        failed = bool(tr.intervention[act, c].any())
        car_first = _first(tr.intervention[:, c])
        no_twin = twin_first is not None and (car_first is None or car_first >= twin_first)
        at_start = failed and times.size >= 1 and bool(tr.intervention[0, c]) and abs(off[c]) > 0
        reached = bool(times.size) and times[-1] >= duration_s - 1e-6
        final_gap = float(gap[-1]) if gap.size else math.nan
        # Back within the band after the disturbance was largest (a turned start
        # begins on its twin's line and leaves it first).
        peak = int(np.nanargmax(gap)) if np.isfinite(gap).any() else 0
        inside = peak + np.flatnonzero(gap[peak:] <= band_m)
        out.append(
            {
                "start_frame": int(start[c]),
                "offset_m": float(off[c]),
                "yaw_deg": float(np.degrees(yaw[c])),
                "success": bool(reached and not failed and final_gap <= band_m and not no_twin),
                "intervention": failed,
                "off_road_at_start": at_start,
                "twin_intervention": bool(no_twin and not at_start),
                "final_offset_m": float(abs(offs[-1])) if offs.size else math.nan,
                "final_gap_m": final_gap,
                "first_within_s": float(times[inside[0]]) if inside.size else math.nan,
            }
        )
    return out


def gap_to_twin(
    car_t: np.ndarray,
    car_offset: np.ndarray,
    twin_t: np.ndarray,
    twin_offset: np.ndarray,
    *,
    twin_reached: bool,
) -> np.ndarray:
    """|car offset - twin offset| at each of the car's step times, the twin's offset
    interpolated at the same time since the start. Cars step by the frame intervals of
    the path where they are, so a car that lags its twin takes other steps, and one
    more or fewer to reach the trial's end: comparing step by step would compare two
    moments, and the last step of one car could find no step of the other. After a
    twin that drove the whole trial (``twin_reached``) its last offset stands for the
    fraction of a step it ended before the car; after one that stopped (an
    intervention) there is nothing to compare (NaN)."""
    car_t = np.asarray(car_t, dtype=np.float64)
    if not len(twin_t):
        return np.full(car_t.shape, np.nan)
    twin = np.interp(
        car_t,
        twin_t,
        twin_offset,
        left=twin_offset[0],
        right=twin_offset[-1] if twin_reached else np.nan,
    )
    return np.abs(np.asarray(car_offset, dtype=np.float64) - twin)


def _first(flags: np.ndarray) -> int | None:
    hit = np.flatnonzero(flags)
    return int(hit[0]) if hit.size else None


def recovery_summary(trials: Sequence[dict]) -> dict:
    """Success share over the trials judged: started on the road, and with a twin that
    drove the whole time or that the disturbed car left the road before."""
    off_road = sum(bool(t.get("off_road_at_start")) for t in trials)
    no_twin = sum(bool(t.get("twin_intervention")) for t in trials)
    run = [t for t in trials if not t.get("off_road_at_start") and not t.get("twin_intervention")]
    if not run:
        return {
            "trials": 0,
            "skipped_off_road": off_road,
            "skipped_twin_intervention": no_twin,
            "success_share": math.nan,
            "by_start": {},
        }
    by: dict[str, list[dict]] = {}
    for t in run:
        key = f"yaw {t['yaw_deg']:+g} deg" if t["yaw_deg"] else f"offset {t['offset_m']:+g} m"
        by.setdefault(key, []).append(t)

    def pct(v: list[float], q: float) -> float:
        a = np.asarray([x for x in v if math.isfinite(x)])
        return float(np.percentile(a, q)) if a.size else math.nan

    return {
        "trials": len(run),
        "skipped_off_road": off_road,
        "skipped_twin_intervention": no_twin,
        "success_share": float(np.mean([t["success"] for t in run])),
        "final_gap_m": {
            "p50": pct([t["final_gap_m"] for t in run], 50),
            "p90": pct([t["final_gap_m"] for t in run], 90),
        },
        "by_start": {
            key: {
                "trials": len(v),
                "success_share": float(np.mean([t["success"] for t in v])),
                "interventions": int(sum(t["intervention"] for t in v)),
                "final_gap_m_p50": pct([t["final_gap_m"] for t in v], 50),
                "time_to_band_s_p50": pct([t["first_within_s"] for t in v], 50),
            }
            for key, v in by.items()
        },
    }
