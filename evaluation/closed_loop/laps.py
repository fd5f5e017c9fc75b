"""Laps of a closed track found in the frames, and how well a path makes them overlay.

The lake and jungle tracks are closed loops: when a recording drives a place twice,
a path that is right puts both passes at the same spot. That is the check of a
reference path on real recordings, where no ground truth exists.

Places are recognised from the frames alone (no path involved, so the check cannot
flatter the path it checks): every frame becomes a small normalised grey thumbnail
of the view above the bonnet (64 x 22 pixels), and two frames show the same place
when a run of 17 consecutive frames matches a run of 17 earlier ones frame by
frame (sequence matching as in SeqSLAM, Milford and Wyeth 2012): single frames of a
track look alike too often, sequences do not. A match counts when its mean
correlation is at least 0.5 and beats every other candidate more than 30 frames
away by 0.05, when the two passes are at least 40 s apart (another lap, not the
next second), when it is part of a run of 20 consecutive matches, and when two
other runs agree on the lap's duration within 5% or the run is 100 frames long (a
look-alike stretch of the jungle's rock faces matches once, at a time of its own).

:func:`overlay` then measures, for every matched frame, the distance from its place
on the path to the nearest point of the earlier pass (within 30 frames of its
match). Passes in different stretches of driving (a recording restarted) are first
brought together by the rigid motion that best aligns their matched points, so only
their shape counts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

logger = logging.getLogger(__name__)

THUMB_SIZE = (64, 22)
MAX_FRAMES = 8000
THUMB_ROWS = (20, 130)  # above the bonnet, below the sky's top
SEQUENCE = 17
MIN_SCORE = 0.5
MIN_MARGIN = 0.05
MIN_GAP_S = 40.0
EXCLUDE_FRAMES = 30
#: A place is only recognised along a run of this many consecutive frames whose
#: matches advance together (a lone look-alike frame is no lap).
MIN_RUN = 20
#: ... and at least this many other runs must agree on how long the lap took.
LAP_AGREEMENT = 2
#: A run this long (100 frames, 7-12 s of driving) stands on its own.
LONG_RUN = 100


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm grey thumbnails (n, 64 * 22) of RGB frames."""
    lo, hi = THUMB_ROWS
    th = np.array(
        [
            cv2.resize(
                cv2.cvtColor(f[lo:hi], cv2.COLOR_RGB2GRAY), THUMB_SIZE, interpolation=cv2.INTER_AREA
            )
            for f in frames
        ],
        dtype=np.float32,
    ).reshape(len(frames), -1)
    th -= th.mean(axis=1, keepdims=True)
    th /= np.linalg.norm(th, axis=1, keepdims=True) + 1e-6
    return th


@dataclass(frozen=True)
class PlaceMatch:
    """Frame ``i`` shows the place frame ``j`` (earlier) showed; ``score`` is the mean
    correlation of the two 17-frame sequences, ``margin`` its lead over the best
    candidate elsewhere."""

    i: int
    j: int
    score: float
    margin: float


