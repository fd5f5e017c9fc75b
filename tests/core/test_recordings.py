"""Reading recordings (core.recordings): every csv style seen in real ones, broken logs."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from recordings_testkit import all_images, make_recording, names, row

from core.recordings import (
    SKIP_REASONS,
    RecordingError,
    decode_images,
    parse_timestamp,
    read_recording,
    read_recordings,
)

REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "udacity"
REAL_ROWS = {"akbari_lake": 1731, "bsh_t2new_jungle": 1167, "jclc_mountain": 1084}


STYLES = {
    "windows": "C:\\Users\\hi\\Desktop\\Data_AutonomousCar\\IMG\\",
    "windows_spaces": "C:\\Users\\JC\\Documents\\Maestria MNA\\beta simulator\\data\\IMG\\",
    "windows_img_img": "D:\\sim\\IMG\\IMG\\",
    "mac": "/Users/me/Desktop/my data/IMG/",
    "linux": "/home/b-sh/sdc-udacity/track2_new/IMG/",
    "relative": "IMG/",
    "relative_dot": "./data/IMG/",
    "bare": "",
}


# --- styles that must read cleanly -----------------------------------------------------------


@pytest.mark.parametrize("sep", [",", ", "], ids=["comma", "comma_space"])
@pytest.mark.parametrize("style", sorted(STYLES))
def test_path_styles_resolve_by_basename(tmp_path, style, sep):
    lines = [row(i, STYLES[style], steering=f"{0.1 * i:.1f}", sep=sep) for i in range(3)]
    rec = read_recording(make_recording(tmp_path, lines, all_images(3)))
    assert len(rec) == 3 and rec.skipped == ()
    img = tmp_path / "rec" / "IMG"
    assert rec.img_dir == img
    for i, r in enumerate(rec.rows):
        assert (r.centre, r.left, r.right) == tuple(img / n for n in names(i))
        assert r.line == i + 1
    np.testing.assert_array_equal(rec.steering, np.float32([0.0, 0.1, 0.2]))
    assert rec.has_sides.all()


def test_udacity_sample_header_relative_and_empty_sides(tmp_path):
    c0, l0, r0 = names(0)
    c1 = names(1)[0]
    lines = [
        "center,left,right,steering,throttle,brake,speed",
        f"IMG/{c0}, IMG/{l0}, IMG/{r0}, 0, 0, 0, 22.14829",
        f"IMG/{c1},,,0.0617599,0.9855326,0,30.18664",
        f"IMG/{names(2)[0]}, , , -0.05,0.9,0,30.1",
    ]
    rec = read_recording(make_recording(tmp_path, lines, [c0, l0, r0, c1, names(2)[0]]))
    assert rec.has_header
    assert len(rec) == 3 and rec.skipped == () and rec.missing_side_lines == ()
    assert [r.line for r in rec.rows] == [2, 3, 4]
    assert rec.rows[1].left is None and rec.rows[1].right is None
    assert rec.rows[2].left is None
    assert rec.has_sides.tolist() == [True, False, False]
    assert rec.left_paths[1] is None
    assert rec.rows[1].steering == 0.0617599 and rec.rows[1].speed == 30.18664
    assert "side cameras unavailable on 2 rows" in rec.summary()


def test_header_with_other_columns_is_an_error(tmp_path):
    lines = ["center,left,right,steering,speed,throttle,brake", row(0)]
    with pytest.raises(RecordingError, match="unexpected header.*expected center,left,right"):
        read_recording(make_recording(tmp_path, lines, all_images(1)))


def test_scientific_notation(tmp_path):
    lines = [
        row(0, steering="-1.5E-01", speed="6.457884E-06"),
        row(1, steering="2e-3", throttle="1E0", speed="1.811432e-06"),
    ]
    rec = read_recording(make_recording(tmp_path, lines, all_images(2)))
    assert rec.rows[0].steering == -0.15 and rec.rows[0].speed == 6.457884e-06
    assert rec.rows[1].steering == 0.002 and rec.rows[1].throttle == 1.0
    assert rec.speed.dtype == np.float32 and rec.speed[0] == np.float32(6.457884e-06)


def test_crlf_bom_and_trailing_blank_lines(tmp_path):
    lines = [row(i, STYLES["windows"], sep=", ") for i in range(3)]
    folder = make_recording(
        tmp_path, lines, all_images(3), newline="\r\n", bom=True, trailing="\n\n  \n"
    )
    rec = read_recording(folder)
    assert len(rec) == 3 and rec.skipped == ()
    assert rec.rows[0].centre.name == names(0)[0]  # the BOM is not part of the first path
    assert rec.lines.tolist() == [1, 2, 3]


def test_blank_line_in_the_middle_keeps_physical_line_numbers(tmp_path):
    lines = [row(0), "", row(1)]
    rec = read_recording(make_recording(tmp_path, lines, all_images(2), newline="\r\n"))
    assert rec.lines.tolist() == [1, 3] and rec.skipped == ()


def test_csv_path_is_accepted_as_well_as_the_folder(tmp_path):
    folder = make_recording(tmp_path, [row(0), row(1)], all_images(2), folder="my run")
    by_folder, by_csv = read_recording(folder), read_recording(str(folder / "driving_log.csv"))
    assert by_folder.rows == by_csv.rows
    assert by_csv.name == "my run" and by_csv.csv_path == folder / "driving_log.csv"


def test_timestamps_from_file_names_and_file_order_kept(tmp_path):
    order = [2, 0, 1]  # not time order in the file: must not be sorted
    lines = [row(i) for i in order] + ["frame_a.jpg,frame_b.jpg,frame_c.jpg,0,0,0,1"]
    rec = read_recording(
        make_recording(tmp_path, lines, all_images(3) + ["frame_a.jpg", "frame_b.jpg"])
    )
    assert [r.centre.name for r in rec.rows[:3]] == [names(i)[0] for i in order]
    ts = rec.timestamps
    assert ts.dtype == np.float64 and math.isnan(ts[3]) and rec.rows[3].timestamp is None
    assert ts[1] - ts[2] == pytest.approx(-0.070, abs=1e-6)
    assert ts[0] - ts[1] == pytest.approx(0.140, abs=1e-6)
    assert rec.rows[3].right is None  # frame_c.jpg named but absent
    assert rec.missing_side_lines == (4,)


def test_parse_timestamp():
    assert parse_timestamp("center_2024_10_06_09_29_56_427.jpg") == pytest.approx(
        1728206996.427, abs=1e-6
    )
    assert parse_timestamp("left_2017_02_12_00_04_40_784.jpg") is not None
    for bad in ("center_2024_13_06_09_29_56_427.jpg", "center.jpg", "img_0001.jpg"):
        assert parse_timestamp(bad) is None


def test_arrays_types_and_read_only(tmp_path):
    rec = read_recording(make_recording(tmp_path, [row(0), row(1)], all_images(2)))
    assert rec.steering.dtype == np.float32 and rec.lines.dtype == np.int64
    assert rec.centre_paths.dtype == object and isinstance(rec.centre_paths[0], Path)
    assert rec.steering is rec.steering  # cached
    with pytest.raises(ValueError, match="read-only"):
        rec.steering[0] = 1.0


# --- broken rows: skipped, counted, reported -------------------------------------------------

BROKEN = [
    # (line text for frame 9, reason, detail fragment)
    (lambda: ",".join(names(9)[:2]) + ",0,0,0", "column_count", "expected 7, found 5"),
    (lambda: row(9) + ",5", "column_count", "expected 7, found 8"),
    (lambda: row(9, steering="abc"), "not_a_number", "steering='abc'"),
    (lambda: row(9, speed=""), "not_a_number", "speed=''"),
    (lambda: row(9, throttle="0,5"), "column_count", "expected 7, found 8"),
    (lambda: row(9, steering="nan"), "not_finite", "steering='nan'"),
    (lambda: row(9, speed="inf"), "not_finite", "speed='inf'"),
    (lambda: row(9, steering="1.0001"), "steering_out_of_range", "steering=1.0001"),
    (lambda: row(9, steering="-25"), "steering_out_of_range", "steering=-25.0"),
    (lambda: ",".join(["", *names(9)[1:], "0", "0", "0", "1"]), "no_centre_path", "empty"),
    (lambda: row(8, "C:\\x\\IMG\\"), "centre_image_missing", names(8)[0]),
    (lambda: '"' + row(9), "unparsable_line", "unexpected end of data"),
]


@pytest.mark.parametrize(("make_line", "reason", "detail"), BROKEN, ids=[b[1] for b in BROKEN])
def test_broken_row_is_skipped_with_reason(tmp_path, caplog, make_line, reason, detail):
    bad = make_line()
    lines = [row(0), row(1), bad, row(2)]
    with caplog.at_level(logging.WARNING, logger="core.recordings"):
        rec = read_recording(make_recording(tmp_path, lines, all_images(3) + list(names(9))))
    assert reason in SKIP_REASONS
    assert len(rec) == 3 and rec.lines.tolist() == [1, 2, 4]
    assert rec.skip_counts() == {reason: 1}
    (s,) = rec.skipped
    assert (s.line, s.reason, s.text) == (3, reason, bad)
    assert detail in s.detail
    summary = rec.summary()
    assert "'rec'" in summary and "3 rows kept, 1 skipped" in summary
    assert f"{reason}: 1" in summary and f"line 3: {reason}" in summary
    assert "1 skipped" in caplog.text  # a skipped row is worth a warning


def test_summary_counts_and_truncates_examples(tmp_path):
    long_prefix = "C:\\Users\\someone with a long name\\" + "deep\\" * 30 + "IMG\\"
    bad = [row(5, long_prefix, steering="x"), row(6, steering="2"), row(7, steering="y")]
    bad += [row(8, steering="nan"), row(9, steering="z")]
    rec = read_recording(make_recording(tmp_path, [row(0), *bad], all_images(10)))
    assert rec.skip_counts() == {"not_a_number": 3, "not_finite": 1, "steering_out_of_range": 1}
    assert [s.line for s in rec.skipped] == [2, 3, 4, 5, 6]
    summary = rec.summary()
    assert "1 rows kept, 5 skipped (not_a_number: 3, not_finite: 1, steering_out_of_range: 1)" in (
        summary
    )
    assert "line 2: not_a_number (steering='x')" in summary
    assert "... and 2 more skipped rows" in summary and "line 5:" not in summary
    assert max(len(line) for line in summary.splitlines()[1:]) < 200  # offending text truncated
    assert "..." in summary.splitlines()[1]


def test_missing_side_image_keeps_row(tmp_path):
    images = [n for n in all_images(2) if n != names(1)[1]]
    rec = read_recording(make_recording(tmp_path, [row(0), row(1)], images))
    assert len(rec) == 2 and rec.skipped == ()
    assert rec.rows[1].left is None and rec.rows[1].right is not None
    assert rec.missing_side_lines == (2,)
    assert rec.has_sides.tolist() == [True, False]
    assert "side image named but missing" in rec.summary() and "lines 2" in rec.summary()


def test_a_partly_missing_side_image_is_a_warning(tmp_path, caplog):
    images = [n for n in all_images(2) if n != names(1)[1]]
    caplog.set_level(logging.INFO, logger="core.recordings")
    rec = read_recording(make_recording(tmp_path, [row(0), row(1)], images))
    assert not rec.centre_only
    (record,) = [r for r in caplog.records if r.name == "core.recordings"]
    assert record.levelno == logging.WARNING and "side image named but missing" in record.message


def test_a_centre_only_recording_is_said_once_and_not_warned_about(tmp_path, caplog):
    """The side columns name files that are absent on every row (the shared nicholas
    recordings): a centre-camera recording, reported at INFO in one line."""
    centres = [names(i)[0] for i in range(3)]
    caplog.set_level(logging.INFO, logger="core.recordings")
    rec = read_recording(make_recording(tmp_path, [row(i) for i in range(3)], centres))
    assert rec.centre_only and rec.missing_side_lines == (1, 2, 3)
    assert rec.has_sides.tolist() == [False, False, False]
    (record,) = [r for r in caplog.records if r.name == "core.recordings"]
    assert record.levelno == logging.INFO
    lines = record.message.splitlines()
    assert lines[1:] == ["  centre camera only (3 rows name side images that are not there)"]


def test_image_names_match_case_insensitively(tmp_path):
    line = ",".join(n.upper().replace(".JPG", ".jpg") for n in names(0)) + ",0,0,0,1"
    rec = read_recording(make_recording(tmp_path, [line], all_images(1)))
    assert rec.rows[0].centre.name == names(0)[0] and rec.rows[0].timestamp is not None


# --- recordings that cannot be read at all ---------------------------------------------------


def test_nonexistent_path(tmp_path):
    with pytest.raises(RecordingError, match=r"does not exist: expected a recording folder"):
        read_recording(tmp_path / "nope")


def test_directory_without_csv(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "notes.txt").write_text("hi")
    with pytest.raises(RecordingError) as e:
        read_recording(tmp_path / "rec")
    msg = str(e.value)
    assert str(tmp_path / "rec") in msg and "has no driving_log.csv" in msg and "notes.txt" in msg


def test_directory_with_nested_recording_hints_at_it(tmp_path):
    make_recording(tmp_path / "outer", [row(0)], all_images(1), folder="data")
    with pytest.raises(RecordingError, match=r"did you mean .*outer[\\/]data\?"):
        read_recording(tmp_path / "outer")


def test_missing_img_folder(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "driving_log.csv").write_text(row(0) + "\n")
    with pytest.raises(RecordingError, match=r"has no IMG/ folder beside driving_log.csv"):
        read_recording(tmp_path / "rec")


def test_lowercase_img_folder_is_found(tmp_path):
    folder = make_recording(tmp_path, [row(0)], all_images(1))
    (folder / "IMG").rename(folder / "img")
    assert read_recording(folder).img_dir == folder / "img"


@pytest.mark.parametrize("content", ["", "\n\n", "\r\n  \r\n"], ids=["empty", "blank", "crlf"])
def test_empty_csv(tmp_path, content):
    folder = make_recording(tmp_path, [], [])
    (folder / "driving_log.csv").write_text(content)
    with pytest.raises(RecordingError, match=r"driving_log.csv is empty: expected rows of center"):
        read_recording(folder)


def test_header_only(tmp_path):
    folder = make_recording(tmp_path, ["center,left,right,steering,throttle,brake,speed"], [])
    with pytest.raises(RecordingError, match="has a header but no data rows"):
        read_recording(folder)


def test_no_usable_rows_reports_reasons(tmp_path):
    folder = make_recording(tmp_path, [row(0), row(1, steering="x")], [])
    with pytest.raises(RecordingError) as e:
        read_recording(folder)
    msg = str(e.value)
    assert "has no usable rows" in msg
    assert "centre_image_missing: 1" in msg and "not_a_number: 1" in msg


def test_read_recordings_and_duplicates(tmp_path):
    a = make_recording(tmp_path, [row(0)], all_images(1), folder="a")
    b = make_recording(tmp_path, [row(1), row(2)], all_images(3), folder="b")
    recs = read_recordings([a, b / "driving_log.csv"])
    assert [(r.name, len(r)) for r in recs] == [("a", 1), ("b", 2)]
    with pytest.raises(RecordingError, match="given twice"):
        read_recordings([a, b, a / "driving_log.csv"])
    with pytest.raises(RecordingError, match="given twice"):
        read_recordings([a, tmp_path / "b" / ".." / "a"])
    with pytest.raises(RecordingError, match="no recording paths given"):
        read_recordings([])
    with pytest.raises(RecordingError, match="does not exist"):
        read_recordings([a, tmp_path / "c"])


# --- the real recordings in ../shared --------------------------------------------------------


@pytest.mark.skipif(
    not REAL_DATA.is_dir(), reason=f"real recordings not present at {REAL_DATA} (../shared)"
)
@pytest.mark.parametrize("name", sorted(REAL_ROWS))
def test_real_recording(name):
    folder = REAL_DATA / name
    if not (folder / "driving_log.csv").is_file():
        pytest.skip(f"{folder}/driving_log.csv not present")
    rec = read_recording(folder)
    assert rec.name == name and not rec.has_header
    assert len(rec) == REAL_ROWS[name]
    assert rec.skipped == () and rec.missing_side_lines == ()
    assert rec.has_sides.all()
    for r in rec.rows:
        assert r.centre.is_file() and r.left.is_file() and r.right.is_file()
    assert not np.isnan(rec.timestamps).any()
    assert (np.diff(rec.timestamps) > 0).all()  # file order is time order

    first = (folder / "driving_log.csv").read_text().splitlines()[0].split(",")
    steering_text, speed_text = first[3].strip(), first[6].strip()
    assert rec.rows[0].steering == float(steering_text)
    assert rec.rows[0].speed == float(speed_text)
    assert rec.steering[0] == np.float32(steering_text) and rec.speed[0] == np.float32(speed_text)

    pick = np.linspace(0, len(rec) - 1, 4).astype(int)
    paths = [p for i in pick for p in (rec.centre_paths[i], rec.left_paths[i], rec.right_paths[i])]
    frames = decode_images(paths, progress=False)
    assert frames.shape == (len(paths), 160, 320, 3) and frames.dtype == np.uint8
    for frame, path in zip(frames, paths, strict=True):
        with Image.open(path) as im:
            assert im.mode == "RGB"
            np.testing.assert_array_equal(frame, np.asarray(im.convert("RGB")))
    assert not np.array_equal(frames, frames[..., ::-1])  # colour images: BGR would differ


def test_non_utf8_csv_is_read_as_latin1(tmp_path):
    folder = make_recording(tmp_path, [], all_images(1))
    line = row(0, "C:\\Users\\José\\Maestría\\IMG\\")
    (folder / "driving_log.csv").write_bytes(line.encode("cp1252") + b"\r\n")
    rec = read_recording(folder)
    assert len(rec) == 1 and rec.rows[0].centre.name == names(0)[0]
