"""The camera constants checked against a recording's side cameras (``evaluate.py calibrate``).

The simulator records three cameras with the same height and pitch, the left one
0.806 m and the right one 0.825 m beside the centre one
(../shared/docs/camera-model.md). Warping the centre frame sideways by that offset
with :func:`sim.camera.synthesize_view` must then reproduce the real side frame on
the road; the grey-level mean absolute error over the road region measures how
right the constants are. A grid search over pitch, height and vertical field of
view finds the constants that fit a recording best; the closed-loop command reads
the resulting ``calibration.json`` (``--calibration``, :func:`load_camera`).

This module measures; :mod:`evaluation.calibration_report` writes the report
(``calibration.json``/``.md``, ``grid.csv``, ``side_check.png``).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.recordings import decode_images
from sim.camera import LEFT_CAMERA_X_M, RIGHT_CAMERA_X_M, Camera, synthesize_view

logger = logging.getLogger(__name__)

#: Rows compared: 70 is below the horizon for every pitch searched (the horizon is
#: at row 80 - fy tan(pitch): 67.9 at 5 degrees); from 135 down the car's bonnet
#: shows, which moves with the camera and is not ground.
ROAD_ROWS = (70, 135)
DEFAULT_FRAMES = 24
DEFAULT_PITCH = (7.0, 8.0, 9.0, 9.5, 10.0, 11.0, 12.0)
DEFAULT_HEIGHT = (1.1, 1.2, 1.28, 1.35, 1.45)
DEFAULT_FOV = (55.0, 60.0, 65.0)
CALIBRATION_KEYS = ("pitch_deg", "height_m", "vfov_deg")


class CalibrationError(ValueError):
    """A recording without side cameras, or a calibration file that cannot be used."""


def grey(images: np.ndarray) -> np.ndarray:
    return images[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def side_error(
    centre: np.ndarray, side: np.ndarray, lateral_m: float, camera: Camera | None
) -> float:
    """Grey-level MAE on the road rows between the real side frame and the centre
    frame warped ``lateral_m`` sideways (``camera`` None: not warped at all)."""
    lo, hi = ROAD_ROWS
    if camera is None:
        warped, valid = centre, np.ones(centre.shape[:2], dtype=bool)
    else:
        warped, valid = synthesize_view(centre, lateral_m, 0.0, camera)
    region = valid[lo:hi]
    if not region.any():
        return math.nan
    diff = np.abs(grey(warped[lo:hi]) - grey(side[lo:hi]))
    return float(diff[region].mean())


def centre_from_side_error(
    centre: np.ndarray, side: np.ndarray, side_camera: Camera, camera: Camera
) -> float:
    """Grey-level MAE on the road rows between the real centre frame and the centre
    view synthesised from a side frame: what the closed loop does when the side
    camera is the nearest to the virtual one (nothing black: border replication)."""
    lo, hi = ROAD_ROWS
    synth, valid = synthesize_view(side, 0.0, 0.0, camera, source=side_camera, fill=None)
    region = valid[lo:hi]
    if not region.any():
        return math.nan
    return float(np.abs(grey(synth[lo:hi]) - grey(centre[lo:hi]))[region].mean())


def pick_frames(rec, n: int) -> np.ndarray:
    """``n`` rows spread over the recording with both side images and the car moving."""
    ok = np.flatnonzero(np.asarray(rec.has_sides) & (np.asarray(rec.speed) > 2.0))
    if not ok.size:
        raise CalibrationError(
            f"{rec.name}: calibration needs rows with left and right images and the car "
            f"moving; found none among {len(rec)} rows"
        )
    pick = np.linspace(0, ok.size - 1, min(n, ok.size)).round().astype(int)
    return ok[np.unique(pick)]


def evaluate_camera(frames: dict[str, np.ndarray], camera: Camera | None) -> float:
    errs = []
    for c, lf, r in zip(frames["centre"], frames["left"], frames["right"], strict=True):
        errs.append(side_error(c, lf, LEFT_CAMERA_X_M, camera))
        errs.append(side_error(c, r, RIGHT_CAMERA_X_M, camera))
    return float(np.nanmean(errs))


def calibrate(
    rec,
    *,
    frames: int = DEFAULT_FRAMES,
    pitches=DEFAULT_PITCH,
    heights=DEFAULT_HEIGHT,
    fovs=DEFAULT_FOV,
    search: bool = True,
    progress: bool = True,
) -> dict:
    """Errors of no warp, the default constants and (``search``) every grid point."""
    rows = pick_frames(rec, frames)
    data = {
        "centre": decode_images(rec.centre_paths[rows], progress=False),
        "left": decode_images(rec.left_paths[rows], progress=False),
        "right": decode_images(rec.right_paths[rows], progress=False),
    }
    default = Camera()
    result = {
        "recording": rec.name,
        "csv": str(rec.csv_path),
        "frames": len(rows),
        "rows": ROAD_ROWS,
        "mae_no_warp": evaluate_camera(data, None),
        "mae_default": evaluate_camera(data, default),
        # The reverse direction, side frame -> centre view, as the closed loop uses it.
        "mae_centre_from_sides": float(
            np.nanmean(
                [
                    centre_from_side_error(c, sf, replace(default, lateral_m=x), default)
                    for c, lf, r in zip(data["centre"], data["left"], data["right"], strict=True)
                    for sf, x in ((lf, LEFT_CAMERA_X_M), (r, RIGHT_CAMERA_X_M))
                ]
            )
        ),
        "default": {k: getattr(default, k) for k in CALIBRATION_KEYS},
        "grid": [],
    }
    best = (result["mae_default"], default)
    if search:
        grid = list(itertools.product(pitches, heights, fovs))
        for p, h, f in tqdm(grid, desc="calibration grid", unit="camera", disable=not progress):
            cam = Camera(pitch_deg=float(p), height_m=float(h), vfov_deg=float(f))
            mae = evaluate_camera(data, cam)
            result["grid"].append({"pitch_deg": p, "height_m": h, "vfov_deg": f, "mae": mae})
            if mae < best[0]:
                best = (mae, cam)
    result["mae_best"] = best[0]
    result["camera"] = {k: getattr(best[1], k) for k in CALIBRATION_KEYS}
    result["_frames"] = data  # for the figure; not written to json
    result["_best_camera"] = best[1]
    return result


def load_camera(path: str | Path) -> Camera:
    """The best camera of a ``calibration.json`` written by ``evaluate.py calibrate``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read calibration file {path}: {exc}") from exc
    cam = data.get("camera") if isinstance(data, dict) else None
    if not isinstance(cam, dict) or not all(k in cam for k in CALIBRATION_KEYS):
        found = cam if isinstance(cam, dict) else data
        found = sorted(found) if isinstance(found, dict) else type(found).__name__
        raise CalibrationError(
            f"{path}: expected a calibration.json from `evaluate.py calibrate` with "
            f"camera.{{{', '.join(CALIBRATION_KEYS)}}}; found keys {found}"
        )
    try:
        return Camera(**{k: float(cam[k]) for k in CALIBRATION_KEYS})
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: invalid camera constants {cam}: {exc}") from exc


def camera_dict(camera: Camera) -> dict:
    return {k: v for k, v in asdict(camera).items() if k in (*CALIBRATION_KEYS, "forward_m")}
