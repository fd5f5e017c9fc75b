"""What the closed loop drives against: each recording's path, road and car.

For one recording this builds, once, everything the closed loop needs besides the
policy:

* the **reference path** of each drivable stretch: forward distance from the logged
  speed and frame times, turning measured from the frames
  (:mod:`evaluation.closed_loop.odometry`); where a frame pair could not be measured (too few
  tracks agree), the turn the fitted car predicts from the logged steering;
  ``path="steering"`` keeps the old kinematic bicycle on the logged steering;
* the **car's response** to steering (:mod:`evaluation.closed_loop.car_model`), fitted on this
  recording's measured turning (its simulator build), or the plain bicycle;
* the **road edges** beside the path (:mod:`evaluation.closed_loop.road`);
* the decoded centre frames and, when recorded, the side frames for synthesising
  views from the nearest camera, and whether the frames show the car's bonnet.

Visual odometry and edges cost about 35 ms a frame on the 2-core CPU, so they are
cached per recording under ``~/.cache/effnet-steering/reference`` (``$XDG_CACHE_HOME``
honoured; ``EFFNET_STEERING_CACHE`` overrides), keyed by the csv's bytes, the camera
and the methods' versions. Nothing is ever written beside a recording.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from core.recordings import decode_images
from evaluation.closed_loop.car_model import BICYCLE, CarResponse, fit_response, predicted_yaw
from evaluation.closed_loop.kinematics import (
    MPH_PER_MPS,
    NOMINAL_DT_S,
    ReferencePath,
    build_path,
    split_segments,
)
from evaluation.closed_loop.laps import lap_index, match_places
from evaluation.closed_loop.odometry import measure_yaw
from evaluation.closed_loop.road import RoadEdges, estimate_edges
from sim.camera import LEFT_CAMERA_X_M, RIGHT_CAMERA_X_M, Camera

logger = logging.getLogger(__name__)

#: Bump when the odometry changes: old cache entries are ignored.
ODOMETRY_VERSION = 6
#: Bump when the road-edge method changes: cached edges of other versions are
#: recomputed (the odometry, the slow part, is kept).
ROAD_VERSION = 8
PATH_SOURCES = ("images", "steering")
CAR_MODELS = ("fitted", "bicycle")
#: Frame-to-frame change on the bonnet's core against the road just above it: the
#: bonnet reflects slowly (0.08-0.32 on the shared recordings), the rendered demo
#: road has ground there (1.07).
BONNET_RATIO = 0.6


def cache_dir() -> Path:
    env = os.environ.get("EFFNET_STEERING_CACHE")
    if env:
        return Path(env) / "reference"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "effnet-steering" / "reference"


def _cache_key(csv_path: Path, camera: Camera) -> str:
    h = hashlib.sha256()
    h.update(Path(csv_path).read_bytes())
    h.update(json.dumps(asdict(camera), sort_keys=True).encode())
    h.update(f"v{ODOMETRY_VERSION}".encode())
    return h.hexdigest()[:24]


def has_bonnet(frames: np.ndarray) -> bool:
    """Whether the frames show the simulator car's bonnet (real recordings do; the
    demo renderer does not): see :data:`BONNET_RATIO`."""
    step = max(len(frames) // 200, 1)
    f = frames[::step].astype(np.int16)
    if len(f) < 3:
        return False
    d = np.abs(np.diff(f, axis=0))
    road = float(d[:, 105:125, 120:200].mean())
    return road > 0 and float(d[:, 148:158, 120:200].mean()) / road < BONNET_RATIO


@dataclass
class Segment:
    """One drivable stretch: its path (with edges) and the frames it needs."""

    path: ReferencePath
    edges: RoadEdges | None
    centre: np.ndarray  # (n, H, W, 3) uint8, the path's frames in order
    sides: dict[str, np.ndarray] = field(default_factory=dict)  # "left"/"right" frames
    laps: np.ndarray | None = None  # lap index of each frame (None: not a closed track)


@dataclass
class Reference:
    """Everything the closed loop needs about one recording."""

    name: str
    segments: list[Segment]
    response: CarResponse
    fit: dict | None  # the response fit's figures (None for the plain bicycle)
    path_source: str
    yaw_measured_share: float  # share of frame pairs whose turn came from the frames
    bonnet: bool
    lines: np.ndarray  # csv line of every row of the recording
    t: np.ndarray  # seconds since the first frame, every row
    steering: np.ndarray
    yaw: np.ndarray  # turn per interval used for the paths (n - 1)
    ds: np.ndarray  # metres per interval (n - 1)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # driven rows
    #: Frames showing a place seen at least 40 s earlier (indices into ``rows``).
    matches: list = field(default_factory=list)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Root positions (len(rows), 2) of every driven row, and its segment index
        (each segment's path has its own origin)."""
        xy, seg = [], []
        for k, s in enumerate(self.segments):
            xy.append(np.stack([s.path.root_x, s.path.root_y], axis=1))
            seg.append(np.full(len(s.path), k))
        if not xy:
            return np.zeros((0, 2)), np.zeros(0, np.int64)
        return np.concatenate(xy), np.concatenate(seg)

    def summary(self) -> dict:
        widths = np.concatenate(
            [s.edges.width for s in self.segments if s.edges is not None] or [np.zeros(0)]
        )
        return {
            "recording": self.name,
            "segments": len(self.segments),
            "path_source": self.path_source,
            "yaw_measured_share": self.yaw_measured_share,
            "car_response": self.response.to_dict(),
            "car_fit": {k: v for k, v in (self.fit or {}).items() if k != "response"},
            "bonnet": self.bonnet,
            "road_width_m": {
                "median": float(np.median(widths)) if widths.size else math.nan,
                "p10": float(np.percentile(widths, 10)) if widths.size else math.nan,
                "p90": float(np.percentile(widths, 90)) if widths.size else math.nan,
            },
        }


