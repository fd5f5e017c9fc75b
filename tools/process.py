"""A drive server as a child process, for benchmarks and end-to-end tests.

Starts ``command`` in the repository root, keeps its log lines (stderr) and tells
when it logs that it is listening.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "listening on" in line:
                self.listening.set()

    def log(self) -> str:
        return "".join(self.lines)

    def wait_listening(self, timeout: float) -> bool:
        return self.listening.wait(timeout)

    def stop(self, timeout: float = 30) -> int:
        """Ctrl-C the server and wait for it to exit; its return code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)
