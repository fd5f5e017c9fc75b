"""Figures of the whole model (parameters, MACs, file size, LiteRT latency, closed loop)
and the ``report.json`` / ``report.md`` of a conversion."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.outputs import markdown_table
from core.recordings import read_recordings
from evaluation.closed_loop.loop import LoopConfig
from evaluation.closed_loop.policies import ModelPolicy
from evaluation.closed_loop.run import build_references, evaluate_recordings
from evaluation.closed_loop.scores import score
from models.io import parameter_counts
from models.macs import total_macs
from serving.runtime import LiteRTPredictor, check_parity, probe_frames, to_tflite

logger = logging.getLogger(__name__)

#: Batch-1 calls timed per model, in alternating rounds so that a change of load on the
#: shared CPU hits both models alike.
LATENCY_CALLS = 200
LATENCY_ROUNDS = 4


def model_figures(model, keras_file: Path) -> dict[str, Any]:
    return {
        "params": parameter_counts(model),
        "macs": int(total_macs(model)),
        "keras_file": str(keras_file),
        "keras_bytes": keras_file.stat().st_size,
    }


def litert_predictors(models: dict[str, Any], threads: int | None = 1) -> dict[str, Any]:
    """The project's serving path for each model: in-memory LiteRT, parity-checked.

    Returns ``{label: predictor}``, or ``{label: error message}`` where it failed (e.g.
    the JAX backend without TensorFlow).
    """
    out: dict[str, Any] = {}
    frames = probe_frames(4)
    for label, model in models.items():
        try:
            content = to_tflite(model)
            predictor = LiteRTPredictor(content, threads=threads, source=label)
            reference = model.predict(frames.astype(np.float32), verbose=0, batch_size=4)
            predictor.info["parity_max_abs_diff"] = check_parity(predictor, reference, frames)
            predictor.info["tflite_bytes"] = len(content)
            predictor.warm_up(10)
            out[label] = predictor
        except Exception as exc:  # conversion needs TensorFlow; report instead of failing
            logger.warning("LiteRT conversion of the %s model failed: %s", label, exc)
            out[label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return out


def latency(predictors: dict[str, Any], frame: np.ndarray, calls: int = LATENCY_CALLS) -> dict:
    """Median and 90th percentile of batch-1 ``predict`` per model (interleaved rounds)."""
    ready = {k: p for k, p in predictors.items() if not isinstance(p, str)}
    times: dict[str, list[float]] = {k: [] for k in ready}
    per_round = max(1, calls // LATENCY_ROUNDS)
    for _ in range(LATENCY_ROUNDS):
        for label, p in ready.items():
            for _ in range(per_round):
                start = time.perf_counter()
                p.predict(frame)
                times[label].append(time.perf_counter() - start)
    out: dict[str, Any] = {}
    for label, p in predictors.items():
        if isinstance(p, str):
            out[label] = {"error": p}
            continue
        t = np.array(times[label]) * 1e3
        out[label] = {
            "median_ms": float(np.median(t)),
            "p90_ms": float(np.percentile(t, 90)),
            "calls": len(t),
            "threads": p.info.get("threads"),
            "tflite_bytes": p.info.get("tflite_bytes"),
            "parity_max_abs_diff": p.info.get("parity_max_abs_diff"),
        }
    out["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return out


def closed_loop(predictors: dict[str, Any], logs: list[str], *, progress: bool = False) -> dict:
    """``evaluate.py closed-loop``'s method (default limits, no recovery trials) per model."""
    recordings = read_recordings(logs)
    config = LoopConfig()
    refs = build_references(recordings, config.camera, progress=progress)
    out: dict[str, Any] = {"logs": [str(r.csv_path) for r in recordings]}
    for label, p in predictors.items():
        if isinstance(p, str):
            out[label] = {"error": p}
            continue
        start = time.perf_counter()
        driven, _ = evaluate_recordings(
            refs, ModelPolicy(p, label), config, recovery_points=0, progress=progress
        )
        if not driven:
            out[label] = {"error": "no drivable stretch in the logs"}
            continue
        s = score([d.trace for d in driven])
        out[label] = {
            "autonomy_percent": s["autonomy_percent"],
            "autonomy_bounded_percent": s["autonomy_bounded_percent"],
            "interventions": s["interventions"],
            "elapsed_s": s["elapsed_s"],
            "distance_km": s["distance_km"],
            "mean_abs_offset_m": s["lateral_offset_m"]["mean"],
            "time_within_0.3m": s["time_within_0.3m"],
            "seconds": time.perf_counter() - start,
        }
        logger.info(
            "closed loop, %s model: autonomy %.1f%%, %d interventions in %.0f s",
            label,
            s["autonomy_percent"],
            s["interventions"],
            s["elapsed_s"],
        )
    return out


