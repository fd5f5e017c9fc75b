"""``python -m models.legacy OLD.h5 --out model.keras``: import once, check, say how to drive.

Writes the imported model (never over an existing file without ``--overwrite``),
reads it back in safe mode the way ``drive.py``, ``evaluate.py`` and ``export.py``
will, and compares the two on probe frames.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import numpy as np

from core.cli import HelpFormatter, error_exit, setup_logging
from core.outputs import check_new_file
from models.io import load_model
from models.legacy.build import build
from models.legacy.h5file import read_legacy
from models.legacy.spec import COLOURS, INTERPOLATIONS, LegacyImportError, Preprocess
from models.registry import INPUT_SHAPE

log = logging.getLogger(__name__)


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 66x200, got {text!r}")
    return int(m[1]), int(m[2])


def _lambda_option(text: str) -> tuple[str, str]:
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(
            f"expected NAME=SPEC such as lambda_1=resize:66x200, got {text!r}"
        )
    return name, spec


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m models.legacy",
        description="Import a Keras 1/2 .h5 steering model (e.g. from the Udacity course) as a "
        "Keras 3 model taking the raw 160x320 RGB frame; nothing stored in the file is run.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="OLD.h5", help="the Keras 1.x or 2.x model file")
    p.add_argument("--out", type=Path, required=True, help="the .keras file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--crop",
        nargs=2,
        type=int,
        metavar=("TOP", "BOTTOM"),
        help="rows its drive.py cut off the top and the bottom (image[TOP:-BOTTOM])",
    )
    p.add_argument("--resize", type=_size, metavar="HxW", help="size its drive.py resized to")
    p.add_argument(
        "--interpolation",
        choices=INTERPOLATIONS,
        default="bilinear",
        help="resize method (default bilinear = cv2.INTER_LINEAR, also cv2.resize's default)",
    )
    p.add_argument(
        "--colour",
        choices=COLOURS,
        default="rgb",
        help="colour conversion its drive.py applied to the RGB frame (default rgb: none); "
        "yuv = cv2.COLOR_RGB2YUV; yuv-opencv31 = OpenCV 3.1's RGB2YUV (red and blue "
        "exchanged, = today's cv2.COLOR_BGR2YUV on the RGB frame)",
    )
    p.add_argument(
        "--lambda",
        dest="lambdas",
        action="append",
        type=_lambda_option,
        default=[],
        metavar="NAME=SPEC",
        help="what a Lambda layer the importer refuses does: rescale:SCALE,OFFSET, resize:HxW "
        "or crop:TOP,BOTTOM (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (disassembly)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    logging.getLogger("h5py").setLevel(logging.INFO)  # its converter notices at debug
    try:
        return run(args)
    except (LegacyImportError, OSError) as exc:
        return error_exit(exc, log)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.suffix != ".keras":
        raise LegacyImportError(f"--out must name a .keras file, got {out}")
    check_new_file(out, overwrite=args.overwrite, error=LegacyImportError)
    pre = Preprocess(
        crop=tuple(args.crop) if args.crop else None,
        resize=args.resize,
        interpolation=args.interpolation,
        colour=args.colour,
        lambdas=dict(args.lambdas),
    )
    legacy = read_legacy(args.model)
    model = build(legacy, pre)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    # Read back the way drive.py, evaluate.py and export.py will: safe mode, raw frames.
    reloaded = load_model(out)
    frames = np.random.default_rng(0).integers(0, 256, (4, *INPUT_SHAPE)).astype("float32")
    diff = float(
        np.max(np.abs(model.predict(frames, verbose=0) - reloaded.predict(frames, verbose=0)))
    )
    steps = [f"crop {pre.crop[0]}/{pre.crop[1]}" if pre.crop else None]
    steps += [f"resize {pre.resize[0]}x{pre.resize[1]} {pre.interpolation}" if pre.resize else None]
    steps += [f"colour {pre.colour}" if pre.colour != "rgb" else None]
    params = model.count_params()
    backend = f"{legacy.backend} backend" if legacy.backend else "backend not recorded"
    print(
        f"imported {legacy.path} (Keras {legacy.keras_version}, {backend}): "
        f"{len(legacy.layers)} layers, {params:,} parameters"
    )
    print(f"  frame preprocessing in the graph: {', '.join(s for s in steps if s) or 'none'}")
    print(f"  wrote {out}; reloaded in safe mode, max |diff| {diff:.2g} on 4 probe frames")
    print(f"  drive it with: python drive.py {out}")
    return 0
