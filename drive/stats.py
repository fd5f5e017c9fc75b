"""Rolling latency figures: frames per second and p50/p99 of each stage."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import numpy as np


def percentiles_ms(seconds: list[float] | np.ndarray) -> tuple[float, float]:
    """p50 and p99 of durations given in seconds, in milliseconds."""
    if len(seconds) == 0:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 99])
    return float(p50), float(p99)


class LatencyStats:
    """Collects per-stage durations; every ``every`` frames returns a summary line."""

    def __init__(self, every: int = 500, clock=time.perf_counter):
        if every < 1:
            raise ValueError(f"every must be >= 1. Received: every={every}")
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._stages: dict[str, list[float]] = defaultdict(list)
        self._frames = 0
        self._window_start = clock()
        self.total_frames = 0

    def add(self, **stage_seconds: float) -> str | None:
        """Record one frame's stage durations; returns a summary every ``every`` frames."""
        with self._lock:
            for stage, seconds in stage_seconds.items():
                self._stages[stage].append(seconds)
            self._frames += 1
            self.total_frames += 1
            if self._frames < self.every:
                return None
            now = self._clock()
            fps = self._frames / max(now - self._window_start, 1e-9)
            parts = [f"{self._frames} frames, {fps:.0f} fps"]
            for stage, values in self._stages.items():
                p50, p99 = percentiles_ms(values)
                parts.append(f"{stage} p50 {p50:.2f} / p99 {p99:.2f} ms")
            self._stages.clear()
            self._frames = 0
            self._window_start = now
            return "; ".join(parts)