# --------------------------------------------------------------------------- markdown


def _f(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float) else f"{x:,}"


def _change(a, b) -> str:
    if not a or a is None or b is None:
        return "-"
    return f"{100.0 * (b - a) / a:+.1f}%"


def _val_cell(a: dict) -> str:
    """Validation MSE of an attempt; with end-to-end distillation, before -> after."""
    e2e = a.get("e2e")
    if not e2e:
        return f"{a['val_mse']:.5f}"
    kept = "" if e2e["kept"] else " (not kept)"
    return f"{e2e['val_mse_before']:.5f} -> e2e {e2e['val_mse_after']:.5f}{kept}"


def attempts_table(attempts: list[dict]) -> str:
    head = [
        "layer",
        "kernel",
        "sweep",
        "params before",
        "after",
        "saved",
        "kernel err (SVD)",
        "err init SVD",
        "err init LS",
        "err from upstream",
        "err after local FT",
        "err after e2e",
        "val MSE (local FT -> e2e)",
        "final x original",
        "accepted",
    ]
    rows = []
    for a in attempts:
        if "skipped" in a:
            rows.append([a["layer"], "", a["sweep"], *["-"] * 11, f"not retried ({a['skipped']})"])
            continue
        e = a["error"]

        def pre(key, e=e):
            return _f(e[key]["pre"], 3) if key in e else "-"

        rows.append(
            [
                a["layer"],
                a["kernel"],
                a["sweep"],
                f"{a['params_before']:,}",
                f"{a['params_after']:,}",
                f"{a['params_saved']:,}",
                _f(a["kernel_relative_error_svd"], 3),
                pre("svd"),
                pre("ls"),
                pre("upstream"),
                pre("tuned"),
                pre("e2e"),
                _val_cell(a),
                f"{a['val_ratio']:.3f}",
                "yes" if a["accepted"] else "no",
            ]
        )
    return markdown_table(head, rows)


def post_table(attempts: list[dict]) -> str:
    head = ["layer", "sweep", "SVD", "LS", "upstream", "after local FT", "after e2e"]
    rows = []
    for a in attempts:
        if "skipped" in a:
            continue
        e = a["error"]
        rows.append(
            [a["layer"], a["sweep"]]
            + [_f(e[k]["post"], 3) if k in e else "-" for k in ("svd", "ls", "upstream")]
            + [_f(e[k]["post"], 3) if k in e else "-" for k in ("tuned", "e2e")]
        )
    return markdown_table(head, rows)


def layers_table(report: dict) -> str:
    """The outcome per convolution: final parameters and the attempts that decided it."""
    rows = []
    for name, status in report["layers"].items():
        tried = [a for a in report["attempts"] if a["layer"] == name and "skipped" not in a]
        if not tried:
            rows.append([name, "", "", "", "", "not tried", ""])
            continue
        a = tried[-1]
        replaced = status == "replaced"
        rows.append(
            [
                name,
                a["kernel"],
                f"{a['params_before']:,}",
                f"{a['params_after'] if replaced else a['params_before']:,}",
                f"{a['params_saved'] if replaced else 0:,}",
                "replaced" if replaced else "kept (original weights)",
                ", ".join(
                    f"{t['sweep']}: {t['val_mse']:.5f} {'ok' if t['accepted'] else 'no'}"
                    for t in tried
                ),
            ]
        )
    head = ["layer", "kernel", "params before", "params now", "saved", "outcome", "val MSE"]
    return markdown_table(head, rows)


