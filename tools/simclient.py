"""The simulator-protocol client: replay a recording to a drive server as the simulator would.

Three modules, one job each:

- :mod:`tools.simwire`: the messages the simulator sends and how strictly it reads
  ours (:func:`telemetry_payload`, :func:`check_steer`, :class:`SimulatorProtocolError`);
- :mod:`tools.simconnection`: one connection as the simulator holds it
  (:class:`SimulatorClient`: handshake, pings, one reply per telemetry);
- here: the recordings (:func:`load_driving_log`), :func:`replay`, which sends their
  centre frames with the simulator's double ``open`` (two request/response chains by
  default, as the simulator does), and the CLI.

Every public name of the other two is re-exported, so ``from tools.simclient import
SimulatorClient, check_steer`` keeps working.

API: ``SimulatorClient(url).connect()``, ``.send_telemetry(image, steering_deg,
throttle, speed) -> Reply`` (``reply.rtt`` in seconds), ``.send_manual()``,
``.reconnect()``, ``.close()``; :func:`load_driving_log` and :func:`replay`.
CLI: ``python -m tools.simclient LOG_OR_DIR [--url URL] [--frames N]``; a failure (a
stall or a reply the simulator would choke on, no server, a bad recording or
option) is one logged error line and exit status 2, as in the project's other CLIs.
"""

from __future__ import annotations

import argparse
import base64
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.cli import HelpFormatter, error_exit, setup_logging
from core.recordings import CSV_NAME, read_recording
from tools.simconnection import (  # noqa: F401 - re-exported: the protocol client's API
    DEFAULT_URL,
    USER_AGENT,
    Reply,
    SimulatorClient,
)
from tools.simwire import (  # noqa: F401 - re-exported: the protocol client's API
    LISTENED_EVENTS,
    STEER_DIALECTS,
    SimulatorProtocolError,
    SimulatorStall,
    check_steer,
    encode_jpeg,
    event_message,
    format_number,
    telemetry_payload,
)

log = logging.getLogger("tools.simclient")  # not __main__ under python -m


# ---------------------------------------------------------------------- recordings


@dataclass(frozen=True)
class LogFrame:
    image: Path  # the centre camera frame
    steering: float  # -1..1 (the simulator sends steering x 25 degrees)
    throttle: float
    speed: float


def load_driving_log(log_or_dir: str | Path) -> list[LogFrame]:
    """Centre frames of a ``driving_log.csv``, or of every one found under a folder.

    Read by :func:`core.recordings.read_recording`, so every style real recordings
    come in is handled (no header or Udacity's, absolute paths of the recording
    machine matched by file name in ``IMG/``, spaces, ``", "`` separators); a row that
    cannot be replayed is skipped and logged with its line number and reason, and a
    log with no usable row raises RecordingError (a ValueError) naming it.
    """
    path = Path(log_or_dir)
    if path.is_dir():
        logs = sorted(path.rglob(CSV_NAME))
        if not logs:
            raise FileNotFoundError(f"no {CSV_NAME} under {path}")
        return [frame for log_path in logs for frame in load_driving_log(log_path)]
    if not path.is_file():
        raise FileNotFoundError(f"no such driving log: {path}")
    return [
        LogFrame(row.centre, row.steering, row.throttle, row.speed)
        for row in read_recording(path).rows
    ]


@dataclass
class ReplayResult:
    frames: int = 0
    replies: list[Reply] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def rtts_ms(self) -> np.ndarray:
        return np.array([r.rtt for r in self.replies]) * 1e3

    def summary(self) -> dict[str, float]:
        rtts = self.rtts_ms
        p50, p99 = np.percentile(rtts, [50, 99]) if len(rtts) else (math.nan, math.nan)
        return {
            "frames": self.frames,
            "rtt_p50_ms": float(p50),
            "rtt_p99_ms": float(p99),
            "fps": self.frames / self.wall_s if self.wall_s else math.nan,
        }


def replay(
    url: str,
    log_or_dir: str | Path | list[LogFrame],
    *,
    frames: int | None = None,
    chains: int = 2,
    timeout: float = 5.0,
    on_reply=None,
) -> ReplayResult:
    """Replay centre frames as telemetry; every frame must get exactly one valid reply.

    ``chains`` telemetries are sent at once at the start (the simulator's double
    ``open`` makes 2), and each reply triggers the next frame, as in the simulator.
    With ``chains=1`` one request is in flight and ``rtt`` is the pure round trip.
    Frames are read and base64-encoded before the clock starts. Raises
    :class:`SimulatorProtocolError` on any failure of the server, and ValueError
    for ``frames`` or ``chains`` under 1 or a ``timeout`` not above 0.
    """
    if frames is not None and frames < 1:
        raise ValueError(f"frames must be >= 1. Received: frames={frames}")
    if chains < 1:
        raise ValueError(f"chains must be >= 1. Received: chains={chains}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0. Received: timeout={timeout}")
    log_frames = log_or_dir if isinstance(log_or_dir, list) else load_driving_log(log_or_dir)
    if frames is not None:
        log_frames = log_frames[:frames]
    payloads = [
        telemetry_payload(
            base64.b64encode(f.image.read_bytes()).decode(), f.steering * 25.0, f.throttle, f.speed
        )
        for f in log_frames
    ]
    result = ReplayResult(frames=len(payloads))
    if not payloads:
        return result
    with SimulatorClient(url, timeout=timeout) as client:
        start = time.perf_counter()
        next_frame = 0
        for _ in range(min(chains, len(payloads))):
            client.emit_raw_telemetry(payloads[next_frame])
            next_frame += 1
        while len(result.replies) < len(payloads):
            reply = client.receive_reply()
            if reply.event != "steer":
                raise SimulatorProtocolError(f"frame answered with {reply.event!r}, not steer")
            result.replies.append(reply)
            if on_reply is not None:
                on_reply(len(result.replies) - 1, reply)
            if next_frame < len(payloads):
                client.emit_raw_telemetry(payloads[next_frame])
                next_frame += 1
        result.wall_s = time.perf_counter() - start
        client.expect_quiet(0.2)  # an extra reply would start another chain
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.simclient",
        description="Replay a recording's centre frames to a drive server as the Udacity "
        "simulator would, printing each reply and its round-trip time.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("log", help="driving_log.csv, or a folder searched for them")
    p.add_argument("--url", default=DEFAULT_URL, help="server URL")
    p.add_argument("--frames", type=int, default=None, help="replay only the first N frames")
    p.add_argument(
        "--chains",
        type=int,
        default=2,
        help="telemetries in flight (default 2: the simulator's double open)",
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(quiet=args.quiet)

    def show(i: int, reply: Reply) -> None:
        if not args.quiet:
            print(
                f"{i:5d} steer steering_angle={reply.data['steering_angle']} "
                f"throttle={reply.data['throttle']} rtt={reply.rtt * 1e3:.2f} ms"
            )

    try:
        result = replay(
            args.url,
            args.log,
            frames=args.frames,
            chains=args.chains,
            timeout=args.timeout,
            on_reply=show,
        )
    except (SimulatorProtocolError, OSError, ValueError) as exc:
        return error_exit(exc, log)
    s = result.summary()
    print(
        f"{s['frames']} frames, {s['frames']} replies; round trip p50 {s['rtt_p50_ms']:.2f} ms, "
        f"p99 {s['rtt_p99_ms']:.2f} ms; {s['fps']:.0f} frames/s (chains={args.chains})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
