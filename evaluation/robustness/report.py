"""Reports of ``evaluate.py robustness`` and its comparison across models.

Per model: ``robustness.json`` (every figure), ``robustness.md`` (tables),
``heatmap_shift.png``, ``heatmap_error.png`` (open loop) and ``heatmap_autonomy.png``
(closed loop), corruption x intensity, and ``corruptions.png`` (one real frame under
every corruption at every intensity).

Across models (``evaluate.py compare --robustness``), ImageNet-C's summary
(Hendrycks & Dietterich 2019, section 3) with open-loop steering error in place of
top-1 error: for model f, corruption c and intensity s, E(f, c, s) is the replay MAE
against the human and E(f, clean) that of the clean frames;
``CE(f, c) = sum_s E(f, c, s) / sum_s E(b, c, s)`` and
``relative CE(f, c) = sum_s (E(f, c, s) - E(f, clean)) / sum_s (E(b, c, s) - E(b, clean))``
against a baseline model b (the first model unless ``--robustness-baseline``); mCE and
relative mCE are their means over corruptions. Because a model that hugs zero can
have a small MAE without seeing the road, the steering shift (mean |corrupted - clean
prediction|) is normalised the same way (mean shift ratio), and closed-loop autonomy
under corruption is the driving figure.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from evaluation.outputs import markdown_table, write_json
from evaluation.robustness.corruptions import CORRUPTIONS, corrupt


def _mean(values) -> float:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else math.nan


def summary(result: dict) -> dict:
    """Headline figures: mean shift and error over every condition, per intensity,
    and the closed loop's clean and corrupted autonomy."""
    ol = result["open_loop"]
    cells = [(s, v) for c in ol["corrupted"].values() for s, v in c.items()]
    out = {
        "clean_mae": ol["clean"]["mae"],
        "mean_shift": _mean(v["shift"] for _, v in cells),
        "mean_mae": _mean(v["mae"] for _, v in cells),
        "per_intensity": {
            s: {
                "shift": _mean(v["shift"] for k, v in cells if k == s),
                "mae": _mean(v["mae"] for k, v in cells if k == s),
            }
            for s in dict.fromkeys(k for k, _ in cells)
        },
    }
    cl = result.get("closed_loop")
    if cl:
        figs = [(s, v) for c in cl["corrupted"].values() for s, v in c.items()]
        worst = min(
            ((c, s, v) for c, d in cl["corrupted"].items() for s, v in d.items()),
            key=lambda t: t[2]["autonomy_bounded_percent"],
            default=None,
        )
        out["closed_loop"] = {
            "clean_interventions": cl["clean"]["interventions"],
            "clean_autonomy_percent": cl["clean"]["autonomy_percent"],
            "clean_autonomy_bounded_percent": cl["clean"]["autonomy_bounded_percent"],
            "mean_interventions": _mean(v["interventions"] for _, v in figs),
            "mean_autonomy_percent": _mean(v["autonomy_percent"] for _, v in figs),
            "mean_autonomy_bounded_percent": _mean(v["autonomy_bounded_percent"] for _, v in figs),
            "per_intensity_bounded": {
                s: _mean(v["autonomy_bounded_percent"] for k, v in figs if k == s)
                for s in dict.fromkeys(k for k, _ in figs)
            },
            "worst": None
            if worst is None
            else {"corruption": worst[0], "intensity": int(worst[1]), **worst[2]},
        }
    return out


def _grid_rows(table: dict, key: str, intensities) -> list[list]:
    rows = []
    for name, cells in table.items():
        vals = [cells[str(s)][key] for s in intensities]
        rows.append([name, *vals, _mean(vals)])
    return rows


def report_markdown(result: dict) -> str:
    s = result["summary"]
    ol, levels = result["open_loop"], result["intensities"]
    cols = [str(k) for k in levels]
    t = result["timing"]
    text = [f"# Robustness of {result['model']}\n"]
    text.append(
        f"Logs: {', '.join(Path(p).parent.name for p in result['logs'])}; {ol['frames']:,} "
        f"frames open loop; seed {result['seed']}; runtime {result['runtime']}; "
        f"{t['total_s']:.0f} s (open loop {t['open_loop_s']:.0f} s"
        + (f", closed loop {t['closed_loop_s']:.0f} s" if "closed_loop_s" in t else "")
        + "). Corruptions and their formulas at the end; `corruptions.png` shows them.\n"
    )
    text.append("## Open loop\n")
    text.append(
        f"Clean frames: MAE against the human {s['clean_mae']:.4f}. Over every "
        f"corruption and intensity: mean shift {s['mean_shift']:.4f}, mean MAE "
        f"{s['mean_mae']:.4f}.\n"
    )
    text.append(
        "Steering shift, mean |corrupted - clean prediction| (steering units, 1 = 25 deg; "
        "`heatmap_shift.png`):\n"
    )
    text.append(
        markdown_table(["corruption", *cols, "mean"], _grid_rows(ol["corrupted"], "shift", levels))
    )
    text.append(f"\nMAE against the human (clean {s['clean_mae']:.4f}; `heatmap_error.png`):\n")
    text.append(
        markdown_table(["corruption", *cols, "mean"], _grid_rows(ol["corrupted"], "mae", levels))
    )
    cl = result.get("closed_loop")
    if cl:
        text.append(_closed_loop_markdown(cl, s["closed_loop"]))
    text.append("\n## The corruptions\n")
    text.append(
        markdown_table(
            ["corruption", "formula", "parameter at intensity 1 / 2 / 3 / 4 / 5", "source"],
            [
                [c.name, c.formula, " / ".join(str(p) for p in c.params), c.source]
                for c in CORRUPTIONS.values()
                if c.name in result["corruptions"]
            ],
        )
    )
    return "\n".join(text)


