"""Closed-loop model selection during training (``train.py --closed-loop-every N``).

Validation MSE and replay MAE rank steering models badly (docs/evaluation.md): a
model can match the human frame by frame and still drift off the road, because
open loop never shows it the views its own errors lead to. So every N epochs the
model being trained drives the validation recordings in the closed loop of
:mod:`evaluation.closed_loop.loop` (the evaluator's default criterion and car response,
no recovery trials), and the run keeps the checkpoint with the fewest
interventions per km, tie-broken by validation MSE. With ``repeats`` > 1 each
recording is driven that many times per check (the evaluator's ``--repeats``: the
model's own drive, then drives with a tiny steering noise) and the checkpoint is
chosen on the mean, since one drive's count moves by about 5 on a jungle log between
drives of the same model (docs/evaluation.md). A run that starts from trained
weights (``--init-from``, DAgger's rounds) drives them first, as epoch 0: more
epochs can make a model drive worse, and then the run keeps what it started from.

Cost: ``repeats`` drives of each validation recording per evaluated epoch, about one
frame synthesis and one model call per control step (15 Hz of recorded time); the
references (visual odometry, road edges) are built once and cached.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import keras

from core.outputs import write_json
from core.recordings import read_recordings
from core.runs import read_config
from evaluation.closed_loop.loop import LoopConfig, NonFiniteSteering
from evaluation.closed_loop.policies import ModelPolicy
from evaluation.closed_loop.run import (
    build_references,
    check_repeats,
    drive_counts,
    evaluate_recordings,
    spread,
)
from evaluation.closed_loop.scores import score
from serving.runtime import KerasPredictor

logger = logging.getLogger(__name__)

#: Where ``--steering-gains`` keeps the model as trained when it scales model.keras.
UNCALIBRATED_MODEL = "model_uncalibrated.keras"
#: Columns this selection adds to history.csv.
COLUMNS = ("cl_interventions", "cl_interventions_per_km", "cl_autonomy_percent", "cl_seconds")


class ClosedLoopSelection(keras.callbacks.Callback):
    """Drive the validation recordings every ``every`` epochs; keep the best checkpoint.

    Writes the :data:`COLUMNS` into the epoch's ``logs`` (NaN on epochs not driven),
    so callbacks after it (the epoch log) record them; saves ``served`` to ``path``
    when the score ``(interventions per km, val MSE)`` improves, and stops training
    after ``patience`` driven epochs without improvement.
    """

    COLUMNS = COLUMNS

    def __init__(
        self,
        recordings: list[str],
        *,
        every: int = 1,
        repeats: int = 1,
        patience: int = 5,
        criterion: str = "road",
        progress: bool = False,
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"closed-loop selection every N epochs needs N >= 1, got {every}")
        if not recordings:
            raise ValueError(
                "closed-loop selection needs validation recordings (--val-recording DIR)"
            )
        check_repeats(repeats, 0.0)
        self.every, self.repeats = every, repeats
        self.patience = patience
        self.config = LoopConfig(criterion=criterion)
        started = time.perf_counter()
        self.references = build_references(
            read_recordings(recordings), self.config.camera, criterion=criterion, progress=progress
        )
        if not self.references:
            raise ValueError(
                f"closed-loop selection: none of {', '.join(recordings)} has a drivable stretch "
                "(car moving, regular frames, >= 3 s)"
            )
        logger.info(
            "closed-loop selection on %s, every %d epoch(s)%s; references ready in %.0f s",
            ", ".join(r.name for r in self.references),
            every,
            f", {repeats} drives each (mean)" if repeats > 1 else "",
            time.perf_counter() - started,
        )
        self.served = self.inner = None
        #: Scores of the model files this selection saved, by _file_key.
        self._saved: dict[tuple[str, int], dict] = {}
        self.path: Path | None = None
        self.epochs: int | None = None

    def attach(self, served: keras.Model, inner: keras.Model, path: Path, epochs: int) -> None:
        """The served model (saved to ``path``), the one trained (its weights copied in
        first when they differ), and the run's epoch budget (the last is always driven).
        Each run attaches anew and starts with no best score, so one selection (and its
        references) serves several runs, such as DAgger's rounds."""
        self.served, self.inner, self.path, self.epochs = served, inner, path, epochs
        self.policy = ModelPolicy(KerasPredictor(served), "training")
        self.best: tuple[float, float] = (math.inf, math.inf)
        self.best_epoch = 0

    def drive(self) -> dict:
        """Closed-loop scores of the current weights over every validation recording
        (with repeats: the means over the drives, each drive's count in ``drives``)."""
        if self.served is not self.inner:
            self.served.set_weights(self.inner.get_weights())
        return self.drive_policy(self.policy)

    def drive_policy(self, policy) -> dict:
        """Closed-loop scores of ``policy`` over every validation recording, as
        :meth:`drive` scores the weights being trained."""
        driven, _ = evaluate_recordings(
            self.references,
            policy,
            self.config,
            recovery_points=0,
            progress=False,
            repeats=self.repeats,
        )
        overall = _scores(driven)
        overall["per_recording"] = {
            r.name: _scores([d for d in driven if d.log == r.name]) for r in self.references
        }
        return overall

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        n = epoch + 1
        if n % self.every and n != self.epochs:
            logs.update({k: math.nan for k in COLUMNS})
            return
        if self.judge(n, logs):
            return
        if n - self.best_epoch >= self.patience * self.every:
            logger.info("closed loop: no better score in %d epochs: stopping", n - self.best_epoch)
            self.model.stop_training = True

    def judge_start(self, val_mse: float, start) -> dict:
        """Drive the weights training starts from (``--init-from``, a DAgger round) as
        epoch 0, a candidate like every driven epoch: when no epoch drives better, the
        run keeps them. ``start`` is their model file; when this selection saved it (a
        DAgger round starts from the last round's kept model) its scores are reused.
        Returns the :data:`COLUMNS` for history.csv's epoch-0 row."""
        logs = {"val_loss": val_mse}
        self.judge(0, logs, known=self.saved_scores(start))
        return {k: logs[k] for k in COLUMNS}

    def saved_scores(self, model_file) -> dict | None:
        """The scores of ``model_file`` when this selection saved it itself (the
        previous DAgger round's kept model): driving is deterministic, so they need no
        second drive. None for any other file, or one changed since."""
        return self._saved.get(_file_key(model_file))

    def judge(self, n: int, logs: dict, *, known: dict | None = None) -> bool:
        """Drive the current weights as epoch ``n`` (or take their ``known`` scores),
        write the scores into ``logs``, and save the served model when they are the best
        so far; True when they are."""
        label = f"epoch {n}" if n else "start (epoch 0, the weights trained on)"
        started = time.perf_counter()
        try:
            s = known if known is not None else self.drive()
        except NonFiniteSteering as exc:  # diverged: scored out, training goes on
            logs.update(
                cl_interventions=math.nan,
                cl_interventions_per_km=math.inf,
                cl_autonomy_percent=math.nan,
                cl_seconds=round(time.perf_counter() - started, 1),
            )
            logger.warning("%s closed loop: not a candidate: %s", label, exc)
            return False
        seconds = time.perf_counter() - started
        logs.update(
            cl_interventions=s["interventions"],
            cl_interventions_per_km=s["interventions_per_km"],
            cl_autonomy_percent=s["autonomy_percent"],
            cl_seconds=round(seconds, 1),
        )
        per = ", ".join(_recording_text(name, r) for name, r in s["per_recording"].items())
        key = (s["interventions_per_km"], logs.get("val_loss", math.inf))
        better = key < self.best
        logger.info(
            "%s closed loop: %.1f interventions/km, autonomy %.1f%% [%s] %s%s",
            label,
            s["interventions_per_km"],
            s["autonomy_percent"],
            per,
            "as scored when saved" if known is not None else f"in {seconds:.0f} s",
            " - best so far, saved" if better else "",
        )
        if better:
            self.best, self.best_epoch = key, n
            self.served.save(self.path)
            self._saved[_file_key(self.path)] = s
        return better


