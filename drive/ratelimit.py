"""Warnings that repeat (a client sending the same bad frame 60 times a second) logged
once per reason every few seconds, with the number held back.

Split out of drive.server to keep that module short.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time

log = logging.getLogger("drive.server")  # the server's warnings, under its name


class RateLimitedWarnings:
    """One warning per reason every ``interval`` seconds, with the count suppressed."""

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, key: str, message: str, *args) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -math.inf) < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += f" ({suppressed} more since the last warning)"
        log.warning(message, *args)


def reason_key(message: str) -> str:
    """A warning's kind: the message without its numbers, quoted values and details."""
    return re.sub(r"\d+", "#", re.sub(r"'.*'", "'...'", message.split("(")[0]))[:80]
