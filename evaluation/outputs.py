"""Tables and files shared by every subcommand.

An output folder is never written into when it already holds files, unless the
user passes ``--overwrite`` (then same-named files are replaced, nothing is
deleted): a second run must not silently mix with or destroy a first one. That
guard, ``write_json`` and the markdown tables (``fmt``, ``markdown_table``) live in
:mod:`core.outputs`, imported here for the subcommands; the CSV writer is the
evaluator's own.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.outputs import OutputExistsError as OutputFolderError
from core.outputs import fmt, markdown_table, prepare_out_dir, write_json

__all__ = [
    "OutputFolderError",
    "fmt",
    "markdown_table",
    "prepare_out_dir",
    "write_csv",
    "write_json",
]


def write_csv(path: Path, columns: Mapping[str, Sequence[Any]]) -> Path:
    """Write equal-length columns; floats with 6 significant digits."""
    names = list(columns)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        got = {k: len(v) for k, v in columns.items()}
        raise ValueError(f"columns must have equal lengths; got {got}")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*columns.values(), strict=True):
            writer.writerow([_cell(v) for v in row])
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else f"{float(value):.6g}"
    return str(value)
