"""Tables and files shared by every subcommand.

An output folder is never written into when it already holds files, unless the
user passes ``--overwrite`` (then same-named files are replaced, nothing is
deleted): a second run must not silently mix with or destroy a first one. That
guard and ``write_json`` live in :mod:`core.outputs`, imported here for the
subcommands.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.outputs import OutputExistsError as OutputFolderError
from core.outputs import prepare_out_dir, write_json

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


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a readable table: ``-`` for missing, thousands separators for ints."""
    if value is None:
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "-"
        return f"{float(value):.{digits}g}" if abs(value) >= 1e4 else f"{float(value):.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 4) -> str:
    """A GitHub markdown table; numbers right-aligned."""
    rows = [[fmt(c, digits) if not isinstance(c, str) else c for c in r] for r in rows]
    align = ["---:" if rows and _numeric(r[i] for r in rows) else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _numeric(cells: Iterable[str]) -> bool:
    cells = [c for c in cells if c != "-"]
    try:
        for c in cells:
            float(c.replace(",", "").rstrip("%"))
    except ValueError:
        return False
    return bool(cells)
