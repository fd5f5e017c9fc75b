"""``drive.py``'s own log (core.drive_log): rows written as read back, bad rows named."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest

from core.drive_log import drive_log_row, frame_name, read_drive_log
from core.recordings import RecordingError


def _drive_log(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header = "image,time,steering,throttle,speed"
    (folder / "drive_log.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder


def test_drive_log_rows_round_trip(tmp_path):
    when = datetime(2024, 10, 6, 9, 29, 56, 427_900)
    row = drive_log_row(frame_name(when), when, -0.25, 0.3, 12.5)
    assert row == ["2024_10_06_09_29_56_427.jpg", "2024-10-06T09:29:56.427", "-0.250000",
                   "0.300000", "12.5000"]  # fmt: skip
    rows = read_drive_log(_drive_log(tmp_path / "rec", [",".join(row)]))
    assert [(r.line, r.image, r.steering, r.throttle, r.speed) for r in rows] == [
        (2, "2024_10_06_09_29_56_427.jpg", -0.25, 0.3, 12.5)
    ]


def test_drive_log_bad_rows_are_named(tmp_path, caplog):
    good = "2024_10_06_09_29_56_427.jpg,t,0.1,0.2,3.0"
    folder = _drive_log(
        tmp_path / "rec", [good, "2024_10_06_09_29_56_500.jpg,t,x,0.2,3.0", "../secret,t,0,0,0"]
    )
    with pytest.raises(
        RecordingError, match=r"drive_log.csv line 3: expected a number in steering"
    ):
        read_drive_log(folder)
    with caplog.at_level(logging.WARNING):
        rows = read_drive_log(folder, skip_bad_rows=True)
    assert [r.line for r in rows] == [2]
    assert (
        "skipped 2 bad rows of 3" in caplog.text and "line 4: expected a frame name" in caplog.text
    )
    (folder / "drive_log.csv").write_text("image,steering\n" + good + "\n")
    with pytest.raises(RecordingError, match="line 1: unexpected header"):
        read_drive_log(folder, skip_bad_rows=True)
