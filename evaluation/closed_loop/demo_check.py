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

The road follower (:class:`RoadFollower`) is a transparent vision policy for this
road only: it finds the grey asphalt in rows 5-25 m ahead, back-projects its centre
to the ground with the camera model and steers there by pure pursuit. ``--model``
adds a trained Keras model as a further policy.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.cli import setup_logging
from core.recordings import read_recording
from evaluation import plots
from evaluation.closed_loop.kinematics import ReferencePath, build_path, to_local, wrap_angle
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
from evaluation.outputs import markdown_table, prepare_out_dir, write_json
from sim.camera import (
    MPH_PER_MPS,
    ROOT_AHEAD_OF_REAR_AXLE_M,
    Camera,
    camera_offset_for_car_pose,
    curvature_to_steering,
    first_ground_row,
    synthesize_view,
)
from sim.demo_recording import write_demo_recording
from sim.driver import drive_demo
from sim.render import render_view
from sim.track import Track, make_track

logger = logging.getLogger(__name__)

OFFSETS_M = (0.25, 0.5, 1.0, 1.5)
YAWS_DEG = (0.0, 2.0, 5.0)


# ------------------------------------------------------------------ road follower
class RoadFollower(Policy):
    """Pure pursuit on the asphalt seen in the image (demo road only).

    Asphalt and its white lines are grey (channel spread < 28) and neither black
    (no-source pixels of a synthesised view) nor haze-bright; grass, dirt and the
    yellow centre dashes are coloured. In each of a band of rows the grey run around
    the image centre is taken (gaps up to 12 px, the dashes, bridged); runs that
    touch the image border are unreliable and skipped. The run centres are
    back-projected to the ground, a line x(z) is fitted and the car steers by pure
    pursuit to its point ``lookahead_m`` ahead of the rear axle.
    """

    name = "road follower (vision)"

    def __init__(self, camera: Camera | None = None, lookahead_m: float = 10.0):
        self.camera = camera or Camera()
        self.lookahead_m = lookahead_m
        lo = max(first_ground_row(self.camera) + 8, 0)
        self.rows = np.arange(lo, min(lo + 40, self.camera.height - 30), 2)

    def steer(self, view: np.ndarray) -> float:
        band = view[self.rows].astype(np.int16)
        spread = band.max(axis=2) - band.min(axis=2)
        mean = band.mean(axis=2)
        grey = (spread < 28) & (mean > 30) & (mean < 200)
        w = view.shape[1]
        pts = []
        for r, row in zip(self.rows, grey, strict=True):
            run = _run_around(row, w // 2, gap=12)
            if run is None:
                continue
            left, right = run
            if left <= 0 or right >= w - 1 or right - left < 6:
                continue
            pts.append(((left + right + 1) / 2.0, r + 0.5))
        if len(pts) < 3:
            return 0.0
        ground = self.camera.pixel_to_ground(np.array(pts))
        ground = ground[np.isfinite(ground).all(axis=1)]
        if len(ground) < 3:
            return 0.0
        slope, icpt = np.polyfit(ground[:, 1], ground[:, 0], 1)
        z = self.lookahead_m
        x = slope * z + icpt
        return float(curvature_to_steering(2.0 * x / (x * x + z * z)))

    def __call__(self, views, ctx):
        return np.array([self.steer(v) for v in views])


def _run_around(row: np.ndarray, centre: int, gap: int) -> tuple[int, int] | None:
    """[left, right] of the True run nearest ``centre``, bridging gaps up to ``gap``."""
    idx = np.flatnonzero(row)
    if not idx.size:
        return None
    j = int(np.argmin(np.abs(idx - centre)))
    lo = hi = j
    while lo > 0 and idx[lo] - idx[lo - 1] <= gap:
        lo -= 1
    while hi < idx.size - 1 and idx[hi + 1] - idx[hi] <= gap:
        hi += 1
    return int(idx[lo]), int(idx[hi])


# ----------------------------------------------------------------- clean recording
@dataclass
class CleanDrive:
    """A car driven exactly along the centreline, with what a recording would hold."""

    track: Track
    s: np.ndarray  # arc length of the rear axle of each frame
    poses: np.ndarray  # (n, 3) world x, y, heading
    path: ReferencePath  # rebuilt from the recorded speed, steering and times
    frames: np.ndarray  # rendered centre views (n, 160, 320, 3)


def clean_drive(seed: int, n_frames: int, camera: Camera, progress: bool = True) -> CleanDrive:
    """Frames every 60-74 ms (like the simulator) at 8-12 m/s along the centreline;
    recorded steering = the road's curvature at the frame (what a perfect driver
    holds), speed in mph and time stamps as a recording stores them."""
    rng = np.random.default_rng([seed, 7])
    track = make_track(seed, length_m=0.9 * n_frames + 400.0)
    dt = rng.integers(60, 75, size=n_frames - 1) / 1000.0
    t = np.concatenate([[0.0], np.cumsum(dt)])
    speed = 10.0 + 2.0 * np.sin(0.15 * t + rng.uniform(0, 6.28))  # m/s
    s = 20.0 + np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * dt)])
    idx = np.round(s / track.ds).astype(int)
    steering = curvature_to_steering(track.curvature[idx])
    # The recording stores mph with float32 precision; the path is rebuilt from that.
    speed_rec = (speed * MPH_PER_MPS).astype(np.float32) / MPH_PER_MPS
    path = build_path(np.arange(n_frames), t, speed_rec, steering)
    poses = np.array([track.pose_at(float(si)) for si in s])
    frames = np.empty((n_frames, camera.height, camera.width, 3), dtype=np.uint8)
    for i in tqdm(range(n_frames), desc="rendering demo drive", disable=not progress):
        frames[i] = render_view(track, *poses[i], camera, s_hint=float(s[i]))
    return CleanDrive(track, s, poses, path, frames)


