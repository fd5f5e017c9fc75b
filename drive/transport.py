"""The WebSocket under python-engineio's threading mode, with fewer thread hand-offs.

python-engineio's threading mode runs each WebSocket with simple-websocket, which
starts a reader thread per connection: a telemetry frame then crosses three
threads before its reply leaves (simple-websocket reader -> engineio handler ->
engineio writer). Each hand-off is a wake-up, cheap on an idle CPU but about a
millisecond each when the CPU is shared with the simulator itself or with other
work (measured in benchmarks/drive_latency.md).

:class:`InlineWebSocket` is a drop-in for engineio's ``_async["websocket"]`` (installed,
like every other use of engineio internals, through :mod:`drive.socketio_compat`) that
reads frames in the connection's own thread (the one that runs the handlers), with
the same wsproto state machine simple-websocket uses, and lets the server send a
reply straight from that thread (:func:`direct_sender`) instead of through
engineio's writer queue. Everything else (handshake, pings, closing, the writer
thread for pings and for clients that are still polling) stays python-engineio's.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections import deque

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from drive.socketio_compat import engineio_sid, writer_idle

log = logging.getLogger(__name__)

#: Read size: a telemetry frame (about 16 KB) arrives in one ``recv``.
RECEIVE_BYTES = 64 * 1024

#: Open connections by Engine.IO sid, for :func:`direct_sender`.
_OPEN: dict[str, InlineWebSocket] = {}
_OPEN_LOCK = threading.Lock()


class InlineWebSocket:
    """engineio's WebSocket interface (``wait``/``send``/``close``) without a reader thread."""

    max_message_size: int | None = None

    def __init__(self, handler, server, max_message_size: int | None = None):
        self.handler = handler  # the bound engineio Socket._websocket_handler
        self.server = server
        if max_message_size is not None:
            self.max_message_size = max_message_size
        self._send_lock = threading.Lock()
        self._messages: deque = deque()
        self._partial: list = []
        self._partial_len = 0
        self.connected = False

    # engineio sets the read timeout on ``ws._sock`` (ping interval + timeout).
    @property
    def _sock(self) -> socket.socket:
        return self.sock

    def __call__(self, environ, start_response):
        sock = environ.get("werkzeug.socket")
        if sock is None:
            raise RuntimeError("InlineWebSocket needs Werkzeug's server (werkzeug.socket)")
        self.sock = sock
        self.ws = WSConnection(ConnectionType.SERVER)
        request = b"GET / HTTP/1.1\r\n" + b"".join(
            f"{'-'.join(p.capitalize() for p in key[5:].split('_'))}: {value}\r\n".encode()
            for key, value in environ.items()
            if key.startswith("HTTP_")
        )
        self.ws.receive_data(request + b"\r\n")
        for event in self.ws.events():
            if isinstance(event, Request):
                self._send_bytes(self.ws.send(AcceptConnection(extensions=[PerMessageDeflate()])))
                self.connected = True
        if not self.connected:
            raise ConnectionError("WebSocket handshake failed")
        sid = engineio_sid(self.handler)
        if sid is not None:
            with _OPEN_LOCK:
                _OPEN[sid] = self
        try:
            self.handler(self)
        finally:
            if sid is not None:
                with _OPEN_LOCK:
                    if _OPEN.get(sid) is self:
                        del _OPEN[sid]
            self.connected = False
        # Tell Werkzeug the connection is finished (simple-websocket does the same).
        raise ConnectionError()

    def wait(self):
        """The next message, or ``None`` when the connection is closed."""
        while not self._messages:
            if not self.connected:
                return None
            try:
                data = self.sock.recv(RECEIVE_BYTES)
            except OSError:
                data = b""
            if not data:
                self.connected = False
                return None
            try:
                self.ws.receive_data(data)
                self._handle_events()
            except (LocalProtocolError, RemoteProtocolError) as exc:
                log.info("WebSocket protocol error: %s", exc)
                self.connected = False
                return None
        return self._messages.popleft()

    def _handle_events(self) -> None:
        for event in self.ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                self._partial.append(event.data)
                self._partial_len += len(event.data)
                if self.max_message_size and self._partial_len > self.max_message_size:
                    self.close(CloseReason.MESSAGE_TOO_BIG, "Message is too big")
                    return
                if event.message_finished:
                    joiner = "" if isinstance(event, TextMessage) else b""
                    self._messages.append(joiner.join(self._partial))
                    self._partial, self._partial_len = [], 0
            elif isinstance(event, Ping):
                self._send_bytes(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self.ws.state.name != "CLOSED":
                    self._send_bytes(self.ws.send(event.response()))
                self.connected = False
                return

    def _send_bytes(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def send(self, message) -> None:
        """Send one text (or binary) message; safe from any thread."""
        if not self.connected:
            raise OSError("WebSocket is closed")
        event = BytesMessage(data=message) if isinstance(message, bytes) else TextMessage(message)
        try:
            with self._send_lock:
                self.sock.sendall(self.ws.send(event))
        except LocalProtocolError as exc:
            raise OSError(str(exc)) from exc

    def close(self, reason=CloseReason.NORMAL_CLOSURE, message=None) -> None:
        if not self.connected:
            return
        self.connected = False
        try:
            with self._send_lock:
                self.sock.sendall(self.ws.send(CloseConnection(reason, message)))
        except (OSError, LocalProtocolError):
            pass
        with contextlib.suppress(OSError):  # wake a wait() blocked in recv
            self.sock.shutdown(socket.SHUT_RDWR)


def direct_sender(eio_server, eio_sid: str):
    """A function sending an Engine.IO message straight on ``eio_sid``'s WebSocket, or None.

    None when the client is polling, upgrading, or has packets queued (a direct
    send must not overtake them): the caller then emits the usual way.
    """
    ws = _OPEN.get(eio_sid)
    if ws is None or not ws.connected or not writer_idle(eio_server, eio_sid):
        return None
    return lambda text: ws.send("4" + text)
