"""The live dashboard: page and files, the /dashboard namespace, replay, a real browser."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import research_builds as rb
import socketio
from drive_testkit import StubPredictor, make_jpeg

from drive import cli
from drive.dashboard import MAX_QUEUED, NAMESPACE, STATIC_DIR, Dashboard
from drive.protocol import decode_image
from drive.recorder import Recorder
from drive.server import DriveServer
from serving import load
from tools.browser import find_chromium, open_dashboard
from tools.simclient import SimulatorClient

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def dash_server():
    srv = DriveServer(StubPredictor(0.3), host="127.0.0.1", port=0, log_every=10_000).start()
    try:
        yield srv
    finally:
        srv.shutdown()


def _browser_client(srv, states: list, hello: list | None = None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.on("state", states.append, namespace=NAMESPACE)
    if hello is not None:
        client.on("hello", hello.append, namespace=NAMESPACE)
    client.connect(f"http://127.0.0.1:{srv.port}", namespaces=[NAMESPACE], transports=["websocket"])
    return client


def test_page_and_its_files_are_served_without_any_download(dash_server):
    base = f"http://127.0.0.1:{dash_server.port}"
    status, page = _get(base + "/")
    assert status == 200 and b"Drive dashboard" in page
    for src in re.findall(rb'(?:src|href)="([^"]+)"', page):
        assert src.startswith(b"/static/"), src  # nothing from a CDN
        assert _get(base + src.decode())[0] == 200
    for path in STATIC_DIR.iterdir():
        assert not re.search(r"https?://", path.read_text()), path
    # Path traversal, aimed at a file that is really there one folder up.
    assert (STATIC_DIR.parent / "server.py").is_file()
    for escape in ("../server.py", "..%2Fserver.py", "%2E%2E%2Fserver.py"):
        status, body = _get(base + "/static/" + escape)
        assert status == 404 and b"DriveServer" not in body, escape


def test_browser_namespace_gets_frames_and_figures_while_simulator_drives(dash_server, jpeg):
    states, hello = [], []
    browser = _browser_client(dash_server, states, hello)
    try:
        with SimulatorClient(dash_server.url) as sim:
            for _ in range(20):
                reply = sim.send_telemetry(jpeg, 0.0, 0.0, 12.0)
                assert reply.event == "steer" and reply.steering == pytest.approx(0.3)
            assert sim.send_raw_telemetry({"image": "x"}).steering == 0.0  # a bad frame
            assert sim.send_manual().event == "manual"
            assert _wait(
                lambda: any(
                    s.get("bad_frames") == 1 and s.get("manual_frames") == 1 for s in states
                )
            )
            last = states[-1]
            assert last["simulators"] and last["browsers"] == 1
    finally:
        browser.disconnect()
    assert hello and hello[0]["model"]["runtime"] == "stub"
    with_image = [s for s in states if "image" in s]
    assert with_image and with_image[-1]["image"].startswith("data:image/jpeg;base64,")
    assert with_image[-1]["steering"] == pytest.approx(0.3)
    assert last["frames"] == 21 and last["latency_ms"]["total"]["p50"] > 0
    assert last["speed"] == pytest.approx(12.0)


def test_pushes_are_rate_limited_and_dropped_not_queued(dash_server, jpeg):
    states = []
    browser = _browser_client(dash_server, states)
    try:
        with SimulatorClient(dash_server.url) as sim:
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < 1.0:
                sim.send_telemetry(jpeg, 0.0, 0.0, 5.0)
                n += 1
        elapsed = time.monotonic() - start
        time.sleep(0.3)
    finally:
        browser.disconnect()
    images = [s for s in states if "image" in s]
    assert n > 2 * len(images)  # frames are overwritten, not each pushed
    assert len(images) <= (elapsed + 0.4) * 10 + 2


def test_a_browser_that_stops_reading_misses_pushes_instead_of_queueing_them(dash_server, jpeg):
    """A real Engine.IO polling client joins /dashboard, then stops polling: the pushes
    meant for it are skipped (its server-side queue stays short), and once it reads
    again they reach it."""
    dash = dash_server.dashboard
    base = f"http://127.0.0.1:{dash_server.port}/socket.io/?EIO=4&transport=polling"
    _, handshake = _get(base)
    sid = json.loads(handshake[handshake.index(b"{") :])["sid"]
    join = urllib.request.Request(f"{base}&sid={sid}", data=b"40/dashboard,", method="POST")
    urllib.request.urlopen(join, timeout=5).read()
    assert _wait(lambda: len(dash.browsers) == 1)
    queue = dash_server.sio.eio.sockets[sid].queue
    with SimulatorClient(dash_server.url) as sim:
        for _ in range(25):  # about 0.5 s: several of the 10 pushes a second
            sim.send_telemetry(jpeg, 0.0, 0.0, 5.0)
            time.sleep(0.02)
        assert _wait(lambda: dash.skipped >= 3)
        assert queue.qsize() <= MAX_QUEUED + 1  # the join's answer and hello, no pushes
        assert dash.pushed == 0
        _, waiting = _get(f"{base}&sid={sid}")  # the browser reads again
        assert waiting.count(b'"state"') == 0 and b'"hello"' in waiting
        for _ in range(10):
            sim.send_telemetry(jpeg, 0.0, 0.0, 5.0)
            time.sleep(0.02)
        assert _wait(lambda: dash.pushed >= 1)
    _, pushed = _get(f"{base}&sid={sid}")
    assert b'"state"' in pushed


def test_no_browser_means_no_encoding(dash_server, jpeg, monkeypatch):
    calls = []
    monkeypatch.setattr("drive.dashboard.encode_frame", lambda *a: calls.append(a) or "")
    with SimulatorClient(dash_server.url) as sim:
        for _ in range(5):
            sim.send_telemetry(jpeg, 0.0, 0.0, 5.0)
    time.sleep(0.25)
    assert calls == []
    assert dash_server.dashboard.frames == 5


def test_dashboard_can_be_turned_off():
    srv = DriveServer(StubPredictor(), port=0, dashboard=False).start()
    try:
        assert srv.dashboard is None
        assert _get(f"http://127.0.0.1:{srv.port}/")[0] == 404
        with SimulatorClient(srv.url) as sim:
            assert sim.send_telemetry(make_jpeg(), 0, 0, 5).event == "steer"
    finally:
        srv.shutdown()


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate_hz"):
        Dashboard(socketio.Server(), StubPredictor(), rate_hz=0)


def _recording(folder: Path, n: int = 5) -> Path:
    rec = Recorder(folder)
    for i in range(n):
        rec.record(make_jpeg(seed=i), steering=i / 10, throttle=0.2, speed=10.0 + i)
        time.sleep(0.002)
    rec.close()
    return folder


def test_replay_serves_a_finished_recording(tmp_path):
    folder = _recording(tmp_path / "rec")
    srv = DriveServer(StubPredictor(), port=0, replay_folder=folder).start()
    try:
        base = f"http://127.0.0.1:{srv.port}"
        status, body = _get(base + "/replay/log")
        log = json.loads(body)
        assert status == 200 and len(log["frames"]) == 5
        assert [f["steering"] for f in log["frames"]] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
        status, frame = _get(base + "/replay/frames/" + log["frames"][2]["image"])
        assert status == 200 and frame.startswith(b"\xff\xd8")
        assert _get(base + "/replay/frames/drive_log.csv")[0] == 404
        # Path traversal, aimed at a frame-named file that really is one folder up.
        secret = tmp_path / log["frames"][2]["image"]
        secret.write_bytes(b"not for the page")
        for escape in ("..%2F", "%2E%2E%2F", "..%5C"):
            status, body = _get(base + "/replay/frames/" + escape + secret.name)
            assert status == 404 and body != b"not for the page", escape
    finally:
        srv.shutdown()


def test_cli_refuses_a_replay_folder_without_a_log(tmp_path, caplog):
    assert cli.main(["missing.tflite", "--replay", str(tmp_path)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"--replay {tmp_path}: expected a recording folder holding drive_log.csv"]


# --------------------------------------------------------------------------- browser


@pytest.mark.browser
def test_page_updates_in_headless_chromium(tmp_path, tiny_keras_path):
    """Model served, frames fed by the simulator-protocol client, page checked in Chromium."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    replay = _recording(tmp_path / "rec", n=8)
    predictor = load(tiny_keras_path)
    srv = DriveServer(predictor, port=0, replay_folder=replay).start()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_api.sync_playwright() as pw:
            browser, page = open_dashboard(pw, tmp_path / "profile", srv.port, chromium)
            with SimulatorClient(srv.url) as sim:
                seqs = set()
                for i in range(60):
                    sim.send_telemetry(make_jpeg(seed=i % 7), 0.0, 0.1, 8.0 + i / 10)
                    time.sleep(0.02)
                    seqs.add(page.eval_on_selector("#frame", "c => c.dataset.seq || ''"))
                page.wait_for_function("document.getElementById('total-p50').textContent !== '–'")
                assert len(seqs - {""}) >= 2  # the frame changed while driving
                # Then one frame the model steers differently from all the others: the
                # page must come to show exactly the steering sent for it.
                earlier = {f"{predictor.predict(_frame(make_jpeg(seed=s))):.3f}" for s in range(7)}
                last = next(
                    jpeg
                    for jpeg in (make_jpeg(seed=s) for s in range(100, 200))
                    if f"{predictor.predict(_frame(jpeg)):.3f}" not in earlier
                )
                reply = sim.send_telemetry(last, 0.0, 0.1, 9.0)
                shown = f"{predictor.predict(_frame(last)):.3f}"
                assert f"{reply.steering:.3f}" == shown
                page.wait_for_function(
                    f"document.getElementById('steering').textContent === '{shown}'",
                    timeout=5000,
                )
                assert float(page.text_content("#total-p50")) > 0
                assert float(page.text_content("#fps")) > 0
                assert "parameters" in page.text_content("#model")
                assert page.is_hidden("#track-card")  # the stock simulator: no Track card
                page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"))
            _shows_the_live_track(page, srv)
            page.click("#tab-replay")
            page.wait_for_function(
                "document.getElementById('replay-info').textContent.includes('frame 1/8')"
            )
            page.eval_on_selector(
                "#scrub", "s => { s.value = 5; s.dispatchEvent(new Event('input')); }"
            )
            assert "frame 6/8" in page.text_content("#replay-info")
            assert "steering 0.500" in page.text_content("#replay-info")
            page.screenshot(path=str(ARTIFACTS / "dashboard-replay.png"))
            browser.close()
    finally:
        srv.shutdown()


