"""``drive.py`` as a user runs it, the recorder it uses, and video.py on its recording."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import research_builds as rb
from drive_testkit import StubPredictor, make_jpeg

from core.drive_log import frame_name
from core.drive_log import read_drive_extras as read_extras
from core.recordings import DRIVE_CSV_NAME as CSV_NAME
from core.recordings import read_recording
from drive.cli import main
from drive.recorder import Recorder, RecordingFolderError, prepare_folder
from drive.server import DriveServer
from evaluation.cli import main as evaluate_main
from tools.process import ServerProcess, free_port
from tools.simclient import SimulatorClient
from tools.video import make_video

ROOT = Path(__file__).resolve().parents[2]


def run(*args, timeout=120):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_help():
    out = run("drive.py", "--help")
    assert out.returncode == 0
    for flag in ("--host", "--port", "--speed", "--overwrite", "--runtime", "image_folder"):
        assert flag in out.stdout


def test_missing_model_is_one_clear_error_before_listening(tmp_path):
    out = run("drive.py", str(tmp_path / "nope.h5"), "--port", str(free_port()))
    assert out.returncode == 2
    assert "model not found" in out.stderr and "listening" not in out.stderr
    assert "Traceback" not in out.stderr


def test_corrupt_model_is_one_clear_error(tmp_path, caplog):
    (tmp_path / "model.h5").write_bytes(b"garbage" * 100)
    assert main([str(tmp_path / "model.h5"), "--port", str(free_port())]) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "cannot serve" in errors[0].getMessage()
    assert "listening" not in caplog.text


def test_non_empty_recording_folder_is_refused(tmp_path):
    folder = tmp_path / "run1"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    out = run("drive.py", str(tmp_path / "nope.h5"), str(folder))
    assert out.returncode == 2 and "--overwrite" in out.stderr
    assert (folder / "keep.txt").read_text() == "mine"


def _old_recording(folder: Path) -> dict[str, bytes]:
    """A previous recording plus a note of the user's; returns what it holds."""
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "2024_01_02_03_04_05_678.jpg").write_bytes(b"old frame")
    (folder / "2024_01_02_03_04_05_678_1.jpg").write_bytes(b"old frame 2")
    (folder / CSV_NAME).write_text("old csv")
    return _contents(folder)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_prepare_folder_overwrite_moves_the_previous_recording_aside(tmp_path, caplog):
    folder = tmp_path / "rec"
    before = _old_recording(folder)
    with pytest.raises(RecordingFolderError, match="already holds files"):
        prepare_folder(folder)
    assert _contents(folder) == before
    prepare_folder(folder, overwrite=True)
    assert list(folder.iterdir()) == []
    (aside,) = tmp_path.glob("rec.previous-*")
    assert _contents(aside) == before  # nothing deleted, the user's note included
    assert str(aside) in caplog.text
    prepare_folder(folder, overwrite=True)  # an empty folder: nothing to move
    assert len(list(tmp_path.glob("rec.previous-*"))) == 1
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordingFolderError, match="not a folder"):
        prepare_folder(tmp_path / "file")


