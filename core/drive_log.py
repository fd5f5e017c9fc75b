"""``drive.py``'s own log, written and read: ``drive_log.csv`` and ``drive_extras.csv``.

``drive/recorder.py`` writes one row per frame it answered (:func:`drive_log_row`,
the frame saved beside the csv as :func:`frame_name`) and, once a research build sends
more telemetry, a row of those fields to ``drive_extras.csv`` (:func:`extras_row`);
the recorder does the queueing and the files. :func:`read_drive_log` reads the log
back (the dashboard's replay, ``video.py``'s overlay) and :func:`read_drive_extras`
the extras.

The file name and columns (``DRIVE_CSV_NAME``, ``DRIVE_COLUMNS``) are
:mod:`core.recordings`' own, because its recording reader takes a drive folder as a
recording too (centre frames, brake 0), so a drive can be trained on or replayed.
:func:`read_drive_log` raises ``RecordingError`` naming the file and line of the first
bad row, or with ``skip_bad_rows`` logs the skipped lines by number.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.recordings import (
    DRIVE_COLUMNS,
    DRIVE_CSV_NAME,
    RecordingError,
    check_header,
    read_csv_text,
    truncate,
)

logger = logging.getLogger(__name__)

DRIVE_EXTRAS_CSV_NAME = "drive_extras.csv"
#: The frame names the recorder writes (:func:`frame_name`, ``_N`` added on a clash).
DRIVE_FRAME_PATTERN = re.compile(r"^\d{4}(_\d{2}){5}_\d{3}(_\d+)?\.jpg$")
_SKIPPED_SHOWN = 3


def frame_name(when: datetime) -> str:
    """``YYYY_MM_DD_HH_MM_SS_mmm.jpg``, the simulator's own naming, for a recorded frame."""
    return when.strftime("%Y_%m_%d_%H_%M_%S_") + f"{when.microsecond // 1000:03d}.jpg"


def drive_log_row(
    image: str, when: datetime, steering: float, throttle: float, speed: float
) -> list[str]:
    """One ``drive_log.csv`` row (``DRIVE_COLUMNS``): what was sent for the frame ``image``."""
    return [
        image,
        when.isoformat(timespec="milliseconds"),
        f"{steering:.6f}",
        f"{throttle:.6f}",
        f"{speed:.4f}",
    ]


def extras_row(image: str, extras: dict, field_names: Sequence[str]) -> list[str]:
    """One ``drive_extras.csv`` row: ``image`` then each field's cell, empty where absent."""
    return [image, *(_extras_cell(extras.get(n)) for n in field_names)]


def _extras_cell(value) -> str:
    """A csv cell: floats in full (repr round-trips), whole numbers and text as they are."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class DriveRow:
    """One row of ``drive_log.csv``: the frame's file name and what was sent for it."""

    line: int
    image: str
    time: str
    steering: float
    throttle: float
    speed: float


def read_drive_log(path: str | os.PathLike, *, skip_bad_rows: bool = False) -> list[DriveRow]:
    """The rows of ``drive.py``'s ``drive_log.csv`` (its folder or the csv), in file order.

    Raises RecordingError naming the file and line when the header is not
    ``DRIVE_COLUMNS`` or a row is bad (wrong column count, a frame name the recorder
    does not write, a value that is not a number); with ``skip_bad_rows`` bad rows are
    left out instead and logged with their line numbers. A missing or unreadable csv
    raises RecordingError too.
    """
    csv_path = Path(path)
    if csv_path.is_dir():
        csv_path = csv_path / DRIVE_CSV_NAME
    text = read_csv_text(csv_path)
    rows: list[DriveRow] = []
    skipped: list[str] = []
    lines = [(n, raw) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    if not lines:
        return rows
    (header_line, header), body = lines[0], lines[1:]
    check_header(next(csv.reader([header])), csv_path, header_line, DRIVE_COLUMNS)
    for line_no, raw in body:
        try:
            rows.append(_drive_row(line_no, raw))
        except ValueError as e:
            problem = f"{csv_path} line {line_no}: {e}, found {truncate(raw)!r}"
            if not skip_bad_rows:
                raise RecordingError(problem) from None
            skipped.append(problem)
    if skipped:
        shown = "\n  ".join(skipped[:_SKIPPED_SHOWN])
        more = len(skipped) - _SKIPPED_SHOWN
        logger.warning(
            "%s: skipped %d bad rows of %d:\n  %s%s",
            csv_path,
            len(skipped),
            len(body),
            shown,
            f"\n  ... and {more} more" if more > 0 else "",
        )
    return rows


def _drive_row(line_no: int, raw: str) -> DriveRow:
    try:
        fields = next(csv.reader([raw], strict=True))
    except csv.Error as e:
        raise ValueError(f"expected a csv row ({e})") from None
    if len(fields) != len(DRIVE_COLUMNS):
        raise ValueError(f"expected {len(DRIVE_COLUMNS)} columns, found {len(fields)}")
    image, time, *numbers = fields
    if not DRIVE_FRAME_PATTERN.match(image):
        raise ValueError("expected a frame name like 2024_10_06_09_29_56_427.jpg in image")
    values = []
    for name, value in zip(DRIVE_COLUMNS[2:], numbers, strict=True):
        try:
            values.append(float(value))
        except ValueError:
            raise ValueError(f"expected a number in {name}, found {value!r}") from None
    return DriveRow(line_no, image, time, *values)


def read_drive_extras(folder: str | os.PathLike) -> dict[str, dict[str, str]]:
    """``drive_extras.csv`` of a recording by frame name (empty cells left out); {} if none."""
    path = Path(folder) / DRIVE_EXTRAS_CSV_NAME
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {
            row["image"]: {k: v for k, v in row.items() if k != "image" and v}
            for row in csv.DictReader(f)
        }
