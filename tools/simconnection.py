"""One simulator connection: the socket, handshake, pings and replies, as the simulator does them.

Split out of tools.simclient (which re-exports :class:`SimulatorClient`, :class:`Reply`
and :data:`DEFAULT_URL`, so ``from tools.simclient import SimulatorClient`` keeps
working), which keeps replaying a recording and the CLI. What it reproduces
(../shared/docs/simulator-protocol.md, read from the simulator's
``SocketIOComponent.cs`` and ``CommandServer.cs``):

- the hard-coded URL ``ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket``,
  WebSocket only, ``User-Agent: websocket-sharp/1.0`` and no ``Origin`` header;
- no Socket.IO CONNECT (``40``): telemetry ``42["telemetry",{...}]`` right after the
  Engine.IO handshake; ``40``/``41``/``44`` from the server are ignored;
- a ping ``2`` right after connecting (the server need not answer), and ``3`` in
  answer to the server's pings;
- every telemetry value a string with 4 decimals (``decimal=","`` for a
  comma-locale machine), ``null`` telemetry while the user drives;
- the strictness of its parser: a ``steer`` whose values are not strings that
  ``float.Parse`` reads, an event that is not ``["name"]``/``["name", {object}]``, a
  binary frame, or no answer at all, stalls or disconnects the real simulator;
  here each raises :class:`SimulatorProtocolError` (a missing answer
  :class:`SimulatorStall`), so tests and the CLI fail loudly.

Research builds (drive.extras): ``send_telemetry(..., extras={...})`` adds their
fields to the telemetry as given (strings, numbers, broken values), and
``SimulatorClient(url, dialect="selforacle")`` checks each ``steer`` as the
SelfOracle/TUM build's ``OnSteer`` reads it (``confidence``, ``loss``, ``max_laps``
required as well).
"""

from __future__ import annotations

import json
import select
import time
from collections import deque
from dataclasses import dataclass

import websocket

from tools.simwire import (
    LISTENED_EVENTS,
    STEER_DIALECTS,
    SimulatorProtocolError,
    SimulatorStall,
    check_steer,
    event_message,
    telemetry_payload,
)

DEFAULT_URL = "ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket"
USER_AGENT = "websocket-sharp/1.0"


@dataclass
class Reply:
    event: str  # "steer" or "manual"
    data: dict | None
    rtt: float  # seconds from sending the telemetry to receiving this reply
    steering: float | None = None
    throttle: float | None = None