def test_overwrite_with_a_missing_model_leaves_the_recording_alone(tmp_path):
    folder = tmp_path / "rec"
    before = _old_recording(folder)
    out = run("drive.py", str(tmp_path / "nope.h5"), str(folder), "--overwrite")
    assert out.returncode == 2 and "model not found" in out.stderr
    assert _contents(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_busy_port_is_one_clear_error_and_leaves_the_recording_alone(
    tmp_path, tiny_keras_path, caplog, capsys
):
    folder = tmp_path / "rec"
    before = _old_recording(folder)
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        code = main([str(tiny_keras_path), str(folder), "--overwrite", "--port", str(port)])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0], errors
    assert f"port {port} is in use by pid {os.getpid()}" in errors[0]
    assert "Port" not in capsys.readouterr().err  # not Werkzeug's own text
    assert _contents(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_recording_and_video(tmp_path, jpeg):
    folder = tmp_path / "rec"
    recorder = Recorder(folder)
    with (
        DriveServer(StubPredictor(0.5), port=0, recorder=recorder) as srv,
        SimulatorClient(srv.url) as client,
    ):
        for i in range(12):
            client.send_telemetry(make_jpeg(seed=i), 0, 0, 3.0)
        client.send_raw_telemetry({"image": "bad"})  # not recorded: no frame to save
        client.send_manual()  # not recorded either
    frames = sorted(folder.glob("*.jpg"))
    assert len(frames) == 12
    assert all(f.name[:4].isdigit() and len(f.stem.split("_")) >= 7 for f in frames)
    with (folder / CSV_NAME).open() as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == [f.name for f in frames]
    assert float(rows[0]["steering"]) == 0.5 and float(rows[0]["speed"]) == 3.0
    assert frames[0].read_bytes() == make_jpeg(seed=0)  # saved as received

    mp4 = make_video(folder, fps=30)
    assert mp4 == tmp_path / "rec.mp4"
    reader = imageio.get_reader(mp4)
    assert reader.get_meta_data()["fps"] == 30
    assert reader.count_frames() == 12
    first = reader.get_data(0)
    assert first.shape == (160, 320, 3)
    reader.close()


def test_frame_name_format():
    assert frame_name(datetime(2024, 10, 6, 9, 29, 56, 427_900)) == "2024_10_06_09_29_56_427.jpg"


def test_drive_py_end_to_end(tmp_path, tiny_keras_path):
    """What a user does: start drive.py with a model and a folder, drive, stop, make a video."""
    port, folder = free_port(), tmp_path / "rec"
    server = ServerProcess(
        [
            sys.executable,
            "drive.py",
            str(tiny_keras_path),
            str(folder),
            "--port",
            str(port),
            "--log-every",
            "5",
        ]
    )
    proc, lines = server.proc, server.lines
    try:
        assert server.wait_listening(90), server.log()
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        with SimulatorClient(url) as client:
            for i in range(10):
                reply = client.send_telemetry(make_jpeg(seed=i), 0, 0.1, 2.0 + i)
                assert -1 <= reply.steering <= 1
            assert client.send_manual().event == "manual"
    finally:
        server.stop(timeout=30)
    time.sleep(0.1)
    log = "".join(lines)
    assert proc.returncode == 0, log
    for expected in (
        "loaded litert",
        "arch=tiny",
        "params=",
        "runtime litert",
        "fps",
        "decode p50",
        "recorded 10 frames",
    ):
        assert expected in log
    assert len(list(folder.glob("*.jpg"))) == 10
    # The stock simulator sends no extended telemetry: no summary, no extra files.
    assert "driving quality" not in log and "malformed" not in log
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".jpg") == [CSV_NAME]
    out = run("video.py", str(folder), "--fps", "20")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "rec.mp4").stat().st_size > 1000


