"""The live dashboard: a page on the drive server's own port, fed over socket.io.

``GET /`` serves ``drive/static/index.html`` (plus its js/css: nothing is fetched
from the internet). The page opens a WebSocket to the same python-socketio server
the simulator uses and connects the ``/dashboard`` namespace only; the
simulator's default namespace (implicit connect, lock-step replies) is not
touched. The namespace is strictly opt-in: with no browser connected the control
path pays one lock and a few appends per frame (:meth:`Dashboard.observe`).

Why a background thread: JPEG downscaling and base64 for the page cost about
1 ms per frame; done on the control path they would add to every reply. The
publisher thread wakes at most ``rate_hz`` times a second (10 by default), takes
the latest frame (older ones are simply overwritten, never queued) and emits it
to each browser whose Engine.IO send queue is empty; a browser that cannot keep
up misses frames instead of growing a queue.

Replay: ``DriveServer(..., replay_folder=FOLDER)`` (``drive.py MODEL --replay
FOLDER``) serves a finished recording (``drive_log.csv`` and its frames, written
by ``drive.py MODEL IMAGE_FOLDER``) at ``/replay/log`` and ``/replay/frames/NAME``;
the page's Replay tab scrubs through it.

Research builds (drive.extras): with extended telemetry the state carries
``track`` (the latest cross-track error, lap, sector and the run's out-of-bound
episodes and crashes, from the server's :class:`drive.quality.DrivingQuality`) and
the page shows its Track card; with the stock simulator there is no ``track`` and
the card stays hidden.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, abort, jsonify, send_from_directory
from PIL import Image

from core.drive_log import DRIVE_FRAME_PATTERN, read_drive_log
from drive.stats import percentiles_ms

log = logging.getLogger(__name__)

NAMESPACE = "/dashboard"
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Pushes per second to each browser: enough to see the car think, and at most
#: 10 downscaled JPEG encodes a second off the control path.
RATE_HZ = 10.0
#: Frames the latency and fps figures are computed over (a few seconds of driving).
LATENCY_WINDOW = 1000
#: The chart's history: one sample per push for the last minute.
HISTORY_SECONDS = 60.0
#: Downscale factor of the frame sent to the page (320x160 -> 160x80 would be too
#: small to see; 1 keeps the model's view as it is, about 10 KB per push at q70).
PUSH_SCALE = 1
PUSH_QUALITY = 70
#: A browser with more than this many Engine.IO packets waiting misses a push.
MAX_QUEUED = 1


class Dashboard:
    """What the page shows, gathered from the server and pushed at a bounded rate."""

    def __init__(
        self, sio, predictor, *, rate_hz: float = RATE_HZ, replay_folder=None, quality=None
    ):
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0. Received: rate_hz={rate_hz}")
        self.sio = sio
        self.predictor = predictor
        self.interval = 1.0 / rate_hz
        self.replay_folder = Path(replay_folder) if replay_folder else None
        self.quality = quality  # drive.quality.DrivingQuality, or None
        self._lock = threading.Lock()
        self._latest: tuple | None = None  # (frame, steering, throttle, speed, t)
        self._latest_seq = 0
        self._sent_seq = 0
        self._history_seq = 0
        self._decode: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._infer: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._total: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._times: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._history: deque[dict] = deque(maxlen=int(HISTORY_SECONDS * rate_hz) + 1)
        self.frames = 0
        self.bad_frames = 0
        self.manual_frames = 0
        self.simulators: dict[str, str] = {}  # sid -> user agent
        self.browsers: set[str] = set()
        self.pushed = 0
        self.skipped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        sio.on("connect", self._on_browser_connect, namespace=NAMESPACE)
        sio.on("disconnect", self._on_browser_disconnect, namespace=NAMESPACE)

    # ------------------------------------------------------------ control path

    def observe(
        self,
        *,
        kind: str,
        frame=None,
        steering=0.0,
        throttle=0.0,
        speed=0.0,
        decode_s=0.0,
        infer_s=0.0,
        total_s=0.0,
    ) -> None:
        """Note one answered telemetry message: ``kind`` is "ok", "bad" or "manual".

        Called on the control path after the reply is sent: no encoding here.
        """
        now = time.monotonic()
        with self._lock:
            if kind == "manual":
                self.manual_frames += 1
                return
            if kind == "bad":
                self.bad_frames += 1
            self.frames += 1
            self._decode.append(decode_s)
            self._infer.append(infer_s)
            self._total.append(total_s)
            self._times.append(now)
            if frame is not None:
                self._latest = (frame, steering, throttle, speed, now)
                self._latest_seq += 1

    def simulator_connected(self, sid: str, agent: str) -> None:
        with self._lock:
            self.simulators[sid] = agent

    def simulator_disconnected(self, sid: str) -> None:
        with self._lock:
            self.simulators.pop(sid, None)

    # ------------------------------------------------------------ browsers

    def _on_browser_connect(self, sid, environ, auth=None):
        with self._lock:
            self.browsers.add(sid)
            history = list(self._history)
        log.info("dashboard browser connected: %s", sid)
        # The model and the last minute of the chart, once; then pushes.
        self.sio.emit(
            "hello",
            {"model": self.model_info(), "history": history},
            to=sid,
            namespace=NAMESPACE,
        )

    def _on_browser_disconnect(self, sid, reason=None):
        with self._lock:
            self.browsers.discard(sid)

    def model_info(self) -> dict[str, Any]:
        info = getattr(self.predictor, "info", {}) or {}
        config = info.get("config", {}) or {}
        mse = info.get("best_val_mse", config.get("best_val_mse"))
        return {
            "runtime": getattr(self.predictor, "name", "?"),
            "arch": info.get("arch", config.get("arch")),
            "params": info.get("params", config.get("params")),
            "source": info.get("source"),
            "val_mse": mse if isinstance(mse, int | float) and math.isfinite(mse) else None,
        }

    def snapshot(self) -> dict[str, Any]:
        """The figures (no frame): latency p50/p99, fps, counts, clients."""
        with self._lock:
            decode, infer, total = list(self._decode), list(self._infer), list(self._total)
            times = list(self._times)
            latest = self._latest
            counts = dict(
                frames=self.frames, bad_frames=self.bad_frames, manual_frames=self.manual_frames
            )
            simulators = sorted(self.simulators.values())
            browsers = len(self.browsers)
        recent = [t for t in times if t > time.monotonic() - 5.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        latency = {}
        for name, values in (("decode", decode), ("inference", infer), ("total", total)):
            p50, p99 = percentiles_ms(values)
            latency[name] = {"p50": _finite(p50), "p99": _finite(p99)}
        state = {
            "fps": round(fps, 1),
            "latency_ms": latency,
            **counts,
            "simulators": simulators,
            "browsers": browsers,
        }
        if latest is not None:
            _, steering, throttle, speed, _ = latest
            state.update(steering=steering, throttle=throttle, speed=speed)
        track = self.quality.live() if self.quality is not None else None
        if track is not None:
            state["track"] = track
        return state

    # ------------------------------------------------------------ publisher

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drive-dashboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish()
            except Exception:  # the page must never take the server down
                log.exception("dashboard push failed")

    def publish(self) -> bool:
        """One push to every browser able to take it; returns whether one was built."""
        now = time.time()
        with self._lock:
            latest, seq = self._latest, self._latest_seq
            browsers = list(self.browsers)
            fresh = latest is not None and seq != self._history_seq
            if fresh:  # the chart's minute is kept with or without a browser
                _, steering, throttle, speed, _ = latest
                self._history.append(
                    {"t": now, "steering": steering, "throttle": throttle, "speed": speed}
                )
                self._history_seq = seq
        if not browsers:
            return False
        state = self.snapshot()
        if latest is not None and seq != self._sent_seq:
            state["image"] = encode_frame(latest[0])
            state["frame_seq"] = seq
            self._sent_seq = seq
        state["t"] = now
        for sid in browsers:
            if self._backlog(sid) > MAX_QUEUED:
                self.skipped += 1
                continue
            self.sio.emit("state", state, to=sid, namespace=NAMESPACE)
            self.pushed += 1
        return True

    def _backlog(self, sid: str) -> int:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        sock = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        return sock.queue.qsize() if sock is not None else 0

    # ------------------------------------------------------------ HTTP

    def wsgi_app(self) -> Flask:
        """The page, its files and the replay endpoints (socket.io is routed before this)."""
        app = Flask(__name__, static_folder=None)

        @app.get("/")
        def index():
            return send_from_directory(STATIC_DIR, "index.html")

        @app.get("/static/<path:name>")
        def static_file(name):
            return send_from_directory(STATIC_DIR, name)

        @app.get("/api/state")
        def api_state():
            return jsonify({"model": self.model_info(), **self.snapshot()})

        @app.get("/replay/log")
        def replay_log():
            if self.replay_folder is None:
                return jsonify({"folder": None, "frames": []})
            try:
                rows = read_recording(self.replay_folder)
            except (OSError, ValueError) as exc:
                return jsonify(
                    {"folder": str(self.replay_folder), "error": str(exc), "frames": []}
                ), 404
            return jsonify({"folder": str(self.replay_folder), "frames": rows})

        @app.get("/replay/frames/<name>")
        def replay_frame(name):
            if self.replay_folder is None or not DRIVE_FRAME_PATTERN.match(name):
                abort(404)
            return send_from_directory(self.replay_folder, name, mimetype="image/jpeg")

        return app


def read_recording(folder: str | Path) -> list[dict[str, Any]]:
    """The rows of a recording's ``drive_log.csv`` (image, time, steering, throttle, speed).

    Raises RecordingError (a ValueError) naming the line of a bad row.
    """
    return [
        {
            "image": r.image,
            "time": r.time,
            "steering": r.steering,
            "throttle": r.throttle,
            "speed": r.speed,
        }
        for r in read_drive_log(folder)
    ]


def encode_frame(frame: np.ndarray, scale: int = PUSH_SCALE, quality: int = PUSH_QUALITY) -> str:
    """A ``data:`` URL of the frame as the model received it, downscaled by ``scale``."""
    img = Image.fromarray(frame)
    if scale > 1:
        img = img.resize((img.width // scale, img.height // scale), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None
