"""Validation of the closed-loop method on the procedural demo road.

``python -m evaluation.closed_loop.demo_check --out DIR``. On the demo road (:mod:`sim.track`)
the world is exactly flat and the sky infinitely far, and the true view of any pose
can be rendered, so both halves of the method can be checked against ground truth:

1. **View synthesis**: the view of a car displaced sideways and/or turned,
   synthesised from the centred view (:func:`sim.camera.synthesize_view`), against
   the rendered view of that pose; mean absolute error in grey levels on the pixels
   that had a source, for offsets up to 1.5 m and yaws up to 5 degrees. The
   unwarped centred view against the same truth is the no-synthesis reference.
2. **Closed loop**: a clean recording (the car on the centreline, human steering =
   the road's curvature) is driven by a road-following policy, by constant zero
   steering and by the replayed human steering with a small bias, each once with
   synthesised views (the method) and once with rendered views (the truth). The
   method is sound when it ranks the policies as the truth does and the road
   follower scores clearly better than both baselines.

The road follower, the clean drive and the rendered truth:
:mod:`evaluation.closed_loop.demo_scenario`. ``--model`` adds a trained Keras model
as a further policy. Outputs: :mod:`evaluation.closed_loop.demo_report`.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.cli import HelpFormatter, error_exit, setup_logging
from core.recordings import read_recording
from core.runs import ModelLoadError
from evaluation.closed_loop import demo_report
from evaluation.closed_loop.demo_scenario import (
    CleanDrive,
    RenderedViews,
    RoadFollower,
    clean_drive,
    path_error,
    true_edges,
)
from evaluation.closed_loop.loop import LoopConfig, run_cars
from evaluation.closed_loop.policies import (
    ConstantPolicy,
    HumanReplayPolicy,
    ModelPolicy,
    Policy,
    baseline_policies,
)
from evaluation.closed_loop.recovery import recovery_summary, recovery_trials
from evaluation.closed_loop.reference import build_reference
from evaluation.closed_loop.road import RoadEdges
from evaluation.closed_loop.run import evaluate_recordings
from evaluation.closed_loop.scores import score
from evaluation.closed_loop.views import SynthesizedViews
from evaluation.inference import load_predictor, resolve_model
from evaluation.outputs import OutputFolderError, prepare_out_dir
from sim.camera import (
    Camera,
    camera_offset_for_car_pose,
    first_ground_row,
    synthesize_view,
)
from sim.demo_recording import write_demo_recording
from sim.driver import drive_demo
from sim.render import render_view
from sim.track import make_track

logger = logging.getLogger("evaluation.closed_loop.demo_check")

OFFSETS_M = (0.25, 0.5, 1.0, 1.5)
YAWS_DEG = (0.0, 2.0, 5.0)


# ------------------------------------------------------------ reference check
def reference_check(
    seed: int,
    n_frames: int,
    folder: Path,
    camera: Camera,
    *,
    extra: list[Policy] = (),
    progress: bool = True,
) -> dict:
    """The evaluator's view of a demo recording against the demo road's truth.

    Writes a demo recording (the scripted weaving driver, three cameras) into
    ``folder``, builds its reference as ``evaluate.py closed-loop`` does and reports:
    the path error over 30 m of the path measured from the frames and of the
    steering-integrated one; the road edges' error against the road's true edges
    (7.5 m of asphalt); the car response fitted (the demo car is an exact kinematic
    bicycle, so the fit should find no lag and gain 1); and the closed loop of the
    vision road follower (a driver known to keep the road) beside the blind
    baselines under the default criterion (and any ``extra`` policies, such as a model
    trained on other demo recordings)."""
    rec_dir = folder / f"demo_seed{seed}_{n_frames}"
    if not (rec_dir / "driving_log.csv").is_file():
        write_demo_recording(rec_dir, n_frames=n_frames, seed=seed)
    track = make_track(seed, length_m=0.7 * n_frames + 300.0)  # as write_demo_recording
    truth = drive_demo(track, n_frames, seed)
    rec = read_recording(rec_dir)
    ref = build_reference(rec, camera, progress=progress, use_cache=False)
    steer_ref = build_reference(
        rec, camera, path="steering", car="bicycle", edges=False, use_cache=False
    )
    out: dict = {"frames": n_frames, "seed": seed, "reference": ref.summary()}
    paths, edges, steer_paths = [], [], []
    for seg, sseg in zip(ref.segments, steer_ref.segments, strict=True):
        r = seg.path.rows
        pose = (truth.x[r], truth.y[r], truth.heading[r])
        paths.append(path_error(seg.path, *pose))
        steer_paths.append(path_error(sseg.path, *pose))
        left, right = true_edges(track, *pose, truth.s[r])
        edges.append((seg.edges.left - left, seg.edges.right - right, right - left))
    out["path_images"] = paths[0] if len(paths) == 1 else paths
    out["path_steering"] = steer_paths[0] if len(steer_paths) == 1 else steer_paths
    el = np.concatenate([e[0] for e in edges])
    er = np.concatenate([e[1] for e in edges])
    both = np.concatenate([el, er])
    out["edges"] = {
        "rms_m": float(np.sqrt(np.mean(both**2))),
        "left_median_m": float(np.median(el)),
        "right_median_m": float(np.median(er)),
        "p95_abs_m": float(np.percentile(np.abs(both), 95)),
        "true_width_m": float(np.median(np.concatenate([e[2] for e in edges]))),
    }
    config = LoopConfig(camera=camera)
    out["closed_loop"] = {}
    for pol in [RoadFollower(camera), *extra, *baseline_policies()]:
        driven, trials = evaluate_recordings([ref], pol, config, recovery_points=4, progress=False)
        res = score([d.trace for d in driven])
        res["recovery"] = recovery_summary([t for v in trials.values() for t in v])
        out["closed_loop"][pol.name] = res
    return out


# ----------------------------------------------------------------- synthesis check
def synthesis_check(
    seed: int, poses: int, camera: Camera, progress: bool = True
) -> tuple[list[dict], list]:
    """Synthesised vs rendered views at ``poses`` spread-out points of a demo road."""
    track = make_track(seed + 100, length_m=1500.0)
    s_points = np.linspace(50.0, track.length_m - 400.0, poses)
    split = first_ground_row(camera)
    cases = [(d, y) for d in (0.0, *OFFSETS_M) for y in YAWS_DEG if (d, y) != (0.0, 0.0)]
    cases += [(-d, -y) for d, y in cases]
    acc: dict[tuple, dict[str, list]] = {
        c: {"ground": [], "sky": [], "all": [], "none": [], "valid": []} for c in cases
    }
    examples = []
    for s in tqdm(s_points, desc="synthesis vs render", disable=not progress):
        ref = render_view(track, *track.pose_at(float(s)), camera, s_hint=float(s))
        for d, yd in cases:
            yaw = math.radians(yd)
            truth = render_view(track, *track.pose_at(float(s), d, yaw), camera, s_hint=float(s))
            lat, fwd, yw = camera_offset_for_car_pose(camera, d, yaw)
            synth, valid = synthesize_view(ref, lat, yw, camera, forward_m=fwd)
            err = np.abs(_grey(synth) - _grey(truth))
            err[~valid] = 0.0  # no source: black in the synthesised view, not an error
            a = acc[(d, yd)]
            a["ground"].append(err[split:][valid[split:]].mean())
            a["sky"].append(err[:split][valid[:split]].mean() if valid[:split].any() else np.nan)
            a["all"].append(err[valid].mean())
            a["none"].append(np.abs(_grey(ref) - _grey(truth))[valid].mean())
            a["valid"].append(valid.mean())
            if s == s_points[len(s_points) // 2] and (d, yd) in ((1.0, 0.0), (0.5, 5.0)):
                examples.append((d, yd, ref, synth, truth, err))
    rows = []
    for (d, yd), a in acc.items():
        rows.append(
            {
                "offset_m": d,
                "yaw_deg": yd,
                **{f"mae_{k}": float(np.nanmean(v)) for k, v in a.items() if k != "valid"},
                "valid_share": float(np.mean(a["valid"])),
            }
        )
    return rows, examples


def _grey(im: np.ndarray) -> np.ndarray:
    return im.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def fold_synthesis(rows: list[dict]) -> list[dict]:
    """Mirror cases (+d, +yaw) and (-d, -yaw) averaged: one row per |offset|, |yaw|."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((abs(r["offset_m"]), abs(r["yaw_deg"])), []).append(r)
    return [
        {
            "offset_m": k[0],
            "yaw_deg": k[1],
            **{
                key: float(np.mean([r[key] for r in v]))
                for key in v[0]
                if key not in ("offset_m", "yaw_deg")
            },
        }
        for k, v in sorted(out.items())
    ]