def _intervals(rec) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the first frame and metres per interval of a recording."""
    t = np.asarray(rec.timestamps, dtype=np.float64)
    if len(t) and not np.isfinite(t).all():
        logger.warning(
            "%s: frame file names carry no time stamp: assuming %.3f s between frames",
            rec.name,
            NOMINAL_DT_S,
        )
        t = np.arange(len(t)) * NOMINAL_DT_S
    t = t - (t[0] if len(t) else 0.0)
    v = np.asarray(rec.speed, dtype=np.float64) / MPH_PER_MPS
    dt = np.clip(np.diff(t), 0.0, None)
    return t, 0.5 * (v[1:] + v[:-1]) * dt


def build_reference(
    rec,
    camera: Camera = Camera(),  # noqa: B008 - frozen default
    *,
    path: str = "images",
    car: str = "fitted",
    edges: bool = True,
    progress: bool = False,
    use_cache: bool = True,
) -> Reference:
    """Decode ``rec`` (a :class:`core.recordings.Recording`) and build its
    :class:`Reference` (module docstring)."""
    if path not in PATH_SOURCES:
        raise ValueError(f"path must be one of {PATH_SOURCES}. Received: {path!r}")
    if car not in CAR_MODELS:
        raise ValueError(f"car must be one of {CAR_MODELS}. Received: {car!r}")
    t, ds = _intervals(rec)
    steering = np.asarray(rec.steering, dtype=np.float64)
    segments = split_segments(t, rec.speed, steering)
    rows = np.unique(np.concatenate([s.rows for s in segments])) if segments else np.zeros(0, int)
    centre, sides = _decode_frames(rec, rows, camera, progress)
    cached = _load_cache(rec, camera) if use_cache else None
    measured = cached["yaw"] if cached is not None else None
    if path == "images" and measured is None:  # all NaN when there is no stretch
        measured = _measure_turns(rec, segments, centre, ds, camera, progress)
    response, fit = _car_response(rec, car, t, steering, ds, measured)
    if path == "images":
        yaw = np.where(np.isfinite(measured), measured, predicted_yaw(response, t, steering, ds))
        share = float(np.isfinite(measured[rows[:-1]]).mean()) if rows.size > 1 else math.nan
    else:
        yaw = predicted_yaw(BICYCLE, t, steering, ds)
        share = 0.0
    edge_cache = cached.get("edges", {}) if cached is not None and path == "images" else {}
    out, new_edges = _segments(
        segments, t, steering, yaw, centre, sides, camera, edge_cache if edges else None, progress
    )
    if use_cache and path == "images" and measured is not None:
        _save_cache(rec, camera, measured, new_edges)
    matches = _mark_laps(out, centre, t, rows)
    return Reference(
        name=rec.name,
        segments=out,
        response=response,
        fit=fit,
        path_source=path,
        yaw_measured_share=share,
        bonnet=has_bonnet(centre[rows]) if rows.size else False,
        lines=np.asarray(rec.lines),
        t=t,
        steering=steering,
        yaw=yaw,
        ds=ds,
        rows=rows,
        matches=matches,
    )


def _decode_frames(
    rec, rows: np.ndarray, camera: Camera, progress: bool
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The centre frames of ``rows`` (every row of the recording, black where not
    driven) and, when every one of those rows has them, the left and right frames."""
    centre = np.zeros((len(rec), camera.height, camera.width, 3), dtype=np.uint8)
    if rows.size:
        centre[rows] = decode_images(
            rec.centre_paths[rows], progress=progress, desc=f"decoding {rec.name}"
        )
    sides: dict[str, np.ndarray] = {}
    side_rows = rows[np.asarray(rec.has_sides)[rows]] if rows.size else rows
    if side_rows.size == rows.size and rows.size:
        for name, paths in (("left", rec.left_paths), ("right", rec.right_paths)):
            sides[name] = np.zeros_like(centre)
            sides[name][rows] = decode_images(
                paths[rows], progress=progress, desc=f"decoding {rec.name} {name}"
            )
    return centre, sides


