"""Driving quality per lap from extended telemetry: sectors completed, |CTE|, OBEs, crashes.

The definitions are those of the "Driving Quality Metrics" per-sector script of the
SelfOracle / ThirdEye research line (Stocco et al., USI then TUM; it reads their
``driving_log.csv`` columns ``lap``, ``waypoint``, ``cte``, ``crashed``,
``tot_OBEs``, ``tot_crashes``; found in the public code index, where its repository
is not named, so cited by its title and columns):

- a sector is a waypoint of a lap (``currentWayPoint``, or ``sector`` from
  udacity-gym builds); per (lap, sector) ``completed = (1 - mean(crashed > 0)) * 100``,
  the share of that sector's frames without a crash;
- a lap's "% completed" is the sum of its sectors' ``completed`` divided by the
  sectors per lap (the script's ``max(waypoint) + 1``; here the number of distinct
  sectors seen in the run, the same when they are numbered from 0 and all reached):
  a sector the car never reached in that lap counts 0;
- mean |CTE| is over the frames of the lap (the script takes ``abs(cte)`` per
  sector); max |CTE| is added here;
- OBEs and crashes are the simulator's own counters (``tot_obes``, ``tot_crashes``),
  counted in the lap where they increase.

Builds without those counters (udacity-gym, PerturbationDrive) report ``hit``
(``"none"`` or the object touched) and ``cte`` instead: a crash is then a run of
frames touching an object, an OBE a run of frames with |CTE| above
:data:`OBE_CTE`, PerturbationDrive's own end-of-episode bound (``MAX_CTE_ERROR =
3.0`` in its ``envs/udacity/config.py``). ``crashed`` per frame is the build's
``crash`` flag, else ``hit`` not ``"none"``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

#: |CTE| beyond which a build without an OBE counter is out of bounds (PerturbationDrive).
OBE_CTE = 3.0


@dataclass
class LapQuality:
    lap: int | None  # None: the build sends no lap number
    frames: int = 0
    cte_frames: int = 0
    cte_abs_sum: float = 0.0
    cte_abs_max: float = 0.0
    #: sector -> [frames, frames with a crash]; only frames with crash information
    sectors: dict[int, list[int]] = field(default_factory=dict)
    obes: int | None = None
    crashes: int | None = None

    @property
    def mean_abs_cte(self) -> float | None:
        return self.cte_abs_sum / self.cte_frames if self.cte_frames else None

    @property
    def max_abs_cte(self) -> float | None:
        return self.cte_abs_max if self.cte_frames else None

    def completed_sum(self) -> float:
        """Sum over this lap's sectors of the TUM ``completed`` percentage."""
        return sum(100.0 * (1 - crashed / frames) for frames, crashed in self.sectors.values())


def _add(total: int | None, n: int) -> int:
    return (total or 0) + n


