"""Pack recordings compactly to carry them to a GPU machine (``python -m training.pack``).

The GPU machine takes at most 64 MiB per call, and the three shared recordings are
164 MB of JPEGs. A pack keeps what the models see and drops what they never see:
rows outside ``--rows`` (default 60..140, the union of every registered
architecture's crop: base/eff/separable 80..140, pilotnet 60..135) are set to black
and frames are re-encoded as lossy WebP. Measured on akbari_lake (rows 60..140):
WebP q80 6.4 KB/frame at 3.0 grey levels mean absolute error, against 15.8 KB for
the original full JPEG; JPEG q85 of the same band was 8.9 KB at 3.1. The result is a
normal recording (``driving_log.csv`` with relative ``IMG/`` names) that
``train.py --data`` reads as it is. Re-encoding is lossy: say so wherever a model
trained on a pack is reported.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.cli import HelpFormatter, error_exit, setup_logging
from core.outputs import check_new_folder
from core.recordings import (
    IMG_DIR_NAME,
    RecordingError,
    driving_log_row,
    load_image,
    read_recordings,
    write_driving_log,
)

logger = logging.getLogger(__name__)


def pack_recording(rec, out: Path, *, rows=(60, 140), quality=80, sides=True) -> Path:
    folder = out / rec.name
    check_new_folder(folder, what="packed recording", remedy="choose another --out")
    (folder / IMG_DIR_NAME).mkdir(parents=True)
    top, bottom = rows
    lines = []
    for row in tqdm(rec.rows, desc=f"packing {rec.name}", unit="row"):
        names = []
        for path in (row.centre, row.left if sides else None, row.right if sides else None):
            if path is None:
                names.append("")
                continue
            frame = load_image(path)
            packed = np.zeros_like(frame)
            packed[top:bottom] = frame[top:bottom]
            name = Path(path).stem + ".webp"
            Image.fromarray(packed).save(folder / IMG_DIR_NAME / name, "WEBP", quality=quality)
            names.append(f"{IMG_DIR_NAME}/{name}")
        # repr: the values exactly as read, not rounded to the simulator's 7 digits
        numbers = (row.steering, row.throttle, row.brake, row.speed)
        lines.append(driving_log_row(*names, *numbers, number=repr))
    write_driving_log(folder, lines)
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.pack",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument("recordings", nargs="+", help="recording folders or driving_log.csv files")
    p.add_argument("--out", required=True, help="folder that receives one packed folder each")
    p.add_argument(
        "--rows",
        nargs=2,
        type=int,
        default=(60, 140),
        metavar=("TOP", "BOTTOM"),
        help="rows kept; the rest are set to black",
    )
    p.add_argument("--quality", type=int, default=80, help="WebP quality")
    p.add_argument(
        "--centre-only", action="store_true", help="drop side cameras (validation-only recordings)"
    )
    args = p.parse_args(argv)
    setup_logging()
    try:
        for rec in read_recordings(args.recordings):
            folder = pack_recording(
                rec,
                Path(args.out),
                rows=tuple(args.rows),
                quality=args.quality,
                sides=not args.centre_only,
            )
            size = sum(f.stat().st_size for f in folder.rglob("*"))
            logger.info("packed %s: %d rows, %.1f MB", folder, len(rec), size / 1e6)
    except (RecordingError, FileExistsError) as exc:  # core.outputs.OutputExistsError
        return error_exit(exc, logger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