def match_places(frames: np.ndarray, t: np.ndarray) -> list[PlaceMatch]:
    """Frames that show a place an earlier frame, at least 40 s before, showed.

    The frame-by-frame similarity matrix is n x n float32: recordings longer than
    :data:`MAX_FRAMES` (256 MB of it) are not searched, with a warning."""
    n = len(frames)
    half = SEQUENCE // 2
    if n < SEQUENCE:
        return []
    if n > MAX_FRAMES:
        logger.warning(
            "%d frames: laps are searched in recordings of up to %d frames only; none sought",
            n,
            MAX_FRAMES,
        )
        return []
    th = thumbnails(frames)
    sim = th @ th.T
    kernel = np.eye(SEQUENCE, dtype=np.float32) / SEQUENCE
    seq = cv2.filter2D(sim.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    t = np.asarray(t, dtype=np.float64)
    out = []
    idx = np.arange(n)
    for i in range(half, n - half):
        cand = idx[(t[i] - t >= MIN_GAP_S) & (idx >= half) & (idx < n - half)]
        if not cand.size:
            continue
        scores = seq[i, cand]
        k = int(np.argmax(scores))
        j = int(cand[k])
        others = scores[np.abs(cand - j) > EXCLUDE_FRAMES]
        second = float(others.max()) if others.size else -1.0
        score = float(scores[k])
        if score >= MIN_SCORE and score - second >= MIN_MARGIN:
            out.append(PlaceMatch(i, j, score, score - second))
    return _consistent(_runs(out), t)


def _consistent(matches: list[PlaceMatch], t: np.ndarray) -> list[PlaceMatch]:
    """Keep the runs whose time between passes at least :data:`LAP_AGREEMENT` other
    runs share within 5% (a lap takes about as long at every place of the track; a
    look-alike stretch of scenery, the jungle's rock faces or a bridge seen from
    below, matches once, at a time of its own), and runs of :data:`LONG_RUN` frames."""
    runs: list[list[PlaceMatch]] = []
    for m in matches:
        if runs and m.i == runs[-1][-1].i + 1:
            runs[-1].append(m)
        else:
            runs.append([m])
    gaps = np.array([np.median([t[m.i] - t[m.j] for m in r]) for r in runs])
    keep: list[PlaceMatch] = []
    for r, g in zip(runs, gaps, strict=True):
        agreeing = int((np.abs(gaps - g) <= 0.05 * g).sum()) - 1
        if agreeing >= LAP_AGREEMENT or len(r) >= LONG_RUN:
            keep += r
    return keep


def _runs(matches: list[PlaceMatch]) -> list[PlaceMatch]:
    """Keep matches in runs of at least :data:`MIN_RUN` consecutive frames whose
    earlier places advance by 0-3 frames a frame (both passes driving on)."""
    keep: list[PlaceMatch] = []
    run: list[PlaceMatch] = []
    for m in matches:
        if run and m.i == run[-1].i + 1 and 0 <= m.j - run[-1].j <= 3:
            run.append(m)
            continue
        if len(run) >= MIN_RUN:
            keep += run
        run = [m]
    if len(run) >= MIN_RUN:
        keep += run
    return keep


def lap_index(n: int, matches: list[PlaceMatch]) -> np.ndarray:
    """Lap number of each frame: 0 until the first frame that returns to a place of
    lap 0, and so on (a frame matched to lap k is in lap k + 1)."""
    laps = np.zeros(n, dtype=np.int64)
    by_frame = {m.i: m.j for m in matches}
    for i in range(n):
        if i in by_frame:
            laps[i] = max(laps[i - 1] if i else 0, laps[by_frame[i]] + 1)
        elif i:
            laps[i] = laps[i - 1]
    return laps


def _rigid(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t minimising |R b + t - a| over point pairs (2D)."""
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    u, _, vt = np.linalg.svd((b - cb).T @ (a - ca))
    r = (u @ vt).T
    if np.linalg.det(r) < 0:
        vt[-1] *= -1
        r = (u @ vt).T
    return r, ca - r @ cb


def overlay(xy: np.ndarray, segment: np.ndarray, matches: list[PlaceMatch]) -> dict:
    """How far matched passes lie apart on a path (``xy``: (n, 2) positions of every
    frame of the recording, ``segment``: the stretch of driving each frame is in).

    Returns the RMS, median and p95 distance in metres over the matched frames,
    their count, and the per-lap closure: for each lap after the first, the distance
    at its first matched frame."""
    if not matches:
        return {"matched": 0, "rms_m": math.nan, "median_m": math.nan, "p95_m": math.nan}
    xy = np.asarray(xy, dtype=np.float64)
    aligned = xy.copy()
    # Bring each later stretch onto the earliest one it is matched to.
    segs = sorted(set(segment.tolist()))
    for s in segs[1:]:
        pairs = [m for m in matches if segment[m.i] == s and segment[m.j] < s]
        if len(pairs) < 10:
            continue
        a = aligned[[m.j for m in pairs]]
        b = xy[[m.i for m in pairs]]
        r, t = _rigid(a, b)
        sel = segment == s
        aligned[sel] = xy[sel] @ r.T + t
    dist = []
    for m in matches:
        lo, hi = max(m.j - EXCLUDE_FRAMES, 0), min(m.j + EXCLUDE_FRAMES + 1, len(xy))
        dist.append(float(np.min(np.hypot(*(aligned[lo:hi] - aligned[m.i]).T))))
    d = np.asarray(dist)
    laps = lap_index(len(xy), matches)
    closure = []
    for lap in range(1, int(laps.max()) + 1):
        first = next((k for k, m in enumerate(matches) if laps[m.i] == lap), None)
        if first is not None:
            closure.append(float(d[first]))
    return {
        "matched": int(d.size),
        "rms_m": float(np.sqrt(np.mean(d**2))),
        "median_m": float(np.median(d)),
        "p95_m": float(np.percentile(d, 95)),
        "closure_per_lap_m": closure,
        "laps": int(laps.max()) + 1,
    }


#: Loop closure (``close_loops``): how far apart two passes of one place may lie
#: (different lines on the road), how much their headings may differ, and how much
#: the turn measured between two frames may be off (per interval).
PASS_SPREAD_M = 1.5
PASS_HEADING_RAD = 0.05
YAW_NOISE_RAD = 0.002
BLOCK = 20


def _integrate(yaw: np.ndarray, ds: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Roots (n, 2) and headings (n,) of frames whose intervals turn by ``yaw`` and
    cover ``ds``; ``starts`` marks the first frame of each stretch (origin reset).
    Vectorised form of :func:`evaluation.closed_loop.kinematics.integrate_path` (midpoint arcs)."""
    n = len(starts)
    dh = np.concatenate([[0.0], -yaw])
    dh[starts] = 0.0
    seg = np.cumsum(starts) - 1
    h = np.cumsum(dh)
    h -= (h[starts])[seg]
    mid = np.concatenate([[0.0], h[:-1] + 0.5 * dh[1:]])
    step = np.concatenate([[0.0], ds])
    step[starts] = 0.0
    x = np.cumsum(step * np.cos(mid))
    y = np.cumsum(step * np.sin(mid))
    x -= x[starts][seg]
    y -= y[starts][seg]
    root = np.stack([x + 1.6 * np.cos(h), y + 1.6 * np.sin(h)], axis=1)
    return np.concatenate([root, h[:, None]], axis=1)[:n]


class _LoopFit:
    """The unknowns of :func:`close_loops` and what they cost: a turn correction per
    block of ``BLOCK`` intervals, then (x, y, heading) of every stretch after the
    first; :meth:`place` puts the frames on the corrected path, :meth:`residuals`
    weighs the matched passes' disagreement against the corrections."""

    def __init__(self, yaw: np.ndarray, ds: np.ndarray, starts: np.ndarray, pairs: np.ndarray):
        n = len(starts)
        self.yaw, self.ds, self.starts, self.pairs = yaw, ds, starts, pairs
        self.seg_ids = np.cumsum(starts) - 1
        self.nseg = int(self.seg_ids.max()) + 1
        self.block = np.arange(n - 1) // BLOCK
        self.nb = int(self.block.max()) + 1 if n > 1 else 0
        self.size = self.nb + 3 * (self.nseg - 1)

    def place(self, c: np.ndarray) -> np.ndarray:
        pose = _integrate(self.yaw + c[self.block], self.ds, self.starts)
        rigid = np.concatenate([np.zeros(3), c[self.nb :]]).reshape(self.nseg, 3)
        seg = self.seg_ids
        dx, dy, dth = rigid[seg, 0], rigid[seg, 1], rigid[seg, 2]
        cs, sn = np.cos(dth), np.sin(dth)
        x = cs * pose[:, 0] - sn * pose[:, 1] + dx
        y = sn * pose[:, 0] + cs * pose[:, 1] + dy
        return np.stack([x, y, pose[:, 2] + dth], axis=1)

    def residuals(self, c: np.ndarray) -> np.ndarray:
        pose = self.place(c)
        pairs = self.pairs
        d = pose[pairs[:, 0], :2] - pose[pairs[:, 1], :2]
        dh = pose[pairs[:, 0], 2] - pose[pairs[:, 1], 2]
        dh = (dh + np.pi) % (2 * np.pi) - np.pi
        return np.concatenate(
            [
                d.ravel() / PASS_SPREAD_M,
                dh / PASS_HEADING_RAD,
                c[: self.nb] * math.sqrt(BLOCK) / YAW_NOISE_RAD,
            ]
        )

    def place_stretches(self, c: np.ndarray) -> None:
        """Start each later stretch where its first matches say (rigid fit), in ``c``."""
        pose = _integrate(self.yaw, self.ds, self.starts)
        nb, seg_ids = self.nb, self.seg_ids
        for k in range(1, self.nseg):
            sel = [(i, j) for i, j in self.pairs if seg_ids[i] == k and seg_ids[j] < k]
            if len(sel) >= MIN_RUN:
                sel = np.array(sel)
                r, t = _rigid(pose[sel[:, 1], :2], pose[sel[:, 0], :2])
                c[nb + 3 * (k - 1) : nb + 3 * k] = t[0], t[1], math.atan2(r[1, 0], r[0, 0])


def _levenberg_marquardt(residuals, c: np.ndarray, iterations: int) -> np.ndarray:
    """``c`` after up to ``iterations`` damped Gauss-Newton steps on ``residuals(c)``
    (forward-difference Jacobian); stops early when no damping makes a step pay."""
    lam = 1e-3
    r = residuals(c)
    for _ in range(iterations):
        eps = 1e-6
        jac = np.empty((r.size, c.size))
        for k in range(c.size):
            dc = c.copy()
            dc[k] += eps
            jac[:, k] = (residuals(dc) - r) / eps
        jtj = jac.T @ jac
        g = jac.T @ r
        while lam <= 1e8:
            step = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-9), -g)
            r_new = residuals(c + step)
            if r_new @ r_new < r @ r:
                c, r, lam = c + step, r_new, lam / 3
                break
            lam *= 10
        else:
            break
    return c