class DrivingQuality:
    """Accumulates extended telemetry frame by frame; thread-safe.

    :meth:`add` takes the dict from :class:`drive.extras.ExtrasReader`; :meth:`live`
    is what the dashboard shows; :meth:`report` and :meth:`summary_lines` are the
    end-of-run summary.
    """

    def __init__(self, obe_cte: float = OBE_CTE):
        if not obe_cte > 0:
            raise ValueError(f"obe_cte must be > 0. Received: obe_cte={obe_cte}")
        self.obe_cte = obe_cte
        self._lock = threading.Lock()
        self._laps: dict[int | None, LapQuality] = {}
        self._all_sectors: set[int] = set()
        self._counters: dict[str, int] = {}  # last tot_obes / tot_crashes seen
        self._off_road = False
        self._touching = False
        self._latest: dict = {}
        self.frames = 0

    def add(self, extras: dict) -> None:
        """One frame's extended fields (nothing happens for an empty dict)."""
        if not extras:
            return
        lap_no = extras.get("lapNumber", extras.get("lap"))
        sector = extras.get("currentWayPoint", extras.get("sector"))
        cte = extras.get("cte")
        crashed = self._crashed(extras)
        with self._lock:
            self.frames += 1
            lap = self._laps.get(lap_no)
            if lap is None:
                lap = self._laps[lap_no] = LapQuality(lap_no)
            lap.frames += 1
            if cte is not None:
                lap.cte_frames += 1
                lap.cte_abs_sum += abs(cte)
                lap.cte_abs_max = max(lap.cte_abs_max, abs(cte))
            if sector is not None:
                self._all_sectors.add(sector)
                if crashed is not None:
                    counts = lap.sectors.setdefault(sector, [0, 0])
                    counts[0] += 1
                    counts[1] += int(crashed)
            self._count_events(lap, extras, cte)
            self._latest = {
                "cte": cte,
                "lap": lap_no,
                "sector": sector,
                "max_abs_cte_lap": lap.max_abs_cte,
            }

    @staticmethod
    def _crashed(extras: dict) -> bool | None:
        if "crash" in extras:
            return bool(extras["crash"])
        if "hit" in extras:
            return str(extras["hit"]).lower() not in ("none", "")
        return None

    def _count_events(self, lap: LapQuality, extras: dict, cte: float | None) -> None:
        """OBEs and crashes in this frame: the build's counters, else runs of frames."""
        for key, attr in (("tot_obes", "obes"), ("tot_crashes", "crashes")):
            if key in extras:
                value = extras[key]
                before = self._counters.get(key, value)  # the first frame sets the base
                if value < before:  # the simulator restarted its count
                    before = 0
                setattr(lap, attr, _add(getattr(lap, attr), value - before))
                self._counters[key] = value
        if "tot_obes" not in extras and cte is not None:
            off = abs(cte) > self.obe_cte
            lap.obes = _add(lap.obes, int(off and not self._off_road))
            self._off_road = off
        if "tot_crashes" not in extras and "hit" in extras:
            touching = str(extras["hit"]).lower() not in ("none", "")
            lap.crashes = _add(lap.crashes, int(touching and not self._touching))
            self._touching = touching

    def live(self) -> dict | None:
        """Latest CTE, lap, sector and the run's OBE and crash totals; None before any."""
        with self._lock:
            if not self.frames:
                return None
            laps = list(self._laps.values())
            state = dict(self._latest, frames=self.frames)
        state["obes"] = _total(lap.obes for lap in laps)
        state["crashes"] = _total(lap.crashes for lap in laps)
        return state

    def report(self) -> dict | None:
        """Per-lap and whole-run figures (JSON-ready), or None if no frame had extras."""
        with self._lock:
            if not self.frames:
                return None
            laps = [self._laps[k] for k in sorted(self._laps, key=_lap_order)]
            n_sectors = len(self._all_sectors)
        rows = [_row(_name(lap), [lap], n_sectors) for lap in laps]
        if len(laps) > 1:
            rows.append(_row("all", laps, n_sectors))
        return {
            "frames": self.frames,
            "sectors_per_lap": n_sectors or None,
            "obe_cte": self.obe_cte,
            "rows": rows,
        }

    def summary_lines(self) -> list[str]:
        """The end-of-run table, one string per line; empty if no frame had extras."""
        report = self.report()
        if report is None:
            return []
        lines = [
            f"driving quality over {report['frames']:,} frames with extended telemetry "
            "(TUM driving-quality-metrics definitions, docs/driving.md):",
            f"{'lap':>5} {'frames':>7} {'sectors':>8} {'completed%':>10} "
            f"{'mean|CTE|':>9} {'max|CTE|':>8} {'OBEs':>5} {'crashes':>7}",
        ]
        for r in report["rows"]:
            lines.append(
                f"{r['lap']:>5} {r['frames']:>7} {_text(r['sectors']):>8} "
                f"{_num(r['completed_pct'], 1):>10} {_num(r['mean_abs_cte'], 3):>9} "
                f"{_num(r['max_abs_cte'], 3):>8} {_text(r['obes']):>5} {_text(r['crashes']):>7}"
            )
        return lines


def _name(lap: LapQuality) -> str:
    return "run" if lap.lap is None else str(lap.lap)


def _lap_order(key: int | None) -> float:
    return -math.inf if key is None else key


def _total(values) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _row(name: str, laps: list[LapQuality], n_sectors: int) -> dict:
    cte_frames = sum(lap.cte_frames for lap in laps)
    with_sectors = [lap for lap in laps if lap.sectors]
    completed = None
    if n_sectors and with_sectors:
        completed = sum(lap.completed_sum() for lap in with_sectors) / (
            n_sectors * len(with_sectors)
        )
    reached = sum(len(lap.sectors) for lap in with_sectors)
    return {
        "lap": name,
        "frames": sum(lap.frames for lap in laps),
        "sectors": f"{reached}/{n_sectors * len(with_sectors)}" if with_sectors else None,
        "completed_pct": completed,
        "mean_abs_cte": sum(lap.cte_abs_sum for lap in laps) / cte_frames if cte_frames else None,
        "max_abs_cte": max(lap.cte_abs_max for lap in laps) if cte_frames else None,
        "obes": _total(lap.obes for lap in laps),
        "crashes": _total(lap.crashes for lap in laps),
    }


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _text(value) -> str:
    return "-" if value is None else str(value)
