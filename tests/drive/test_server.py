"""The real server on a free loopback port, driven as the simulator and as modern clients do."""

from __future__ import annotations

import base64
import errno
import io
import json
import logging
import math
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import socketio
import websocket
from drive_testkit import StubPredictor, make_jpeg
from PIL import Image
from werkzeug.serving import make_server

from drive.protocol import MAX_IMAGE_BASE64
from drive.server import MAX_MESSAGE_BYTES, DriveServer, ServerBindError
from tools.simclient import (
    USER_AGENT,
    SimulatorClient,
    SimulatorProtocolError,
    SimulatorStall,
    telemetry_payload,
)

SAFE = {"steering_angle": "0.000000", "throttle": "0.000000"}


def good_payload(jpeg: bytes, speed: str = "5.0000") -> dict:
    p = telemetry_payload(jpeg, -3.125, 0.2, 0.0)
    p["speed"] = speed
    return p


def test_simulator_client_is_served(server, stub, jpeg):
    with SimulatorClient(server.url, timeout=5) as client:
        for i in range(20):
            reply = client.send_telemetry(jpeg, steering_deg=-3.125, throttle=0.2, speed=i * 0.5)
            assert reply.event == "steer"
            assert all(isinstance(v, str) for v in reply.data.values())
            assert reply.steering == pytest.approx(0.25)
            assert -0.3 <= reply.throttle <= 0.5
            assert reply.rtt < 2.0
        client.expect_quiet(0.3)  # one reply per telemetry, nothing extra
    assert len(stub.frames) == 20
    assert stub.frames[0].shape == (160, 320, 3) and stub.frames[0].dtype.name == "uint8"


def test_exact_simulator_bytes(server, jpeg):
    """The wire as websocket-sharp writes it: no 40, a ping first, string values."""
    ws = websocket.create_connection(
        server.url, header=[f"User-Agent: {USER_AGENT}"], suppress_origin=True, timeout=5
    )
    try:
        opening = ws.recv()
        assert opening.startswith("0{") and "sid" in json.loads(opening[1:])
        ws.send("2")  # the simulator pings first; the server need not answer
        b64 = base64.b64encode(jpeg).decode()
        ws.send(
            '42["telemetry",{"steering_angle":"-3.1250","throttle":"0.2000",'
            f'"speed":"9.0312","image":"{b64}"}}]'
        )
        messages = [ws.recv()]
        while not messages[-1].startswith("42"):
            messages.append(ws.recv())
        # The implicit connect answers 40 first (the simulator ignores it), then the steer.
        assert messages[0].startswith("40")
        event = json.loads(messages[-1][2:])
        assert event[0] == "steer" and len(event) == 2
        assert set(event[1]) == {"steering_angle", "throttle"}
        assert all(isinstance(v, str) for v in event[1].values())
        ws.send('42["telemetry",null]')
        assert json.loads(ws.recv()[2:]) == ["manual", {}]
    finally:
        ws.close()