def test_drive_py_summarises_a_research_build_run(tmp_path, tiny_keras_path):
    """drive.py served to the SelfOracle build (its fields as strings, as the build sends
    them, plus one malformed value, a bad frame and its empty-object manual mode): the
    per-lap table at the end, the same figures in drive_quality.json, the extras csv."""
    port, folder = free_port(), tmp_path / "rec"
    server = ServerProcess(
        [sys.executable, "drive.py", str(tiny_keras_path), str(folder)]
        + ["--port", str(port), "--max-laps", "3"]
    )
    try:
        assert server.wait_listening(90), server.log()
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        with SimulatorClient(url, dialect="selforacle") as client:
            for i, frame in enumerate(rb.selforacle_run()):
                extras = rb.encode(frame, "strings")
                if i == 3:
                    extras["ang_diff"] = "sideways"  # malformed: logged once, ignored
                reply = client.send_telemetry(make_jpeg(seed=i), 0, 0.1, 8.0, extras=extras)
                assert reply.data["max_laps"] == "3" and reply.data["confidence"] == "1"
            assert client.send_raw_telemetry({**extras, "image": "?"}).data["loss"] == "0"
            assert client.send_raw_telemetry({}).event == "manual"
    finally:
        server.stop(timeout=30)
    log = server.log()
    assert server.proc.returncode == 0, log
    assert "is a SelfOracle/TUM simulator build" in log
    assert "malformed extended telemetry values ignored: ang_diff 1 (first 'sideways')" in log
    table = log[log.index("driving quality over 26 frames") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2:7]}
    assert rows["1"] == ["1", "12", "3/3", "83.3", "0.625", "2.000", "1", "0"]
    assert rows["2"] == ["2", "12", "3/3", "91.7", "0.250", "0.250", "0", "1"]
    assert rows["3"] == ["3", "2", "1/3", "33.3", "0.000", "0.000", "0", "0"]
    assert rows["all"] == ["all", "26", "7/9", "69.4", "0.404", "2.000", "1", "1"]
    report = json.loads((folder / "drive_quality.json").read_text())
    assert report["malformed"] == {"ang_diff": 1}
    assert [r["completed_pct"] for r in report["rows"]] == pytest.approx(
        [rb.SELFORACLE_EXPECTED[lap]["completed"] for lap in ("1", "2", "3", "all")]
    )
    with (folder / "drive_extras.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 26


def test_a_drive_recording_trains_and_replays_like_a_simulator_one(tmp_path, tiny_keras_path):
    """drive.py's drive_log.csv is read by the project's own reader: train.py --data
    FOLDER and evaluate.py replay take a drive recording as they are, also one made
    with a research build's extended telemetry (drive1, udacity-gym's fields)."""
    from train import main as train_main  # heavy (TensorFlow): imported on use

    class Varying(StubPredictor):  # steering that differs frame to frame
        def _predict(self, frame):
            return float(frame[80, 160, 0] / 255 - 0.5)

    sent = {}
    for name, n in (("drive1", 40), ("drive2", 12)):
        recorder = Recorder(tmp_path / name)
        with (
            DriveServer(Varying(), port=0, recorder=recorder) as srv,
            SimulatorClient(srv.url) as client,
        ):
            extras = [rb.gym(i / 100, 1, i // 10) if name == "drive1" else None for i in range(n)]
            sent[name] = [
                client.send_telemetry(make_jpeg(seed=i), 0, 0, 3.0 + i / 10, extras[i]).steering
                for i in range(n)
            ]
    rec = read_recording(tmp_path / "drive1")
    assert len(rec) == 40 and rec.skipped == () and rec.has_header
    np.testing.assert_allclose(rec.steering, sent["drive1"], atol=1e-6)
    assert np.ptp(rec.steering) > 0.01
    assert rec.speed[5] == pytest.approx(3.5) and not rec.brake.any() and not rec.has_sides.any()
    assert np.isfinite(rec.timestamps).all() and (np.diff(rec.timestamps) >= 0).all()
    assert rec.centre_paths[0].read_bytes() == make_jpeg(seed=0)
    extras = read_extras(tmp_path / "drive1")
    assert [float(extras[p.name]["cte"]) for p in rec.centre_paths] == [i / 100 for i in range(40)]
    assert read_extras(tmp_path / "drive2") == {}

    runs = tmp_path / "runs"
    args = ["--arch", "pilotnet", "--data", str(tmp_path / "drive1"), "--epochs", "1"]
    args += ["--val-recording", str(tmp_path / "drive2"), "--batch-size", "16"]
    assert train_main([*args, "--pipeline", "host", "--out", str(runs), "--quiet"]) == 0
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    config = json.loads((run_dir / "config.json").read_text())
    assert [r["rows"] for r in config["data_summary"]["recordings"]] == [40, 12]

    out = tmp_path / "replay"
    replay = ["replay", str(tiny_keras_path), str(tmp_path / "drive1"), "--out", str(out), "-q"]
    assert evaluate_main(replay) == 0
    assert json.loads((out / "summary.json").read_text())["pooled"]["n"] == 40
