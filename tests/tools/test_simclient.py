"""The simulator-protocol client: recordings it reads, and servers it must fail loudly on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import socketio
from drive_testkit import make_jpeg, shared_data_or_skip
from werkzeug.serving import make_server

from core.cli import EXIT_ERROR
from drive.server import DriveServer
from drive.socketio_compat import ImplicitConnectServer
from tools.simclient import (
    SimulatorClient,
    SimulatorProtocolError,
    SimulatorStall,
    check_steer,
    event_message,
    load_driving_log,
    main,
    replay,
    telemetry_payload,
)

ROOT = Path(__file__).resolve().parents[2]
NO_SERVER = "ws://127.0.0.1:9/socket.io/?EIO=4&transport=websocket"


def write_recording(folder, rows, *, header=False, sep=",", prefix="C:\\Users\\a b\\IMG\\"):
    """A driving_log.csv as real recordings write them, with generated frames in IMG/."""
    img = folder / "IMG"
    img.mkdir(parents=True)
    lines = ["center,left,right,steering,throttle,brake,speed"] if header else []
    for i, (steering, speed) in enumerate(rows):
        names = [f"{cam}_2024_10_06_09_29_{i:02d}_427.jpg" for cam in ("center", "left", "right")]
        for name in names:
            (img / name).write_bytes(make_jpeg(seed=i))
        paths = [f"IMG/{n}" if header else prefix + n for n in names]
        lines.append(sep.join([*paths, str(steering), "0.5", "0", str(speed)]))
    (folder / "driving_log.csv").write_text("\n".join(lines) + "\n")
    return folder / "driving_log.csv"


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {},  # no header, Windows absolute paths with spaces
        {"sep": ", "},  # ", " separators
        {"header": True},  # Udacity's sample data: header and relative paths
        {"prefix": "/home/b-sh/track2_new/IMG/"},  # Linux absolute paths
    ],
)
def test_load_driving_log_variants(tmp_path, kwargs):
    log = write_recording(tmp_path, [(0.1, 9.5), (-0.2, 10.0), (0.0, 1e-5)], **kwargs)
    frames = load_driving_log(log)
    assert [f.steering for f in frames] == [0.1, -0.2, 0.0]
    assert frames[1].speed == 10.0 and frames[0].image.name.startswith("center_")
    assert load_driving_log(tmp_path) == frames  # a folder is searched for logs


def test_load_driving_log_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_driving_log(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError):
        load_driving_log(tmp_path)
    (tmp_path / "driving_log.csv").write_text("a,b,c,0,0,0,0\n")
    (tmp_path / "IMG").mkdir()
    with pytest.raises(ValueError, match="no usable rows"):  # core.recordings.RecordingError
        load_driving_log(tmp_path / "driving_log.csv")


def test_real_recordings_load():
    data = shared_data_or_skip()
    frames = load_driving_log(data / "jclc_mountain")  # ", " separators, spaces in paths
    assert len(frames) == 1084


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"steering_angle": 0.1, "throttle": "0.2"}, "must be a string"),
        ({"steering_angle": "0.1"}, "exactly keys"),
        ({"steering_angle": "0.1", "throttle": "0.2", "extra": "1"}, "exactly keys"),
        ({"steering_angle": "0,1", "throttle": "0.2"}, "'.'-decimal"),
        ({"steering_angle": "nan", "throttle": "0.2"}, "decimal"),
        ({"steering_angle": "1.5", "throttle": "0.2"}, "outside"),
        (["0.1", "0.2"], "one object"),
    ],
)
def test_check_steer_is_as_strict_as_the_simulator(data, reason):
    with pytest.raises(SimulatorProtocolError, match=reason):
        check_steer(data)


class FakeServer:
    """A socket.io server whose telemetry handler misbehaves in a chosen way."""

    def __init__(self, handler):
        self.sio = ImplicitConnectServer(async_mode="threading", async_handlers=False)
        self.sio.on("telemetry", lambda sid, data=None: handler(self.sio, sid, data))
        self.http = make_server("127.0.0.1", 0, socketio.WSGIApp(self.sio), threaded=True)
        self.url = f"ws://127.0.0.1:{self.http.server_port}/socket.io/?EIO=4&transport=websocket"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


MISBEHAVIOURS = {
    "numbers, not strings": (
        lambda sio, sid, d: sio.emit("steer", {"steering_angle": 0.1, "throttle": 0.2}, to=sid),
        "must be a string",
    ),
    "no reply": (lambda sio, sid, d: None, "no message"),
    "two arguments": (
        lambda sio, sid, d: sio.emit(
            "steer", ({"steering_angle": "0", "throttle": "0"}, 1), to=sid
        ),
        "not \\[name\\]",
    ),
    "a list": (lambda sio, sid, d: sio.emit("steer", ["0", "0"], to=sid), "not \\[name\\]"),
    "unknown event": (lambda sio, sid, d: sio.emit("drive", {}, to=sid), "listens only"),
    "binary": (lambda sio, sid, d: sio.emit("steer", b"\x00\x01", to=sid), "binary|not \\[name"),
    "missing field": (lambda sio, sid, d: sio.emit("steer", {"throttle": "0"}, to=sid), "keys"),
}


@pytest.mark.parametrize("name", sorted(MISBEHAVIOURS))
def test_client_fails_loudly(name):
    handler, reason = MISBEHAVIOURS[name]
    server = FakeServer(handler)
    try:
        with (
            SimulatorClient(server.url, timeout=0.5) as client,
            pytest.raises(SimulatorProtocolError, match=reason),
        ):
            client.send_telemetry(make_jpeg(), 0, 0, 0)
    finally:
        server.close()


def test_client_catches_a_double_reply():
    def twice(sio, sid, data):
        for _ in range(2):
            sio.emit("steer", {"steering_angle": "0.0", "throttle": "0.0"}, to=sid)

    server = FakeServer(twice)
    try:
        with SimulatorClient(server.url) as client:
            client.send_telemetry(make_jpeg(), 0, 0, 0)
            with pytest.raises(SimulatorProtocolError, match="more than once"):
                client.expect_quiet(1.0)
    finally:
        server.close()


def test_client_answers_server_pings():
    server = FakeServer(lambda sio, sid, d: None)
    server.sio.eio.ping_interval = 0.2
    server.sio.eio.ping_timeout = 0.5  # a client that does not answer is dropped in 0.7 s
    try:
        with SimulatorClient(server.url, timeout=1.5) as client:
            with pytest.raises(SimulatorStall):
                client.send_telemetry(make_jpeg(), 0, 0, 0)  # pings arrive while it waits
            # Still connected after several ping intervals: the pongs were accepted.
            sockets = list(server.sio.eio.sockets.values())
            assert sockets and not any(s.closed for s in sockets)
    finally:
        server.close()


def test_replay_and_cli_against_the_real_server(tmp_path, stub, capsys):
    log = write_recording(tmp_path, [(0.1 * i, 5.0) for i in range(6)])
    with DriveServer(stub, port=0) as srv:
        result = replay(srv.url, log, chains=2)
        assert result.frames == len(result.replies) == 6
        assert main([str(log), "--url", srv.url, "--frames", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 frames, 4 replies" in out and "rtt=" in out
    # The simulator would send steering x 25: the server saw 6 frames + 4.
    assert len(stub.frames) == 10


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def test_cli_stall_is_one_logged_error(tmp_path, caplog, capsys):
    log = write_recording(tmp_path, [(0.0, 5.0)])
    server = FakeServer(lambda sio, sid, d: None)
    try:
        assert main([str(log), "--url", server.url, "--timeout", "0.5"]) == EXIT_ERROR == 2
    finally:
        server.close()
    (error,) = error_lines(caplog)
    assert error.startswith("no message from the server within 0.5 s")
    out = capsys.readouterr()
    assert out.err == "" and "replies" not in out.out  # nothing printed by hand, no summary


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "cannot connect to ws://127.0.0.1:9/"),  # no server
        (["--frames", "0"], "frames must be >= 1. Received: frames=0"),
        (["--frames", "-1"], "frames must be >= 1. Received: frames=-1"),
        (["--chains", "0"], "chains must be >= 1. Received: chains=0"),
        (["--timeout", "0"], "timeout must be > 0. Received: timeout=0.0"),
        (["--timeout", "nan"], "timeout must be > 0. Received: timeout=nan"),
    ],
)
def test_cli_errors_are_one_logged_line(tmp_path, caplog, capsys, args, expected):
    log = write_recording(tmp_path, [(0.0, 5.0)])
    assert main([str(log), "--url", NO_SERVER, *args]) == 2
    (error,) = error_lines(caplog)
    assert error.startswith(expected), error
    assert capsys.readouterr() == ("", "")


def test_cli_bad_recordings_are_one_logged_line(tmp_path, caplog):
    assert main([str(tmp_path / "nope.csv"), "--url", NO_SERVER]) == 2
    assert main([str(tmp_path), "--url", NO_SERVER]) == 2  # a folder without a log
    (tmp_path / "IMG").mkdir()
    (tmp_path / "driving_log.csv").write_text("a,b,c,0,0,0,0\n")  # no frame it names
    assert main([str(tmp_path), "--url", NO_SERVER]) == 2
    errors = error_lines(caplog)
    assert len(errors) == 3, errors
    assert errors[0] == f"no such driving log: {tmp_path / 'nope.csv'}"
    assert errors[1] == f"no driving_log.csv under {tmp_path}"
    assert "no usable rows" in errors[2]


def test_cli_as_run_logs_in_the_shared_format(tmp_path):
    """``python -m tools.simclient``: core.cli's log line and exit status, argparse's for
    an option it cannot parse."""
    run = [sys.executable, "-m", "tools.simclient", str(tmp_path / "nope.csv")]
    out = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d ERROR tools\.simclient: no such driving log: \S+nope\.csv\n", out.stderr
    ), out.stderr
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--frames", "many"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "payload",
    [
        telemetry_payload(make_jpeg(), -3.5, 0.25, 9.1),  # the spliced fast path
        telemetry_payload(make_jpeg(), 0, 0, 0, decimal=","),
        {"image": "A" * 300 + '"', "speed": "1"},  # needs escaping: json path
        {"image": "é" * 300},
        {"image": "a\n" * 200},
        {"image": "ab" * 200, "z": {"image": ""}},  # a nested "image":"" after the key
        {"q": {"image": ""}, "image": "ab" * 200},  # ... and before it
        {"image": 12345},
        None,
        [1, 2],
    ],
)
def test_event_message_is_byte_for_byte_json(payload):
    expected = "42" + json.dumps(["telemetry", payload], separators=(",", ":"))
    assert event_message("telemetry", payload) == expected