def choose_steering_gain(selection: ClosedLoopSelection, run: Path, gains) -> dict:
    """``train.py --steering-gains``: drive the run's kept ``model.keras`` with its
    steering times each of ``gains`` (folded into the output layer,
    :func:`models.scale_steering`) and keep the gain with the fewest interventions per
    km, ties going to the gain nearest 1. The scores at gain 1 are the selection's own
    when it saved the file (no second drive). When the chosen gain is not 1, the trained
    model moves to ``model_uncalibrated.keras`` and ``model.keras`` / ``model.h5``
    become the scaled one; ``config.json`` records every gain's figures either way.

    Why: trained on these recordings, the models steer too little in sharp turns
    (open loop, docs/driving-quality.md "Where the jungle is lost"); some drive far
    better with more steering, others worse (docs/driving-quality.md, "Steering gain"),
    so the gain is chosen per model by driving, like the checkpoint."""
    import models  # heavy: keras

    kept, uncalibrated = run / "model.keras", run / UNCALIBRATED_MODEL
    if uncalibrated.exists():
        raise FileExistsError(
            f"{run} holds {UNCALIBRATED_MODEL} already: its model.keras was scaled by an "
            "earlier gain choice; choose a gain for a new run instead (--init-from RUN "
            "--epochs 0 with the gains times the one in its config.json)"
        )
    scored: dict[float, dict] = {}
    scaled: dict[float, keras.Model] = {}
    for gain in gains:
        started = time.perf_counter()
        known = selection.saved_scores(kept) if gain == 1.0 else None
        if known is None:
            model = models.load_model(kept)
            if gain != 1.0:
                models.scale_steering(model, gain)
            scaled[gain] = model
        try:
            s = known or selection.drive_policy(
                ModelPolicy(KerasPredictor(scaled[gain]), f"gain {gain:g}")
            )
        except NonFiniteSteering as exc:
            logger.warning("steering gain %g: not a candidate: %s", gain, exc)
            continue
        scored[gain] = s
        per = ", ".join(_recording_text(name, r) for name, r in s["per_recording"].items())
        logger.info(
            "steering gain %g: %.1f interventions/km, autonomy %.1f%% [%s] %s",
            gain,
            s["interventions_per_km"],
            s["autonomy_percent"],
            per,
            "as scored when saved" if known else f"in {time.perf_counter() - started:.0f} s",
        )
    if not scored:
        raise ValueError(f"no steering gain of {gains} could drive the model in {run}")
    chosen = min(scored, key=lambda g: (scored[g]["interventions_per_km"], abs(math.log(g))))
    record = {
        "gains": list(gains),
        "chosen": chosen,
        "scores": {f"{g:g}": _gain_figures(s) for g, s in scored.items()},
    }
    if chosen != 1.0:
        record["uncalibrated_model"] = UNCALIBRATED_MODEL
        kept.rename(uncalibrated)
        scaled[chosen].save(kept)
        scaled[chosen].save(run / "model.h5")  # loaded without an optimizer: nothing to strip
    config = read_config(run)
    config["steering_gain"] = record
    write_json(run / "config.json", config)
    logger.info(
        "steering gain %g kept%s",
        chosen,
        f": model.keras and model.h5 steer {chosen:g} times as much as the trained model "
        f"({record['uncalibrated_model']})"
        if chosen != 1.0
        else ": the trained model unchanged",
    )
    return record


