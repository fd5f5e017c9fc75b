"""A drive server as a child process, for benchmarks and end-to-end tests.

Starts ``command`` in the repository root, keeps its log lines (stderr) and tells
when it logs that it is listening.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: How often a wait for the server to listen checks whether it has died instead.
EXIT_POLL_S = 0.2


def free_port() -> int:
    """A loopback port free right now, for a child server's ``--port``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``command`` (e.g. ``[sys.executable, "drive.py", MODEL]``) run in ``ROOT``."""

    def __init__(self, command: list[str]):
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "listening on" in line:
                self.listening.set()

    def log(self) -> str:
        return "".join(self.lines)

    def wait_listening(self, timeout: float) -> bool:
        """True once the server logs that it listens; False after ``timeout`` seconds,
        or as soon as it exits without listening (a crash at import is seen at once,
        its log in :attr:`lines`)."""
        deadline = time.monotonic() + timeout
        while not self.listening.wait(EXIT_POLL_S):
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)  # the last lines it wrote
                return self.listening.is_set()
            if time.monotonic() >= deadline:
                return False
        return True

    def stop(self, timeout: float = 30) -> int:
        """Ctrl-C the server and wait for it to exit; its return code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)