class RenderedViews:
    """Ground truth: the rendered view of the displaced car. The car's pose relative
    to reference frame ``base`` is applied to that frame's true world pose."""

    def __init__(self, drive: CleanDrive, camera: Camera):
        self.drive = drive
        self.camera = camera

    def __call__(self, base: int, right: float, forward: float, yaw: float):
        x, y, h = self.drive.poses[base]
        wx = x + forward * math.cos(h) + right * math.sin(h)
        wy = y + forward * math.sin(h) - right * math.cos(h)
        view = render_view(
            self.drive.track, wx, wy, h - yaw, self.camera, s_hint=float(self.drive.s[base])
        )
        return view, np.ones(view.shape[:2], dtype=bool)


# ------------------------------------------------------------ reference check
def path_error(path: ReferencePath, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> dict:
    """How far a path's shape is from the truth over 30 m: for every 5th frame, the
    poses of the frames up to 30 m ahead are expressed relative to that frame, in
    the estimate and in the truth (``x``, ``y``, ``heading`` of the same frames);
    RMS, p95 and max of the position differences in metres."""
    errs = []
    for i in range(0, len(path), 5):
        js = np.flatnonzero((path.s >= path.s[i]) & (path.s <= path.s[i] + 30.0))
        ex, ez = to_local(path.x[i], path.y[i], path.heading[i], path.x[js], path.y[js])
        tx, tz = to_local(x[i], y[i], heading[i], x[js], y[js])
        errs.append(np.hypot(ex - tx, ez - tz))
    e = np.concatenate(errs)
    return {
        "rms_m": float(np.sqrt(np.mean(e**2))),
        "p95_m": float(np.percentile(e, 95)),
        "max_m": float(e.max()),
    }


def true_edges(track: Track, x, y, heading, s_hint) -> tuple:
    """The road's true edges measured from the path's root along the path's normal,
    as :class:`evaluation.closed_loop.road.RoadEdges` holds them (``x``, ``y``, ``heading``: the
    true rear-axle poses of the path's frames; ``s_hint`` their arc lengths)."""
    rx = x + ROOT_AHEAD_OF_REAR_AXLE_M * np.cos(heading)
    ry = y + ROOT_AHEAD_OF_REAR_AXLE_M * np.sin(heading)
    hints = np.asarray(s_hint, dtype=np.float64)
    sd = np.array(
        [track.locate(a, b, s_hint=float(h)) for a, b, h in zip(rx, ry, hints, strict=True)]
    )
    road_heading = np.interp(sd[:, 0], np.arange(track.heading.size) * track.ds, track.heading)
    cos = np.cos(wrap_angle(road_heading - heading))
    return (-track.half_width_m - sd[:, 1]) / cos, (track.half_width_m - sd[:, 1]) / cos


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


def report(synth_rows: list[dict], loop: dict, meta: dict) -> str:
    lines = ["# Closed-loop method checked on the procedural demo road\n"]
    lines.append(
        f"View synthesis: {meta['poses']} poses on a demo road (seed {meta['seed'] + 100}); "
        "grey-level mean absolute error (0-255) of the synthesised view against the "
        "rendered view of the displaced car, on pixels with a source; 'unwarped' compares "
        "the centred view itself with the truth. Mirror cases averaged.\n"
    )
    lines.append(
        markdown_table(
            [
                "offset (m)",
                "yaw (deg)",
                "MAE ground",
                "MAE sky",
                "MAE all",
                "MAE unwarped",
                "pixels with source",
            ],
            [
                [
                    r["offset_m"],
                    r["yaw_deg"],
                    r["mae_ground"],
                    r["mae_sky"],
                    r["mae_all"],
                    r["mae_none"],
                    r["valid_share"],
                ]
                for r in synth_rows
            ],
            digits=3,
        )
    )
    lines.append(
        f"\nClosed loop: clean centreline drive of {meta['frames']} frames "
        f"({meta['duration_s']:.0f} s, {meta['distance_m']:.0f} m, seed {meta['seed']}); "
        "the same policies with synthesised views (the method) and rendered views (truth).\n"
    )
    rows = []
    for pol, modes in loop.items():
        for mode, r in modes.items():
            rows.append(
                [
                    pol,
                    mode,
                    r["interventions"],
                    r["autonomy_percent"],
                    r["autonomy_bounded_percent"],
                    r["lateral_offset_m"]["mean"],
                    r["lateral_offset_m"]["max"],
                    r["time_within_0.3m"],
                    r["recovery"]["success_share"],
                ]
            )
    lines.append(
        markdown_table(
            [
                "policy",
                "views",
                "interventions",
                "autonomy (%)",
                "bounded (%)",
                "mean abs offset (m)",
                "max abs offset (m)",
                "time within 0.3 m",
                "recovered (within 0.3 m of the twin after 5 s)",
            ],
            rows,
            digits=3,
        )
    )
    return "\n".join(lines)


def reference_report(r: dict) -> str:
    lines = [
        f"\n## The evaluator's reference against the demo road's truth\n\n"
        f"A demo recording of {r['frames']} frames (seed {r['seed']}, the scripted weaving "
        "driver, three cameras), read and driven exactly as `evaluate.py closed-loop` "
        "does.\n",
        markdown_table(
            ["check", "measured", "target"],
            [
                [
                    "path from the frames: error over 30 m, RMS (m)",
                    r["path_images"]["rms_m"],
                    "< 0.2",
                ],
                ["path from the frames: p95 (m)", r["path_images"]["p95_m"], ""],
                [
                    "path from the logged steering: RMS (m)",
                    r["path_steering"]["rms_m"],
                    "(exact here)",
                ],
                ["road edges: RMS error (m)", r["edges"]["rms_m"], "< 0.3"],
                [
                    "road edges: median error left / right (m)",
                    f"{r['edges']['left_median_m']:+.3f} / {r['edges']['right_median_m']:+.3f}",
                    "",
                ],
                [
                    "road width found / true (m)",
                    f"{r['reference']['road_width_m']['median']:.2f} / "
                    f"{r['edges']['true_width_m']:.2f}",
                    "",
                ],
                [
                    "car response fitted (lag s, gain)",
                    f"{r['reference']['car_response']['lag_s']:g}, "
                    f"{r['reference']['car_response']['gain']:g}",
                    "0, 1 (a bicycle)",
                ],
            ],
            digits=3,
        ),  # fmt: skip
        "\nClosed loop on that recording (default criterion: a wheel off the road):\n",
        markdown_table(
            ["policy", "interventions", "autonomy (%)", "bounded (%)", "recovered"],
            [
                [
                    name,
                    c["interventions"],
                    c["autonomy_percent"],
                    c["autonomy_bounded_percent"],
                    c["recovery"]["success_share"],
                ]
                for name, c in r["closed_loop"].items()
            ],
            digits=3,
        ),  # fmt: skip
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.closed_loop.demo_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=450, help="frames of the clean drive")
    parser.add_argument("--poses", type=int, default=16, help="poses for the synthesis check")
    parser.add_argument("--bias", type=float, default=0.02, help="bias of the human baseline")
    parser.add_argument("--recovery-points", type=int, default=4)
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
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(quiet=args.quiet)
    try:
        out = prepare_out_dir(args.out, overwrite=args.overwrite)
    except ValueError as exc:
        parser.error(str(exc))
    camera = Camera()
    progress = not args.quiet
    synth_raw, examples = synthesis_check(args.seed, args.poses, camera, progress)
    synth = fold_synthesis(synth_raw)
    drive = clean_drive(args.seed, args.frames, camera, progress)
    policies: list[Policy] = [
        RoadFollower(camera),
        ConstantPolicy(0.0),
        HumanReplayPolicy(args.bias),
        HumanReplayPolicy(0.0),
    ]
    if args.model:
        for m in args.model:
            spec = resolve_model(m)
            policies.insert(1, ModelPolicy(load_predictor(spec), spec.label))
    loop = closed_loop_check(
        drive, policies, camera, recovery_points=args.recovery_points, progress=progress
    )
    models = [p for p in policies if not isinstance(p, RoadFollower | ConstantPolicy)]
    models = [p for p in models if not isinstance(p, HumanReplayPolicy)]
    reference = reference_check(
        args.seed + 200,
        args.reference_frames,
        out,
        camera,
        extra=models,
        progress=progress,
    )
    meta = {
        "seed": args.seed,
        "poses": args.poses,
        "frames": args.frames,
        "duration_s": drive.path.duration_s,
        "distance_m": float(drive.path.s[-1]),
    }
    write_json(
        out / "demo_check.json",
        {
            **meta,
            "synthesis": synth,
            "synthesis_all": synth_raw,
            "closed_loop": loop,
            "reference": reference,
        },
    )
    text = report(synth, loop, meta) + "\n" + reference_report(reference)
    (out / "demo_check.md").write_text(text, encoding="utf-8")
    tiles = []
    for d, yd, ref, syn, truth, err in examples:
        for label, im in (
            ("centred (source)", ref),
            (f"synthesised {d:+g} m {yd:+g} deg", syn),
            ("rendered truth", truth),
            ("abs difference x4, pixels with a source", np.clip(err * 4, 0, 255).astype(np.uint8)),
        ):
            im = im if im.ndim == 3 else np.repeat(im[..., None], 3, axis=2)
            tiles.append(plots.draw_steering(im, {}, camera, caption=label))
    if tiles:
        plots.image_grid(tiles, out / "synthesis_examples.png", columns=4)
    print((out / "demo_check.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