def _gain_figures(s: dict) -> dict:
    """What ``config.json`` keeps of one gain's scores: the totals and, per recording,
    interventions and autonomy."""
    figures = {k: s[k] for k in ("interventions", "interventions_per_km", "autonomy_percent")}
    figures["per_recording"] = {
        name: {k: r[k] for k in ("interventions", "autonomy_percent")}
        for name, r in s["per_recording"].items()
    }
    return figures


def _scores(driven) -> dict:
    """:func:`score` of the drives; with repeats, its interventions, interventions per
    km and autonomy are the means over the drives, and ``drives`` lists each drive's
    interventions ("11, 12, 11")."""
    out = score([d.trace for d in driven])
    rep = spread(driven)
    if rep is not None:
        for key in ("interventions", "interventions_per_km", "autonomy_percent"):
            out[key] = rep[key]["mean"]
        out["drives"] = drive_counts(rep["interventions"])
    return out


def _recording_text(name: str, r: dict) -> str:
    """One recording's figures in the epoch's log line: "lake 3 (93.1%)", or with
    repeats "lake 3, 4, 3: 3.3 (92.8%)"."""
    if "drives" in r:
        return f"{name} {r['drives']}: {r['interventions']:.1f} ({r['autonomy_percent']:.1f}%)"
    return f"{name} {r['interventions']} ({r['autonomy_percent']:.1f}%)"


def _file_key(path) -> tuple[str, int]:
    """A saved model file as it is now: resolved path and modification time."""
    p = Path(path).resolve()
    return str(p), p.stat().st_mtime_ns if p.exists() else -1
