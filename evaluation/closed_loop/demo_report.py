"""What ``python -m evaluation.closed_loop.demo_check`` writes: ``demo_check.json``,
``demo_check.md`` (the tables of :func:`report` and :func:`reference_report`) and
``synthesis_examples.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation import plots
from evaluation.outputs import markdown_table, write_json
from sim.camera import Camera


def write_outputs(
    out: Path,
    meta: dict,
    synthesis: tuple[list[dict], list[dict], list],
    loop: dict,
    reference: dict,
    camera: Camera,
) -> str:
    """Every output into ``out``; the markdown report. ``synthesis``: the synthesis
    check's rows folded and as measured, and its examples."""
    synth, synth_raw, examples = synthesis
    write_json(
        out / "demo_check.json",
        {
            **meta,
            "synthesis": synth,
            "synthesis_all": synth_raw,
            "closed_loop": loop,
            "reference": reference,
        },
    )
    text = report(synth, loop, meta) + "\n" + reference_report(reference)
    (out / "demo_check.md").write_text(text, encoding="utf-8")
    synthesis_figure(examples, camera, out / "synthesis_examples.png")
    return text


def synthesis_figure(examples, camera: Camera, path: Path) -> None:
    """The synthesis check's examples: source, synthesised, rendered truth and their
    difference side by side (nothing without examples)."""
    tiles = []
    for d, yd, ref, syn, truth, err in examples:
        for label, im in (
            ("centred (source)", ref),
            (f"synthesised {d:+g} m {yd:+g} deg", syn),
            ("rendered truth", truth),
            ("abs difference x4, pixels with a source", np.clip(err * 4, 0, 255).astype(np.uint8)),
        ):
            im = im if im.ndim == 3 else np.repeat(im[..., None], 3, axis=2)
            tiles.append(plots.draw_steering(im, {}, camera, caption=label))
    if tiles:
        plots.image_grid(tiles, path, columns=4)


def report(synth_rows: list[dict], loop: dict, meta: dict) -> str:
    lines = ["# Closed-loop method checked on the procedural demo road\n"]
    lines.append(
        f"View synthesis: {meta['poses']} poses on a demo road (seed {meta['seed'] + 100}); "
        "grey-level mean absolute error (0-255) of the synthesised view against the "
        "rendered view of the displaced car, on pixels with a source; 'unwarped' compares "
        "the centred view itself with the truth. Mirror cases averaged.\n"
    )
    lines.append(
        markdown_table(
            [
                "offset (m)",
                "yaw (deg)",
                "MAE ground",
                "MAE sky",
                "MAE all",
                "MAE unwarped",
                "pixels with source",
            ],
            [
                [
                    r["offset_m"],
                    r["yaw_deg"],
                    r["mae_ground"],
                    r["mae_sky"],
                    r["mae_all"],
                    r["mae_none"],
                    r["valid_share"],
                ]
                for r in synth_rows
            ],
            digits=3,
        )
    )
    lines.append(
        f"\nClosed loop: clean centreline drive of {meta['frames']} frames "
        f"({meta['duration_s']:.0f} s, {meta['distance_m']:.0f} m, seed {meta['seed']}); "
        "the same policies with synthesised views (the method) and rendered views (truth).\n"
    )
    rows = []
    for pol, modes in loop.items():
        for mode, r in modes.items():
            rows.append(
                [
                    pol,
                    mode,
                    r["interventions"],
                    r["autonomy_percent"],
                    r["autonomy_bounded_percent"],
                    r["lateral_offset_m"]["mean"],
                    r["lateral_offset_m"]["max"],
                    r["time_within_0.3m"],
                    r["recovery"]["success_share"],
                ]
            )
    lines.append(
        markdown_table(
            [
                "policy",
                "views",
                "interventions",
                "autonomy (%)",
                "bounded (%)",
                "mean abs offset (m)",
                "max abs offset (m)",
                "time within 0.3 m",
                "recovered (within 0.3 m of the twin after 5 s)",
            ],
            rows,
            digits=3,
        )
    )
    return "\n".join(lines)


def reference_report(r: dict) -> str:
    lines = [
        f"\n## The evaluator's reference against the demo road's truth\n\n"
        f"A demo recording of {r['frames']} frames (seed {r['seed']}, the scripted weaving "
        "driver, three cameras), read and driven exactly as `evaluate.py closed-loop` "
        "does.\n",
        markdown_table(
            ["check", "measured", "target"],
            [
                [
                    "path from the frames: error over 30 m, RMS (m)",
                    r["path_images"]["rms_m"],
                    "< 0.2",
                ],
                ["path from the frames: p95 (m)", r["path_images"]["p95_m"], ""],
                [
                    "path from the logged steering: RMS (m)",
                    r["path_steering"]["rms_m"],
                    "(exact here)",
                ],
                ["road edges: RMS error (m)", r["edges"]["rms_m"], "< 0.3"],
                [
                    "road edges: median error left / right (m)",
                    f"{r['edges']['left_median_m']:+.3f} / {r['edges']['right_median_m']:+.3f}",
                    "",
                ],
                [
                    "road width found / true (m)",
                    f"{r['reference']['road_width_m']['median']:.2f} / "
                    f"{r['edges']['true_width_m']:.2f}",
                    "",
                ],
                [
                    "car response fitted (lag s, gain)",
                    f"{r['reference']['car_response']['lag_s']:g}, "
                    f"{r['reference']['car_response']['gain']:g}",
                    "0, 1 (a bicycle)",
                ],
            ],
            digits=3,
        ),  # fmt: skip
        "\nClosed loop on that recording (default criterion: a wheel off the road):\n",
        markdown_table(
            ["policy", "interventions", "autonomy (%)", "bounded (%)", "recovered"],
            [
                [
                    name,
                    c["interventions"],
                    c["autonomy_percent"],
                    c["autonomy_bounded_percent"],
                    c["recovery"]["success_share"],
                ]
                for name, c in r["closed_loop"].items()
            ],
            digits=3,
        ),  # fmt: skip
    ]
    return "\n".join(lines)
