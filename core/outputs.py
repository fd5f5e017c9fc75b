"""What the project writes for the user: the one overwrite guard, atomic files, JSON.

A user's recording, model or results are never overwritten unless they asked
(``--overwrite``): :func:`check_new_file` refuses an existing file and
:func:`check_new_folder` a folder that already holds files, each error naming the
path. What ``--overwrite`` then does is the caller's: same-named files replaced
(``evaluate.py``), the previous recording moved aside (``drive.py``); nothing here
deletes anything.

Files are written atomically (:func:`write_atomic`: a temporary file beside the
target, then ``os.replace``), so an interrupted run leaves the old file or the new
one, never half of either; :func:`write_json` writes that way, with numpy values,
paths and tuples made JSON and NaN/inf written as ``null`` (JSON has no NaN).

Reports' tables are GitHub markdown, written by :func:`markdown_table` (numbers
formatted by :func:`fmt` and right-aligned) for the evaluator, the MAC profile and
slim.py's report alike.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_SHOWN_NAMES = 5


class OutputExistsError(FileExistsError, ValueError):
    """An output that exists (a file, or a folder holding files), without ``--overwrite``."""


def check_new_file(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    error: type[Exception] = OutputExistsError,
) -> Path:
    """Raise ``error`` naming ``path`` if it exists and ``overwrite`` was not given."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise error(f"{path} already exists; pass --overwrite to replace it")
    return path


def check_new_folder(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    what: str = "output folder",
    remedy: str = "choose another --out or pass --overwrite to replace same-named files",
    error: type[Exception] = OutputExistsError,
) -> bool:
    """Raise ``error`` naming ``path`` if it is a file, or holds files without ``overwrite``.

    Returns whether the folder holds anything (for a caller that moves it aside).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise error(f"{what} {path} exists and is not a folder")
    names = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if names and not overwrite:
        shown = ", ".join(names[:_SHOWN_NAMES]) + (", ..." if len(names) > _SHOWN_NAMES else "")
        raise error(
            f"{what} {path} already holds files ({shown}); expected a new or empty folder: {remedy}"
        )
    return bool(names)


def prepare_out_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Create ``path`` (and parents) or accept it if empty; refuse a non-empty one."""
    check_new_folder(path, overwrite=overwrite)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_atomic(path: str | os.PathLike, content: bytes | str) -> Path:
    """Write ``content`` to ``path`` through a temporary file beside it and ``os.replace``."""
    path = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    # open(..., "xb") rather than mkstemp: the file gets the umask's mode, not 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def jsonable(value: Any) -> Any:
    """``value`` with numpy values, paths and tuples made JSON; NaN and inf as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None  # JSON has no NaN
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as indented JSON (see :func:`jsonable`), written atomically."""
    return write_atomic(path, json.dumps(jsonable(data), indent=2) + "\n")


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
