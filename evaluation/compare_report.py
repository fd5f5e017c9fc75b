"""What ``evaluate.py compare`` writes (:mod:`evaluation.compare` measures).

``report.md`` (one row per model beside the blind baselines, and the robustness
comparison with ``--robustness``), ``compare.json`` (every figure), ``profiles.md``
(per-layer parameters and MACs), bar charts of parameters, MACs, size, latency,
error and autonomy, and error and autonomy against MACs.
"""

from __future__ import annotations

import math
from pathlib import Path

from evaluation import plots
from evaluation.closed_loop.run import drive_counts
from evaluation.outputs import markdown_table, write_json
from evaluation.robustness.comparison import comparison_outputs
from models.macs import profile_markdown


def _get(row: dict, *keys):
    v = row
    for k in keys:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def report_markdown(
    rows: list[dict],
    logs: list[str],
    baselines: dict | None = None,
    repeats: tuple[int, float] = (1, 0.0),
    expert: dict | None = None,
) -> str:
    header = [
        "model",
        "arch",
        "params (trainable / total)",
        "MACs / frame",
        ".h5 no opt (KB)",
        ".h5 + Adam (KB)",
        ".keras (KB)",
        "latency p50 / p99 (ms)",
        "runtime",
        "val MSE",
        "replay MAE",
        "autonomy (%)",
        "bounded (%)",
        "interventions",
    ]
    body = []
    for r in rows:
        lat = r["latency"]
        body.append(
            [
                r["label"],
                r["arch"],
                f"{r['params_trainable']:,} / {r['params_total']:,}",
                r["macs"],
                r["size_bytes"]["h5_no_optimizer"] // 1024,
                r["size_bytes"]["h5_with_optimizer"] // 1024,
                r["size_bytes"]["keras"] // 1024,
                f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}",
                r["runtime"],
                r["val_mse"],
                _get(r, "replay", "mae"),
                _get(r, "closed_loop", "autonomy_percent"),
                _get(r, "closed_loop", "autonomy_bounded_percent"),
                _get(r, "closed_loop", "interventions"),
            ]
        )
    text = ["# Model comparison\n"]
    text.append(
        "Logs: " + (", ".join(logs) if logs else "none (replay and closed loop skipped)") + ". "
        "Latency: batch 1 on this machine's CPU through the drive server's fastest runtime. "
        "MACs: multiply-accumulates per frame, conventions in models/macs.py. Sizes: the "
        "model re-saved (.keras and .h5 without optimizer; .h5 with Adam moments).\n"
    )
    text.append(markdown_table(header, body))
    if baselines:
        text.append(closed_loop_markdown(rows, baselines, repeats, expert))
    text.append("\nPer-layer profiles: profiles.md. Figures: bar_*.png, scatter_*.png.\n")
    return "\n".join(text)


def closed_loop_markdown(
    rows: list[dict],
    baselines: dict,
    repeats: tuple[int, float] = (1, 0.0),
    expert: dict | None = None,
) -> str:
    """The models', the blind baselines' and the expert's closed-loop figures, one row
    per policy, and each log's interventions: the count of the policy's own drive, or
    with ``--repeats`` every drive's count with their mean and standard deviation (the
    ``repeats``, the drives per log and the repeated drives' steering noise, in the heading)."""
    expert = expert or {}
    figures = [(r["label"], r.get("closed_loop") or {}) for r in rows]
    figures += [*baselines.items(), *expert.items()]
    logs = list(dict.fromkeys(log for _, f in figures for log in f.get("logs", {})))
    drives, noise = repeats
    keys = ("interventions", "autonomy_percent", "autonomy_bounded_percent",
            "interventions_per_km", "recovered_share", "recovery_trials_judged",
            "recovery_trials_not_judged")  # fmt: skip

    def per_log(f: dict, log: str) -> str | int | None:
        one = f.get("logs", {}).get(log)
        if one is None:
            return None
        rep = one.get("repeats")
        if rep is None:
            return one["interventions"]
        n = rep["interventions"]
        return f"{drive_counts(n)}: {n['mean']:.1f} ({n['sd']:.1f})"

    head = "\nClosed loop beside the blind baselines (the same logs, criterion and car; a "
    head += "model that does not beat steering straight clearly does not drive)"
    if expert:
        head += (
            f" and {', '.join(expert)} (the recorded steering plus the recovery label's pure "
            "pursuit from the car's true pose, which no camera sees: the ceiling of the "
            "labels, not a baseline)"
        )
    if drives > 1:
        head += (
            f". Each log driven {drives} times by each policy, the first as it steers, the "
            f"others with a tiny steering noise of {noise:g} (`--repeats`): the interventions "
            "of each drive, mean (sd); counts that differ by less than their spread are not "
            "told apart"
        )
    header = ["policy", *keys, *[f"{log}: interventions" for log in logs]]
    body = [[name, *[f.get(k) for k in keys], *[per_log(f, log) for log in logs]]
            for name, f in figures]  # fmt: skip
    return head + ":\n\n" + markdown_table(header, body)


