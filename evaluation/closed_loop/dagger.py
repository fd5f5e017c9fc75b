"""DAgger on recorded logs (``train.py --dagger N``): the states a model visits.

Ross, Gordon and Bagnell (2011): a policy trained on the expert's states drifts
into states the expert never showed it; drive it, collect those states, have the
expert label them, retrain. Here the expert label of a state is the recovery label
of :mod:`training.augment` (recorded steering plus pure pursuit back to the path),
and its view the recovery view synthesised from the recorded cameras, so a state
is just ``(recording, csv line, offset, yaw)``: the model drives the *training*
recordings in the closed loop of :mod:`evaluation.closed_loop.loop` with some steering
noise (so it also visits states slightly worse than its own), and every few steps
where it is off the recorded line become training samples.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.recordings import read_recordings
from core.runs import read_config
from evaluation.closed_loop.loop import LoopConfig
from evaluation.closed_loop.policies import ModelPolicy, NoisyPolicy, Policy
from evaluation.closed_loop.run import build_references, evaluate_recordings
from serving.runtime import KerasPredictor
from sim.camera import ROOT_AHEAD_OF_REAR_AXLE_M
from training.config import check_dagger

logger = logging.getLogger(__name__)


def collect_states(
    references,
    policy: Policy,
    config: LoopConfig,
    *,
    noise: float = 0.1,
    every: int = 3,
    min_offset_m: float = 0.1,
    min_yaw_deg: float = 1.0,
    max_offset_m: float = 2.5,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Drive each reference with ``policy`` plus noise; return the states visited off
    the recorded line: ``keys`` ("recording:csv line" of the frame the view was made
    from), ``offset_m`` (rear axle right of the path) and ``yaw_rad`` (turned right),
    every ``every``-th step, plus the drive's scores per recording."""
    noisy = NoisyPolicy(policy, noise, seed=seed)
    driven, _ = evaluate_recordings(references, noisy, config, recovery_points=0, progress=progress)
    keys, offsets, yaws = [], [], []
    for d in driven:
        tr = d.trace
        steps = np.flatnonzero(tr.active[:, 0])[::every]
        yaw = tr.heading_error[steps, 0]
        # The trace gives the car root's offset; the recovery view's is the rear axle's.
        offset = tr.offset[steps, 0] - ROOT_AHEAD_OF_REAR_AXLE_M * np.sin(yaw)
        off_line = (np.abs(offset) >= min_offset_m) | (np.abs(yaw) >= math.radians(min_yaw_deg))
        keep = off_line & (np.abs(offset) <= max_offset_m)
        lines = d.lines[tr.frame[steps, 0][keep]]
        keys += [f"{d.log}:{int(line)}" for line in lines]
        offsets.append(offset[keep])
        yaws.append(yaw[keep])
    offset = np.concatenate(offsets) if offsets else np.zeros(0)
    yaw = np.concatenate(yaws) if yaws else np.zeros(0)
    interventions = int(sum(int(d.trace.intervention[:, 0].sum()) for d in driven))
    logger.info(
        "DAgger: %d states off the line collected (|offset| median %.2f m, |yaw| median "
        "%.1f deg) while driving %s with noise %.2f: %d interventions",
        len(keys),
        float(np.median(np.abs(offset))) if len(offset) else math.nan,
        float(np.degrees(np.median(np.abs(yaw)))) if len(yaw) else math.nan,
        ", ".join(r.name for r in references),
        noise,
        interventions,
    )
    return {
        "keys": np.asarray(keys, dtype=str),
        "offset_m": offset.astype(np.float32),
        "yaw_rad": yaw.astype(np.float32),
        "interventions": interventions,
    }


def run_rounds(
    config,
    rounds: int,
    *,
    noise: float,
    first_run,
    selection=None,
    epochs: int | None = None,
    progress: bool = True,
) -> list:
    """DAgger rounds after ``first_run`` (a finished run folder of ``config``): each
    round drives the training recordings with the latest model, adds the states it
    visited to those of earlier rounds, and trains on from the latest weights for
    ``epochs`` epochs (``config.epochs`` when None), with
    ``selection`` (the first run's :class:`evaluation.closed_loop.selection.ClosedLoopSelection`,
    needed when ``config.closed_loop_every`` > 0) choosing each round's checkpoint.
    Returns one row per round (run folder, states, closed-loop figures)."""
    # heavy: imported on use (keras, TensorFlow)
    import models
    from training.trainer import train

    check_dagger(rounds, epochs, config.augment.recovery_p, first_epochs=config.epochs)
    if config.closed_loop_every and selection is None:
        raise ValueError("closed_loop_every > 0 needs the closed-loop selection of the first run")
    val = {str(Path(p).resolve()) for p in config.val_recordings}
    train_paths = [p for p in config.data if str(Path(p).resolve()) not in val]
    loop = LoopConfig()
    refs = build_references(read_recordings(train_paths), loop.camera, progress=progress)

    def row(run, r, states, drove):
        cfg = read_config(run)
        return {
            "round": r,
            "run": str(run),
            "states": states,
            "train_interventions": drove,
            **cfg.get("best_closed_loop", {}),
            "best_val_mse": cfg.get("best_val_mse"),
        }

    out = [row(first_run, 0, 0, None)]
    keys, offsets, yaws = [], [], []
    run = first_run
    for r in range(1, rounds + 1):
        model = models.load_model(Path(run) / "model.keras")
        policy = ModelPolicy(KerasPredictor(model), f"DAgger round {r}")
        got = collect_states(refs, policy, loop, noise=noise, seed=config.seed + r)
        keys.append(got["keys"])
        offsets.append(got["offset_m"])
        yaws.append(got["yaw_rad"])
        states = (np.concatenate(keys), np.concatenate(offsets), np.concatenate(yaws))
        cfg = replace(
            config,
            init_from=str(Path(run) / "model.keras"),
            dagger_round=r,
            epochs=epochs or config.epochs,
        )
        run = train(cfg, progress=progress, selection=selection, states=states)
        out.append(row(run, r, len(states[0]), got["interventions"]))
        logger.info("DAgger round %d: %s", r, out[-1])
    return out
