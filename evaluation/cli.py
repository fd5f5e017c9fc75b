"""``python evaluate.py {replay,closed-loop,path,calibrate,compare,robustness}``: the command line.

Only this module configures logging. User errors (a missing log, a MODEL that is
not a model, an output folder that already holds results) end with one line
naming what was expected and what was found, and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from core.cli import setup_logging

logger = logging.getLogger("evaluation")

DEFAULT_URL = "ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket"


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 8,9.5,11; got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number; got {text!r}")
    return values


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}; got {text!r}")
        return value

    return parse


def _common(p: argparse.ArgumentParser, *, out: bool = True) -> None:
    if out:
        p.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
        p.add_argument(
            "--overwrite",
            action="store_true",
            help="write into a non-empty --out, replacing same-named files",
        )
    p.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _runtime(p: argparse.ArgumentParser) -> None:
    from serving import RUNTIMES

    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="inference path, as drive.py serves it (default auto: .tflite/.onnx files as "
        "they are, Keras models converted to LiteRT in memory with a parity check, else "
        "the compiled Keras call; keras: the compiled Keras call; tflite: LiteRT or fail; "
        "onnx: an .onnx file)",
    )
    p.add_argument(
        "--threads",
        type=_count(1),
        default=2,
        help="inference threads (default 2: replay of eff 564-591 frames/s against "
        "385-392 with 1 on the 2-core machine, decoding overlapping in other threads)",
    )


def _closed_loop_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--criterion",
        choices=("road", "nvidia"),
        default="road",
        help="intervention when a wheel leaves the road estimated from the recording "
        "(road, the default) or NVIDIA's rule: the car's centre beyond --offset-limit "
        "from the recorded path or its heading beyond --heading-limit (nvidia)",
    )
    p.add_argument(
        "--offset-limit",
        type=float,
        default=1.0,
        help="--criterion nvidia: distance from the path, m (default 1.0)",
    )
    p.add_argument(
        "--heading-limit",
        type=float,
        default=10.0,
        help="--criterion nvidia: heading error, degrees (default 10)",
    )
    p.add_argument(
        "--path",
        choices=("images", "steering"),
        default="images",
        help="reference path turning as measured from the frames (images, the default) "
        "or as the logged steering says through a kinematic bicycle (steering)",
    )
    p.add_argument(
        "--car",
        choices=("fitted", "bicycle"),
        default="fitted",
        help="the virtual car's answer to steering: fitted to the recording's measured "
        "turning (lag, gain; the default) or the plain kinematic bicycle",
    )
    p.add_argument("--calibration", type=Path, help="calibration.json from `evaluate.py calibrate`")
    p.add_argument(
        "--latency",
        type=int,
        default=0,
        choices=range(0, 4),
        metavar="FRAMES",
        help="added latency in frames, 0-3 (default 0)",
    )


def loop_config(args):
    """The closed loop's :class:`LoopConfig` from parsed options (ValueError when
    they make no sense)."""
    from evaluation.closed_loop.loop import LoopConfig
    from sim.calibrate import load_camera
    from sim.camera import Camera

    camera = load_camera(args.calibration) if args.calibration else Camera()
    return LoopConfig(
        criterion=args.criterion,
        offset_limit_m=args.offset_limit,
        heading_limit_deg=args.heading_limit,
        latency_frames=args.latency,
        camera=camera,
    )


def references(args, recordings, config):
    """The closed loop's references of ``recordings`` as the closed-loop options ask
    (``--path``, ``--car``, the criterion of ``config``)."""
    from evaluation.closed_loop.run import build_references

    return build_references(
        recordings,
        config.camera,
        path=args.path,
        car=args.car,
        criterion=config.criterion,
        progress=not args.quiet,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Evaluate steering models on recorded Udacity simulator logs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "replay",
        help="open loop: the model against the human on every frame",
        description="Run MODEL over every centre frame of the logs; write "
        "per-frame predictions, metrics and plots.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="model file (.keras, .h5, .tflite, .onnx) or a training run folder",
    )
    p.add_argument("logs", nargs="+", metavar="LOG", help="driving_log.csv or its folder")
    p.add_argument("--worst", type=_count(0), default=12, help="frames in the worst-frame gallery")
    _runtime(p)
    _common(p)

    p = sub.add_parser(
        "closed-loop",
        help="NVIDIA-style closed loop on the recorded path",
        description="Drive a virtual car along the path rebuilt from each log, "
        "steered by MODEL on synthesised views; count interventions.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="model file (.keras, .h5, .tflite, .onnx) or run folder (with --via-server: "
        "only a label)",
    )
    p.add_argument("logs", nargs="+", metavar="LOG", help="driving_log.csv or its folder")
    _closed_loop_options(p)
    p.add_argument(
        "--recovery-points",
        type=_count(0),
        default=8,
        help="start points per log for the recovery trials (default 8; 0 = none)",
    )
    p.add_argument(
        "--via-server",
        nargs="?",
        const=DEFAULT_URL,
        default=None,
        metavar="URL",
        help="steer through a running `python drive.py MODEL` as the simulator "
        f"would (default URL {DEFAULT_URL})",
    )
    p.add_argument(
        "--baseline-bias",
        type=float,
        default=0.02,
        help="bias added to the replayed human steering baseline (default 0.02 = 0.5 deg)",
    )
    p.add_argument("--no-video", action="store_true", help="skip views.mp4")
    _runtime(p)
    _common(p)

    p = sub.add_parser(
        "path",
        help="the reference path, car response and road edges of each log, checked",
        description="Build each log's reference as closed-loop does and check it: how "
        "well repeated laps overlay (path from the frames against path from the steering), "
        "the car's fitted response, the road width and the edges drawn on real frames.",
    )
    p.add_argument("logs", nargs="+", metavar="LOG", help="driving_log.csv or its folder")
    p.add_argument("--calibration", type=Path, help="calibration.json from `evaluate.py calibrate`")
    _common(p)

    p = sub.add_parser(
        "calibrate",
        help="check/fit camera constants with the side cameras",
        description="Warp centre frames by the side cameras' offsets and compare "
        "with the real side frames; grid-search pitch, height and FOV.",
    )
    p.add_argument("log", metavar="LOG", help="driving_log.csv or its folder (with side images)")
    p.add_argument("--frames", type=_count(1), default=24, help="frames compared (default 24)")
    p.add_argument("--no-search", action="store_true", help="only check the default constants")
    p.add_argument("--pitch", type=_floats, default=None, help="pitches to try, degrees")
    p.add_argument("--height", type=_floats, default=None, help="camera heights to try, m")
    p.add_argument("--fov", type=_floats, default=None, help="vertical fields of view, degrees")
    _common(p)

    p = sub.add_parser(
        "compare",
        help="models side by side: params, MACs, size, latency, error",
        description="Compare models or run folders; write report.md and figures.",
    )
    p.add_argument("models", nargs="+", metavar="RUN_OR_MODEL")
    p.add_argument(
        "--logs",
        nargs="*",
        default=[],
        metavar="LOG",
        help="logs for replay MAE and closed-loop autonomy (none: skip both)",
    )
    p.add_argument("--no-closed-loop", action="store_true", help="skip the closed-loop runs")
    p.add_argument(
        "--criterion",
        choices=("road", "nvidia"),
        default="road",
        help="closed-loop intervention criterion (default road; see closed-loop --help)",
    )
    p.add_argument(
        "--recovery-points",
        type=_count(0),
        default=0,
        help="recovery-trial start points per log (default 0: none)",
    )
    p.add_argument("--latency-runs", type=_count(1), default=200, help="frames timed (default 200)")
    p.add_argument(
        "--robustness",
        nargs="*",
        default=None,
        metavar="DIR",
        help="add the robustness comparison (mCE, autonomy under corruption): from the "
        "folders `evaluate.py robustness` wrote, one per model in order, or with no "
        "folder measured here on --logs with its defaults",
    )
    p.add_argument(
        "--robustness-baseline",
        metavar="LABEL",
        help="the model mCE is normalised by (default the first)",
    )
    _runtime(p)
    _common(p)

    from evaluation.robustness import benchmark

    benchmark.add_parser(sub)
    return parser


def _configure_logging(args) -> None:
    setup_logging(verbose=args.verbose, quiet=args.quiet)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _read_logs(paths):
    from core.recordings import read_recordings

    return read_recordings(paths)


def cmd_replay(args) -> int:
    from evaluation import replay
    from evaluation.inference import load_predictor, resolve_model
    from evaluation.outputs import prepare_out_dir

    spec = resolve_model(args.model)
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = _read_logs(args.logs)
    predictor = load_predictor(spec, args.runtime, args.threads)
    result = replay.run_replay(predictor, recordings, label=spec.label, progress=not args.quiet)
    summary = replay.summarise(result, spec, predictor.name)
    replay.write_outputs(result, out, summary, worst=args.worst)
    p = summary["pooled"]
    logger.info(
        "replay of %s: MAE %.4f, RMSE %.4f, r %.3f on %d frames; outputs in %s",
        spec.label,
        p["mae"],
        p["rmse"],
        p["correlation"],
        p["n"],
        out,
    )
    return 0


def cmd_closed_loop(args) -> int:
    from evaluation.closed_loop import report, run
    from evaluation.closed_loop.policies import ModelPolicy, ServerPolicy, baseline_policies
    from evaluation.inference import load_predictor, resolve_model
    from evaluation.outputs import prepare_out_dir
    from evaluation.plots import VideoWriter
    from sim.calibrate import camera_dict

    try:
        config = loop_config(args)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    spec = None if args.via_server else resolve_model(args.model)
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = _read_logs(args.logs)
    refs = references(args, recordings, config)
    if not refs:
        logger.error("no log had a drivable stretch (car moving, regular frames, >= 3 s)")
        return 2
    if args.via_server:
        policy = ServerPolicy(args.via_server, name=f"{Path(args.model).name} via drive server")
        runtime = f"drive server at {args.via_server}"
    else:
        predictor = load_predictor(spec, args.runtime, args.threads)
        policy = ModelPolicy(predictor, spec.label)
        runtime = predictor.name
    visuals = report.Visuals(
        config.camera, video=None if args.no_video else VideoWriter(out / "views.mp4")
    )
    start = time.perf_counter()
    try:
        driven, trials = run.evaluate_recordings(
            refs,
            policy,
            config,
            recovery_points=args.recovery_points,
            visuals=visuals,
            progress=not args.quiet,
        )
    finally:
        policy.close()
    meta = {
        "policy": policy.name,
        "model_path": spec.path if spec else None,
        "runtime": runtime,
        "logs": [str(r.csv_path) for r in recordings],
        "wall_s": time.perf_counter() - start,
        "config": {
            "criterion": config.criterion,
            "criterion_text": config.describe(),
            "offset_limit_m": config.offset_limit_m,
            "heading_limit_deg": config.heading_limit_deg,
            "latency_frames": config.latency_frames,
            "path": args.path,
            "car": args.car,
            "calibration": args.calibration,
            "camera": camera_dict(config.camera),
        },
        "references": {ref.name: ref.summary() for ref in refs},
    }
    if isinstance(policy, ServerPolicy) and policy.rtts:
        import numpy as np

        meta["server_rtt_ms"] = {
            "p50": float(np.percentile(policy.rtts, 50) * 1e3),
            "p99": float(np.percentile(policy.rtts, 99) * 1e3),
        }
    summary = run.summarise(driven, trials, meta)
    summary["baselines"] = {}
    for base in baseline_policies(args.baseline_bias):
        d, t = run.evaluate_recordings(
            refs, base, config, recovery_points=args.recovery_points, progress=not args.quiet
        )
        summary["baselines"][base.name] = run.summarise(d, t, {})
    report.write_outputs(driven, summary, out, visuals, refs)
    o = summary["overall"]
    rec = o["recovery"]["success_share"]
    logger.info(
        "%s: %d interventions in %.0f s: autonomy %.1f%% (bounded %.1f%%), mean |offset| "
        "%.2f m, recovery %s; outputs in %s",
        policy.name,
        o["interventions"],
        o["elapsed_s"],
        o["autonomy_percent"],
        o["autonomy_bounded_percent"],
        o["lateral_offset_m"]["mean"],
        "n/a" if rec != rec else f"{100 * rec:.0f}%",
        out,
    )
    for name, b in summary["baselines"].items():
        logger.info(
            "baseline %s: %d interventions, autonomy %.1f%%",
            name,
            b["overall"]["interventions"],
            b["overall"]["autonomy_percent"],
        )
    return 0


def cmd_calibrate(args) -> int:
    from core.recordings import read_recording
    from evaluation.calibration_report import write_outputs
    from evaluation.outputs import prepare_out_dir
    from sim import calibrate as cal

    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    rec = read_recording(args.log)
    result = cal.calibrate(
        rec,
        frames=args.frames,
        search=not args.no_search,
        pitches=args.pitch or cal.DEFAULT_PITCH,
        heights=args.height or cal.DEFAULT_HEIGHT,
        fovs=args.fov or cal.DEFAULT_FOV,
        progress=not args.quiet,
    )
    path = write_outputs(result, out)
    logger.info(
        "side-camera check on %s: MAE no warp %.2f, default camera %.2f, best %.2f (%s); "
        "use --calibration %s",
        rec.name,
        result["mae_no_warp"],
        result["mae_default"],
        result["mae_best"],
        result["camera"],
        path,
    )
    return 0


def cmd_compare(args) -> int:
    from core.runs import KERAS_SUFFIXES
    from evaluation import compare
    from evaluation.closed_loop.run import build_references
    from evaluation.inference import resolve_model
    from evaluation.outputs import prepare_out_dir
    from sim.camera import Camera

    # Keras models only: the table counts their parameters and MACs layer by layer.
    specs = [resolve_model(m, KERAS_SUFFIXES) for m in args.models]
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = _read_logs(args.logs) if args.logs else []
    refs = (
        build_references(recordings, Camera(), criterion=args.criterion, progress=not args.quiet)
        if recordings and not args.no_closed_loop
        else []
    )
    rows = compare.compare_models(
        specs,
        recordings,
        references=refs,
        criterion=args.criterion,
        recovery_points=args.recovery_points,
        latency_runs=args.latency_runs,
        runtime=args.runtime,
        threads=args.threads,
        progress=not args.quiet,
    )
    baselines = (
        compare.baseline_figures(
            refs,
            criterion=args.criterion,
            recovery_points=args.recovery_points,
            progress=not args.quiet,
        )
        if refs
        else None
    )
    robust = None
    if args.robustness is not None:
        from evaluation.robustness.benchmark import for_compare

        labels = [r["label"] for r in rows]
        robust = for_compare(args, specs, labels, recordings, refs, out)
    compare.write_outputs(rows, [r.name for r in recordings], out, baselines, robust)
    logger.info("comparison of %d models written to %s", len(rows), out / "report.md")
    return 0


def cmd_robustness(args) -> int:
    from evaluation.robustness import benchmark

    return benchmark.cmd(args)


def cmd_path(args) -> int:
    from evaluation.closed_loop import path_report
    from evaluation.outputs import prepare_out_dir
    from sim.calibrate import load_camera
    from sim.camera import Camera

    camera = load_camera(args.calibration) if args.calibration else Camera()
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = _read_logs(args.logs)
    path_report.run(recordings, camera, out, progress=not args.quiet)
    logger.info("reference checks written to %s", out / "reference.md")
    return 0


COMMANDS = {
    "replay": cmd_replay,
    "path": cmd_path,
    "closed-loop": cmd_closed_loop,
    "calibrate": cmd_calibrate,
    "compare": cmd_compare,
    "robustness": cmd_robustness,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    from core.recordings import ImageError, RecordingError
    from core.runs import ModelLoadError
    from evaluation.outputs import OutputFolderError
    from evaluation.robustness.report import RobustnessReportError
    from sim.calibrate import CalibrationError

    try:
        return COMMANDS[args.command](args)
    except (
        ModelLoadError,
        OutputFolderError,
        RecordingError,
        ImageError,
        CalibrationError,
        ConnectionError,
        RobustnessReportError,
    ) as exc:
        logger.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
