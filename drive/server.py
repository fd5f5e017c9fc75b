"""The drive server: telemetry in, one ``steer`` (or ``manual``) out, to the sender only.

Transport: python-socketio 5 in threading mode on Werkzeug's threaded WSGI server,
one thread per connection. The doc measured threading mode (simple-websocket) at
3.4 ms p50 against 10 ms for eventlet, whose websocket unmasks frames one byte at
a time in Python (../shared/docs/simulator-protocol.md). Handlers run in the
connection's thread (``async_handlers=False``): each connection is served in
order, with no thread started per message. By default the WebSocket itself is
:class:`drive.transport.InlineWebSocket`, which reads frames and sends the reply
in that same thread (about 0.2 ms less per round trip than simple-websocket in
A/B runs on the 2-core machine); ``inline_transport=False`` keeps engineio's
stock simple-websocket.

The simulator's client never sends the Socket.IO CONNECT packet; see
:class:`drive.socketio_compat.ImplicitConnectServer` for how it is served anyway. Every
use of python-socketio / python-engineio internals is in :mod:`drive.socketio_compat`.

The same port serves the live dashboard page (``GET /``) and pushes to browsers
in the opt-in ``/dashboard`` namespace, off the control path (drive.dashboard).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass

import socketio
from werkzeug.serving import WSGIRequestHandler, make_server

from drive.binding import ServerBindError, is_loopback, listening_socket, port_holder
from drive.control import SET_SPEED, THROTTLE_MAX, THROTTLE_MIN, PIController
from drive.dashboard import Dashboard
from drive.extras import (
    DEFAULT_MAX_LAPS,
    ExtrasReader,
    is_selforacle_lineage,
    research_steer,
)
from drive.protocol import TelemetryError, parse_telemetry, steer_payload
from drive.quality import DrivingQuality
from drive.ratelimit import RateLimitedWarnings, reason_key
from drive.recorder import Recorder
from drive.socketio_compat import ImplicitConnectServer, install_websocket, stock_websocket
from drive.stats import LatencyStats
from drive.transport import InlineWebSocket, direct_sender
from serving import Predictor

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4567
#: Engine.IO messages above this close the connection (the client reconnects).
#: Telemetry is ~16 KB; the image field has its own, lower limit (answered with a
#: safe command) in drive.protocol.MAX_IMAGE_BASE64.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: simple-websocket reads 4 KB per recv() by default: a 16 KB telemetry frame took
#: 4-5 reads, each a wsproto parse and a string concatenation; 64 KB takes one
#: (round-trip p99 8.0-8.9 ms against 9.8-10.0 ms in A/B runs under load).
RECEIVE_BYTES = 64 * 1024
#: A model output beyond +-1 is clamped (a regression head overshoots a little);
#: beyond this bound the model is broken and the safe command goes out instead.
STEERING_SANITY_LIMIT = 2.0
SAFE_COMMAND = (0.0, 0.0)

__all__ = [  # the binding helpers moved to drive.binding; still importable from here
    "DriveServer",
    "ServerBindError",
    "is_loopback",
    "listening_socket",
    "port_holder",
]


class _RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, told that a finished WebSocket ends the TCP connection.

    simple-websocket ends a WebSocket by raising ConnectionError into Werkzeug, which
    then kept reading the socket as HTTP: the client's close frame was logged as a
    "400 Bad request syntax" and python-socketio clients waited 3 s to disconnect.
    """

    def connection_dropped(self, error, environ=None):
        self.close_connection = True


@dataclass
class _Answer:
    event: str
    payload: dict
    decode_s: float = 0.0
    infer_s: float = 0.0
    kind: str = "ok"  # "ok", "bad" (safe command for unusable telemetry) or "manual"
    frame: object = None  # the decoded frame, for the dashboard
    speed: float = 0.0
    extras: dict | None = None  # extended telemetry of a research build (drive.extras)


