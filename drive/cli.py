"""``python drive.py MODEL [IMAGE_FOLDER]``: serve a steering model to the simulator."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from core.cli import HelpFormatter, error_exit, setup_logging
from core.recordings import DRIVE_CSV_NAME
from drive.control import KI, KP, SET_SPEED, THROTTLE_MAX, THROTTLE_MIN
from drive.extras import DEFAULT_MAX_LAPS
from drive.recorder import Recorder, RecordingFolderError, check_folder
from drive.server import DEFAULT_HOST, DEFAULT_PORT, DriveServer
from serving import RUNTIMES, ModelLoadError, load

log = logging.getLogger("drive")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive.py",
        description="Drive the Udacity simulator (autonomous mode) with a trained steering model.",
        formatter_class=HelpFormatter,
    )
    _add_model_options(p)
    _add_server_options(p)
    _add_driving_options(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """The model, the recording folder, and how the model runs."""
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
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="record into IMAGE_FOLDER even if it holds a previous recording: that folder "
        "is renamed IMAGE_FOLDER.previous-<time> (nothing is deleted) once the model has "
        "loaded and the port is bound",
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


def _add_server_options(p: argparse.ArgumentParser) -> None:
    """Where the server listens, what it logs, and the dashboard."""
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port")
    p.add_argument(
        "--log-every",
        type=int,
        default=1000,
        help="log frames/s and p50/p99 latencies every N frames",
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


def _add_driving_options(p: argparse.ArgumentParser) -> None:
    """The commands sent: the throttle controller and a research build's lap limit."""
    p.add_argument(
        "--speed",
        type=float,
        default=SET_SPEED,
        help="target speed in mph for the PI throttle controller",
    )
    p.add_argument(
        "--throttle-max",
        type=float,
        default=THROTTLE_MAX,
        help=f"largest throttle sent; the controller's gains are {KP:g}/{KI:g}",
    )
    p.add_argument(
        "--max-laps",
        type=int,
        default=DEFAULT_MAX_LAPS,
        help="laps a SelfOracle/TUM research simulator build drives before it returns to its "
        f"menu (sent in each steer to such a build only; default {DEFAULT_MAX_LAPS}, "
        "SelfOracle's own)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    # Werkzeug logs every HTTP request; socket.io handshakes would flood the console.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    reason = refusal(args)
    if reason is not None:
        return error_exit(reason, log)
    try:
        predictor = load(args.model, args.runtime, threads=args.threads)
    except ModelLoadError as exc:
        return error_exit(f"cannot serve {args.model}: {exc}", log)
    log_loaded(predictor)
    try:
        server = start_server(args, predictor)
    except (RecordingFolderError, OSError) as exc:  # ServerBindError names the port's holder
        return error_exit(exc, log)
    serve(server)
    return 0


def refusal(args: argparse.Namespace) -> str | None:
    """Why an argument is unusable, if one is: checked before the model loads."""
    if args.throttle_max <= THROTTLE_MIN or args.throttle_max > 1:
        return f"--throttle-max must be in ({THROTTLE_MIN:g}, 1]; got {args.throttle_max:g}"
    if args.max_laps < 1:
        return f"--max-laps must be >= 1; got {args.max_laps}"
    if args.replay and not os.path.isfile(os.path.join(args.replay, "drive_log.csv")):
        return f"--replay {args.replay}: expected a recording folder holding drive_log.csv"
    if args.image_folder:
        try:  # checked before the model loads (a refusal should not cost seconds), and
            # changed only once the model has loaded and the port is bound (start_server)
            check_folder(args.image_folder, overwrite=args.overwrite)
        except (RecordingFolderError, OSError) as exc:
            return str(exc)
    return None


def start_server(args: argparse.Namespace, predictor) -> DriveServer:
    """The server bound to its port, with its recorder if IMAGE_FOLDER was given.

    Raises the bind's OSError (drive.binding.ServerBindError), or the recording
    folder's error once the server is shut down again.
    """
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
    if args.image_folder:
        try:
            server.recorder = Recorder(args.image_folder, overwrite=args.overwrite)
        except (RecordingFolderError, OSError):
            server.shutdown()
            raise
        log.info("recording frames and %s to %s", DRIVE_CSV_NAME, server.recorder.folder)
    if server.dashboard is not None:
        log.info("dashboard: open http://%s:%d/ in a browser", args.host, server.port)
    log.info("target speed %.1f mph, throttle %g..%g", args.speed, THROTTLE_MIN, args.throttle_max)
    return server


def serve(server: DriveServer) -> None:
    """Serve until Ctrl-C or ``kill``; then close the recording and report the run."""
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
    recorder = server.recorder
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
