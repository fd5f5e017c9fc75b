"""Output folders, tables and files shared by every subcommand.

An output folder is never written into when it already holds files, unless the
user passes ``--overwrite`` (then same-named files are replaced, nothing is
deleted): a second run must not silently mix with or destroy a first one.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class OutputFolderError(ValueError):
    """An output folder that exists with files in it, without ``--overwrite``."""


def prepare_out_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Create ``path`` (and parents) or accept it if empty; refuse a non-empty one."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out must be a folder; {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise OutputFolderError(
            f"output folder {out} already holds files ({shown}); expected a new or empty "
            "folder: choose another --out or pass --overwrite to replace same-named files"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None  # JSON has no NaN
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(_jsonable(data), indent=2) + "\n", encoding="utf-8")
    return path


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
