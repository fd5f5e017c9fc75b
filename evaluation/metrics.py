"""Open-loop metrics: the model's steering against the human's on recorded frames.

Steering is the simulator's -1..1 command (wheel angle / 25 degrees, > 0 right).
Open-loop error does not rank models by how they drive (a small, consistent bias
costs little here and a lot on the road); these numbers describe agreement with
the human, :mod:`evaluation.closed_loop.loop` judges the driving.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Bucket edges on |human steering|. 0.02 is 0.5 degrees of wheel (a radius of
#: 330 m with the 2.87 m wheelbase: straight road); 0.15 is 3.75 degrees (a 44 m
#: radius, about the lake track's tighter bends at 35-45 m).
STRAIGHT_MAX = 0.02
GENTLE_MAX = 0.15
BUCKETS = ("straight", "gentle", "sharp")


def bucket_of(human: np.ndarray) -> np.ndarray:
    """Bucket index (0 straight, 1 gentle, 2 sharp) of each human steering value."""
    a = np.abs(np.asarray(human, dtype=np.float64))
    return np.where(a <= STRAIGHT_MAX, 0, np.where(a <= GENTLE_MAX, 1, 2))


def _errors(pred: np.ndarray, human: np.ndarray) -> dict[str, float]:
    err = pred - human
    n = err.size
    if n == 0:
        return {"n": 0, "mse": math.nan, "mae": math.nan, "rmse": math.nan, "bias": math.nan}
    mse = float(np.mean(err**2))
    return {
        "n": int(n),
        "mse": mse,
        "mae": float(np.mean(np.abs(err))),
        "rmse": math.sqrt(mse),
        "bias": float(np.mean(err)),
    }


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (undefined)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2:
        return math.nan
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.sum(da**2)) * float(np.sum(db**2)))
    return float(np.sum(da * db) / denom) if denom > 0 else math.nan


def steering_metrics(
    pred: np.ndarray, human: np.ndarray, segments: Sequence[int] | None = None
) -> dict:
    """All open-loop metrics of one set of frames.

    ``segments`` gives the lengths of consecutive time series inside the arrays
    (one per recording); frame-to-frame differences are taken inside each only.
    Returns a flat dict plus ``buckets``: per bucket n, mae, rmse and bias.
    """
    pred = np.asarray(pred, dtype=np.float64).ravel()
    human = np.asarray(human, dtype=np.float64).ravel()
    if pred.shape != human.shape:
        raise ValueError(
            f"pred and human must have the same length. Received: {pred.size} and {human.size}"
        )
    segments = [pred.size] if segments is None else list(segments)
    if sum(segments) != pred.size:
        raise ValueError(f"segments must sum to {pred.size}. Received: sum={sum(segments)}")
    out = _errors(pred, human)
    out["correlation"] = correlation(pred, human)

    turns = np.abs(human) > STRAIGHT_MAX
    out["turn_frames"] = int(turns.sum())
    out["sign_agreement_in_turns"] = (
        float(np.mean(np.sign(pred[turns]) == np.sign(human[turns]))) if turns.any() else math.nan
    )

    dp, dh = [], []
    start = 0
    for n in segments:
        dp.append(np.abs(np.diff(pred[start : start + n])))
        dh.append(np.abs(np.diff(human[start : start + n])))
        start += n
    dp_all, dh_all = np.concatenate(dp), np.concatenate(dh)
    out["pred_mean_abs_step"] = float(dp_all.mean()) if dp_all.size else math.nan
    out["human_mean_abs_step"] = float(dh_all.mean()) if dh_all.size else math.nan
    # > 1: the model's output jitters more from frame to frame than the human's.
    out["smoothness_ratio"] = (
        out["pred_mean_abs_step"] / out["human_mean_abs_step"]
        if dh_all.size and out["human_mean_abs_step"] > 0
        else math.nan
    )

    idx = bucket_of(human)
    out["buckets"] = {}
    for b, name in enumerate(BUCKETS):
        sel = idx == b
        e = _errors(pred[sel], human[sel])
        out["buckets"][name] = {k: e[k] for k in ("n", "mae", "rmse", "bias")}
    return out


METRIC_ROWS = (
    ("frames", "n"),
    ("MSE", "mse"),
    ("MAE", "mae"),
    ("RMSE", "rmse"),
    ("bias (pred - human)", "bias"),
    ("correlation", "correlation"),
    ("sign agreement in turns", "sign_agreement_in_turns"),
    ("mean abs step, model", "pred_mean_abs_step"),
    ("mean abs step, human", "human_mean_abs_step"),
    ("smoothness ratio (model/human)", "smoothness_ratio"),
)