def close_loops(
    yaw: np.ndarray,
    ds: np.ndarray,
    segment: np.ndarray,
    matches: list[PlaceMatch],
    *,
    iterations: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Turns per interval corrected so that matched passes of a place meet, and the
    frames' roots on the corrected path (stretches placed relative to the first).

    ``yaw``/``ds``: per interval between consecutive driven frames (len n - 1, the
    interval across a stretch boundary ignored); ``segment``: stretch of each frame.
    A slowly varying correction (constant over 20 intervals) is added to the turns
    and every later stretch gets a free rigid placement; Levenberg-Marquardt weighs
    the passes' distance (1.5 m spread) and heading difference (0.05 rad) against
    the corrections' size (0.002 rad a turn measured).
    """
    n = len(segment)
    starts = np.zeros(n, dtype=bool)
    starts[0] = True
    starts[1:] = segment[1:] != segment[:-1]
    pairs = np.array([(m.i, m.j) for m in matches], dtype=int).reshape(-1, 2)
    fit = _LoopFit(np.asarray(yaw, dtype=np.float64), ds, starts, pairs)
    c = np.zeros(fit.size)
    if len(pairs) < MIN_RUN:
        return fit.yaw.copy(), fit.place(c)[:, :2]
    if fit.nseg > 1:
        fit.place_stretches(c)
    c = _levenberg_marquardt(fit.residuals, c, iterations)
    return fit.yaw + c[fit.block], fit.place(c)[:, :2]
