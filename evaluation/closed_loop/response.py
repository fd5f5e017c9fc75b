"""How strongly a model answers a displacement, against the label it was taught for it.

``python evaluate.py response MODEL LOG...``: at frames spread along each drivable
stretch the car is put where the recovery trials start it (:mod:`evaluation.closed_loop.
recovery`: 0.5 m and 1 m to either side, turned 5 degrees either way), the view of that
pose is synthesised as the closed loop synthesises it, and the model's change of
steering against the view on the path is set beside the change of the recovery label
(:func:`training.recovery_view.recovery_label`, the function training labels with,
over the look-ahead given). A ratio of 1 is a model that learnt its labels' answer; 0.5
steers back half as hard as taught, 2 twice as hard.

It explains closed-loop figures rather than replacing them: a model that under-answers
small offsets fails recovery trials by drifting, one that over-answers heading weaves
(docs/driving-quality.md, "The expert, and what our models have not learnt").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.closed_loop.recovery import RECOVERY_OFFSETS_M, RECOVERY_YAWS_DEG
from evaluation.closed_loop.reference import Reference
from evaluation.closed_loop.views import SynthesizedViews
from evaluation.outputs import markdown_table, write_csv, write_json

logger = logging.getLogger("evaluation")

#: One probed frame every this many frames of a stretch (at least two per stretch).
DEFAULT_EVERY = 25
#: Frames kept clear at either end of a stretch.
EDGE_FRAMES = 5


@dataclass(frozen=True)
class Kind:
    """A displacement: the car's rear axle ``offset_m`` right of the recorded one, or
    turned ``yaw_deg`` right of it."""

    offset_m: float = 0.0
    yaw_deg: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.offset_m:+g} m" if self.offset_m else f"{self.yaw_deg:+g} deg"


def kinds(
    offsets_m: Sequence[float] = RECOVERY_OFFSETS_M, yaws_deg: Sequence[float] = RECOVERY_YAWS_DEG
) -> list[Kind]:
    """The recovery trials' displacements, offsets first (ValueError for a zero one:
    it would compare the view on the path with itself)."""
    out = [Kind(offset_m=float(o)) for o in offsets_m] + [Kind(yaw_deg=float(y)) for y in yaws_deg]
    bad = [k for k in out if not (k.offset_m or k.yaw_deg)]
    if bad or not out:
        raise ValueError(
            f"expected non-zero offsets (m) and yaws (degrees); got offsets {list(offsets_m)} "
            f"and yaws {list(yaws_deg)}"
        )
    return out


def taught(config: dict, lookahead_m: float | None, default_m: float) -> dict:
    """The recovery label the model was taught: ``lookahead_m`` when given, else the
    run's own (``config.json``'s ``settings.augment``: look-ahead and gain), else
    ``default_m`` with gain 1. Says where the figures came from."""
    augment = (config.get("settings") or {}).get("augment") or {}
    gain = float(augment.get("recovery_gain", 1.0))
    if lookahead_m is not None:
        return {"lookahead_m": float(lookahead_m), "gain": gain, "source": "--lookahead"}
    if "lookahead_m" in augment:
        return {"lookahead_m": float(augment["lookahead_m"]), "gain": gain, "source": "run config"}
    return {"lookahead_m": float(default_m), "gain": 1.0, "source": "default (no run config)"}


def check_lookahead(lookahead_m: float) -> None:
    """The recovery label's look-ahead: finite and > 0 m (ValueError, named)."""
    if not (math.isfinite(lookahead_m) and lookahead_m > 0):
        raise ValueError(f"--lookahead needs a look-ahead in metres > 0, got {lookahead_m:g}")