def _shows_the_live_track(page, srv):
    """A SelfOracle build's frames (drive.extras): the Track card shows the live CTE,
    lap, sector, OBEs and crashes as they come."""
    frames = rb.selforacle_run()
    with SimulatorClient(srv.url, dialect="selforacle") as sim:
        for i, frame in enumerate(frames[:7]):  # lap 1 up to its -2.0 CTE frame
            sim.send_telemetry(make_jpeg(seed=i), 0, 0.1, 8.0, extras=rb.encode(frame, "strings"))
            time.sleep(0.02)
        page.wait_for_function(
            "document.getElementById('cte').textContent === '-2.000'", timeout=5000
        )
        assert page.is_visible("#track-card")
        assert (page.text_content("#lap"), page.text_content("#sector")) == ("1", "1")
        assert page.text_content("#obes") == "1" and page.text_content("#crashes") == "0"
        for i, frame in enumerate(frames[7:14], start=7):  # into lap 2: CTE -0.25
            sim.send_telemetry(make_jpeg(seed=i), 0, 0.1, 8.0, extras=rb.encode(frame, "strings"))
            time.sleep(0.02)
        page.wait_for_function(
            "document.getElementById('cte').textContent === '-0.250'", timeout=5000
        )
        assert (page.text_content("#lap"), page.text_content("#cte-max")) == ("2", "0.250")
        page.screenshot(path=str(ARTIFACTS / "dashboard-track.png"))


def _frame(jpeg: bytes):
    return decode_image(base64.b64encode(jpeg).decode())[0]