def _closed_loop_markdown(cl: dict, s: dict) -> str:
    levels = [str(k) for k in cl["intensities"]]
    limit = ""
    if cl["drive_seconds"]:
        limit = f"; each stretch driven {cl['drive_seconds']:g} s at most"
    out = ["\n## Closed loop\n"]
    out.append(
        f"Intervention: {cl['criterion_text']} (`--criterion {cl['criterion']}`){limit}. "
        f"Clean: {s['clean_interventions']} interventions in {cl['clean']['elapsed_s']:.0f} s, "
        f"autonomy {s['clean_autonomy_percent']:.1f}% (bounded "
        f"{s['clean_autonomy_bounded_percent']:.1f}%). Under corruption, mean: "
        f"{s['mean_interventions']:.1f} interventions, autonomy "
        f"{s['mean_autonomy_percent']:.1f}% (bounded {s['mean_autonomy_bounded_percent']:.1f}%). "
        "Blind baselines (they never see the views): "
        + ", ".join(
            f"{n} {b['interventions']} interventions ({b['autonomy_percent']:.1f}%)"
            for n, b in cl["baselines"].items()
        )
        + ".\n"
    )
    out.append(
        "Interventions (NVIDIA autonomy %) per corruption and intensity "
        "(`heatmap_autonomy.png`, bounded autonomy):\n"
    )
    rows = [
        [name, *[f"{d[k]['interventions']} ({d[k]['autonomy_percent']:.0f}%)" for k in levels]]
        for name, d in cl["corrupted"].items()
    ]
    out.append(markdown_table(["corruption", *levels], rows))
    return "\n".join(out)


def heatmap(
    matrix: np.ndarray, rows, cols, path: Path, *, title: str, label: str, fmt: str = "{:.3f}"
) -> Path:
    """A corruption x intensity heat map with each cell's value written in it."""
    fig = Figure(figsize=(1.2 + 0.9 * len(cols), 0.9 + 0.4 * len(rows)))
    ax = fig.add_subplot()
    finite = matrix[np.isfinite(matrix)]
    im = ax.imshow(matrix, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("intensity")
    ax.set_title(title)
    mid = float(finite.mean()) if finite.size else 0.0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            v = matrix[i, j]
            if np.isfinite(v):
                colour = "black" if v > mid else "white"
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(im, ax=ax, label=label)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def corruption_grid(frame: np.ndarray, path: Path, *, seed: int = 0, key: int = 0) -> Path:
    """One frame under every corruption (rows) at intensities 0-5 (columns)."""
    h, w = frame.shape[:2]
    left, top = 120, 18
    names = list(CORRUPTIONS)
    sheet = Image.new("RGB", (left + 6 * w, top + len(names) * h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j in range(6):
        draw.text((left + j * w + w // 2 - 20, 3), "clean" if j == 0 else f"{j}", fill=(0, 0, 0))
    for i, name in enumerate(names):
        draw.text((6, top + i * h + h // 2 - 6), name, fill=(0, 0, 0))
        for j in range(6):
            tile = corrupt(frame, name, j, seed=seed, key=key)
            sheet.paste(Image.fromarray(tile), (left + j * w, top + i * h))
    sheet.save(path)
    return path


def write_outputs(result: dict, out: Path, frame: np.ndarray | None, frame_key: int = 0) -> None:
    result["summary"] = summary(result)
    write_json(out / "robustness.json", result)
    (out / "robustness.md").write_text(report_markdown(result), encoding="utf-8")
    ol, levels = result["open_loop"], result["intensities"]
    names = list(ol["corrupted"])
    for key, fname, title in (
        ("shift", "heatmap_shift.png", "steering shift from the clean prediction (mean abs)"),
        ("mae", "heatmap_error.png", "MAE against the human"),
    ):
        m = np.array([[ol["corrupted"][n][str(s)][key] for s in levels] for n in names])
        if key == "mae":
            m = np.concatenate([np.full((len(names), 1), ol["clean"]["mae"]), m], axis=1)
        heatmap(
            m,
            names,
            (["clean"] if key == "mae" else []) + list(levels),
            out / fname,
            title=f"{result['model']}: {title}",
            label="steering units (1 = 25 deg)",
        )
    cl = result.get("closed_loop")
    if cl:
        cn, cs = list(cl["corrupted"]), cl["intensities"]
        m = np.array(
            [
                [cl["clean"]["autonomy_bounded_percent"]]
                + [cl["corrupted"][n][str(s)]["autonomy_bounded_percent"] for s in cs]
                for n in cn
            ]
        )
        heatmap(
            m,
            cn,
            ["clean", *cs],
            out / "heatmap_autonomy.png",
            fmt="{:.0f}",
            title=f"{result['model']}: closed-loop autonomy, bounded (%)",
            label="%",
        )
    if frame is not None:
        corruption_grid(frame, out / "corruptions.png", seed=result["seed"], key=frame_key)


# ------------------------------------------------------------------ across models


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
            "mce": _mean(ce.values()),
            # Only where the baseline's error grows under every corruption.
            "relative_mce": _mean(rce.values())
            if all(map(math.isfinite, rce.values()))
            else math.nan,
            "relative_ce_defined": sum(map(math.isfinite, rce.values())),
            "mean_shift": s["mean_shift"],
            "shift_ratio": _mean(shift.values()),
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