def probe_frames(n: int, every: int = DEFAULT_EVERY) -> np.ndarray:
    """Evenly spread frames of a stretch of ``n`` frames: ``max(2, n // every)`` of
    them, :data:`EDGE_FRAMES` clear of either end (none when the stretch is shorter
    than twice that)."""
    if every < 1:
        raise ValueError(f"expected a probe every N >= 1 frames; got {every}")
    if n <= 2 * EDGE_FRAMES:
        return np.zeros(0, np.int64)
    return np.linspace(EDGE_FRAMES, n - EDGE_FRAMES, max(2, n // every)).astype(np.int64)


def probe_reference(
    ref: Reference,
    predictor,
    camera,
    *,
    lookahead_m: float,
    displacements: Sequence[Kind],
    every: int = DEFAULT_EVERY,
    gain: float = 1.0,
) -> dict[str, np.ndarray]:
    """Every probe of ``ref``: per probed frame and displacement, the recorded
    steering, the model's answer on the path and displaced, and the change of the
    label over ``lookahead_m`` with ``gain`` on its correction. Columns of equal
    length (frames x displacements)."""
    from training.recovery_view import recovery_label  # heavy: keras

    cols: dict[str, list] = {k: [] for k in ("segment", "frame", "row", "kind", "human")}
    cols.update(model_on_path=[], model=[], offset_m=[], yaw_rad=[])
    for s, seg in enumerate(ref.segments):
        views = SynthesizedViews(seg.centre, camera, seg.sides, bonnet=ref.bonnet)
        for b in probe_frames(len(seg.path), every):
            on_path = predictor.predict(views(int(b), 0.0, 0.0, 0.0)[0])
            for kind in displacements:
                yaw = math.radians(kind.yaw_deg)
                cols["segment"].append(s)
                cols["frame"].append(int(b))
                cols["row"].append(int(seg.path.rows[b]))
                cols["kind"].append(kind.name)
                cols["human"].append(float(seg.path.steering[b]))
                cols["model_on_path"].append(on_path)
                cols["model"].append(predictor.predict(views(int(b), kind.offset_m, 0.0, yaw)[0]))
                cols["offset_m"].append(kind.offset_m)
                cols["yaw_rad"].append(yaw)
    out = {k: np.asarray(v) for k, v in cols.items()}
    # Every probe's label at once, displaced and on the path.
    human, offset, yaw = out["human"].astype(np.float32), out.pop("offset_m"), out.pop("yaw_rad")
    displaced = np.asarray(recovery_label(human, offset, yaw, lookahead_m, gain), np.float64)
    zero = np.zeros_like(offset)
    on_path = np.asarray(recovery_label(human, zero, zero, lookahead_m, gain), np.float64)
    out["model_change"] = out["model"] - out["model_on_path"]
    out["label_change"] = displaced - on_path
    return out


def summarise(
    probes: dict[str, dict[str, np.ndarray]], displacements: Sequence[Kind], meta: dict
) -> dict:
    """Per log and displacement: the mean change of the model's answer and of the
    label, and their ratio; per log the least-squares slope of the model's change on
    the label's over every probe (1: the label's answer)."""
    logs = {}
    for name, p in probes.items():
        dm, dl = p["model_change"].astype(np.float64), p["label_change"].astype(np.float64)
        per_kind = {}
        for kind in displacements:
            m = p["kind"] == kind.name
            model, lab = float(np.mean(dm[m])), float(np.mean(dl[m]))
            per_kind[kind.name] = {
                "model_change": model,
                "label_change": lab,
                "ratio": model / lab if lab else None,
                "probes": int(m.sum()),
            }
        denom = float(dl @ dl)
        logs[name] = {
            "frames": int(len(dm) // max(1, len(displacements))),
            "slope": float(dm @ dl) / denom if denom else None,
            "kinds": per_kind,
        }
    return {**meta, "kinds": [k.name for k in displacements], "logs": logs}


def _cell(fig: dict) -> str:
    ratio = "-" if fig["ratio"] is None else f"{fig['ratio']:.2f}x"
    return f"{fig['model_change']:+.3f} / {fig['label_change']:+.3f} = {ratio}"


def report_md(summary: dict) -> str:
    head = [
        f"# Answer to a displacement: {summary['model']}",
        "",
        f"Model `{summary['model_path']}` ({summary['runtime']}), recovery labels over "
        f"{summary['lookahead_m']:g} m with gain {summary['gain']:g} "
        f"({summary['label_source']}), a probe every {summary['every']} frames. Each cell: "
        "the mean change of the model's steering when the car is displaced / the mean "
        "change of the label = their ratio (1: the answer it was taught; below 1 it steers "
        "back too little, above 1 too much). Offsets are of the rear axle, positive to "
        "the right; yaws positive to the right.",
        "",
    ]
    rows = [
        [name, str(log["frames"]), "-" if log["slope"] is None else f"{log['slope']:.2f}x"]
        + [_cell(log["kinds"][k]) for k in summary["kinds"]]
        for name, log in summary["logs"].items()
    ]
    table = markdown_table(["log", "frames", "slope"] + summary["kinds"], rows)
    return "\n".join(head) + "\n" + table


def write_outputs(summary: dict, probes: dict[str, dict[str, np.ndarray]], out) -> None:
    """``response.json``, ``response.md``, ``probes.csv`` (one row per probe) and
    ``response.png`` (the ratios) in ``out``."""
    from evaluation.plots import bar_chart  # heavy: matplotlib

    write_json(out / "response.json", summary)
    (out / "response.md").write_text(report_md(summary))
    columns: dict[str, list] = {"log": []}
    for name, p in probes.items():
        columns["log"] += [name] * len(p["kind"])
        for k, v in p.items():
            columns.setdefault(k, []).extend(v.tolist())
    write_csv(out / "probes.csv", columns)
    labels, ratios = [], []
    for name, log in summary["logs"].items():
        for kind, fig in log["kinds"].items():
            labels.append(f"{name}\n{kind}")
            ratios.append(math.nan if fig["ratio"] is None else fig["ratio"])
    bar_chart(
        labels,
        ratios,
        out / "response.png",
        ylabel="model's change / label's change",
        title=f"{summary['model']}: answer to a displacement (1 = the label's)",
    )
