"""tools/process.py: a server child process, its log, and when it listens."""

from __future__ import annotations

import sys
import time

from tools.process import ServerProcess


def child(code: str) -> ServerProcess:
    return ServerProcess([sys.executable, "-c", code])


def test_a_server_that_dies_before_listening_is_reported_at_once_with_its_log():
    start = time.monotonic()
    server = child("import sys; sys.stderr.write('ModuleNotFoundError: core\\n'); sys.exit(3)")
    assert server.wait_listening(60) is False
    assert time.monotonic() - start < 30  # not the whole 60 s
    assert "ModuleNotFoundError: core" in server.log()
    assert server.stop() == 3


def test_listening_is_seen_even_when_the_server_exits_right_after_saying_so():
    server = child("import sys; sys.stderr.write('listening on 127.0.0.1:1\\n')")
    assert server.wait_listening(60) is True
    assert server.proc.wait(timeout=30) == 0


def test_a_server_still_starting_times_out():
    server = child("import time; time.sleep(30)")
    start = time.monotonic()
    assert server.wait_listening(0.5) is False
    assert 0.5 <= time.monotonic() - start < 5
    server.proc.kill()
    server.proc.wait()
