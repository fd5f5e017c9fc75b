"""Reports of ``evaluate.py robustness``, one model's.

``robustness.json`` (every figure), ``robustness.md`` (tables),
``heatmap_shift.png``, ``heatmap_error.png`` (open loop) and ``heatmap_autonomy.png``
(closed loop), corruption x intensity, and ``corruptions.png`` (one real frame under
every corruption at every intensity). Across models:
:mod:`evaluation.robustness.comparison`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from evaluation.closed_loop.run import drive_counts
from evaluation.outputs import markdown_table, write_json
from evaluation.robustness.corruptions import CORRUPTIONS, corrupt


def finite_mean(values) -> float:
    """The mean of the finite ``values`` (None and NaN left out; NaN when none is)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else math.nan


def summary(result: dict) -> dict:
    """Headline figures: mean shift and error over every condition, per intensity,
    and the closed loop's clean and corrupted autonomy."""
    ol = result["open_loop"]
    cells = [(s, v) for c in ol["corrupted"].values() for s, v in c.items()]
    out = {
        "clean_mae": ol["clean"]["mae"],
        "mean_shift": finite_mean(v["shift"] for _, v in cells),
        "mean_mae": finite_mean(v["mae"] for _, v in cells),
        "per_intensity": {
            s: {
                "shift": finite_mean(v["shift"] for k, v in cells if k == s),
                "mae": finite_mean(v["mae"] for k, v in cells if k == s),
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
            # With --repeats: the clean drives' interventions (values, mean, sd, range).
            "clean_interventions_spread": cl["clean"].get("repeats", {}).get("interventions"),
            "mean_interventions": finite_mean(v["interventions"] for _, v in figs),
            "mean_autonomy_percent": finite_mean(v["autonomy_percent"] for _, v in figs),
            "mean_autonomy_bounded_percent": finite_mean(
                v["autonomy_bounded_percent"] for _, v in figs
            ),
            "per_intensity_bounded": {
                s: finite_mean(v["autonomy_bounded_percent"] for k, v in figs if k == s)
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
        rows.append([name, *vals, finite_mean(vals)])
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


def _clean_spread(cl: dict, s: dict) -> str:
    """The repeated clean drives, as the report's closed-loop paragraph names them."""
    spread = s.get("clean_interventions_spread")
    if not spread:
        return ""
    return (
        f"; over {len(spread['values'])} clean drives (the 2nd and later with "
        f"{cl['repeat_noise']:g} steering noise, `--repeats`) {drive_counts(spread)}: mean "
        f"{spread['mean']:.1f}, sd {spread['sd']:.1f}, so a corruption's count from "
        f"{spread['min']:.0f} to {spread['max']:.0f} is no change"
    )


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
        f"{s['clean_autonomy_bounded_percent']:.1f}%){_clean_spread(cl, s)}. "
        "Under corruption, mean: "
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
