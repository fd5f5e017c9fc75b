"""Writing ``driving_log.csv`` (core.recordings): the simulator's layout, read back as written."""

from __future__ import annotations

from recordings_testkit import JPEG, names

from core.recordings import (
    CSV_NAME,
    csv_number,
    driving_log_row,
    read_recording,
    write_driving_log,
)


def test_numbers_are_formatted_like_the_simulator():
    assert csv_number(0) == "0"
    assert csv_number(-0.0) == "0"
    assert csv_number(1.0) == "1"
    assert csv_number(-0.05) == "-0.05"
    assert csv_number(12.91324) == "12.91324"
    assert csv_number(6.457884e-06) == "6.457884E-06"
    assert csv_number(0.000115534) == "0.000115534"


def test_rows_are_the_simulators_columns_unquoted():
    row = driving_log_row("C:\\a b\\c.jpg", "l.jpg", "", -0.05, 1.0, 0.0, 12.913241)
    assert row == "C:\\a b\\c.jpg,l.jpg,,-0.05,1,0,12.91324"
    exact = driving_log_row("c.jpg", "", "", 0.1 + 0.2, 1.0, 0.0, 3.0, number=repr)
    assert exact == "c.jpg,,,0.30000000000000004,1.0,0.0,3.0"


def test_written_log_reads_back(tmp_path):
    folder = tmp_path / "rec"
    (folder / "IMG").mkdir(parents=True)
    rows = []
    for i, steering in enumerate((-0.25, 0.0, 0.5)):
        for name in names(i):
            (folder / "IMG" / name).write_bytes(JPEG)
        centre, left, right = (str(folder / "IMG" / n) for n in names(i))
        rows.append(driving_log_row(centre, left if i else "", right, steering, 0.3, 0.0, 9.5))
    csv_path = write_driving_log(folder, rows)
    assert csv_path == folder / CSV_NAME
    assert csv_path.read_bytes() == "".join(f"{r}\n" for r in rows).encode()
    assert sorted(p.name for p in folder.iterdir()) == ["IMG", CSV_NAME]
    rec = read_recording(folder)
    assert rec.steering.tolist() == [-0.25, 0.0, 0.5] and not rec.has_header
    assert rec.left_paths[0] is None and rec.left_paths[1].name == names(1)[1]
    assert [r.centre.name for r in rec.rows] == [names(i)[0] for i in range(3)]