def overall_table(report: dict) -> str:
    o, s = report["original"], report["converted"]
    rows = [
        [
            "parameters",
            f"{o['params']['total']:,}",
            f"{s['params']['total']:,}",
            _change(o["params"]["total"], s["params"]["total"]),
        ],
        ["MACs per frame", f"{o['macs']:,}", f"{s['macs']:,}", _change(o["macs"], s["macs"])],
        [
            ".keras file (bytes, saved by this tool)",
            f"{o['keras_bytes']:,}",
            f"{s['keras_bytes']:,}",
            _change(o["keras_bytes"], s["keras_bytes"]),
        ],
        [
            "validation MSE",
            f"{report['val_mse']['original']:.5f}",
            f"{report['val_mse']['converted']:.5f}",
            _change(report["val_mse"]["original"], report["val_mse"]["converted"]),
        ],
    ]
    lat = report.get("latency") or {}
    lo, ls = lat.get("original", {}), lat.get("converted", {})
    if "median_ms" in lo and "median_ms" in ls:
        rows.append(
            [
                "LiteRT batch-1 latency, median (p90), ms",
                f"{lo['median_ms']:.2f} ({lo['p90_ms']:.2f})",
                f"{ls['median_ms']:.2f} ({ls['p90_ms']:.2f})",
                _change(lo["median_ms"], ls["median_ms"]),
            ]
        )
        rows.append(
            [
                ".tflite size (bytes)",
                f"{lo['tflite_bytes']:,}",
                f"{ls['tflite_bytes']:,}",
                _change(lo["tflite_bytes"], ls["tflite_bytes"]),
            ]
        )
    elif lat:
        rows.append(["LiteRT latency", lo.get("error", "-"), ls.get("error", "-"), ""])
    cl = report.get("closed_loop")
    if cl:
        co, cs = cl.get("original", {}), cl.get("converted", {})
        if "autonomy_percent" in co and "autonomy_percent" in cs:
            rows.append(
                [
                    "closed-loop autonomy %, NVIDIA / bounded (interventions)",
                    f"{co['autonomy_percent']:.1f} / {co['autonomy_bounded_percent']:.1f} "
                    f"({co['interventions']})",
                    f"{cs['autonomy_percent']:.1f} / {cs['autonomy_bounded_percent']:.1f} "
                    f"({cs['interventions']})",
                    "",
                ]
            )
            rows.append(
                [
                    "closed-loop mean abs offset (m)",
                    f"{co['mean_abs_offset_m']:.3f}",
                    f"{cs['mean_abs_offset_m']:.3f}",
                    "",
                ]
            )
    return markdown_table(["", "original", "converted", "change"], rows)


def markdown(report: dict) -> str:
    st = report["settings"]
    d = report["data"]
    out = [f"# Seed 004's conversion of {report['source']}\n"]
    out.append(f"Command: `{report['command']}`\n")
    replaced = [n for n, v in report["layers"].items() if v == "replaced"]
    out.append(
        f"**{len(replaced)} of {len(report['layers'])} convolutions replaced** "
        f"({', '.join(replaced) or 'none'}); validation MSE "
        f"{report['val_mse']['original']:.5f} -> {report['val_mse']['converted']:.5f} "
        f"(limit {report['val_mse']['limit']:.5f}: val_mse <= (1 + {st['tolerance']:g}) x "
        f"original); {report['seconds']:.0f} s.\n"
    )
    out.append(
        f"Data: {d['train_frames']} training frames (centre camera, spread over "
        f"{', '.join(Path(p).name for p in d['train_recordings'])}), of which "
        f"{d['fit_frames']} fit/fine-tune each pair and {d['probe_frames']} other ones "
        f"measure its error; validation: {d['val_frames']} frames "
        f"({d['validation']}: {', '.join(Path(p).name for p in d['val_recordings']) or '-'}).\n"
    )
    out.append("## Outcome per layer\n")
    out.append(layers_table(report))
    out.append("## Every attempt\n")
    out.append(
        "One row per attempt. Errors are relative MSE of the pre-activation output against "
        "the original layer (error energy / the original output's variance about its "
        "per-channel mean, i.e. 1 - R^2) on the probe frames; the pair is fed the "
        "student's inputs (earlier replacements included), the target is the original "
        "network's. 'err from upstream' is the original kernel on the student's inputs: "
        "what earlier replacements contribute. 'kernel err (SVD)' is "
        "||W - W'||^2 / ||W||^2 in kernel space (the sum of the squared dropped singular "
        f"values over ||W||^2). Initialisation used: {st['init']}; local fine-tuning "
        f"{st['local_steps']} Adam steps (lr {st['local_lr']:g}, batch {st['local_batch']}); "
        f"end-to-end distillation: {st['e2e']} ({st['e2e_steps']} steps, lr "
        f"{st['e2e_lr']:g}, batch {st['e2e_batch']}).\n"
    )
    out.append(attempts_table(report["attempts"]))
    out.append("\nThe same errors after the activation (what the next layer sees):\n")
    out.append(post_table(report["attempts"]))
    out.append("\n## Overall\n")
    out.append(overall_table(report))
    lat = report.get("latency") or {}
    if "load_average" in lat:
        la = lat["load_average"]
        out.append(
            f"\nLatency: the project's LiteRT path (`serving.convert.to_tflite` + "
            f"`LiteRTPredictor`, {lat.get('converted', {}).get('threads', '?')} thread), "
            f"one real validation frame, {lat.get('original', {}).get('calls', '?')} calls "
            f"per model in {LATENCY_ROUNDS} alternating rounds; 1-minute load average "
            f"{_f(la, 3)} at the end (the CPU is shared).\n"
        )
    out.append(
        f"\nThe input file {report['source_file']} is {report['source_bytes']:,} bytes "
        "(it may hold optimizer state); both sizes in the table are this tool's own "
        "`.keras` saves without optimizer.\n"
    )
    return "\n".join(out)
