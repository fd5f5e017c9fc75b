"""Scores of closed-loop drives (:mod:`evaluation.closed_loop.loop`).

NVIDIA's autonomy ``(1 - 6 s x N / T) x 100`` (negative for poor policies), the
bounded form ``(1 - 6N / (T + 6N)) x 100``, interventions per km, offset, heading
and edge-margin statistics, time within 0.3 m / 0.5 m of the path and the share of
synthesised pixels that had no source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from evaluation.closed_loop.loop import Trace

#: NVIDIA's cost of one intervention: a human takes over, re-centres and hands back.
PENALTY_S = 6.0
WITHIN_M = (0.3, 0.5)


def autonomy(interventions: int, elapsed_s: float) -> tuple[float, float]:
    """NVIDIA's autonomy in percent, and the bounded form ``1 - 6N / (T + 6N)`` in
    percent (0..100: equal to NVIDIA's for few interventions, never negative)."""
    if elapsed_s <= 0:
        return math.nan, math.nan
    penalty = PENALTY_S * interventions
    return (1.0 - penalty / elapsed_s) * 100.0, (1.0 - penalty / (elapsed_s + penalty)) * 100.0


def _stats(a: np.ndarray) -> dict:
    a = a[np.isfinite(a)]
    if not a.size:
        return {"mean": math.nan, "p95": math.nan, "max": math.nan}
    return {"mean": float(a.mean()), "p95": float(np.percentile(a, 95)), "max": float(a.max())}


def score(traces: Sequence[Trace]) -> dict:
    """Scores of single-car runs (one Trace per driven segment)."""

    def col(name: str) -> np.ndarray:
        parts = [getattr(tr, name)[:, 0][tr.active[:, 0]] for tr in traces if len(tr.time)]
        return np.concatenate(parts) if parts else np.zeros(0)

    dt, ds = col("dt"), col("ds")
    off = np.abs(col("offset"))
    head = np.degrees(np.abs(col("heading_error")))
    margin = col("margin")
    n_int = int(sum(int(tr.intervention[:, 0].sum()) for tr in traces if len(tr.time)))
    elapsed = float(dt.sum())
    dist_km = float(ds.sum()) / 1000.0
    auto, bounded = autonomy(n_int, elapsed)
    finite = margin[np.isfinite(margin)]
    out = {
        "steps": int(dt.size),
        "elapsed_s": elapsed,
        "distance_km": dist_km,
        "interventions": n_int,
        "autonomy_percent": auto,
        "autonomy_bounded_percent": bounded,
        "interventions_per_km": n_int / dist_km if dist_km > 0 else math.nan,
        "lateral_offset_m": _stats(off),
        "heading_error_deg": _stats(head),
        "road_margin_m": {
            "min": float(finite.min()) if finite.size else math.nan,
            "p5": float(np.percentile(finite, 5)) if finite.size else math.nan,
            "mean": float(finite.mean()) if finite.size else math.nan,
        },
        "invalid_pixel_share": _stats(col("invalid")),
    }
    for w in WITHIN_M:
        out[f"time_within_{w:g}m"] = (
            float(dt[off <= w].sum() / elapsed) if elapsed > 0 else math.nan
        )
    return out
