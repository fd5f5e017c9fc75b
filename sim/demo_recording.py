"""Demo recordings: the demo road driven and rendered, written in the simulator's format.

This is the project's built-in training data and the source of every test fixture
(no binaries are committed): :mod:`sim.track` lays the road, :mod:`sim.driver`
drives it, :mod:`sim.render` draws the three cameras' views.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from core.recordings import CSV_NAME, IMG_DIR_NAME, driving_log_row, write_driving_log
from sim.camera import LEFT_CAMERA_X_M, RIGHT_CAMERA_X_M, Camera
from sim.driver import drive_demo
from sim.render import render_view
from sim.track import make_track

logger = logging.getLogger(__name__)

_START_TIME = dt.datetime(2020, 1, 1, 12, 0, 0)  # fixed fake date: output is deterministic
_CAMERAS = (
    ("center", Camera()),
    ("left", Camera(lateral_m=LEFT_CAMERA_X_M)),
    ("right", Camera(lateral_m=RIGHT_CAMERA_X_M)),
)


def _timestamp_name(camera: str, when: dt.datetime) -> str:
    return f"{camera}_{when:%Y_%m_%d_%H_%M_%S}_{when.microsecond // 1000:03d}.jpg"


def write_demo_recording(
    out_dir: str | Path,
    n_frames: int = 1000,
    seed: int = 0,
    *,
    overwrite: bool = False,
    jpeg_quality: int = 75,
) -> Path:
    """Write a procedurally generated recording in the simulator's format.

    Creates ``out_dir/driving_log.csv`` (no header; center, left, right, steering,
    throttle, brake, speed; absolute image paths) and ``out_dir/IMG/{center,left,
    right}_YYYY_MM_DD_HH_MM_SS_mmm.jpg`` (JPEG quality 75 like Unity's encoder).
    Output depends only on ``seed`` and ``n_frames`` (and the folder's path).
    Refuses a non-empty ``out_dir`` unless ``overwrite``; overwriting replaces the
    csv and same-named images but deletes nothing.  Returns the csv path.

    A new recording is rendered into a hidden sibling folder and renamed into place
    when complete, so an interrupted render (Ctrl-C) never leaves a half recording
    under ``out_dir``'s name: there is a whole recording or none.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1. Received: n_frames={n_frames}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100. Received: jpeg_quality={jpeg_quality}")
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir must be a folder. Received a file: {out}")
    in_place = out.exists() and any(out.iterdir())
    if in_place and not overwrite:
        raise FileExistsError(
            f"refusing to write a demo recording into non-empty folder {out}; "
            "choose an empty or new folder, or pass overwrite=True (--overwrite)"
        )
    if in_place:
        return _render_recording(out, out, n_frames, seed, jpeg_quality)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)  # left by a killed run of this process id
    partial.mkdir(parents=True)
    try:
        _render_recording(partial, out, n_frames, seed, jpeg_quality)
        os.rename(partial, out)  # atomic; replaces an empty ``out`` folder
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out / CSV_NAME


def _render_recording(folder: Path, out: Path, n_frames: int, seed: int, quality: int) -> Path:
    """Render into ``folder``, naming the images by their place in ``out`` in the csv."""
    img_dir = folder / IMG_DIR_NAME
    img_dir.mkdir(parents=True, exist_ok=True)
    logger.info(
        "writing PROCEDURALLY GENERATED demo data (not a simulator recording): "
        "%d frames, seed %d, into %s",
        n_frames,
        seed,
        out,
    )
    # 20 mph top cruise x 74 ms frames is 0.66 m a frame; plus 300 m for the view.
    track = make_track(seed, length_m=0.7 * n_frames + 300.0)
    drive = drive_demo(track, n_frames, seed)
    rows = []
    for f in range(n_frames):
        when = _START_TIME + dt.timedelta(milliseconds=round(drive.time_s[f] * 1000.0))
        paths = []
        for name, cam in _CAMERAS:
            view = render_view(
                track, drive.x[f], drive.y[f], drive.heading[f], cam, s_hint=drive.s[f]
            )
            file_name = _timestamp_name(name, when)
            Image.fromarray(view).save(img_dir / file_name, quality=quality)
            paths.append(str(out / IMG_DIR_NAME / file_name))
        numbers = (drive.steering[f], drive.throttle[f], drive.brake[f], drive.speed_mph[f])
        rows.append(driving_log_row(*paths, *numbers))
    csv_path = write_driving_log(folder, rows)
    logger.info(
        "demo recording done: %s (steering mean %+.3f, |steering| mean %.3f, "
        "lateral offset %.2f..%.2f m)",
        out / CSV_NAME,
        float(drive.steering.mean()),
        float(np.abs(drive.steering).mean()),
        float(drive.lateral_m.min()),
        float(drive.lateral_m.max()),
    )
    return csv_path