def test_stock_python_socketio_drops_the_simulator():
    """Why ImplicitConnectServer exists: the unmodified server never answers the simulator."""
    sio = socketio.Server(async_mode="threading")
    answered = []
    sio.on("telemetry", lambda sid, data: answered.append(sid) or sio.emit("steer", {}, to=sid))
    http = make_server("127.0.0.1", 0, socketio.WSGIApp(sio), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"ws://127.0.0.1:{http.server_port}/socket.io/?EIO=4&transport=websocket"
        with SimulatorClient(url, timeout=0.5) as client, pytest.raises(SimulatorStall):
            client.send_telemetry(make_jpeg(), 0, 0, 0)
        assert answered == []
    finally:
        http.shutdown()
        http.server_close()


def test_null_telemetry_gets_manual_and_resets_the_controller(server, jpeg):
    with SimulatorClient(server.url) as client:
        client.send_telemetry(jpeg, 0, 0, 0.0)
        assert client.send_manual().event == "manual"
        client._sent.append(0.0)
        client._send_raw('42["telemetry"]')  # no argument at all counts as null too
        assert client.receive_reply().event == "manual"
        reply = client.send_telemetry(jpeg, 0, 0, 9.0)
        assert reply.throttle == pytest.approx(0.0)  # at the set point with a fresh integral


def _comma(jpeg):
    p = telemetry_payload(jpeg, -3.125, 0.2, 5.0, decimal=",")
    assert p["speed"] == "5,0000"
    return p


BAD_INPUTS = {
    "bad base64": lambda j: {**good_payload(j), "image": "%%% not base64 %%%"},
    "not a jpeg": lambda j: {**good_payload(j), "image": base64.b64encode(b"GIF89a" * 50).decode()},
    "truncated jpeg": lambda j: {**good_payload(j), "image": base64.b64encode(j[:300]).decode()},
    "wrong size": lambda j: {
        **good_payload(j),
        "image": base64.b64encode(make_jpeg(64, 64)).decode(),
    },
    "missing image": lambda j: {k: v for k, v in good_payload(j).items() if k != "image"},
    "missing speed": lambda j: {k: v for k, v in good_payload(j).items() if k != "speed"},
    "non-numeric speed": lambda j: good_payload(j, speed="fast"),
    "nan speed": lambda j: good_payload(j, speed="NaN"),
    "image is a number": lambda j: {**good_payload(j), "image": 42},
    "oversized image": lambda j: {**good_payload(j), "image": "A" * (MAX_IMAGE_BASE64 + 1024)},
    "payload is a list": lambda j: [1, 2, 3],
    "payload is a string": lambda j: "telemetry",
}


def test_bad_inputs_get_the_safe_command_and_serving_goes_on(server, stub, jpeg, caplog):
    caplog.set_level(logging.WARNING, logger="drive.server")
    with SimulatorClient(server.url) as client:
        for name, make in BAD_INPUTS.items():
            reply = client.send_raw_telemetry(make(jpeg))
            assert (reply.event, reply.data) == ("steer", SAFE), name
            # The loop goes on: the next good frame is served normally.
            assert client.send_telemetry(jpeg, 0, 0, 5.0).steering == pytest.approx(0.25), name
        client.expect_quiet(0.2)
    assert len(stub.frames) == len(BAD_INPUTS)  # no bad frame reached the model
    reasons = " | ".join(r.getMessage() for r in caplog.records)
    for expected in (
        "base64",
        "not a JPEG",
        "cannot decode",
        "expected 320x160",
        "missing field",
        "speed",
        "exceeds",
    ):
        assert expected in reasons


def test_comma_decimals_are_understood(server, jpeg):
    with SimulatorClient(server.url, decimal=",") as client:
        reply = client.send_telemetry(jpeg, -3.125, 0.2, 5.0)
    assert reply.steering == pytest.approx(0.25)
    assert reply.throttle == pytest.approx(min(0.5, 0.1 * 4 + 0.002 * 4))


def test_extra_arguments_are_ignored(server, jpeg):
    with SimulatorClient(server.url) as client:
        client._sent.append(0.0)
        client._send_raw("42" + json.dumps(["telemetry", good_payload(jpeg), {"x": 1}]))
        assert client.receive_reply().event == "steer"


@pytest.mark.parametrize(
    ("value", "expected", "why"),
    [
        (math.nan, SAFE, "model output nan is not a steering value; safe command"),
        (math.inf, SAFE, "model output inf is not a steering value; safe command"),
        # a broken model: far outside -1..1
        (50.0, SAFE, "model output 50.0 is not a steering value; safe command"),
        # a small overshoot is clamped
        (1.3, {"steering_angle": "1.000000"}, "model output 1.300 clamped to +-1"),
        (-1.3, {"steering_angle": "-1.000000"}, "model output -1.300 clamped to +-1"),
        (RuntimeError("model blew up"), SAFE, "telemetry handler failed; answering the safe"),
    ],
)
def test_model_outputs_that_cannot_be_sent(value, expected, why, jpeg, caplog):
    caplog.set_level(logging.WARNING, logger="drive.server")
    with DriveServer(StubPredictor(value), port=0) as srv, SimulatorClient(srv.url) as client:
        reply = client.send_telemetry(jpeg, 0, 0, 9.0)
        assert reply.data.items() >= expected.items()
        client.send_telemetry(jpeg, 0, 0, 9.0)  # still serving
    says_why = [r for r in caplog.records if r.name == "drive.server" and why in r.getMessage()]
    assert says_why, [f"{r.name}: {r.getMessage()}" for r in caplog.records]
    if isinstance(value, Exception):  # the traceback is kept for whoever reads the log
        assert says_why[0].exc_info and says_why[0].exc_info[1] is value


def test_two_clients_get_their_own_replies(jpeg):
    class Brightness(StubPredictor):  # each client sends its own frame, gets its own answer
        def _predict(self, frame):
            return 0.5 if frame.mean() > 128 else -0.5

    stub, bright, dark = Brightness(), flat_jpeg(230), flat_jpeg(20)
    errors = []
    with DriveServer(stub, port=0) as srv:

        def drive(image, expected):
            try:
                with SimulatorClient(srv.url) as client:
                    for _ in range(40):
                        assert client.send_telemetry(image, 0, 0, 5.0).steering == expected
                    client.expect_quiet(0.2)
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=drive, args=a) for a in ((bright, 0.5), (dark, -0.5))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []


