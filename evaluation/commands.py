"""The bodies of ``python evaluate.py``'s commands (:mod:`evaluation.cli` parses them).

Each ``cmd_*`` takes the parsed options and returns the exit status. Expected errors
(:data:`EXPECTED_ERRORS`: a missing log, a MODEL that is not a model, an output
folder that already holds results, ...) are raised to ``evaluation.cli.main``, which
logs them as one line and exits with status 2; an option value that makes no sense
together with the others ends here the same way (:func:`core.cli.error_exit`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from core.cli import error_exit
from core.recordings import ImageError, RecordingError, load_image, read_recording, read_recordings
from core.runs import KERAS_SUFFIXES, ModelLoadError
from evaluation import compare, compare_report, replay
from evaluation.calibration_report import write_outputs as write_calibration
from evaluation.closed_loop import path_report, response, run
from evaluation.closed_loop import report as closed_loop_report
from evaluation.closed_loop.loop import LoopConfig
from evaluation.closed_loop.policies import (
    EXPERT_LOOKAHEAD_M,
    ExpertPolicy,
    ModelPolicy,
    ServerPolicy,
    SmoothedPolicy,
    baseline_policies,
    check_expert,
    check_smoothing,
)
from evaluation.inference import load_predictor, resolve_model
from evaluation.outputs import OutputFolderError, prepare_out_dir
from evaluation.plots import VideoWriter
from evaluation.robustness import benchmark
from evaluation.robustness import report as robustness_report
from evaluation.robustness.comparison import RobustnessReportError, comparison, load_report
from evaluation.robustness.corruptions import CorruptionError
from sim.calibrate import (
    DEFAULT_FOV,
    DEFAULT_HEIGHT,
    DEFAULT_PITCH,
    CalibrationError,
    calibrate,
    camera_dict,
    load_camera,
)
from sim.camera import Camera

logger = logging.getLogger("evaluation")

#: Errors a user can cause and fix (named in one line, exit status 2).
EXPECTED_ERRORS = (
    ModelLoadError,
    OutputFolderError,
    RecordingError,
    ImageError,
    CalibrationError,
    ConnectionError,
    RobustnessReportError,
)

#: What closed-loop and response say when no log has a stretch the closed loop can drive.
NO_STRETCH = "no log had a drivable stretch (car moving, regular frames, >= 3 s)"


def loop_config(args) -> LoopConfig:
    """The closed loop's :class:`LoopConfig` from parsed options (ValueError when
    they make no sense)."""
    camera = load_camera(args.calibration) if args.calibration else Camera()
    return LoopConfig(
        criterion=args.criterion,
        offset_limit_m=args.offset_limit,
        heading_limit_deg=args.heading_limit,
        latency_frames=args.latency,
        camera=camera,
    )


def references(args, recordings, config: LoopConfig) -> list:
    """The closed loop's references of ``recordings`` as the closed-loop options ask
    (``--path``, ``--car``, the criterion of ``config``)."""
    return run.build_references(
        recordings,
        config.camera,
        path=args.path,
        car=args.car,
        criterion=config.criterion,
        progress=not args.quiet,
    )


def cmd_replay(args) -> int:
    spec = resolve_model(args.model)
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = read_recordings(args.logs)
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
    try:
        config = loop_config(args)
        run.check_repeats(args.repeats, args.repeat_noise)
        check_smoothing(args.steering_smoothing)
        check_expert(args.expert)
    except ValueError as exc:
        return error_exit(exc, logger)
    spec = None if args.via_server else resolve_model(args.model)
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = read_recordings(args.logs)
    refs = references(args, recordings, config)
    if not refs:
        return error_exit(NO_STRETCH, logger)
    policy, runtime = _closed_loop_policy(args, spec)
    visuals = closed_loop_report.Visuals(
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
            repeats=args.repeats,
            repeat_noise=args.repeat_noise,
        )
    finally:
        policy.close()
    wall_s = time.perf_counter() - start
    meta = _closed_loop_meta(args, config, policy, spec, runtime, recordings, refs, wall_s)
    summary = run.summarise(driven, trials, meta)
    summary["baselines"] = _drive_beside(args, refs, config, baseline_policies(args.baseline_bias))
    if args.expert:
        summary["expert"] = _drive_beside(args, refs, config, [ExpertPolicy(args.expert)])
    closed_loop_report.write_outputs(driven, summary, out, visuals, refs)
    _log_closed_loop(summary, out)
    return 0


def _closed_loop_policy(args, spec):
    """The policy that drives (the model, or a drive server with ``--via-server``),
    smoothed as ``--steering-smoothing`` asks, and the runtime it answers through."""
    if args.via_server:
        policy = ServerPolicy(args.via_server, name=f"{Path(args.model).name} via drive server")
        runtime = f"drive server at {args.via_server}"
    else:
        predictor = load_predictor(spec, args.runtime, args.threads)
        policy, runtime = ModelPolicy(predictor, spec.label), predictor.name
    if args.steering_smoothing < 1.0:
        policy = SmoothedPolicy(policy, args.steering_smoothing)
    return policy, runtime


def _closed_loop_meta(args, config, policy, spec, runtime, recordings, refs, wall_s) -> dict:
    """What ``summary.json`` says besides the scores: who drove, how, on what."""
    meta = {
        "policy": policy.name,
        "model_path": spec.path if spec else None,
        "runtime": runtime,
        "logs": [str(r.csv_path) for r in recordings],
        "wall_s": wall_s,
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
            "repeats": args.repeats,
            "repeat_noise": args.repeat_noise,
            "steering_smoothing": args.steering_smoothing,
            "expert_lookahead_m": args.expert,
        },
        "references": {ref.name: ref.summary() for ref in refs},
    }
    server = policy.policy if isinstance(policy, SmoothedPolicy) else policy
    if isinstance(server, ServerPolicy) and server.rtts:
        meta["server_rtt_ms"] = {
            "p50": float(np.percentile(server.rtts, 50) * 1e3),
            "p99": float(np.percentile(server.rtts, 99) * 1e3),
        }
    return meta


def _drive_beside(args, refs, config: LoopConfig, policies) -> dict[str, dict]:
    """``policies`` (the blind baselines, the expert) driven on the same references as
    the model, as often, summarised."""
    out = {}
    for pol in policies:
        d, t = run.evaluate_recordings(
            refs,
            pol,
            config,
            recovery_points=args.recovery_points,
            progress=not args.quiet,
            repeats=args.repeats,
            repeat_noise=args.repeat_noise,
        )
        out[pol.name] = run.summarise(d, t, {})
    return out


def _log_closed_loop(summary: dict, out: Path) -> None:
    o = summary["overall"]
    rec = o["recovery"]["success_share"]
    logger.info(
        "%s: %d interventions in %.0f s: autonomy %.1f%% (bounded %.1f%%), mean |offset| "
        "%.2f m, recovery %s; outputs in %s",
        summary["policy"],
        o["interventions"],
        o["elapsed_s"],
        o["autonomy_percent"],
        o["autonomy_bounded_percent"],
        o["lateral_offset_m"]["mean"],
        "n/a" if rec != rec else f"{100 * rec:.0f}%",
        out,
    )
    driven = closed_loop_report.driven_policies(summary)
    for name, b in driven.items():
        if b is summary:
            continue
        rec = b["overall"]["recovery"]["success_share"]
        logger.info(
            "%s %s: %d interventions, autonomy %.1f%%, recovery %s",
            "reference" if name in summary.get("expert", {}) else "baseline",
            name,
            b["overall"]["interventions"],
            b["overall"]["autonomy_percent"],
            "n/a" if rec != rec else f"{100 * rec:.0f}%",
        )
    for name, sm in driven.items():
        for log, figures in sm["logs"].items():
            rep = figures.get("repeats")
            if rep:
                n = rep["interventions"]
                logger.info(
                    "%s, %s: interventions over %d drives %s (mean %.1f, sd %.1f)",
                    name,
                    log,
                    rep["drives"],
                    run.drive_counts(n),
                    n["mean"],
                    n["sd"],
                )


def cmd_path(args) -> int:
    camera = load_camera(args.calibration) if args.calibration else Camera()
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = read_recordings(args.logs)
    path_report.run(recordings, camera, out, progress=not args.quiet)
    logger.info("reference checks written to %s", out / "reference.md")
    return 0


def cmd_calibrate(args) -> int:
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    rec = read_recording(args.log)
    result = calibrate(
        rec,
        frames=args.frames,
        search=not args.no_search,
        pitches=args.pitch or DEFAULT_PITCH,
        heights=args.height or DEFAULT_HEIGHT,
        fovs=args.fov or DEFAULT_FOV,
        progress=not args.quiet,
    )
    path = write_calibration(result, out)
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
    # Keras models only: the table counts their parameters and MACs layer by layer.
    specs = [resolve_model(m, KERAS_SUFFIXES) for m in args.models]
    try:
        run.check_repeats(args.repeats, args.repeat_noise)  # before the output folder is made
        check_expert(args.expert)
    except ValueError as exc:
        return error_exit(exc, logger)
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = read_recordings(args.logs) if args.logs else []
    refs = (
        run.build_references(
            recordings, Camera(), criterion=args.criterion, progress=not args.quiet
        )
        if recordings and not args.no_closed_loop
        else []
    )
    rows = compare.compare_models(
        specs,
        recordings,
        references=refs,
        criterion=args.criterion,
        recovery_points=args.recovery_points,
        repeats=args.repeats,
        repeat_noise=args.repeat_noise,
        latency_runs=args.latency_runs,
        runtime=args.runtime,
        threads=args.threads,
        progress=not args.quiet,
    )
    beside = dict(
        criterion=args.criterion,
        recovery_points=args.recovery_points,
        repeats=args.repeats,
        repeat_noise=args.repeat_noise,
        progress=not args.quiet,
    )
    baselines = compare.baseline_figures(refs, **beside) if refs else None
    expert = (
        compare.baseline_figures(refs, policies=[ExpertPolicy(args.expert)], **beside)
        if refs and args.expert
        else None
    )
    robust = None
    if args.robustness is not None:
        labels = [r["label"] for r in rows]
        robust = compare_robustness(args, specs, labels, recordings, refs, out)
    compare_report.write_outputs(
        rows,
        [r.name for r in recordings],
        out,
        baselines,
        robust,
        repeats=(args.repeats, args.repeat_noise),
        expert=expert,
    )
    logger.info("comparison of %d models written to %s", len(rows), out / "report.md")
    return 0


def compare_robustness(args, specs, labels, recordings, refs, out) -> tuple[list[dict], str]:
    """``evaluate.py compare --robustness [DIR...]``: each model's report read from its
    folder (in the order of the models) or, with no folders, measured here with the
    default plan on ``--logs`` (reports in ``out/robustness_<label>``)."""
    if args.robustness:
        if len(args.robustness) != len(specs):
            raise RobustnessReportError(
                f"--robustness got {len(args.robustness)} folders for {len(specs)} models; "
                "give one report folder per model, in the same order, or none to measure"
            )
        reports = [load_report(d) for d in args.robustness]
        for spec, rep, d in zip(specs, reports, args.robustness, strict=True):
            if Path(rep["model_path"]).resolve() != spec.path.resolve():
                raise RobustnessReportError(
                    f"--robustness {d} is the report of {rep['model_path']}, not of {spec.path}"
                )
    else:
        if not recordings:
            raise RobustnessReportError("--robustness without report folders needs --logs")
        reports = [
            _measure_robustness(args, spec, label, recordings, refs, out)
            for spec, label in zip(specs, labels, strict=True)
        ]
    base = args.robustness_baseline or labels[0]
    if base not in labels:
        raise RobustnessReportError(
            f"--robustness-baseline {base!r} is not one of the models: {', '.join(labels)}"
        )
    return comparison(reports, list(labels), labels.index(base)), base


def _measure_robustness(args, spec, label, recordings, refs, out) -> dict:
    """One model's robustness report with the default plan, written to
    ``out/robustness_<label>``."""
    plan = benchmark.Plan(closed_loop=bool(refs))
    config = LoopConfig(criterion=args.criterion)
    predictor = load_predictor(spec, args.runtime, args.threads)
    rep = benchmark.run(spec, predictor, recordings, refs, config, plan, progress=not args.quiet)
    rep["timing"]["total_s"] = sum(rep["timing"].values())
    folder = out / f"robustness_{label}"
    folder.mkdir(exist_ok=True)
    robustness_report.write_outputs(rep, folder, None)
    return rep


def cmd_robustness(args) -> int:
    start = time.perf_counter()
    try:
        plan = benchmark.plan_from_args(args)
        config = loop_config(args)
    except (CorruptionError, ValueError) as exc:
        return error_exit(exc, logger)
    spec = resolve_model(args.model)
    recordings = read_recordings(args.logs)
    first = recordings[0]
    key = len(first) // 2 if args.grid_frame is None else args.grid_frame
    if key >= len(first):
        return error_exit(f"--grid-frame {key}: {first.name} has rows 0-{len(first) - 1}", logger)
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    refs = []
    if plan.cl_conditions():
        refs = references(args, recordings, config)
        if not refs:
            logger.warning("no log had a drivable stretch: the closed loop is skipped")
    predictor = load_predictor(spec, args.runtime, args.threads)
    result = benchmark.run(spec, predictor, recordings, refs, config, plan, progress=not args.quiet)
    result["timing"]["total_s"] = time.perf_counter() - start
    robustness_report.write_outputs(result, out, load_image(first.centre_paths[key]), key)
    s = result["summary"]
    logger.info(
        "%s: open-loop shift %.4f, MAE %.4f (clean %.4f)%s; %.0f s; report in %s",
        spec.label,
        s["mean_shift"],
        s["mean_mae"],
        s["clean_mae"],
        ""
        if "closed_loop" not in s
        else f"; closed-loop autonomy {s['closed_loop']['clean_autonomy_percent']:.1f}% clean, "
        f"{s['closed_loop']['mean_autonomy_percent']:.1f}% corrupted (mean)",
        result["timing"]["total_s"],
        out / "robustness.md",
    )
    return 0


def cmd_response(args) -> int:
    try:
        if args.lookahead is not None:
            response.check_lookahead(args.lookahead)
        displacements = response.kinds(args.offsets, args.yaws)
    except ValueError as exc:
        return error_exit(exc, logger)
    spec = resolve_model(args.model)
    label = response.taught(spec.config, args.lookahead, EXPERT_LOOKAHEAD_M)
    logger.info(
        "recovery labels over %g m, gain %g (%s)",
        label["lookahead_m"],
        label["gain"],
        label["source"],
    )
    out = prepare_out_dir(args.out, overwrite=args.overwrite)
    recordings = read_recordings(args.logs)
    camera = load_camera(args.calibration) if args.calibration else Camera()
    # The views only need each stretch's path and frames: no road edges.
    refs = run.build_references(recordings, camera, criterion="nvidia", progress=not args.quiet)
    if not refs:
        return error_exit(NO_STRETCH, logger)
    predictor = load_predictor(spec, args.runtime, args.threads)
    start = time.perf_counter()
    probes = {
        ref.name: response.probe_reference(
            ref,
            predictor,
            camera,
            lookahead_m=label["lookahead_m"],
            gain=label["gain"],
            displacements=displacements,
            every=args.every,
        )
        for ref in refs
    }
    meta = {
        "model": spec.label,
        "model_path": spec.path,
        "runtime": predictor.name,
        "logs": [str(r.csv_path) for r in recordings],
        "lookahead_m": label["lookahead_m"],
        "gain": label["gain"],
        "label_source": label["source"],
        "every": args.every,
        "wall_s": time.perf_counter() - start,
    }
    summary = response.summarise(probes, displacements, meta)
    response.write_outputs(summary, probes, out)
    for name, log in summary["logs"].items():
        ratios = ", ".join(
            f"{k} {'-' if f['ratio'] is None else format(f['ratio'], '.2f')}x"
            for k, f in log["kinds"].items()
        )
        logger.info("%s, %s (%d frames): %s", spec.label, name, log["frames"], ratios)
    logger.info("outputs in %s", out)
    return 0


COMMANDS = {
    "replay": cmd_replay,
    "path": cmd_path,
    "closed-loop": cmd_closed_loop,
    "calibrate": cmd_calibrate,
    "compare": cmd_compare,
    "robustness": cmd_robustness,
    "response": cmd_response,
}
