"""``evaluate.py calibrate``'s report on a side-camera check (:mod:`sim.calibrate`).

Writes ``calibration.json`` (what ``--calibration`` reads), ``calibration.md`` (the
errors of no warp, the default and the best camera, the ten best grid points),
``grid.csv`` (every grid point) and ``side_check.png`` (centre frames warped to the
left camera beside the real left frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation import plots
from evaluation.outputs import markdown_table, write_csv, write_json
from sim.calibrate import CALIBRATION_KEYS, ROAD_ROWS
from sim.camera import LEFT_CAMERA_X_M, Camera, synthesize_view


def write_outputs(result: dict, out: Path) -> Path:
    data = result.pop("_frames")
    best: Camera = result.pop("_best_camera")
    path = write_json(out / "calibration.json", result)
    if result["grid"]:
        write_csv(out / "grid.csv", {k: [g[k] for g in result["grid"]] for k in result["grid"][0]})
    lines = [
        f"# Camera calibration on {result['recording']}\n",
        f"{result['frames']} frames, both side cameras, grey-level MAE on rows "
        f"{ROAD_ROWS[0]}..{ROAD_ROWS[1] - 1} (road, bonnet excluded), valid pixels only.\n",
    ]
    rows = [
        ["no warp", "-", "-", "-", result["mae_no_warp"]],
        ["default", *[result["default"][k] for k in CALIBRATION_KEYS], result["mae_default"]],
        ["best", *[result["camera"][k] for k in CALIBRATION_KEYS], result["mae_best"]],
    ]
    lines.append(
        markdown_table(
            ["camera", "pitch (deg)", "height (m)", "vertical FOV (deg)", "MAE (grey levels)"],
            rows,
            digits=3,
        )
    )
    if result["grid"]:
        top = sorted(result["grid"], key=lambda g: g["mae"])[:10]
        lines.append("\nTen best grid points:\n")
        lines.append(
            markdown_table(
                ["pitch (deg)", "height (m)", "vertical FOV (deg)", "MAE"],
                [[g["pitch_deg"], g["height_m"], g["vfov_deg"], g["mae"]] for g in top],
                digits=3,
            )
        )
    lines.append(
        "\nThe closed loop synthesises the centre view from a side frame when that camera "
        "is nearer the virtual car's (default constants, nothing black): "
        f"MAE {result['mae_centre_from_sides']:.3f} against the real centre frame.\n"
    )
    (out / "calibration.md").write_text("\n".join(lines), encoding="utf-8")

    tiles = []
    default = Camera()
    for i in np.linspace(0, len(data["centre"]) - 1, min(3, len(data["centre"]))).astype(int):
        c, s = data["centre"][i], data["left"][i]
        for label, img in (
            ("centre", c),
            ("warped, default", synthesize_view(c, LEFT_CAMERA_X_M, 0.0, default)[0]),
            ("warped, best", synthesize_view(c, LEFT_CAMERA_X_M, 0.0, best)[0]),
            ("real left", s),
        ):
            tiles.append(plots.draw_steering(img, {}, caption=label))
    plots.image_grid(tiles, out / "side_check.png", columns=4)
    return path
