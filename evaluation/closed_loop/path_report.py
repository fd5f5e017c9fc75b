"""``evaluate.py path``: the recordings as the closed loop sees them, checked.

For each recording: the reference path from the frames against the one integrated
from the logged steering (how well repeated laps overlay, :mod:`evaluation.closed_loop.laps`),
the car response fitted to the measured turning, the road width and the estimated
edges drawn on real frames. Writes ``reference.md``/``reference.json``,
``path_images_<rec>.png`` and ``path_steering_<rec>.png`` (laps coloured) and
``edges_<rec>.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from evaluation.closed_loop.laps import close_loops, overlay
from evaluation.closed_loop.reference import Reference, build_reference
from evaluation.closed_loop.report import edge_sheet, path_map, safe_name
from evaluation.outputs import markdown_table, write_json

logger = logging.getLogger(__name__)


def check_recording(rec, camera, *, progress: bool = True) -> tuple[dict, Reference, Reference]:
    """Both references of ``rec`` and the figures that compare them."""
    images = build_reference(rec, camera, progress=progress)
    steering = build_reference(rec, camera, path="steering", car="bicycle", edges=False)
    out = images.summary()
    for name, ref in (("images", images), ("steering", steering)):
        xy, seg = ref.positions()
        out[f"overlay_{name}"] = overlay(xy, seg, images.matches)
    # Loop closure, checked on matches it did not use: alternate 50-frame blocks.
    _, seg = images.positions()
    fit = [m for m in images.matches if (m.i // 50) % 2 == 0]
    held = [m for m in images.matches if (m.i // 50) % 2 == 1]
    rows = images.rows
    _, placed = close_loops(images.yaw[rows[:-1]], images.ds[rows[:-1]], seg, fit)
    out["overlay_closed_held_out"] = overlay(placed, np.zeros(len(seg), np.int64), held)
    return out, images, steering


def report_markdown(results: dict[str, dict]) -> str:
    lines = ["# Reference paths, car response and road of each recording\n"]
    lines.append(
        "Overlay: distance between passes of the same place (matched from the frames "
        "alone, at least 40 s apart) on the path integrated from the logged steering "
        "(before), on the path measured from the frames (after), and on that path with "
        "its loops closed (a slowly varying correction of the turns fitted to the matches "
        "of alternate 50-frame blocks, measured on the others); stretches split by a "
        "stop are first aligned rigidly.\n"
    )
    rows = []
    for name, r in results.items():
        before, after = r["overlay_steering"], r["overlay_images"]
        closed = r["overlay_closed_held_out"]
        rows.append(
            [
                name,
                after.get("laps", 1),
                after["matched"],
                before["rms_m"],
                after["rms_m"],
                closed["rms_m"],
                closed["median_m"],
                ", ".join(f"{c:.1f}" for c in after.get("closure_per_lap_m", [])) or "-",
            ]
        )
    lines.append(
        markdown_table(
            [
                "recording",
                "laps",
                "matched frames",
                "overlay RMS, steering (m)",
                "overlay RMS, frames (m)",
                "loops closed: RMS on held-out matches (m)",
                "median (m)",
                "closure per lap, frames (m)",
            ],
            rows,
        )
    )
    lines.append(
        "\nThe car's response to steering, fitted to the turning measured from the frames:\n"
    )
    lines.append(
        markdown_table(
            [
                "recording",
                "pairs measured",
                "delay (s)",
                "lag (s)",
                "gain",
                "R^2 fitted",
                "R^2 bicycle",
                "road width median (p10-p90) m",
            ],
            [
                [
                    name,
                    r["yaw_measured_share"],
                    r["car_response"]["delay_s"],
                    r["car_response"]["lag_s"],
                    r["car_response"]["gain"],
                    r["car_fit"].get("r2"),
                    r["car_fit"].get("bicycle_r2"),
                    f"{r['road_width_m']['median']:.1f} ({r['road_width_m']['p10']:.1f}-"
                    f"{r['road_width_m']['p90']:.1f})",
                ]
                for name, r in results.items()
            ],
        )
    )
    return "\n".join(lines)


def run(recordings, camera, out: Path, *, progress: bool = True) -> dict[str, dict]:
    results = {}
    for rec in recordings:
        res, images, steering = check_recording(rec, camera, progress=progress)
        results[rec.name] = res
        name = safe_name(rec.name)
        path_map(images, out / f"path_images_{name}.png", f"{rec.name}: path from the frames")
        path_map(steering, out / f"path_steering_{name}.png", f"{rec.name}: path from the steering")
        edge_sheet(images, out / f"edges_{name}.png")
        o, b = res["overlay_images"], res["overlay_steering"]
        logger.info(
            "%s: laps overlay %.1f m RMS from the frames (%.1f m from the steering) over %d "
            "matched frames; car lag %.2f s, gain %.2f; road width %.1f m",
            rec.name,
            o["rms_m"],
            b["rms_m"],
            o["matched"],
            res["car_response"]["lag_s"],
            res["car_response"]["gain"],
            res["road_width_m"]["median"],
        )
    write_json(out / "reference.json", results)
    (out / "reference.md").write_text(report_markdown(results), encoding="utf-8")
    return results
