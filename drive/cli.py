"""``python drive.py MODEL [IMAGE_FOLDER]``: serve a steering model to the simulator."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from core.cli import setup_logging
from drive.control import KI, KP, SET_SPEED, THROTTLE_MAX, THROTTLE_MIN
from drive.extras import DEFAULT_MAX_LAPS

log = logging.getLogger("drive")


def build_parser() -> argparse.ArgumentParser:
    from drive.server import DEFAULT_HOST, DEFAULT_PORT
    from serving import RUNTIMES

    p = argparse.ArgumentParser(
        prog="drive.py",
        description="Drive the Udacity simulator (autonomous mode) with a trained steering model.",
    )
    p.add_argument(
        "model",
        help="model file (.keras, .h5, .tflite, .onnx) or a run folder from train.py",
    )
    p.add_argument(
        "image_folder",
        nargs="?",
        default=None,
        help="record every received frame and the commands sent into this folder",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--speed",
        type=float,
        default=SET_SPEED,
        help=f"target speed in mph for the PI throttle controller (default {SET_SPEED:g})",
    )
    p.add_argument(
        "--throttle-max",
        type=float,
        default=THROTTLE_MAX,
        help=f"largest throttle sent (default {THROTTLE_MAX:g}); gains are {KP:g}/{KI:g}",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="auto (default): .tflite/.onnx as they are, Keras models converted to LiteRT in "
        "memory with a parity check (compiled Keras call if that fails); keras: compiled "
        "Keras call; tflite: LiteRT or fail",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="inference threads (default 2: eff round trip p50 3.4 ms against 5.1 ms with 1 "
        "on an idle 2-core machine; use 1 when the simulator shares those 2 cores)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="record into IMAGE_FOLDER even if it holds a previous recording: that folder "
        "is renamed IMAGE_FOLDER.previous-<time> (nothing is deleted) once the model has "
        "loaded and the port is bound",
    )
    p.add_argument(
        "--log-every",
        type=int,
        default=1000,
        help="log frames/s and p50/p99 latencies every N frames (default 1000)",
    )
    p.add_argument(
        "--replay",
        metavar="FOLDER",
        default=None,
        help="a finished recording folder (from drive.py MODEL IMAGE_FOLDER) for the "
        "dashboard's Replay tab",
    )
    p.add_argument(
        "--no-dashboard",
        action="store_true",
        help="do not serve the live dashboard page at http://HOST:PORT/",
    )
    p.add_argument(
        "--max-laps",
        type=int,
        default=DEFAULT_MAX_LAPS,
        help="laps a SelfOracle/TUM research simulator build drives before it returns to its "
        f"menu (sent in each steer to such a build only; default {DEFAULT_MAX_LAPS}, "
        "SelfOracle's own)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    # Werkzeug logs every HTTP request; socket.io handshakes would flood the console.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from drive.recorder import Recorder, RecordingFolderError
    from drive.server import DriveServer
    from serving import ModelLoadError, load

    if refused(args):
        return 2
    try:
        predictor = load(args.model, args.runtime, threads=args.threads)
    except ModelLoadError as exc:
        log.error("cannot serve %s: %s", args.model, exc)
        return 2
    log_loaded(predictor)

    try:
        server = DriveServer(
            predictor,
            host=args.host,
            port=args.port,
            speed=args.speed,
            throttle_max=args.throttle_max,
            log_every=args.log_every,
            dashboard=not args.no_dashboard,
            replay_folder=args.replay,
            max_laps=args.max_laps,
        )
    except OSError as exc:  # drive.server.ServerBindError: names the port and its holder
        log.error("%s", exc)
        return 2
    recorder = None
    if args.image_folder:
        try:
            recorder = server.recorder = Recorder(args.image_folder, overwrite=args.overwrite)
        except (RecordingFolderError, OSError) as exc:
            log.error("%s", exc)
            server.shutdown()
            return 2
        log.info("recording frames and %s to %s", "drive_log.csv", recorder.folder)
    if server.dashboard is not None:
        log.info("dashboard: open http://%s:%d/ in a browser", args.host, server.port)
    log.info("target speed %.1f mph, throttle %g..%g", args.speed, THROTTLE_MIN, args.throttle_max)
    # Ctrl-C and `kill` ask the HTTP loop to stop from a helper thread, so the main
    # thread leaves serve_forever() normally instead of through an exception raised at
    # an arbitrary point (which left drive.py hanging at exit now and then in CI). A
    # second signal interrupts whatever is still running.
    requests = []

    def _stop(signum, frame):
        requests.append(signum)
        if len(requests) > 1:
            raise KeyboardInterrupt
        threading.Thread(target=server.stop_serving, name="drive-stop", daemon=True).start()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
        log.info("stopped")
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        if recorder is not None:
            recorder.close()
            log.info("recorded %d frames in %s", recorder.written, recorder.folder)
        report_quality(server, recorder.folder if recorder is not None else None)
    return 0


def refused(args) -> bool:
    """Whether an argument is unusable (logged as one error): checked before the model loads."""
    from drive.recorder import RecordingFolderError, check_folder

    if args.throttle_max <= THROTTLE_MIN or args.throttle_max > 1:
        log.error("--throttle-max must be in (%g, 1]; got %g", THROTTLE_MIN, args.throttle_max)
        return True
    if args.max_laps < 1:
        log.error("--max-laps must be >= 1; got %d", args.max_laps)
        return True
    if args.replay and not os.path.isfile(os.path.join(args.replay, "drive_log.csv")):
        log.error("--replay %s: expected a recording folder holding drive_log.csv", args.replay)
        return True
    if args.image_folder:
        try:  # checked before the model loads (a refusal should not cost seconds), and
            # changed only once the model has loaded and the port is bound (main)
            check_folder(args.image_folder, overwrite=args.overwrite)
        except (RecordingFolderError, OSError) as exc:
            log.error("%s", exc)
            return True
    return False


def log_loaded(predictor) -> None:
    """What was loaded: the model, its run's config highlights, the runtime and its parity."""
    info = predictor.info
    log.info("loaded %s", predictor.describe())
    config = info.get("config", {})
    if config:
        highlights = {
            k: config[k] for k in ("arch", "params", "best_val_mse", "epochs") if k in config
        }
        log.info("run config: %s", highlights or config)
    parity = info.get("parity_max_abs_diff")
    log.info(
        "runtime %s (%s threads)%s; warm-up %.2f ms/frame",
        predictor.name,
        info.get("threads", "default"),
        f", max |diff| vs model.predict {parity:.2g} on probe frames" if parity is not None else "",
        info.get("warm_ms", float("nan")),
    )


def report_quality(server, folder=None) -> None:
    """The per-lap driving quality of a research build's run (nothing for the stock one).

    Logged at the end of drive.py, and kept as ``drive_quality.json`` beside a recording.
    """
    malformed = server.extras.malformed_summary()
    if malformed:
        log.warning("malformed extended telemetry values ignored: %s", malformed)
    lines = server.quality.summary_lines()
    if not lines:
        return
    log.info("%s", "\n".join(lines))
    if folder is not None:
        import json
        from pathlib import Path

        path = Path(folder) / "drive_quality.json"
        report = {**server.quality.report(), "malformed": dict(server.extras.malformed)}
        try:
            path.write_text(json.dumps(report, indent=1) + "\n")
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)
        else:
            log.info("driving quality written to %s", path)


if __name__ == "__main__":
    sys.exit(main())
