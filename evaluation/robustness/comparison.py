"""``evaluate.py compare --robustness``: robustness reports compared across models.

ImageNet-C's summary (Hendrycks & Dietterich 2019, section 3) with open-loop
steering error in place of top-1 error: for model f, corruption c and intensity s,
E(f, c, s) is the replay MAE against the human and E(f, clean) that of the clean
frames;
``CE(f, c) = sum_s E(f, c, s) / sum_s E(b, c, s)`` and
``relative CE(f, c) = sum_s (E(f, c, s) - E(f, clean)) / sum_s (E(b, c, s) - E(b, clean))``
against a baseline model b (the first model unless ``--robustness-baseline``); mCE and
relative mCE are their means over corruptions. Because a model that hugs zero can
have a small MAE without seeing the road, the steering shift (mean |corrupted - clean
prediction|) is normalised the same way (mean shift ratio), and closed-loop autonomy
under corruption is the driving figure.

The reports per model: :mod:`evaluation.robustness.report`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from evaluation import plots
from evaluation.outputs import markdown_table
from evaluation.robustness.report import finite_mean, summary


class RobustnessReportError(ValueError):
    """A robustness report that is missing or does not match the comparison."""


def load_report(folder: str | Path) -> dict:
    """``robustness.json`` of a folder written by ``evaluate.py robustness``."""
    path = Path(folder) / "robustness.json"
    if not path.is_file():
        raise RobustnessReportError(
            f"--robustness {folder}: no robustness.json there; expected a folder written by "
            "`evaluate.py robustness MODEL LOG --out DIR`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _check_alike(reports: list[dict], labels: list[str]) -> None:
    first = reports[0]
    for label, r in zip(labels[1:], reports[1:], strict=True):
        for key in ("corruptions", "intensities", "logs", "frames_per_log", "seed"):
            if r.get(key) != first.get(key):
                raise RobustnessReportError(
                    f"robustness reports differ in {key}: {labels[0]} has {first.get(key)}, "
                    f"{label} has {r.get(key)}; run them with the same options"
                )


#: Relative CE needs the baseline's error to grow: by at least 1% of its clean error,
#: averaged over the intensities (else the ratio of two noisy near-zero changes).
RELATIVE_MIN_GROWTH = 0.01


def _ratio(num: float, den: float) -> float:
    return num / den if abs(den) > 1e-12 else math.nan


def comparison(reports: list[dict], labels: list[str], baseline: int = 0) -> list[dict]:
    """ImageNet-C's mCE and relative mCE (module docstring), the shift ratio and the
    closed-loop figures under corruption, one row per model, against ``baseline``."""
    _check_alike(reports, labels)
    base = reports[baseline]["open_loop"]
    names, levels = reports[0]["corruptions"], [str(s) for s in reports[0]["intensities"]]
    rows = []
    for label, rep in zip(labels, reports, strict=True):
        ol = rep["open_loop"]
        ce, rce, shift = {}, {}, {}
        for c in names:
            mine = [ol["corrupted"][c][s] for s in levels]
            theirs = [base["corrupted"][c][s] for s in levels]
            ce[c] = _ratio(sum(v["mae"] for v in mine), sum(v["mae"] for v in theirs))
            grown = sum(v["mae"] - base["clean"]["mae"] for v in theirs)
            rce[c] = math.nan
            if grown > RELATIVE_MIN_GROWTH * len(levels) * base["clean"]["mae"]:
                rce[c] = sum(v["mae"] - ol["clean"]["mae"] for v in mine) / grown
            shift[c] = _ratio(sum(v["shift"] for v in mine), sum(v["shift"] for v in theirs))
        s = rep.get("summary") or summary(rep)
        row = {
            "label": label,
            "model": rep["model"],
            "clean_mae": ol["clean"]["mae"],
            "mean_mae": s["mean_mae"],
            "mce": finite_mean(ce.values()),
            # Only where the baseline's error grows under every corruption.
            "relative_mce": finite_mean(rce.values())
            if all(map(math.isfinite, rce.values()))
            else math.nan,
            "relative_ce_defined": sum(map(math.isfinite, rce.values())),
            "mean_shift": s["mean_shift"],
            "shift_ratio": finite_mean(shift.values()),
            "per_corruption": {"ce": ce, "relative_ce": rce, "shift_ratio": shift},
            "closed_loop": s.get("closed_loop"),
        }
        rows.append(row)
    return rows


def comparison_markdown(rows: list[dict], baseline: str) -> str:
    out = [
        "\n## Robustness under image corruptions\n",
        f"Open loop against the human (E = replay MAE), normalised by **{baseline}** as "
        "ImageNet-C normalises by AlexNet: mCE = mean over corruptions of sum_s E(c, s) / "
        "sum_s E_base(c, s); relative mCE the same with E(clean) subtracted from each E; "
        "shift = mean |corrupted - clean prediction|, shift ratio its normalised mean. "
        "Closed loop: the mean over the corrupted drives (the autonomy of a blind policy "
        "does not change under corruption).\n",
    ]
    undefined = len(rows[0]["per_corruption"]["ce"]) - rows[0]["relative_ce_defined"]
    if undefined:
        out.append(
            f"Relative CE is undefined for {undefined} corruption(s), where {baseline}'s "
            "error against the human grew by less than 1% of its clean error (or fell), so "
            "relative mCE is not given: the open-loop error against a human whose steering "
            "is mostly small barely responds to corruption; read the shift and the closed "
            "loop.\n"
        )
    header = [
        "model",
        "clean MAE",
        "mean MAE corrupted",
        "mCE",
        "relative mCE",
        "mean shift",
        "shift ratio",
        "interventions clean / corrupted (mean)",
        "autonomy clean / corrupted (%)",
        "bounded clean / corrupted (%)",
        "worst",
    ]
    body = []
    for r in rows:
        cl = r["closed_loop"]
        cells = ["-", "-", "-", "-"]
        if cl:
            w = cl["worst"]
            cells = [
                f"{cl['clean_interventions']} / {cl['mean_interventions']:.1f}",
                f"{cl['clean_autonomy_percent']:.1f} / {cl['mean_autonomy_percent']:.1f}",
                f"{cl['clean_autonomy_bounded_percent']:.1f} / "
                f"{cl['mean_autonomy_bounded_percent']:.1f}",
                f"{w['corruption']} {w['intensity']}: {w['interventions']}" if w else "-",
            ]
        body.append(
            [
                r["label"],
                r["clean_mae"],
                r["mean_mae"],
                r["mce"],
                r["relative_mce"],
                r["mean_shift"],
                r["shift_ratio"],
                *cells,
            ]
        )
    out.append(markdown_table(header, body, digits=3))
    names = list(rows[0]["per_corruption"]["ce"])
    for key, title in (
        ("ce", "Corruption error CE per corruption (1 = as the baseline)"),
        ("relative_ce", "Relative CE per corruption (- where undefined)"),
        ("shift_ratio", "Shift ratio per corruption"),
    ):
        out.append(f"\n{title}:\n")
        out.append(
            markdown_table(
                ["corruption", *[r["label"] for r in rows]],
                [[c, *[r["per_corruption"][key][c] for r in rows]] for c in names],
                digits=3,
            )
        )
    return "\n".join(out)


def comparison_outputs(data: dict, rows: list[dict], baseline: str, out: Path) -> str:
    """The comparison (:func:`comparison`'s ``rows`` against ``baseline``) into
    ``compare``'s ``data`` and two bar charts in ``out``; its markdown."""
    data["robustness"] = {"baseline": baseline, "models": rows}
    labels = [r["label"] for r in rows]
    plots.bar_chart(
        labels,
        [r["mce"] for r in rows],
        out / "bar_mce.png",
        ylabel=f"mCE (1 = {baseline})",
        title="mean corruption error, open loop",
    )
    auto = [(r["closed_loop"] or {}).get("mean_autonomy_bounded_percent") for r in rows]
    if any(a is not None for a in auto):
        plots.bar_chart(
            labels,
            [math.nan if a is None else a for a in auto],
            out / "bar_autonomy_corrupted.png",
            ylabel="%",
            title="closed-loop autonomy under corruption (bounded, mean)",
        )
    return comparison_markdown(rows, baseline)
