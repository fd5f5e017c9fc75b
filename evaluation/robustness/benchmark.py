"""``evaluate.py robustness``: the model under image corruptions, open and closed loop.

Every corruption of :mod:`evaluation.robustness.corruptions` at each intensity is applied

* **open loop** to the recorded centre frames (decoded once, chunk by chunk, through
  :mod:`evaluation.inference`, the drive server's runtime): the steering's mean
  absolute change from the model's own clean prediction ("shift") and its mean
  absolute error against the human;
* **closed loop** to the synthesised views before the model sees them
  (:class:`evaluation.closed_loop.views.TransformedViews`): interventions and autonomy
  of the whole drive with the default closed-loop method (``--criterion road``). With
  ``repeats`` > 1 the clean drive is repeated with the evaluator's tiny steering noise
  (``--repeats``): the spread of its interventions is the margin within which a
  corruption's change is no change (every drive here is deterministic, so repeating
  the clean one measures the closed loop's own sensitivity once, not per condition).

Frames are corrupted with ``seed`` and their row in the recording, so a frame looks
the same at every intensity but stronger, and the same in both loops. Reports:
:mod:`evaluation.robustness.report`; the command's options and body:
:mod:`evaluation.cli`, :func:`evaluation.commands.cmd_robustness`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.recordings import decode_images
from evaluation.closed_loop.policies import REPEAT_NOISE, ModelPolicy, baseline_policies
from evaluation.closed_loop.run import check_repeats, closed_loop_figures
from evaluation.inference import CHUNK_FRAMES
from evaluation.robustness.corruptions import (
    CORRUPTIONS,
    INTENSITIES,
    corrupt,
    corrupt_batch,
    parse_intensities,
    parse_names,
)

logger = logging.getLogger(__name__)

#: A default run's budget per log, so that its cost does not grow with the recording
#: (docs/evaluation.md, "Robustness"): the open loop on at most 600 evenly spaced
#: frames (frames 70-120 ms apart are nearly alike), the closed loop at intensities 1,
#: 3 and 5 on the first 60 s of each stretch. 0 on the command line: no limit.
DEFAULT_FRAMES = 600
DEFAULT_DRIVE_S = 60.0
CLOSED_LOOP_INTENSITIES = (1, 3, 5)


@dataclass(frozen=True)
class Plan:
    """What a robustness run measures."""

    corruptions: tuple[str, ...] = tuple(CORRUPTIONS)
    intensities: tuple[int, ...] = INTENSITIES
    frames: int | None = DEFAULT_FRAMES  # open loop: at most this many per log (None: all)
    closed_loop: bool = True
    cl_corruptions: tuple[str, ...] = tuple(CORRUPTIONS)
    cl_intensities: tuple[int, ...] = CLOSED_LOOP_INTENSITIES
    drive_seconds: float | None = DEFAULT_DRIVE_S  # closed loop, per stretch (None: all)
    seed: int = 0
    repeats: int = 1  # drives of the clean views: the first the model's own
    repeat_noise: float = REPEAT_NOISE  # steering noise of the repeated clean drives

    def conditions(self) -> list[tuple[str, int]]:
        return [(c, s) for c in self.corruptions for s in self.intensities]

    def cl_conditions(self) -> list[tuple[str, int]]:
        if not self.closed_loop:
            return []
        return [(c, s) for c in self.cl_corruptions for s in self.cl_intensities]


def frame_rows(n: int, frames: int | None) -> np.ndarray:
    """Rows of a log used in the open loop: all, or ``frames`` evenly spaced."""
    if frames is None or frames >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, frames).round().astype(np.int64))


@dataclass
class OpenLoopLog:
    name: str
    rows: np.ndarray
    human: np.ndarray
    clean: np.ndarray
    preds: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def open_loop(predictor, recordings, plan: Plan, *, progress: bool = True) -> list[OpenLoopLog]:
    """The model's steering on every chosen frame, clean and under every condition.
    Frames are decoded once per chunk; the next condition's frames are corrupted in a
    second thread while the model runs on the current one."""
    conditions = plan.conditions()
    picks = [frame_rows(len(rec), plan.frames) for rec in recordings]
    total = sum(len(p) for p in picks) * (1 + len(conditions))
    out = []
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        tqdm(total=total, desc="open loop", unit="frame", disable=not progress) as bar,
    ):
        for rec, rows in zip(recordings, picks, strict=True):
            log = OpenLoopLog(
                rec.name, rows, np.asarray(rec.steering, np.float64)[rows], np.empty(len(rows))
            )
            log.preds = {cond: np.empty(len(rows)) for cond in conditions}
            for lo in range(0, len(rows), CHUNK_FRAMES):
                part = rows[lo : lo + CHUNK_FRAMES]
                frames = decode_images(list(rec.centre_paths[part]), progress=False)

                def work(k: int, frames=frames, part=part) -> np.ndarray:
                    name, level = conditions[k]
                    return corrupt_batch(frames, name, level, seed=plan.seed, keys=part)

                pending = pool.submit(work, 0) if conditions else None
                hi = lo + len(part)
                log.clean[lo:hi] = predictor.predict_batch(frames)
                bar.update(len(part))
                for k, cond in enumerate(conditions):
                    bad = pending.result()
                    pending = pool.submit(work, k + 1) if k + 1 < len(conditions) else None
                    log.preds[cond][lo:hi] = predictor.predict_batch(bad)
                    bar.set_postfix_str(f"{rec.name} {cond[0]} {cond[1]}", refresh=False)
                    bar.update(len(part))
            out.append(log)
    return out


def open_loop_table(logs: list[OpenLoopLog], plan: Plan) -> dict:
    """Pooled and per-log figures: ``clean`` (error vs the human) and, per corruption
    and intensity, ``shift`` (mean |corrupted - clean prediction|), ``mae`` (vs the
    human) and ``p95_shift``."""

    def figures(human, clean, pred=None) -> dict:
        if pred is None:
            return {"mae": float(np.mean(np.abs(clean - human))), "shift": 0.0, "p95_shift": 0.0}
        shift = np.abs(pred - clean)
        return {
            "mae": float(np.mean(np.abs(pred - human))),
            "shift": float(shift.mean()),
            "p95_shift": float(np.percentile(shift, 95)),
        }

    def table(human, clean, preds) -> dict:
        return {
            "frames": len(human),
            "clean": figures(human, clean),
            "corrupted": {
                name: {str(s): figures(human, clean, preds[name, s]) for s in plan.intensities}
                for name in plan.corruptions
            },
        }

    cat = np.concatenate
    pooled = table(
        cat([g.human for g in logs]),
        cat([g.clean for g in logs]),
        {c: cat([g.preds[c] for g in logs]) for c in plan.conditions()},
    )
    pooled["logs"] = {g.name: table(g.human, g.clean, g.preds) for g in logs}
    return pooled


class ViewCorruption:
    """``transform(view, row)`` for the closed loop: one corruption at one intensity."""

    def __init__(self, name: str, intensity: int, seed: int):
        self.name, self.intensity, self.seed = name, intensity, seed

    def __call__(self, view: np.ndarray, key: int) -> np.ndarray:
        return corrupt(view, self.name, self.intensity, seed=self.seed, key=key)


def closed_loop(references, policy, config, plan: Plan, *, progress: bool = True) -> dict:
    """Closed-loop figures clean, under every closed-loop condition, and of the blind
    baselines (which never see the views, so corruptions cannot change them)."""
    drive = {"max_time_s": plan.drive_seconds}
    conditions = plan.cl_conditions()
    out: dict = {"corrupted": {}, "baselines": {}}
    bar = tqdm(total=1 + len(conditions), desc="closed loop", unit="drive", disable=not progress)
    for name, level in [(None, 0), *conditions]:
        bar.set_postfix_str(f"{name or 'clean'} {level or ''}", refresh=False)
        t0 = time.perf_counter()
        corruption = ViewCorruption(name, level, plan.seed) if name else None
        again = {} if name else {"repeats": plan.repeats, "repeat_noise": plan.repeat_noise}
        fig = closed_loop_figures(
            references, policy, config, 0, False, transform=corruption, **drive, **again
        )
        fig["wall_s"] = time.perf_counter() - t0
        if name is None:
            out["clean"] = fig
        else:
            out["corrupted"].setdefault(name, {})[str(level)] = fig
        logger.debug("closed loop %s %s: %s", name or "clean", level, fig)
        bar.update(1)
    bar.close()
    for base in baseline_policies():
        out["baselines"][base.name] = closed_loop_figures(
            references, base, config, 0, False, **drive
        )
    return out


def run(spec, predictor, recordings, references, config, plan: Plan, *, progress=True) -> dict:
    """The whole benchmark for one model: open loop, then closed loop on
    ``references`` (none: open loop only). Returns the ``robustness.json`` dict."""
    t0 = time.perf_counter()
    logs = open_loop(predictor, recordings, plan, progress=progress)
    result = {
        "model": spec.label,
        "model_path": str(Path(spec.path).resolve()),
        "arch": spec.arch,
        "runtime": predictor.name,
        "logs": [str(Path(r.csv_path).resolve()) for r in recordings],
        "seed": plan.seed,
        "corruptions": list(plan.corruptions),
        "intensities": list(plan.intensities),
        "frames_per_log": plan.frames,
        "open_loop": open_loop_table(logs, plan),
        "closed_loop": None,
        "timing": {"open_loop_s": time.perf_counter() - t0},
    }
    if references and plan.cl_conditions():
        t1 = time.perf_counter()
        cl = closed_loop(
            references, ModelPolicy(predictor, spec.label), config, plan, progress=progress
        )
        cl.update(
            criterion=config.criterion,
            criterion_text=config.describe(),
            corruptions=list(plan.cl_corruptions),
            intensities=list(plan.cl_intensities),
            drive_seconds=plan.drive_seconds,
            repeat_noise=plan.repeat_noise,
        )
        result["closed_loop"] = cl
        result["timing"]["closed_loop_s"] = time.perf_counter() - t1
    return result


def plan_from_args(args) -> Plan:
    """The :class:`Plan` of parsed options (CorruptionError, ValueError when wrong)."""
    corruptions = parse_names(args.corruptions)
    if not args.drive_seconds >= 0:
        raise ValueError(
            f"--drive-seconds must be >= 0 (0: whole stretches); got {args.drive_seconds:g}"
        )
    check_repeats(args.repeats, args.repeat_noise)
    return Plan(
        corruptions=corruptions,
        intensities=parse_intensities(args.intensities),
        frames=args.frames or None,
        closed_loop=not args.no_closed_loop,
        cl_corruptions=parse_names(args.closed_loop_corruptions)
        if args.closed_loop_corruptions
        else corruptions,
        cl_intensities=parse_intensities(args.closed_loop_intensities),
        drive_seconds=args.drive_seconds or None,
        seed=args.seed,
        repeats=args.repeats,
        repeat_noise=args.repeat_noise,
    )