# ------------------------------------------------------------------- closed loop
def closed_loop_check(
    drive: CleanDrive,
    policies: list[Policy],
    camera: Camera,
    *,
    recovery_points: int = 4,
    progress: bool = True,
) -> dict[str, dict[str, dict]]:
    config = LoopConfig(camera=camera)
    # The clean drive keeps the centreline: the road's edges are its half width away.
    n = len(drive.path)
    edges = RoadEdges(
        np.full(n, -drive.track.half_width_m),
        np.full(n, drive.track.half_width_m),
        np.zeros((n, 2), np.int32),
    )
    sources = {
        "synthesised": SynthesizedViews(drive.frames, camera),
        "rendered": RenderedViews(drive, camera),
    }
    out: dict[str, dict[str, dict]] = {}
    for pol in policies:
        out[pol.name] = {}
        for mode, views in sources.items():
            tr = run_cars(
                drive.path,
                views,
                pol,
                config,
                start=np.array([0]),
                edges=edges,
                progress=progress,
                desc=f"{pol.name}, {mode}",
            )
            res = score([tr])
            trials = recovery_trials(
                drive.path, views, pol, config, points=recovery_points, edges=edges
            )
            res["recovery"] = recovery_summary(trials)
            out[pol.name][mode] = res
            logger.info(
                "%s with %s views: %d interventions, autonomy %.1f%%, mean |offset| "
                "%.2f m, recovery %.0f%%",
                pol.name,
                mode,
                res["interventions"],
                res["autonomy_percent"],
                res["lateral_offset_m"]["mean"],
                100 * (res["recovery"]["success_share"] or 0),
            )
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.closed_loop.demo_check",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out, replacing same-named files",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the demo roads and drives")
    parser.add_argument("--frames", type=int, default=450, help="frames of the clean drive")
    parser.add_argument("--poses", type=int, default=16, help="poses for the synthesis check")
    parser.add_argument("--bias", type=float, default=0.02, help="bias of the human baseline")
    parser.add_argument(
        "--recovery-points", type=int, default=4, help="recovery-trial start points per drive"
    )
    parser.add_argument(
        "--reference-frames",
        type=int,
        default=600,
        help="frames of the recording written for the reference check (default 600)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="a trained model or run folder to add as a policy (repeatable)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="warnings only, no progress bars"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(quiet=args.quiet)
    try:
        out = prepare_out_dir(args.out, overwrite=args.overwrite)
        models = [
            ModelPolicy(load_predictor(spec), spec.label) for spec in map(resolve_model, args.model)
        ]
    except (OutputFolderError, ModelLoadError) as exc:
        return error_exit(exc, logger)
    camera = Camera()
    progress = not args.quiet
    synth_raw, examples = synthesis_check(args.seed, args.poses, camera, progress)
    drive = clean_drive(args.seed, args.frames, camera, progress)
    policies: list[Policy] = [
        RoadFollower(camera),
        ConstantPolicy(0.0),
        HumanReplayPolicy(args.bias),
        HumanReplayPolicy(0.0),
    ]
    for model in models:
        policies.insert(1, model)  # after the road follower, the last --model first
    loop = closed_loop_check(
        drive, policies, camera, recovery_points=args.recovery_points, progress=progress
    )
    reference = reference_check(
        args.seed + 200,
        args.reference_frames,
        out,
        camera,
        extra=policies[1 : 1 + len(models)],
        progress=progress,
    )
    meta = {
        "seed": args.seed,
        "poses": args.poses,
        "frames": args.frames,
        "duration_s": drive.path.duration_s,
        "distance_m": float(drive.path.s[-1]),
    }
    synthesis = (fold_synthesis(synth_raw), synth_raw, examples)
    print(demo_report.write_outputs(out, meta, synthesis, loop, reference, camera))
    return 0


if __name__ == "__main__":
    sys.exit(main())