def write_outputs(
    rows: list[dict],
    logs: list[str],
    out: Path,
    baselines: dict | None = None,
    robustness: tuple[list[dict], str] | None = None,
    repeats: tuple[int, float] = (1, 0.0),
    expert: dict | None = None,
) -> None:
    """Everything ``compare`` writes; ``robustness`` is the robustness comparison's
    (rows, baseline label) (:func:`evaluation.commands.compare_robustness`); ``repeats``
    the closed loop's drives per log and the steering noise of the repeated ones;
    ``expert`` the expert's figures, beside the baselines."""
    data = {"logs": logs, "models": rows, "baselines": baselines, "expert": expert}
    data["closed_loop_repeats"] = {"drives": repeats[0], "noise": repeats[1]}
    text = report_markdown(rows, logs, baselines, repeats, expert)
    if robustness:
        text += comparison_outputs(data, *robustness, out)
    write_json(out / "compare.json", data)
    (out / "report.md").write_text(text, encoding="utf-8")
    (out / "profiles.md").write_text(profiles_markdown(rows), encoding="utf-8")
    _charts(rows, out)


def profiles_markdown(rows: list[dict]) -> str:
    """``profiles.md``: every model's per-layer profile as :func:`profile_markdown`."""
    from models.macs import LayerRow  # heavy: imported on use (the models package loads keras)

    prof = []
    for r in rows:
        lr = [
            LayerRow(
                p["layer"], p["type"], (None, *p["output"]), p["params"], p["macs"], p["counted"]
            )
            for p in r["profile"]
        ]
        prof.append(profile_markdown(lr, f"{r['label']} ({r['arch']})"))
    return "# Per-layer profiles\n\n" + "\n".join(prof)


#: The build figures' bar charts: file name ``bar_<name>.png``, y label, title, value.
BARS = (
    ("params", "parameters", "parameters (total)", lambda r: r["params_total"]),
    ("macs", "million MACs / frame", "multiply-accumulates per frame", lambda r: r["macs"] / 1e6),
    (
        "size",
        "KB",
        ".h5 file size (no optimizer)",
        lambda r: r["size_bytes"]["h5_no_optimizer"] / 1024,
    ),
    ("latency", "ms", "CPU latency per frame, batch 1 (p50)", lambda r: r["latency"]["p50_ms"]),
)


def _charts(rows: list[dict], out: Path) -> None:
    """The bar charts of :data:`BARS`, and error and autonomy beside MACs."""
    labels = [r["label"] for r in rows]
    for name, ylabel, title, value in BARS:
        plots.bar_chart(
            labels, [value(r) for r in rows], out / f"bar_{name}.png", ylabel=ylabel, title=title
        )
    err = [_get(r, "replay", "mae") for r in rows]
    err_label = "replay MAE"
    if all(e is None for e in err):
        err = [r["val_mse"] for r in rows]
        err_label = "validation MSE"
    _bar_and_scatter(
        rows,
        err,
        "error",
        out,
        ylabel=err_label,
        title=err_label,
        scatter_title=f"{err_label} vs MACs",
    )
    auto = [_get(r, "closed_loop", "autonomy_bounded_percent") for r in rows]
    if any(a is not None for a in auto):
        _bar_and_scatter(
            rows,
            auto,
            "autonomy",
            out,
            ylabel="%",
            title="closed-loop autonomy (bounded)",
            scatter_ylabel="autonomy, bounded (%)",
            scatter_title="autonomy vs MACs",
        )


def _bar_and_scatter(
    rows: list[dict],
    values: list,
    name: str,
    out: Path,
    *,
    ylabel: str,
    title: str,
    scatter_title: str,
    scatter_ylabel: str | None = None,
) -> None:
    """``bar_<name>.png`` of ``values`` (None: missing) and ``scatter_<name>_vs_macs.png``."""
    labels = [r["label"] for r in rows]
    values = [math.nan if v is None else v for v in values]
    plots.bar_chart(labels, values, out / f"bar_{name}.png", ylabel=ylabel, title=title)
    plots.scatter(
        labels,
        [r["macs"] for r in rows],
        values,
        out / f"scatter_{name}_vs_macs.png",
        xlabel="MACs per frame",
        ylabel=scatter_ylabel or ylabel,
        title=scatter_title,
    )
