"""``video.py`` (tools.video): an mp4 of a drive.py recording, never replacing a file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio
import pytest
from drive_testkit import make_jpeg

from drive.recorder import Recorder
from tools.video import main as video_main
from tools.video import make_video

ROOT = Path(__file__).resolve().parents[2]


def run(*args, timeout=120):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_help():
    assert run("video.py", "--help").returncode == 0


def test_video_never_replaces_an_existing_file_without_overwrite(tmp_path, caplog):
    folder = tmp_path / "rec"
    recorder = Recorder(folder)
    for i in range(3):
        recorder.record(make_jpeg(seed=i), steering=0.1, throttle=0.2, speed=5.0)
        time.sleep(0.002)
    recorder.close()
    mine = tmp_path / "rec.mp4"
    mine.write_bytes(b"the user's own video")
    assert video_main([str(folder)]) == 2
    assert "rec.mp4 already exists; pass --overwrite" in caplog.text
    with pytest.raises(FileExistsError):
        make_video(folder, output=mine)
    assert mine.read_bytes() == b"the user's own video"
    assert video_main([str(folder), "--overwrite"]) == 0
    assert imageio.get_reader(mine).count_frames() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec", "rec.mp4"]  # no leftovers


def test_video_cli_errors(tmp_path):
    out = run("video.py", str(tmp_path / "missing"))
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()  # core.cli's one error line, nothing else
    assert line.endswith(f" ERROR tools.video: no such recording folder: {tmp_path / 'missing'}")
