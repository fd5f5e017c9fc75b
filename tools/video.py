"""``python video.py IMAGE_FOLDER [--fps 60]``: an mp4 of a drive.py recording.

Uses imageio with imageio-ffmpeg, whose wheel bundles the ffmpeg binary (Udacity's
``video.py`` uses moviepy, which downloads ffmpeg at run time and so fails
offline). With the recording's ``drive_log.csv`` beside the frames, the steering
that was sent is drawn on each frame unless ``--no-overlay`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.cli import HelpFormatter, error_exit, setup_logging
from core.drive_log import read_drive_log
from core.outputs import check_new_file
from core.recordings import DRIVE_CSV_NAME

log = logging.getLogger(__name__)


def recorded_frames(folder: Path) -> list[Path]:
    """The recording's JPEGs in time order (their names are timestamps)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def read_commands(folder: Path) -> dict[str, tuple[float, float]]:
    """``image name -> (steering, throttle)`` from the recording's csv (empty if none).

    A bad row is left out (its frame drawn without overlay) and logged by line.
    """
    if not (folder / DRIVE_CSV_NAME).is_file():
        return {}
    rows = read_drive_log(folder, skip_bad_rows=True)
    return {r.image: (r.steering, r.throttle) for r in rows}


def overlay(frame: np.ndarray, steering: float, throttle: float) -> np.ndarray:
    """Draw the steering sent as a bar from the centre and the values as text."""
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    w, h = img.size
    cx, y = w // 2, h - 12
    draw.rectangle((cx - w // 2 + 4, y - 3, cx + w // 2 - 4, y + 3), outline=(255, 255, 255))
    end = cx + int(np.clip(steering, -1, 1) * (w // 2 - 4))
    draw.rectangle((min(cx, end), y - 3, max(cx, end), y + 3), fill=(255, 64, 64))
    draw.text((6, 4), f"steer {steering:+.3f}  throttle {throttle:+.2f}", fill=(255, 255, 0))
    return np.asarray(img)


def make_video(
    folder: str | Path,
    *,
    fps: float = 60.0,
    output: str | Path | None = None,
    draw_overlay: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``<folder>.mp4`` (or ``output``) from the recording's frames; returns its path.

    An existing output is refused (``FileExistsError``) unless ``overwrite``; the video
    is encoded into a temporary file beside it and renamed, so an interrupted run
    leaves the old video as it was.
    """
    import imageio.v2 as imageio  # heavy: imported on use

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such recording folder: {folder}")
    frames = recorded_frames(folder)
    if not frames:
        raise ValueError(f"{folder} holds no .jpg frames")
    if fps <= 0:
        raise ValueError(f"fps must be > 0. Received: fps={fps}")
    output = Path(output) if output else folder.with_suffix(".mp4")
    check_new_file(output, overwrite=overwrite)  # an OutputExistsError is a FileExistsError
    commands = read_commands(folder) if draw_overlay else {}
    if draw_overlay and not commands:
        log.warning("no %s in %s: writing the frames without overlay", DRIVE_CSV_NAME, folder)
    partial = output.with_name(f".{output.stem}.partial-{os.getpid()}{output.suffix}")
    try:
        # 320x160 frames are multiples of 16: libx264 encodes them without resizing.
        with imageio.get_writer(
            partial,
            fps=fps,
            codec="libx264",
            quality=8,
            macro_block_size=16,
            ffmpeg_log_level="error",
        ) as writer:
            for path in frames:
                frame = np.asarray(Image.open(path).convert("RGB"))
                if path.name in commands:
                    frame = overlay(frame, *commands[path.name])
                writer.append_data(frame)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    log.info("wrote %d frames at %g fps to %s", len(frames), fps, output)
    return output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="video.py", description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    p.add_argument("image_folder", help="folder recorded by drive.py")
    p.add_argument("--fps", type=float, default=60.0, help="frames per second")
    p.add_argument("--output", default=None, help="output file (default IMAGE_FOLDER.mp4)")
    p.add_argument("--no-overlay", action="store_true", help="do not draw the steering sent")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = p.parse_args(argv)
    setup_logging()
    try:
        make_video(
            args.image_folder,
            fps=args.fps,
            output=args.output,
            draw_overlay=not args.no_overlay,
            overwrite=args.overwrite,
        )
    except (OSError, ValueError) as exc:
        return error_exit(exc, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
