"""Every use the drive server makes of python-socketio / python-engineio internals.

The simulator's client needs behaviour no public API of python-socketio 5 gives
(../shared/docs/simulator-protocol.md), and the inline transport (drive.transport)
replaces a part of python-engineio's threading mode. Both rest on names these
libraries do not document, all of them here and nowhere else in drive/:

- ``socketio.Server._handle_event(eio_sid, namespace, id, data)``, overridden, and
  ``socketio.Server._handle_connect(eio_sid, namespace, data)``, called:
  :class:`ImplicitConnectServer`.
- ``engineio.Server._async["websocket"]``, the class engineio builds per WebSocket as
  ``factory(socket._websocket_handler, server)`` (``engineio.socket.Socket.
  _upgrade_websocket``), replaced: :func:`install_websocket`.
- ``engineio.async_drivers._websocket_wsgi.SimpleWebSocketWSGI(handler, server,
  **kwargs)``, the stock class, given simple-websocket options: :func:`stock_websocket`.
- ``Socket._websocket_handler`` is a bound method of the Engine.IO socket (its
  ``sid``), and it sets the read timeout on the WebSocket's ``_sock``:
  :func:`engineio_sid` and :class:`drive.transport.InlineWebSocket`.
- ``Socket.upgraded`` / ``upgrading`` / ``closing`` / ``queue`` and
  ``engineio.Server.sockets``: :func:`writer_idle`, before a reply bypasses
  engineio's writer thread.

Pinned to python-socketio 5.18.1 with python-engineio 4.15.1 (requirements.txt).
tests/drive/test_socketio_compat.py checks that each name above still exists with
the signature relied on, so an upgrade that breaks one fails there by name; the
tests that talk to the server byte for byte as the simulator does check the result.
"""

from __future__ import annotations

import functools
import logging

import socketio
from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI

log = logging.getLogger(__name__)


class ImplicitConnectServer(socketio.Server):
    """A python-socketio 5 server that also accepts the Udacity simulator's client.

    The simulator (Socket.IO v1-era client) never sends CONNECT (``40``): it sends
    ``42["telemetry", ...]`` straight after the Engine.IO handshake. python-socketio 5
    drops such events ("... is not connected to namespace /") and the car never
    moves. Here an event for the default namespace from a client that has not
    connected it first connects it, exactly as a ``40`` would (the connect handler
    runs; the ``40{"sid":...}`` answer is ignored by the simulator). Clients that do
    send ``40`` (socket.io-client 4.x, python-socketio 5.x) are unaffected.
    """

    def _handle_event(self, eio_sid, namespace, id, data):
        namespace = namespace or "/"
        if namespace == "/" and self.manager.sid_from_eio_sid(eio_sid, "/") is None:
            log.debug("implicit connect of the default namespace for %s", eio_sid)
            self._handle_connect(eio_sid, "/", None)
        return super()._handle_event(eio_sid, namespace, id, data)


def install_websocket(eio_server, factory) -> None:
    """Make ``eio_server`` (an ``engineio.Server``) run ``factory(handler, server)`` as
    the WebSocket of each new connection."""
    eio_server._async = dict(eio_server._async, websocket=factory)


def stock_websocket(**options):
    """engineio's own threading-mode WebSocket with simple-websocket ``options``
    (``receive_bytes``, ``max_message_size``)."""
    return functools.partial(SimpleWebSocketWSGI, **options)


def engineio_sid(handler) -> str | None:
    """The Engine.IO sid of the connection whose ``Socket._websocket_handler`` this is."""
    return getattr(getattr(handler, "__self__", None), "sid", None)


def writer_idle(eio_server, eio_sid: str) -> bool:
    """Whether a message may go straight onto ``eio_sid``'s WebSocket: the client is
    upgraded to it (not polling or upgrading), not closing, and engineio's writer has
    nothing queued that a direct send would overtake."""
    sock = eio_server.sockets.get(eio_sid)
    if sock is None:
        return False
    return sock.upgraded and not sock.upgrading and not sock.closing and sock.queue.empty()