def flat_jpeg(level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((160, 320, 3), level, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_reconnecting_client_is_served_again(server, jpeg):
    client = SimulatorClient(server.url).connect()
    try:
        first_sid = client.sid
        client.send_telemetry(jpeg, 0, 0, 5.0)
        for _ in range(3):  # the simulator reconnects back to back when the socket drops
            client.reconnect()
            assert client.send_telemetry(jpeg, 0, 0, 5.0).event == "steer"
        assert client.sid != first_sid
    finally:
        client.close()


def test_double_open_two_chains(server, jpeg):
    """The simulator's two ``open`` events start two chains: each frame answered once."""
    with SimulatorClient(server.url) as client:
        client.emit_telemetry(jpeg, 0, 0, 1.0)
        client.emit_telemetry(jpeg, 0, 0, 1.0)
        for _ in range(30):
            client.receive_reply()
            client.emit_telemetry(jpeg, 0, 0, 1.0)
        client.receive_reply()
        client.receive_reply()
        client.expect_quiet(0.3)


def test_message_over_the_transport_limit_drops_the_connection_only(server, jpeg):
    client = SimulatorClient(server.url, timeout=5).connect()
    try:
        client._sent.append(0.0)
        client._send_raw(
            "42" + json.dumps(["telemetry", {"image": "A" * (MAX_MESSAGE_BYTES + 10)}])
        )
        with pytest.raises(SimulatorProtocolError):
            client.receive_reply()
        client.reconnect()  # as the simulator would
        assert client.send_telemetry(jpeg, 0, 0, 5.0).event == "steer"
    finally:
        client.close()


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
def test_python_socketio_client(server, jpeg, transports):
    replies, got = [], threading.Event()
    client = socketio.Client(reconnection=False)

    @client.on("steer")
    def on_steer(data):
        replies.append(data)
        got.set()

    client.connect(f"http://127.0.0.1:{server.port}", transports=transports, wait_timeout=5)
    try:
        for _ in range(5):
            got.clear()
            client.emit("telemetry", good_payload(jpeg))
            assert got.wait(5)
        client.emit("telemetry", None)
    finally:
        client.disconnect()
    assert len(replies) == 5
    assert all(set(r) == {"steering_angle", "throttle"} for r in replies)
    assert all(isinstance(v, str) for r in replies for v in r.values())


def test_simulator_and_modern_client_at_once(server, jpeg):
    modern = socketio.Client(reconnection=False)
    got = threading.Event()
    modern.on("steer", lambda data: got.set())
    modern.connect(f"http://127.0.0.1:{server.port}", transports=["websocket"], wait_timeout=5)
    try:
        with SimulatorClient(server.url) as sim:
            for _ in range(5):
                got.clear()
                modern.emit("telemetry", good_payload(jpeg))
                assert sim.send_telemetry(jpeg, 0, 0, 5).event == "steer"
                assert got.wait(5)
            sim.expect_quiet(0.2)  # the modern client's replies never reach the simulator
    finally:
        modern.disconnect()


def test_latency_is_logged_every_n_frames(stub, jpeg, caplog):
    caplog.set_level(logging.INFO, logger="drive.server")
    with DriveServer(stub, port=0, log_every=10) as srv, SimulatorClient(srv.url) as client:
        for _ in range(20):
            client.send_telemetry(jpeg, 0, 0, 5.0)
    lines = [r.getMessage() for r in caplog.records if "fps" in r.getMessage()]
    assert len(lines) == 2
    for stage in ("decode p50", "infer p50", "handler p50", "p99"):
        assert stage in lines[0]


def _node_with_socketio_client() -> bool:
    if shutil.which("node") is None:
        return False
    probe = subprocess.run(
        ["node", "-e", "require('socket.io-client')"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _node_with_socketio_client(),
    reason="needs node with socket.io-client 4.x resolvable (NODE_PATH=.../node_modules)",
)
def test_socketio_client_4_node(server, jpeg, tmp_path):
    image = tmp_path / "frame.b64"
    image.write_text(base64.b64encode(jpeg).decode())
    script = Path(__file__).with_name("socketio_client4.js")
    out = subprocess.run(
        ["node", str(script), f"http://127.0.0.1:{server.port}", str(image), "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["replies"] == 5


def test_websocket_ping_and_close_frames(server, jpeg):
    """WebSocket-level ping/close (websocket-sharp answers and sends them) are handled."""
    ws = websocket.create_connection(server.url, suppress_origin=True, timeout=5)
    try:
        assert ws.recv().startswith("0{")
        ws.ping(b"x")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"x"
        ws.send('42["telemetry",null]')
        while True:
            message = ws.recv()
            if message.startswith("42"):
                break
        assert json.loads(message[2:])[0] == "manual"
    finally:
        ws.close()  # a close frame; the server answers and drops the session
    deadline = time.monotonic() + 5
    while not all(s.closed for s in server.sio.eio.sockets.values()):
        assert time.monotonic() < deadline, "the session outlived its WebSocket"
        time.sleep(0.05)


def test_a_busy_port_raises_an_exception_not_system_exit(stub):
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        with pytest.raises(ServerBindError, match=f"cannot listen on 127.0.0.1:{port}: port") as e:
            DriveServer(stub, port=port)
    assert isinstance(e.value, OSError) and e.value.errno == errno.EADDRINUSE


def test_listening_beyond_loopback_warns_that_anyone_can_steer(stub, caplog):
    caplog.set_level(logging.WARNING, logger="drive.server")
    DriveServer(stub, host="127.0.0.1", port=0).shutdown()
    assert not caplog.records
    srv = DriveServer(stub, host="0.0.0.0", port=0)
    srv.shutdown()
    (record,) = caplog.records
    assert record.name == "drive.server" and f"0.0.0.0:{srv.port}" in record.getMessage()
    assert "no authentication" in record.getMessage()
