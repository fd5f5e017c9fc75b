"""Binding the drive server's port: one clear error naming whoever holds it.

Split out of drive.server (which re-exports these names) to keep that module short.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

import psutil
from werkzeug.serving import LISTEN_QUEUE, get_sockaddr, select_address_family


class ServerBindError(OSError):
    """The server's address cannot be bound (the port is taken, or not allowed)."""


def port_holder(port: int) -> str | None:
    """``pid N (command line)`` of the process listening on TCP ``port``, if the OS says."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                proc = psutil.Process(conn.pid)
                command = " ".join(" ".join(proc.cmdline()).split()) or proc.name()
                return f"pid {conn.pid} ({command[:80]})"
    except (psutil.Error, OSError):  # not allowed to look: say nothing rather than guess
        return None
    return None


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or :class:`ServerBindError`.

    Bound here rather than by Werkzeug's ``make_server``, which on failure prints its
    own text and calls ``sys.exit(1)``: a library caller got ``SystemExit`` and drive.py
    never reached its own one-line error.
    """
    family = select_address_family(host, port)
    try:
        return socket.create_server(
            get_sockaddr(host, port, family), family=family, backlog=LISTEN_QUEUE
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            holder = port_holder(port)
            reason = f"port {port} is in use by {holder or 'another program'}"
        error = ServerBindError(
            f"cannot listen on {host}:{port}: {reason}; expected a free port "
            "(stop that program or choose another --port)"
        )
        error.errno = exc.errno
        raise error from exc


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
