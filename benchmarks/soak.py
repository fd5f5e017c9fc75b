"""Soak test of the drive server: 10,000 frames, latency and memory per 1,000-frame window.

    python -m benchmarks.soak [--frames 10000] [--window 1000] [--arch base]
                              [--browser auto|chromium|socketio|none] [--max-seconds 300]
                              [--output benchmarks/soak.md]

A fresh model of ``--arch`` (latency does not depend on the weights) is saved to a
temporary ``.keras`` file and served by ``python drive.py MODEL`` in its own
process, as a user runs it. ``tools.simclient.SimulatorClient`` (the simulator's
protocol, one telemetry in flight) sends real frames from ``../shared/data/udacity``
(cycled; generated road-like JPEGs when that folder is missing) over loopback only.
Two runs: no browser, then a browser on the dashboard (headless Chromium through
Playwright when installed, else a python-socketio client in the ``/dashboard``
namespace). Reported per window: round-trip p50/p99 and the server's resident
memory (``VmRSS`` from ``/proc/PID/status``) at the window's end and the 1-minute
load average (the CPU is shared with other jobs, whose bursts show in p99); RSS at the start
is read after 200 warm-up frames. Each run stops at ``--max-seconds`` (the report
says so) so the benchmark bounds its own time.

Flat means (the tolerances checked and printed): the mean p50 of the last three
windows within 25% of the first three's, the p99 of every window under 3x the
median window's p99 plus 2 ms (a shared 2-core CPU makes p99 noisy), and RSS growth
from start to end under 16 MiB (a leak of 1.7 KB per frame would exceed it).
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
from PIL import Image

from core.cli import HelpFormatter
from drive.stats import percentiles_ms
from tools.browser import find_chromium, open_dashboard
from tools.process import ServerProcess, free_port
from tools.simclient import SimulatorClient, load_driving_log

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data" / "udacity"
WARMUP_FRAMES = 200
START_TIMEOUT_S = 300
P50_DRIFT = 0.25
P99_FACTOR, P99_SLACK_MS = 3.0, 2.0
RSS_GROWTH_MIB = 16.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_frames(n: int = 500) -> tuple[list[bytes], str]:
    if DATA.is_dir():
        frames = [f.image.read_bytes() for f in load_driving_log(DATA)[:n]]
        if frames:
            return frames, f"{len(frames)} real frames from ../shared/data/udacity, cycled"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:160, 0:320]
    out = []
    for i in range(50):
        road = np.abs(x - 160 - 40 * np.sin(i / 8) * y / 160) < (y / 160) * 144
        img = np.where(road[..., None], [110, 110, 110], [60, 140, 60]) + rng.normal(
            0, 12, (160, 320, 3)
        )
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=75)
        out.append(buf.getvalue())
    return out, "50 generated road-like frames, cycled"


class BrowserAttached:
    """A dashboard viewer for the run: headless Chromium, or a socket.io client."""

    def __init__(self, kind: str, port: int, tmp: Path):
        self.kind, self.port, self.tmp = kind, port, tmp
        self.updates = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(60) or self._error:
            raise RuntimeError(f"browser did not attach: {self._error}")
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self):
        try:
            if self.kind == "chromium":
                self._chromium()
            else:
                self._socketio()
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    def _chromium(self):
        from playwright.sync_api import sync_playwright  # optional (tests/test_imports.py)

        with sync_playwright() as pw:
            ctx, page = open_dashboard(pw, self.tmp / "profile", self.port)
            self._ready.set()
            while not self._stop.wait(1.0):
                self.updates = int(page.text_content("#frames") or 0)
            ctx.close()

    def _socketio(self):
        import socketio  # imported on use: only the socketio viewer needs the client

        client = socketio.Client(reconnection=False)

        def on_state(data):
            self.updates += 1

        client.on("state", on_state, namespace="/dashboard")
        client.connect(
            f"http://127.0.0.1:{self.port}", namespaces=["/dashboard"], transports=["websocket"]
        )
        self._ready.set()
        self._stop.wait()
        client.disconnect()


def send(sim: SimulatorClient, jpeg: bytes):
    """One frame, one reply. Not ``send_telemetry``: its ``expect_quiet`` check waits
    a full timeout for an event when a server ping lands between two frames (a
    SimulatorStall after 30 s, seen once in a 10,000-frame run)."""
    sim.emit_telemetry(jpeg, 0.0, 0.2, 20.0)
    reply = sim.receive_reply()
    if reply.event != "steer":
        raise RuntimeError(f"telemetry answered with {reply.event!r}, not steer")
    return reply


def soak(model: Path, frames: list[bytes], args, browser: str | None, tmp: Path) -> dict:
    port = free_port()
    server = ServerProcess(
        [sys.executable, "drive.py", str(model), "--port", str(port), "--log-every", "100000"]
    )
    proc, lines = server.proc, server.lines
    windows, rtts = [], []
    stopped_early = False
    try:
        if not server.wait_listening(START_TIMEOUT_S):
            raise RuntimeError("server did not start:\n" + "".join(lines[-20:]))
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        viewer = BrowserAttached(browser, port, tmp) if browser else None
        with SimulatorClient(url, timeout=30) as sim:
            if viewer:
                viewer.__enter__()
            try:
                for i in range(WARMUP_FRAMES):
                    send(sim, frames[i % len(frames)])
                rss_start = rss_mib(proc.pid)
                deadline = time.monotonic() + args.max_seconds
                window_start = time.monotonic()
                for i in range(args.frames):
                    reply = send(sim, frames[i % len(frames)])
                    rtts.append(reply.rtt)
                    if len(rtts) == args.window:
                        p50, p99 = percentiles_ms(rtts)
                        elapsed = time.monotonic() - window_start
                        windows.append(
                            dict(
                                end=i + 1,
                                p50=p50,
                                p99=p99,
                                fps=len(rtts) / elapsed,
                                rss=rss_mib(proc.pid),
                                load=os.getloadavg()[0],
                            )
                        )
                        print(
                            f"  {browser or 'no browser'}: frames {i + 1}: p50 {p50:.2f} "
                            f"p99 {p99:.2f} ms, {windows[-1]['fps']:.0f} fps, "
                            f"RSS {windows[-1]['rss']:.1f} MiB",
                            flush=True,
                        )
                        rtts, window_start = [], time.monotonic()
                    if time.monotonic() > deadline:
                        stopped_early = True
                        break
                updates = viewer.updates if viewer else None
            finally:
                if viewer:
                    viewer.__exit__()
        rss_end = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return dict(
        windows=windows,
        rss_start=rss_start,
        rss_end=rss_end,
        stopped_early=stopped_early,
        browser_updates=updates,
    )


def verdict(run: dict) -> tuple[bool, str]:
    w = run["windows"]
    if len(w) < 2:
        return False, "fewer than 2 windows"
    k = min(3, len(w) // 2)
    first = np.mean([x["p50"] for x in w[:k]])
    last = np.mean([x["p50"] for x in w[-k:]])
    p99_limit = float(np.median([x["p99"] for x in w])) * P99_FACTOR + P99_SLACK_MS
    growth = run["rss_end"] - run["rss_start"]
    checks = [
        (abs(last - first) <= P50_DRIFT * first, f"p50 first/last {first:.2f}/{last:.2f} ms"),
        (
            max(x["p99"] for x in w) <= p99_limit,
            f"max p99 {max(x['p99'] for x in w):.2f} <= {p99_limit:.2f} ms",
        ),
        (
            growth <= RSS_GROWTH_MIB,
            f"RSS {run['rss_start']:.1f} -> {run['rss_end']:.1f} MiB ({growth:+.1f})",
        ),
    ]
    return all(ok for ok, _ in checks), "; ".join(
        ("ok " if ok else "FAIL ") + t for ok, t in checks
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--window", type=int, default=1000)
    p.add_argument("--arch", default="base")
    p.add_argument("--browser", choices=("auto", "chromium", "socketio", "none"), default="auto")
    p.add_argument("--max-seconds", type=float, default=300.0, help="per run")
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "soak.md",
        help="append the report here (default: %(default)s)",
    )
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    # `kill` (or timeout) still stops the drive.py child through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.frames < args.window or args.window < 1:
        p.error(f"need frames >= window >= 1. Received: {args.frames}, {args.window}")
    frames, source = load_frames()
    results = run_all(args, pick_browser(args.browser), frames)
    text = report(args, source, results)
    print(text)
    if args.output:
        args.output.write_text(
            args.output.read_text() + "\n" + text if args.output.exists() else text
        )
    return 0 if all(r["ok"] for r in results) else 1


def pick_browser(choice: str) -> str:
    """``auto``: headless Chromium if Playwright and a Chromium are installed, else socketio."""
    if choice != "auto":
        return choice
    try:
        import playwright  # noqa: F401  optional: only asks whether it is installed
    except ImportError:
        return "socketio"
    return "chromium" if find_chromium() else "socketio"


def run_all(args: argparse.Namespace, browser: str, frames: list[bytes]) -> list[dict]:
    """The run without a browser, then (unless ``none``) with one; each with its verdict."""
    import keras  # heavy: imported on use, as models (Keras) below

    import models

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        keras.utils.set_random_seed(0)
        model = Path(tmp) / f"{args.arch}.keras"
        models.build_model(args.arch).save(model)
        for mode in (None, None if browser == "none" else browser):
            if mode is None and results:
                break
            print(f"run: {mode or 'no browser'}", flush=True)
            run = soak(model, frames, args, mode, Path(tmp))
            run["mode"] = mode or "no browser"
            run["ok"], run["verdict"] = verdict(run)
            print(f"  {run['verdict']}", flush=True)
            results.append(run)
    return results


def report(args: argparse.Namespace, source: str, results: list[dict]) -> str:
    """The markdown report: the set-up, one table row per window, the verdict per run."""
    lines = [
        f"Soak: {args.frames:,} frames per run, windows of {args.window:,}, model "
        f"`{args.arch}` (drive.py, --runtime auto), {source}; "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}.",
        "",
        "| run | frames | round trip p50 ms | p99 ms | frames/s | server RSS MiB | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in results:
        lines.append(
            f"| {run['mode']} | start (after {WARMUP_FRAMES} warm-up) | | | | "
            f"{run['rss_start']:.1f} | |"
        )
        for w in run["windows"]:
            lines.append(
                f"| {run['mode']} | {w['end'] - args.window + 1}-{w['end']} | "
                f"{w['p50']:.2f} | {w['p99']:.2f} | {w['fps']:.0f} | {w['rss']:.1f} | "
                f"{w['load']:.1f} |"
            )
    lines.append("")
    for run in results:
        extra = " (stopped at --max-seconds)" if run["stopped_early"] else ""
        seen = run["browser_updates"]
        extra += f", dashboard showed {seen} frames counted" if seen is not None else ""
        lines.append(
            f"- {run['mode']}: {'FLAT' if run['ok'] else 'NOT FLAT'}: {run['verdict']}{extra}"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