class SimulatorClient:
    """One simulator connection, driven synchronously.

    ``send_telemetry`` sends one frame and waits for its answer; ``emit_telemetry``
    and ``receive_reply`` do the two halves, for several requests in flight.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 5.0,
        decimal: str = ".",
        dialect: str = "stock",
    ):
        if dialect not in STEER_DIALECTS:
            raise ValueError(
                f"dialect must be one of {sorted(STEER_DIALECTS)}. Received: dialect={dialect!r}"
            )
        self.url = url
        self.dialect = dialect
        self.timeout = timeout
        self.decimal = decimal
        self.sid: str | None = None
        self.ws: websocket.WebSocket | None = None
        self._sent: deque[float] = deque()
        self.pongs = 0
        self.ignored: list[str] = []  # 40/41/44 packets, ignored as the simulator does

    # ------------------------------------------------------------------ connection

    def connect(self) -> SimulatorClient:
        try:
            self.ws = websocket.create_connection(
                self.url,
                timeout=self.timeout,
                header=[f"User-Agent: {USER_AGENT}"],
                suppress_origin=True,
                # websocket-client validates UTF-8 byte by byte in Python (0.1 ms per
                # message, measured with cProfile); decoding the text frame in C still
                # rejects invalid UTF-8 (caught in _recv_text).
                skip_utf8_validation=True,
            )
        except (OSError, websocket.WebSocketException) as exc:
            raise SimulatorProtocolError(f"cannot connect to {self.url}: {exc}") from exc
        opening = self._recv_text(time.monotonic() + self.timeout)
        if not opening.startswith("0"):
            raise SimulatorProtocolError(
                f"expected the Engine.IO open packet, got {opening[:80]!r}"
            )
        try:
            self.sid = json.loads(opening[1:])["sid"]  # the simulator reads only the sid
        except (ValueError, KeyError, TypeError) as exc:
            raise SimulatorProtocolError(f"bad open packet {opening[:80]!r}") from exc
        self._send_raw("2")  # the simulator's ping thread pings at once
        self._sent.clear()
        return self

    def close(self, graceful: bool = True) -> None:
        """Close as the simulator does on quit (``41`` then ``1``), or just drop the socket."""
        if self.ws is None:
            return
        try:
            if graceful:
                self._send_raw("41")
                self._send_raw("1")
            self.ws.close(timeout=1)
        except (OSError, websocket.WebSocketException):
            pass
        self.ws = None

    def reconnect(self) -> SimulatorClient:
        """Drop the socket and connect again, as the simulator does when the socket drops."""
        self.close(graceful=False)
        return self.connect()

    def __enter__(self) -> SimulatorClient:
        return self.connect() if self.ws is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ telemetry

    def emit_telemetry(
        self, image, steering_deg: float, throttle: float, speed: float, extras=None
    ) -> None:
        """Send one telemetry without waiting (``image``: JPEG bytes, RGB array or base64)."""
        payload = telemetry_payload(
            image, steering_deg, throttle, speed, decimal=self.decimal, extras=extras
        )
        self.emit_raw_telemetry(payload)

    def emit_raw_telemetry(self, payload: object) -> None:
        """Send ``42["telemetry", payload]`` as given (tests send broken payloads this way)."""
        self._sent.append(time.perf_counter())
        self._send_raw(event_message("telemetry", payload))

    def receive_reply(self, timeout: float | None = None) -> Reply:
        """The next ``steer``/``manual`` event, matched to the oldest telemetry in flight."""
        if not self._sent:
            raise SimulatorProtocolError("receive_reply with no telemetry in flight")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        name, data = self._next_event(deadline)
        rtt = time.perf_counter() - self._sent.popleft()
        if name not in LISTENED_EVENTS:
            raise SimulatorProtocolError(
                f"server sent event {name!r}; the simulator listens only to steer and manual, "
                "so its telemetry loop stops"
            )
        if name == "manual":
            return Reply(name, data, rtt)
        steering, throttle = check_steer(data, self.dialect)
        return Reply(name, data, rtt, steering, throttle)

    def send_telemetry(
        self, image, steering_deg: float, throttle: float, speed: float, extras=None
    ) -> Reply:
        """Send one frame and return its ``steer`` reply (``reply.rtt`` in seconds)."""
        self.expect_quiet()
        self.emit_telemetry(image, steering_deg, throttle, speed, extras)
        reply = self.receive_reply()
        if reply.event != "steer":
            raise SimulatorProtocolError(f"telemetry answered with {reply.event!r}, not steer")
        return reply

    def send_raw_telemetry(self, payload: object) -> Reply:
        """Send a payload as given and return the reply, whichever event it is."""
        self.expect_quiet()
        self.emit_raw_telemetry(payload)
        return self.receive_reply()

    def send_manual(self) -> Reply:
        """``42["telemetry",null]`` (user holds W or S); the answer must be ``manual``."""
        self.expect_quiet()
        self._sent.append(time.perf_counter())
        self._send_raw('42["telemetry",null]')
        reply = self.receive_reply()
        if reply.event != "manual":
            raise SimulatorProtocolError(
                f"null telemetry answered with {reply.event!r}, not manual"
            )
        return reply

    def expect_quiet(self, seconds: float = 0.0) -> None:
        """Raise if an event arrives within ``seconds`` with nothing in flight (an extra reply).

        Engine.IO pings and pongs may arrive meanwhile; they are answered or counted
        and do not count as replies.
        """
        if self._sent:
            return
        deadline = time.monotonic() + seconds
        while self._readable(max(0.0, deadline - time.monotonic())):
            event = self._handle(self._recv_text(time.monotonic() + self.timeout))
            if event is not None:
                raise SimulatorProtocolError(
                    f"unsolicited {event[0]!r} event: a telemetry was answered more than once"
                )

    # ------------------------------------------------------------------ wire

    def _send_raw(self, text: str) -> None:
        if self.ws is None:
            raise SimulatorProtocolError("not connected")
        try:
            self.ws.send(text)
        except (OSError, websocket.WebSocketException) as exc:
            raise SimulatorProtocolError(f"connection lost while sending: {exc}") from exc

    def _readable(self, timeout: float) -> bool:
        sock = self.ws.sock if self.ws is not None else None
        if sock is None:
            return False
        if hasattr(sock, "pending") and sock.pending():  # TLS buffers
            return True
        readable, _, _ = select.select([sock], [], [], timeout)
        return bool(readable)

    def _recv_text(self, deadline: float) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._readable(remaining):
            raise SimulatorStall(
                f"no message from the server within {self.timeout:g} s: the simulator would "
                "keep its last command forever"
            )
        try:
            self.ws.settimeout(max(remaining, 0.01))
            message = self.ws.recv()
        except websocket.WebSocketTimeoutException as exc:
            raise SimulatorStall(f"server message incomplete after {self.timeout:g} s") from exc
        except UnicodeDecodeError as exc:
            raise SimulatorProtocolError(f"text frame that is not UTF-8: {exc}") from exc
        except (OSError, websocket.WebSocketException) as exc:
            raise SimulatorProtocolError(f"connection lost: {exc}") from exc
        if isinstance(message, bytes):
            raise SimulatorProtocolError("binary frame: the simulator's parser throws on it")
        if message == "":
            raise SimulatorProtocolError("connection closed by the server")
        return message

    def _next_event(self, deadline: float) -> tuple[str, dict | None]:
        while True:
            event = self._handle(self._recv_text(deadline))
            if event is not None:
                return event

    def _handle(self, message: str) -> tuple[str, dict | None] | None:
        """Act on one Engine.IO message; return the Socket.IO event it carries, if any."""
        kind = message[0]
        if kind == "2":  # server ping: answer pong, as the simulator does
            self._send_raw("3")
        elif kind == "3":
            self.pongs += 1
        elif kind == "6":
            pass
        elif kind == "1":
            raise SimulatorProtocolError("the server closed the Engine.IO session")
        elif kind == "4":
            return self._socketio(message[1:])
        else:
            raise SimulatorProtocolError(f"unknown Engine.IO packet {message[:60]!r}")
        return None

    def _socketio(self, packet: str) -> tuple[str, dict | None] | None:
        if packet[:1] in ("0", "1", "4"):  # CONNECT, DISCONNECT, CONNECT_ERROR: ignored
            self.ignored.append(packet[:80])
            return None
        if packet[:1] in ("5", "6"):
            raise SimulatorProtocolError(
                f"binary event {packet[:60]!r}: the simulator's parser throws on it"
            )
        if packet[:1] != "2":
            raise SimulatorProtocolError(
                f"Socket.IO packet {packet[:60]!r}: the simulator handles events only"
            )
        try:
            event = json.loads(packet[1:])
        except ValueError as exc:
            raise SimulatorProtocolError(f"event is not JSON: {packet[:80]!r}") from exc
        shape_ok = (
            isinstance(event, list)
            and len(event) in (1, 2)
            and isinstance(event[0], str)
            and (len(event) == 1 or isinstance(event[1], dict))
        )
        if not shape_ok:
            raise SimulatorProtocolError(
                f"event {packet[1:80]!r} is not [name] or [name, {{object}}]: the simulator's "
                "parser throws, closes the socket and reconnects"
            )
        return event[0], (event[1] if len(event) == 2 else None)
