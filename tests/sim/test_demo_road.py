"""The demo road: track, renderer, scripted driver, demo recordings and their CLI (sim.track,
sim.render, sim.driver, sim.demo_recording, python -m sim.demo_road)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sim.camera import (
    LEFT_CAMERA_X_M,
    Camera,
    camera_offset_for_car_pose,
    synthesize_view,
)
from sim.demo_recording import write_demo_recording
from sim.demo_road import main
from sim.driver import drive_demo
from sim.render import render_view
from sim.track import ROAD_HALF_WIDTH_M, make_track

N_FRAMES = 40  # ~2.7 s of driving: enough for the format checks, fast to render
NAME = re.compile(r"^(center|left|right)_(\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}_\d{3})\.jpg$")
NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?(E[-+]\d{2})?$")  # C# float.ToString style


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return write_demo_recording(tmp_path_factory.mktemp("demo") / "rec", N_FRAMES, seed=3)


@pytest.fixture(scope="module")
def track():
    return make_track(0, 2000.0)


def _rows(csv_path: Path) -> list[list[str]]:
    return [line.split(",") for line in csv_path.read_text(encoding="utf-8").splitlines()]


def test_csv_has_the_simulators_exact_format(recording: Path):
    assert recording.name == "driving_log.csv"
    rows = _rows(recording)
    assert len(rows) == N_FRAMES
    stamps = []
    for row in rows:
        assert len(row) == 7, row  # no header, 7 columns, "," without spaces
        for cam, path in zip(("center", "left", "right"), row[:3], strict=True):
            p = Path(path)
            assert p.is_absolute(), path
            match = NAME.match(p.name)
            assert match and match.group(1) == cam, p.name
            assert (recording.parent / "IMG" / p.name).is_file()  # matched by basename
        assert NAME.match(Path(row[0]).name).group(2) == NAME.match(Path(row[2]).name).group(2)
        for text in row[3:]:
            assert NUMBER.match(text), text
        steering, throttle, brake, speed = map(float, row[3:])
        assert -1.0 <= steering <= 1.0 and 0.0 <= throttle <= 1.0 and 0.0 <= brake <= 1.0
        assert 0.0 <= speed <= 30.0
        stamps.append(NAME.match(Path(row[0]).name).group(2))
    ms = [
        int(s[11:13]) * 3_600_000 + int(s[14:16]) * 60_000 + int(s[17:19]) * 1000 + int(s[20:])
        for s in stamps
    ]
    gaps = np.diff(ms)
    assert gaps.min() >= 60 and gaps.max() <= 74 and abs(gaps.mean() - 67) < 3
    images = sorted((recording.parent / "IMG").iterdir())
    assert len(images) == 3 * N_FRAMES
    with Image.open(images[0]) as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (320, 160))


def test_same_seed_same_recording_other_seed_differs(recording: Path, tmp_path: Path):
    again = write_demo_recording(tmp_path / "again", N_FRAMES, seed=3)

    def content(csv_path: Path) -> str:
        return csv_path.read_text().replace(str(csv_path.parent), "<dir>")

    assert content(again) == content(recording)
    for name in ("center", "right"):
        first = next((recording.parent / "IMG").glob(f"{name}_*"))
        assert (again.parent / "IMG" / first.name).read_bytes() == first.read_bytes()
    other = write_demo_recording(tmp_path / "other", 5, seed=4)
    assert [r[3:] for r in _rows(other)] != [r[3:] for r in _rows(recording)[:5]]


def test_refuses_to_overwrite(tmp_path: Path, caplog):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="non-empty"):
        write_demo_recording(out, 2)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    with caplog.at_level(logging.INFO, logger="sim.demo_recording"):
        csv_path = write_demo_recording(out, 2, overwrite=True)
    assert "PROCEDURALLY GENERATED" in caplog.text
    assert (out / "notes.txt").read_text() == "mine"  # overwrite deletes nothing
    assert len(_rows(csv_path)) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    write_demo_recording(empty, 1)  # an existing empty folder is fine


def test_cli(tmp_path: Path):
    assert main([str(tmp_path / "cli"), "--frames", "2", "--seed", "1"]) == 0
    assert len(_rows(tmp_path / "cli" / "driving_log.csv")) == 2
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "cli"), "--frames", "2"])
    assert exc.value.code == 2


def test_weaving_driver_recovers_from_both_sides():
    drive = drive_demo(make_track(5, 1500.0), 1500, seed=5)  # 100 s of driving
    steer, lat = drive.steering, drive.lateral_m
    # Curves and corrections both ways, mostly gentle, roughly balanced.
    assert (steer > 0.1).mean() > 0.05 and (steer < -0.1).mean() > 0.05
    assert np.median(np.abs(steer)) < 0.15 and abs(steer.mean()) < 0.05
    assert np.abs(steer).max() <= 1.0
    # Drifts to both sides, then back: recoveries start on both sides.
    assert lat.max() > 1.0 and lat.min() < -1.0
    assert np.abs(lat).max() < ROAD_HALF_WIDTH_M  # the rear axle never leaves the road
    starts = np.flatnonzero((drive.mode[1:] == 2) & (drive.mode[:-1] != 2)) + 1
    assert (lat[starts] > 0.8).sum() >= 2 and (lat[starts] < -0.8).sum() >= 2
    # Recovering right of the centre means steering left, and vice versa.
    rec = drive.mode == 2
    assert np.mean(steer[rec & (lat > 1.0)]) < 0 < np.mean(steer[rec & (lat < -1.0)])
    mph = drive.speed_mph[drive.time_s > 10.0]
    assert mph.min() > 8.0 and mph.max() < 21.0
    assert drive.speed_mph.min() >= 0.0 and drive.speed_mph.max() <= 30.0  # simulator's limit


def test_render_view_shows_the_road(track):
    """Edge lines (white) left and right, asphalt in the middle, in rows 60..140."""
    x, y, heading = track.pose_at(400.0)
    view = render_view(track, x, y, heading)
    assert view.shape == (160, 320, 3) and view.dtype == np.uint8
    band = view[60:140].astype(int)
    white = (band.min(axis=-1) > 170) & (np.ptp(band, axis=-1) < 40)
    cols = np.flatnonzero(white.any(axis=0))
    assert cols.min() < 120 and cols.max() > 200  # both edge lines visible
    road = band[30:, 140:180]
    assert np.abs(road - road.mean(axis=-1, keepdims=True)).mean() < 8  # grey asphalt
    sky = view[:40].astype(int)
    assert (sky[..., 2] > sky[..., 0]).mean() > 0.7  # blue-ish above the horizon
    # A car 2 m right of the centre sees the left edge line further left.
    shifted = render_view(track, *track.pose_at(400.0, 2.0))
    assert not np.array_equal(shifted, view)


@pytest.mark.parametrize(
    ("lateral_m", "yaw_rad", "limit"),
    [(0.5, 0.0, 1.0), (-1.0, 0.0, 1.0), (1.0, 0.0, 1.0), (0.5, 0.05, 2.5), (-1.0, -0.05, 2.5)],
)
def test_synthesis_matches_rendered_displaced_view(track, lateral_m, yaw_rad, limit):
    """synthesize_view of the centred view vs render_view at the displaced pose.

    Mean absolute error (grey levels, RGB mean) on the valid region over 4 poses.
    Measured (12 poses): lateral 0.25 / 0.5 / 1.0 / 1.5 m -> 0.26 / 0.28 / 0.35 /
    0.43; with a 0.05 rad yaw about the rear axle 1.24-1.38 (resampling blur of
    the grass grain); no warp at all 9.7-12.8.  The residual is grain and
    antialiasing, not geometry: the world is exactly flat and the sky infinitely
    far, so this is the ground truth of the flat-ground/far-sky model.
    """
    cam = Camera()
    errors, unwarped = [], []
    for s in (300.0, 700.0, 1100.0, 1500.0):
        centred = render_view(track, *track.pose_at(s), cam)
        truth = render_view(track, *track.pose_at(s, lateral_m, yaw_rad), cam)
        lat, fwd, yaw = camera_offset_for_car_pose(cam, lateral_m, yaw_rad)
        view, valid = synthesize_view(centred, lat, yaw, cam, forward_m=fwd)
        assert valid.mean() > 0.8
        errors.append(np.abs(view.astype(float) - truth).mean(axis=-1)[valid].mean())
        unwarped.append(np.abs(centred.astype(float) - truth).mean(axis=-1)[valid].mean())
    assert np.mean(errors) < limit, errors
    assert np.mean(unwarped) > 5 * np.mean(errors)


def test_side_camera_render_matches_synthesis(track):
    """The rendered left camera is the centre view warped by -0.806 m."""
    x, y, heading = track.pose_at(600.0)
    centre = render_view(track, x, y, heading)
    left = render_view(track, x, y, heading, Camera(lateral_m=LEFT_CAMERA_X_M))
    view, valid = synthesize_view(centre, LEFT_CAMERA_X_M, 0.0)
    assert np.abs(view.astype(float) - left).mean(axis=-1)[valid].mean() < 1.0


def test_track_is_smooth_and_bends_both_ways(track):
    curv = track.curvature
    assert np.abs(curv).max() <= 1 / 35.0 + 1e-9  # radius >= 35 m
    assert (curv > 0.01).mean() > 0.1 and (curv < -0.01).mean() > 0.1
    s, d = track.locate(*track.pose_at(812.3, -1.7)[:2])
    assert s == pytest.approx(812.3, abs=0.01) and d == pytest.approx(-1.7, abs=0.01)
    with pytest.raises(ValueError, match="length_m"):
        make_track(0, 50.0)