def _measure_turns(rec, segments, centre, ds, camera: Camera, progress: bool) -> np.ndarray:
    """The turn of every interval measured from the frames, stretch by stretch (NaN
    where a frame pair could not be measured, and across stretch boundaries)."""
    measured = np.full(max(len(rec) - 1, 0), np.nan)
    for seg in segments:
        r = seg.rows
        measured[r[:-1]] = measure_yaw(
            centre[r], ds[r[:-1]], camera, progress=progress, desc=f"odometry {rec.name}"
        ).yaw
    return measured


def _car_response(
    rec, car: str, t, steering, ds, measured: np.ndarray | None
) -> tuple[CarResponse, dict | None]:
    """The car's response (``car="fitted"``: fitted to the measured turning when
    enough of it was measured) and the fit's figures (None for the plain bicycle)."""
    if car != "fitted":
        return BICYCLE, None
    if measured is not None and np.isfinite(measured).sum() >= 20:
        fit = fit_response(t, steering, ds, measured)
        return fit["response"], fit
    logger.warning(
        "%s: too few frame pairs measured to fit the car's response; using the "
        "plain kinematic bicycle",
        rec.name,
    )
    return BICYCLE, None


def _segments(
    segments, t, steering, yaw, centre, sides, camera: Camera, edge_cache: dict | None, progress
) -> tuple[list[Segment], dict[str, tuple]]:
    """A :class:`Segment` per drivable stretch with its road edges, taken from
    ``edge_cache`` (keyed by the stretch's index) or estimated (``edge_cache=None``:
    no edges); and the edges to cache."""
    out: list[Segment] = []
    new_edges: dict[str, tuple] = {}
    for k, seg in enumerate(segments):
        r = seg.rows
        p = build_path(r, t[r], seg.speed, steering[r], yaw[r[:-1]])
        e = None
        if edge_cache is not None:
            key = f"{k}"
            if key in edge_cache:
                left, right, obs = edge_cache[key]
                e = RoadEdges(left, right, obs)
            else:
                e = estimate_edges(p, centre[r], camera, progress=progress)
            new_edges[key] = (e.left, e.right, e.observations)
        out.append(Segment(p, e, centre[r], {name: f[r] for name, f in sides.items()}))
    return out, new_edges


def _mark_laps(segments: list[Segment], centre, t, rows: np.ndarray) -> list:
    """Places seen again among the driven ``rows`` (returned), and each segment's
    lap index of its frames."""
    if not rows.size:
        return []
    matches = match_places(centre[rows], t[rows])
    laps = lap_index(len(rows), matches)
    position = {int(r): k for k, r in enumerate(rows)}
    for seg in segments:
        seg.laps = laps[[position[int(r)] for r in seg.path.rows]]
    return matches


def _cache_file(rec, camera: Camera) -> Path:
    return cache_dir() / f"{_cache_key(rec.csv_path, camera)}.npz"


def _load_cache(rec, camera: Camera) -> dict | None:
    try:
        f = _cache_file(rec, camera)
        if not f.is_file():
            return None
        with np.load(f) as z:
            yaw = z["yaw"]
            edges = {}
            for key in z.files:
                tag = f"left_r{ROAD_VERSION}_"
                if key.startswith(tag):
                    k = key[len(tag) :]
                    edges[k] = tuple(
                        z[f"{a}_r{ROAD_VERSION}_{k}"] for a in ("left", "right", "obs")
                    )
        if len(yaw) != max(len(rec) - 1, 0):
            return None
        logger.info("%s: odometry and road edges from the cache %s", rec.name, f)
        return {"yaw": yaw, "edges": edges}
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring an unreadable reference cache entry (%s)", exc)
        return None


def _save_cache(rec, camera: Camera, yaw: np.ndarray, edges: dict) -> None:
    try:
        f = _cache_file(rec, camera)
        f.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"yaw": yaw}
        for k, (left, right, obs) in edges.items():
            for a, v in (("left", left), ("right", right), ("obs", obs)):
                arrays[f"{a}_r{ROAD_VERSION}_{k}"] = v
        tmp = f.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, f)
    except OSError as exc:  # a read-only home must not stop an evaluation
        logger.warning("could not cache odometry and road edges (%s)", exc)


def side_cameras(camera: Camera) -> dict[str, Camera]:
    """The side cameras of the car carrying ``camera`` (same height, pitch, FOV)."""
    return {
        "left": replace(camera, lateral_m=LEFT_CAMERA_X_M),
        "right": replace(camera, lateral_m=RIGHT_CAMERA_X_M),
    }
