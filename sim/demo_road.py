"""``python -m sim.demo_road OUT_DIR``: write a demo recording (:mod:`sim.demo_recording`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sim.demo_recording import write_demo_recording


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.demo_road",
        description="Write a procedurally generated demo recording in the Udacity "
        "simulator's format (driving_log.csv + IMG/).",
    )
    parser.add_argument("out_dir", type=Path, help="new or empty output folder")
    parser.add_argument("--frames", type=int, default=1000, help="number of frames (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="track and driver seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="allow a non-empty out_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        write_demo_recording(args.out_dir, args.frames, args.seed, overwrite=args.overwrite)
    except (FileExistsError, NotADirectoryError, ValueError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
