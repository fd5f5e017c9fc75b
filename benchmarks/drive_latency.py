"""Round-trip latency of the drive server, replaying real frames as the simulator does.

    python -m benchmarks.drive_latency [--frames 2000] [--archs eff base] [--output FILE]

For each architecture a fresh model (latency does not depend on the weights) is
saved to a temporary ``.keras`` file and served by ``python drive.py MODEL`` in its
own process, exactly as a user runs it (``--runtime auto``: LiteRT converted in
memory, 2 inference threads). ``tools.simclient`` replays the frames from this
process with one telemetry in flight, so ``rtt`` is the pure round trip: client
encode and send, socket, decode, inference, PI, reply. The reference is the same
server with the model called through ``model.predict`` per frame, as Udacity's
``drive.py`` does (``--serve-reference``). Client and server are separate
processes, as the simulator and drive.py are: in one process they would share the
GIL and inflate each other's latency. Decode/infer/handler figures are the
server's own log line (the warm-up frames included). Frames come from
``../shared/data/udacity`` and are never copied.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.cli import HelpFormatter, error_exit, setup_logging
from drive.server import DriveServer
from serving import Predictor
from serving.runtime import _load_keras
from tools.process import ServerProcess, free_port
from tools.simclient import load_driving_log, replay

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data" / "udacity"
WARMUP_FRAMES = 50
START_TIMEOUT_S = 300

log = logging.getLogger(__name__)


class PredictPerFrame(Predictor):
    """Udacity's drive.py: ``model.predict(image[None, :, :, :], batch_size=1)`` per frame."""

    name = "keras-predict"

    def __init__(self, model):
        super().__init__()
        self.model = model

    def _predict(self, frame):
        x = frame[None].astype("float32")
        return float(self.model.predict(x, batch_size=1, verbose=0)[0, 0])


def serve_reference(model_path: str, port: int, log_every: int) -> int:
    """The reference server: same transport and handler, ``model.predict`` per frame."""
    setup_logging()
    model = _load_keras(Path(model_path))
    server = DriveServer(PredictPerFrame(model), port=port, log_every=log_every)
    server.serve_forever()  # until the benchmark terminates the process
    return 0


def reference_command(model_path: Path, port: int, log_every: int) -> list[str]:
    """The reference server's command line: this module run as a module from the
    repository root (run as a file, its folder would be first on the path and the
    project's packages would not import)."""
    return [
        sys.executable, "-m", "benchmarks.drive_latency", "--serve-reference", str(model_path),
        "--port", str(port), "--log-every", str(log_every),
    ]  # fmt: skip


STAGE = re.compile(r"(decode|infer|handler) p50 ([\d.]+) / p99 ([\d.]+) ms")


def run_server(command: list[str], frames, port: int) -> dict:
    """Start a server process, replay warm-up + measured frames, stop it; the figures."""
    server = ServerProcess(command)
    proc, lines = server.proc, server.lines
    try:
        if not server.wait_listening(START_TIMEOUT_S):
            raise RuntimeError("server did not start:\n" + "".join(lines[-20:]))
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        replay(url, frames[:WARMUP_FRAMES], chains=1, timeout=30)
        result = replay(url, frames, chains=1, timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = result.summary()
    loaded = next((ln for ln in lines if "loaded" in ln), "")
    summary["runtime"] = loaded.split("loaded", 1)[-1].split()[0] if loaded else "keras-predict"
    stage_lines = [ln for ln in lines if "handler p50" in ln]
    if stage_lines:
        for stage, p50, p99 in STAGE.findall(stage_lines[-1]):
            summary[f"{stage}_p50_ms"], summary[f"{stage}_p99_ms"] = float(p50), float(p99)
    return summary


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.drive_latency",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument(
        "--reference-frames",
        type=int,
        default=2000,
        help="frames for the model.predict reference (0.1-0.4 s each on 2 cores)",
    )
    p.add_argument("--archs", nargs="+", default=["eff", "base"])
    p.add_argument("--threads", type=int, default=2, help="drive.py --threads")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "drive_latency.md",
        help="append a markdown section here (default: %(default)s)",
    )
    p.add_argument("--serve-reference", metavar="MODEL", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--log-every", type=int, default=10**9, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve_reference:
        return serve_reference(args.serve_reference, args.port, args.log_every)
    setup_logging(quiet=True)
    if not DATA.is_dir():
        return error_exit(f"no recordings at {DATA}", log)
    frames = load_driving_log(DATA)[: args.frames]
    load_before = load_average()
    rows = measure(args, frames)
    text = report(args, frames, rows, load_before)
    print(text)
    if args.output:
        with args.output.open("a") as f:
            f.write("\n" + text)
    return 0


def measure(args: argparse.Namespace, frames) -> list[tuple[str, str, dict]]:
    """Each architecture served by drive.py, then by the reference: (arch, server, figures)."""
    import keras  # heavy: imported on use, as models (Keras) below

    import models

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            keras.utils.set_random_seed(0)
            path = Path(tmp) / f"{arch}.keras"
            models.build_model(arch).save(path)
            port = free_port()
            every = WARMUP_FRAMES + len(frames)
            fast = run_server(
                [sys.executable, "drive.py", str(path), "--port", str(port),
                 "--threads", str(args.threads), "--log-every", str(every)],
                frames, port,
            )  # fmt: skip
            rows.append((arch, f"drive.py ({fast['runtime']})", fast))
            print(arch, fast, flush=True)
            if not args.no_reference:
                ref_frames = frames[: args.reference_frames]
                port = free_port()
                ref = run_server(
                    reference_command(path, port, WARMUP_FRAMES + len(ref_frames)), ref_frames, port
                )
                rows.append((arch, "reference: model.predict per frame", ref))
                print(arch, "reference", ref, flush=True)
                fast["speedup"] = ref["rtt_p50_ms"] / fast["rtt_p50_ms"]
    return rows


def report(args: argparse.Namespace, frames, rows: list, load_before: str) -> str:
    """The markdown section: machine, load before and after, one table row per server."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        f"### {stamp}: {len(frames)} frames, one telemetry in flight, --threads {args.threads}",
        "",
        f"Machine: {machine()}. Load average (1/5/15 min) before {load_before}, "
        f"after {load_average()}.",
        "",
        "| model | server | frames | round trip p50 ms | p99 ms | frames/s | "
        "decode p50 | infer p50 | handler p50 / p99 | speed-up (p50) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for arch, server, s in rows:
        speedup = f"{s['speedup']:.0f}x" if "speedup" in s else ""
        lines.append(
            f"| {arch} | {server} | {s['frames']} | {s['rtt_p50_ms']:.2f} | {s['rtt_p99_ms']:.2f} "
            f"| {s['fps']:.0f} | {s.get('decode_p50_ms', nan):.2f} "
            f"| {s.get('infer_p50_ms', nan):.2f} "
            f"| {s.get('handler_p50_ms', nan):.2f} / {s.get('handler_p99_ms', nan):.2f} "
            f"| {speedup} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