class DriveServer:
    """Serves a :class:`~serving.Predictor` to simulator clients.

    ``port=0`` picks a free port (read it back from :attr:`port`); an address that
    cannot be bound raises :class:`ServerBindError` (an ``OSError``). Use
    :meth:`serve_forever` in the foreground or :meth:`start`/:meth:`shutdown` (or
    ``with``) for a background thread.

    Extended telemetry from the research builds is read by :attr:`extras`, recorded
    with its frame, shown on the dashboard and summed up per lap in :attr:`quality`;
    ``max_laps`` goes in every steer to a SelfOracle/TUM build (drive.extras).
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        speed: float = SET_SPEED,
        throttle_min: float = THROTTLE_MIN,
        throttle_max: float = THROTTLE_MAX,
        recorder: Recorder | None = None,
        log_every: int = 1000,
        inline_transport: bool = True,
        dashboard: bool = True,
        replay_folder: str | None = None,
        max_laps: int = DEFAULT_MAX_LAPS,
    ):
        if max_laps < 1:
            raise ValueError(f"max_laps must be >= 1. Received: max_laps={max_laps}")
        self.predictor = predictor
        self.recorder = recorder
        self.stats = LatencyStats(every=log_every)
        self._controller = functools.partial(
            PIController, set_point=speed, out_min=throttle_min, out_max=throttle_max
        )
        self._controller()  # validate the limits now, not at the first frame
        self._controllers: dict[str, PIController] = {}
        self._warnings = RateLimitedWarnings()
        self.max_laps = max_laps
        self.extras = ExtrasReader()
        self.quality = DrivingQuality()
        self._research: set[str] = set()  # sids of SelfOracle/TUM builds

        self.sio = ImplicitConnectServer(
            async_mode="threading",
            async_handlers=False,
            max_http_buffer_size=MAX_MESSAGE_BYTES,
        )
        # The WebSocket engineio runs per connection: drive.transport's inline one
        # (frames read and replies sent in the connection's thread), or engineio's
        # default simple-websocket with a larger read size; both cap the message size.
        if inline_transport:
            websocket = functools.partial(InlineWebSocket, max_message_size=MAX_MESSAGE_BYTES)
        else:
            websocket = stock_websocket(
                receive_bytes=RECEIVE_BYTES, max_message_size=MAX_MESSAGE_BYTES
            )
        install_websocket(self.sio.eio, websocket)
        self._inline = inline_transport
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("telemetry", self._on_telemetry)
        # The page at / and its live feed in the opt-in /dashboard namespace
        # (drive.dashboard); the simulator's default namespace is unchanged.
        self.dashboard = (
            Dashboard(self.sio, predictor, replay_folder=replay_folder, quality=self.quality)
            if dashboard
            else None
        )
        self.app = socketio.WSGIApp(self.sio, self.dashboard.wsgi_app() if self.dashboard else None)
        with listening_socket(host, port) as sock:  # Werkzeug serves a duplicate of it
            self._http = make_server(
                host,
                port,
                self.app,
                threaded=True,
                request_handler=_RequestHandler,
                fd=sock.fileno(),
            )
        self.host = host
        self.port = self._http.port
        if not is_loopback(host):
            log.warning(
                "listening on %s:%d, which other machines can reach: there is no "
                "authentication, so anyone on the network can steer the car and see the "
                "camera frames and the dashboard (use --host 127.0.0.1 unless that is meant)",
                host,
                self.port,
            )
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/socket.io/?EIO=4&transport=websocket"

    # ------------------------------------------------------------------ events

    def _on_connect(self, sid, environ, auth=None):
        agent = environ.get("HTTP_USER_AGENT", "?")
        log.info("client connected: %s (%s)", sid, agent)
        if self.dashboard is not None:
            self.dashboard.simulator_connected(sid, agent)

    def _on_disconnect(self, sid, reason=None):
        self._controllers.pop(sid, None)
        self._research.discard(sid)
        if self.dashboard is not None:
            self.dashboard.simulator_disconnected(sid)
        log.info("client disconnected: %s (%s)", sid, reason)

    def _on_telemetry(self, sid, data=None, *_extra):
        start = time.perf_counter()
        try:
            answer = self.handle_telemetry(sid, data)
        except Exception:  # never leave the client without an answer
            log.exception("telemetry handler failed; answering the safe command")
            answer = _Answer("steer", steer_payload(*SAFE_COMMAND), kind="bad")
        if answer.event == "steer" and sid in self._research:
            answer.payload = research_steer(answer.payload, self.max_laps)
        self._send(sid, answer.event, answer.payload)
        handler_s = time.perf_counter() - start
        if answer.event == "steer":
            summary = self.stats.add(
                decode=answer.decode_s, infer=answer.infer_s, handler=handler_s
            )
            if summary:
                log.info("%s", summary)
        # After the reply, as the dashboard below; the frames recorded (answered with the
        # model's steering) are the frames summed up, as in the research drive.py logs.
        if answer.extras and answer.kind == "ok":
            self.quality.add(answer.extras)
        if self.dashboard is not None:  # after the reply: never delays it
            payload = answer.payload
            self.dashboard.observe(
                kind=answer.kind,
                frame=answer.frame,
                steering=float(payload.get("steering_angle", 0.0)),
                throttle=float(payload.get("throttle", 0.0)),
                speed=answer.speed,
                decode_s=answer.decode_s,
                infer_s=answer.infer_s,
                total_s=handler_s,
            )

    def _send(self, sid: str, event: str, payload: dict) -> None:
        """Emit to the sender only; straight on its WebSocket when that is safe."""
        if self._inline:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            send = direct_sender(self.sio.eio, eio_sid) if eio_sid else None
            if send is not None:
                try:
                    send(
                        self.sio.packet_class(socketio.packet.EVENT, data=[event, payload]).encode()
                    )
                    return
                except OSError:
                    return  # the connection is gone; engineio's handler cleans up
        self.sio.emit(event, payload, to=sid)

    def handle_telemetry(self, sid: str, data: object) -> _Answer:
        """The answer to one telemetry message (the socket-free part of the handler)."""
        # The user holds W or S: the simulator sends null and wants ``manual`` (the
        # SelfOracle/TUM build sends an empty object instead).
        if data is None or (isinstance(data, dict) and not data):
            self._controllers.pop(sid, None)
            return _Answer("manual", {}, kind="manual")
        extras = self.extras.read(data) if isinstance(data, dict) else {}
        if extras and is_selforacle_lineage(extras) and sid not in self._research:
            self._research.add(sid)
            log.info(
                "client %s is a SelfOracle/TUM simulator build: its steer replies carry "
                "confidence, loss and max_laps=%d too",
                sid,
                self.max_laps,
            )
        answer = self._steer(sid, data, extras)
        answer.extras = extras or None
        return answer

    def _steer(self, sid: str, data: object, extras: dict) -> _Answer:
        start = time.perf_counter()
        try:
            telemetry = parse_telemetry(data)
        except TelemetryError as exc:
            self._warnings.warn(reason_key(str(exc)), "bad telemetry from %s: %s", sid, exc)
            return _Answer(
                "steer", steer_payload(*SAFE_COMMAND), time.perf_counter() - start, kind="bad"
            )
        decoded = time.perf_counter()
        steering = self.predictor.predict(telemetry.image)
        inferred = time.perf_counter()
        timing = dict(decode_s=decoded - start, infer_s=inferred - decoded)

        if not math.isfinite(steering) or abs(steering) > STEERING_SANITY_LIMIT:
            self._warnings.warn(
                "model-output", "model output %r is not a steering value; safe command", steering
            )
            return _Answer("steer", steer_payload(*SAFE_COMMAND), **timing, kind="bad")
        if abs(steering) > 1.0:
            self._warnings.warn("model-range", "model output %.3f clamped to +-1", steering)
            steering = math.copysign(1.0, steering)

        controller = self._controllers.get(sid)
        if controller is None:
            controller = self._controllers[sid] = self._controller()
        throttle = controller.update(telemetry.speed)
        if self.recorder is not None:
            self.recorder.record(telemetry.jpeg, steering, throttle, telemetry.speed, extras)
        answer = _Answer("steer", steer_payload(steering, throttle), **timing)
        answer.frame, answer.speed = telemetry.image, telemetry.speed
        return answer

    # ------------------------------------------------------------------ lifecycle

    def serve_forever(self) -> None:
        log.info("listening on %s:%d (simulator URL %s)", self.host, self.port, self.url)
        self._serving.set()
        if self.dashboard is not None:
            self.dashboard.start()
        try:
            self._http.serve_forever()
        finally:
            self._close_clients()

    def start(self) -> DriveServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="drive-server", daemon=True)
        self._thread.start()
        return self

    def _close_clients(self) -> None:
        for eio_sid, sock in list(self.sio.eio.sockets.items()):
            try:
                sock.close(wait=False)
            except Exception as exc:  # a socket that is already gone
                log.debug("closing %s: %s", eio_sid, exc)

    def stop_serving(self) -> None:
        """Make serve_forever() return (call from another thread; blocks until it has)."""
        if self._serving.is_set():
            self._http.shutdown()

    def shutdown(self) -> None:
        """Stop listening, close every client, flush the recording."""
        if self._serving.is_set():
            self._http.shutdown()  # blocks until serve_forever has returned
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.dashboard is not None:
            self.dashboard.stop()
        self._close_clients()
        self._http.server_close()
        if self.recorder is not None:
            self.recorder.close()

    def __enter__(self) -> DriveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()
