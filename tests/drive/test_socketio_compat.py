"""The python-socketio / python-engineio internals drive.socketio_compat relies on.

Each test names one private piece and checks it in the installed versions, so an
upgrade that renames, re-signs or rewires one fails here by name (the byte-for-byte
simulator tests in test_server.py then say what it breaks).
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import engineio
import simple_websocket
import socketio
from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
from engineio.socket import Socket

from drive.socketio_compat import (
    ImplicitConnectServer,
    engineio_sid,
    install_websocket,
    stock_websocket,
    writer_idle,
)

VERSIONS = (
    f"python-socketio {version('python-socketio')}, python-engineio {version('python-engineio')}"
)


def params(func) -> list[str]:
    return list(inspect.signature(func).parameters)


def threading_server() -> engineio.Server:
    return engineio.Server(async_mode="threading")


def test_socketio_event_and_connect_handlers_keep_their_signatures():
    event = ["self", "eio_sid", "namespace", "id", "data"]
    assert params(socketio.Server._handle_event) == event, VERSIONS
    connect = ["self", "eio_sid", "namespace", "data"]
    assert params(socketio.Server._handle_connect) == connect, VERSIONS
    assert params(socketio.Manager.sid_from_eio_sid) == ["self", "eio_sid", "namespace"], VERSIONS
    # The override still overrides what the event path calls.
    assert ImplicitConnectServer._handle_event is not socketio.Server._handle_event


def test_engineio_builds_each_websocket_from_the_installed_factory():
    server = threading_server()
    assert isinstance(server._async, dict) and "websocket" in server._async, VERSIONS
    built = []

    def factory(handler, eio_server):
        built.append((handler, eio_server))
        return lambda environ, start_response: "served"

    install_websocket(server, factory)
    sock = Socket(server, "sid-1")
    assert sock._upgrade_websocket({}, None) == "served", VERSIONS
    [(handler, eio_server)] = built
    assert eio_server is server
    assert handler == sock._websocket_handler and engineio_sid(handler) == "sid-1", VERSIONS
    assert engineio_sid(print) is None  # not a bound method of an Engine.IO socket


def test_engineio_sets_the_read_timeout_on_the_websockets_sock():
    assert params(Socket._websocket_handler) == ["self", "ws"], VERSIONS
    assert "_sock" in inspect.getsource(Socket._websocket_handler), VERSIONS


def test_the_stock_websocket_takes_simple_websocket_options():
    assert params(SimpleWebSocketWSGI.__init__) == ["self", "handler", "server", "kwargs"], VERSIONS
    server_params = params(simple_websocket.Server.__init__)
    assert {"receive_bytes", "max_message_size"} <= set(server_params), VERSIONS
    factory = stock_websocket(receive_bytes=65536, max_message_size=1024)
    ws = factory(lambda ws: None, threading_server())
    assert isinstance(ws, SimpleWebSocketWSGI)
    assert ws.server_args == {"receive_bytes": 65536, "max_message_size": 1024}, VERSIONS


def test_writer_idle_reads_the_engineio_socket_state():
    server = threading_server()
    assert writer_idle(server, "missing") is False
    sock = Socket(server, "sid-2")
    server.sockets["sid-2"] = sock
    for name in ("upgraded", "upgrading", "closing", "queue"):
        assert hasattr(sock, name), (name, VERSIONS)
    assert writer_idle(server, "sid-2") is False  # still polling
    sock.upgraded = True
    assert writer_idle(server, "sid-2") is True
    sock.queue.put("pending")
    assert writer_idle(server, "sid-2") is False  # a direct send would overtake it
    sock.queue.get()
    sock.closing = True
    assert writer_idle(server, "sid-2") is False
