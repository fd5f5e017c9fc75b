"""Train one architecture and write its run folder.

A run folder holds: ``model.keras`` (best validation epoch, with optimizer state),
``model.h5`` (the same weights, the Udacity convention), ``config.json`` (resolved
settings, data summary, versions, git commit, results), ``history.csv`` (one row
per epoch, written as training goes so an interrupted run keeps it) and
``curves.png``.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

import models
from core.outputs import write_json
from core.recordings import read_recordings
from core.runs import create_run_folder
from training.augment import AugmentConfig
from training.data import DataSettings, TrainingData, TrainSequence, ValidationSequence, prepare
from training.device_pipeline import AugmentedTraining, scaled_learning_rate
from training.geometry import SIDE_CAMERA_CORRECTION
from training.run_folder import git_commit, versions

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]

#: Training frames (centre camera, not augmented) re-scored after every epoch, so the
#: training error is comparable across epochs and runs (Keras' own ``loss`` is a
#: running mean over an epoch of augmented batches with dropout on).
PROBE_FRAMES = 512


@dataclass
class TrainConfig:
    arch: str = "eff"
    data: list[str] = field(default_factory=list)
    val_recordings: list[str] = field(default_factory=list)
    # Seed defaults: Adam 1e-3, MSE, batch 128 (the seeds trained this way).
    epochs: int = 20
    #: None: 16 on the host pipeline (this 2-core CPU's fastest per image: eff-slim
    #: 57 images/s at 16, 29 at 64, docs/slimming.md), 128 on the device pipeline.
    batch_size: int | None = None
    #: None: 1e-3 at batch 128, square-root scaled for larger batches (device_pipeline).
    lr: float | None = None
    #: None: 0.2 of each recording by time blocks, or 0 when --val-recording is given.
    val_fraction: float | None = None
    side_cameras: bool = True
    #: training.geometry.SIDE_CAMERA_CORRECTION: 0.2 by pure pursuit over 7.3 m.
    side_correction: float = SIDE_CAMERA_CORRECTION
    balance_cap: float = 2.0
    #: Passes over the balanced training rows per epoch (see DataSettings.passes).
    passes: int = 1
    #: Stop after this many epochs without a better validation MSE.
    patience: int = 5
    seed: int = 0
    out: str = "runs"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    demo: bool = False
    #: "host": numpy batches (any machine); "device": frames and augmentation on the
    #: accelerator (training.device_pipeline); "auto": device when a GPU is present.
    pipeline: str = "auto"
    #: bfloat16 compute with float32 weights (device pipeline; the saved model is float32).
    mixed_precision: bool = False
    #: Train steps per compiled call: fewer host round trips for small networks.
    steps_per_execution: int = 1
    #: Drive the validation recordings in closed loop every N epochs and keep the
    #: checkpoint that drives best (evaluation.selection); 0 = select by val MSE.
    closed_loop_every: int = 0
    #: Start from this model's weights (same architecture): DAgger rounds train on.
    init_from: str | None = None
    #: DAgger round of this run (0: trained from scratch or from init_from alone).
    dagger_round: int = 0

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return scaled_learning_rate(1e-3, self.resolved_batch_size())

    def resolved_batch_size(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 128 if self.resolved_pipeline() == "device" else 16

    def resolved_pipeline(self) -> str:
        if self.pipeline != "auto":
            return self.pipeline
        return "device" if accelerators() else "host"

    def resolved_val_fraction(self) -> float:
        if self.val_fraction is not None:
            return self.val_fraction
        return 0.0 if self.val_recordings else 0.2

    def validate(self) -> None:
        self.validate_settings()
        if not self.data:
            raise ValueError("no training data: give --data DIR [DIR ...]")

    def validate_settings(self) -> None:
        """Everything but the data: checked before the demo data is rendered."""
        if self.arch not in models.ARCHITECTURES:
            known = ", ".join(sorted(models.ARCHITECTURES))
            raise ValueError(f"unknown --arch {self.arch!r}; expected one of: {known}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.pipeline not in ("auto", "host", "device"):
            raise ValueError(f"--pipeline must be auto, host or device, got {self.pipeline!r}")
        if self.closed_loop_every < 0:
            raise ValueError(f"--closed-loop-every must be >= 0, got {self.closed_loop_every}")
        if self.mixed_precision and self.resolved_pipeline() != "device":
            raise ValueError(
                "--mixed-precision needs the device pipeline (--pipeline device, the default "
                "when a GPU is visible); got the host pipeline, which trains in float32"
            )


class EpochLog(keras.callbacks.Callback):
    """One log line and one history.csv row per epoch, written as training goes."""

    FIELDS = ("epoch", "train_loss", "train_probe_mse", "val_mse", "seconds", "images_per_s", "lr")

    def __init__(
        self,
        path: Path,
        data: TrainingData,
        images_per_epoch: int,
        predict_frames,
        extra_fields: tuple[str, ...] = (),
    ):
        super().__init__()
        self.extra_fields = extra_fields
        self.predict_frames = predict_frames
        self.path = path
        self.data = data
        self.images_per_epoch = images_per_epoch
        rows = data.train_row_frames[:, 0]
        pick = np.linspace(0, len(rows) - 1, min(PROBE_FRAMES, len(rows))).astype(int)
        self.probe_frames = rows[pick]
        self.probe_labels = data.train_row_labels[pick]
        self.rows: list[dict] = []
        self._start = 0.0

    def probe_mse(self) -> float:
        pred = self.predict_frames(self.probe_frames)
        return float(np.mean((pred - self.probe_labels) ** 2))

    def record(
        self, epoch: int, train_loss: float, val_mse: float, seconds: float, logs=None
    ) -> None:
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_probe_mse": self.probe_mse(),
            "val_mse": val_mse,
            "seconds": round(seconds, 2),
            "images_per_s": round(self.images_per_epoch / seconds, 1) if seconds else math.nan,
            "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
        }
        row.update({k: (logs or {}).get(k, math.nan) for k in self.extra_fields})
        self.rows.append(row)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*self.FIELDS, *self.extra_fields])
            writer.writeheader()
            writer.writerows(self.rows)
        logger.info(
            "epoch %3d  train_loss %.5f  train_mse %.5f  val_mse %.5f  %6.1f s  %7.1f img/s",
            epoch,
            train_loss,
            row["train_probe_mse"],
            val_mse,
            seconds,
            row["images_per_s"],
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        driving = logs.get("cl_seconds", math.nan)  # closed-loop selection's share
        self.record(
            epoch + 1,
            logs.get("loss", math.nan),
            logs.get("val_loss", math.nan),
            time.perf_counter() - self._start - (driving if math.isfinite(driving) else 0.0),
            logs,
        )


class BestCheckpoint(keras.callbacks.Callback):
    """Save the served model (``model.keras``) whenever validation MSE improves.

    The model trained may be a wrapper (device pipeline) or run in bfloat16; what is
    saved is always the plain float32 architecture with the current weights.
    """

    def __init__(self, path: Path, served: keras.Model, trained: keras.Model):
        super().__init__()
        self.path = path
        self.served = served
        self.trained = trained
        self.best = math.inf

    def on_epoch_end(self, epoch, logs=None):
        val = (logs or {}).get("val_loss", math.nan)
        if val < self.best:
            self.best = val
            if self.served is not self.trained:
                self.served.set_weights(self.trained.get_weights())
            self.served.save(self.path)


def accelerators() -> list:
    """GPUs/TPUs visible to the current Keras backend ([] on a CPU-only machine)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [d for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return list(range(torch.cuda.device_count()))
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.config.list_physical_devices("GPU")
    return []


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    """Loss curves; with closed-loop selection, interventions per km below them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    driven = [r for r in rows if math.isfinite(r.get("cl_interventions_per_km", math.nan))]
    fig, axes = plt.subplots(
        2 if driven else 1, 1, figsize=(7, 6.5 if driven else 4), dpi=110, squeeze=False
    )
    ax = axes[0, 0]
    epochs = [r["epoch"] for r in rows]
    trained = [r for r in rows if r["epoch"] > 0]
    ax.plot(
        [r["epoch"] for r in trained],
        [r["train_loss"] for r in trained],
        "o-",
        label="train loss (augmented, running mean)",
    )
    ax.plot(epochs, [r["train_probe_mse"] for r in rows], "s--", label="train MSE (fixed frames)")
    ax.plot(epochs, [r["val_mse"] for r in rows], "^-", label="validation MSE")
    ax.set_ylabel("MSE (steering units^2)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if driven:
        cl = axes[1, 0]
        x = [r["epoch"] for r in driven]
        cl.plot(x, [r["cl_interventions_per_km"] for r in driven], "o-", color="C3")
        cl.set_ylabel("closed loop: interventions / km", color="C3")
        auto = cl.twinx()
        auto.plot(x, [r["cl_autonomy_percent"] for r in driven], "s--", color="C2")
        auto.set_ylabel("autonomy % (NVIDIA)", color="C2")
        cl.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(config: TrainConfig, *, progress: bool = True, selection=None, states=None) -> Path:
    """Train ``config.arch`` on ``config.data``; return the run folder.

    ``selection`` (an :class:`evaluation.selection.ClosedLoopSelection`, needed when
    ``config.closed_loop_every`` > 0) picks and saves the checkpoint that drives best
    in closed loop, and stops early, instead of validation MSE. ``states`` (keys,
    offsets, yaws; evaluation.dagger) are visited states drawn as recovery views.
    """
    if config.closed_loop_every and selection is None:
        raise ValueError("closed_loop_every > 0 needs a closed-loop selection callback")
    config.validate()
    keras.utils.set_random_seed(config.seed)
    val_fraction = config.resolved_val_fraction()
    pipeline = config.resolved_pipeline()
    lr = config.resolved_lr()
    batch_size = config.resolved_batch_size()

    val_set = {str(Path(p).resolve()) for p in config.val_recordings}
    train_paths = [p for p in config.data if str(Path(p).resolve()) not in val_set]
    if len(train_paths) < len(config.data):
        logger.info("recordings given with --val-recording are used for validation only")
    train_recs = read_recordings(train_paths) if train_paths else []
    val_recs = read_recordings(config.val_recordings) if config.val_recordings else []
    settings = DataSettings(
        val_fraction=val_fraction,
        side_cameras=config.side_cameras,
        side_correction=config.side_correction,
        balance_cap=config.balance_cap,
        batch_size=batch_size,
        passes=config.passes,
        augment=config.augment,
    )
    data = prepare(train_recs, val_recs, settings, progress=progress)
    if states is not None:
        kept = data.attach_states(*states)
        data.summary["dagger_states"] = {"given": len(states[0]), "on_training_rows": kept}
        logger.info("DAgger: %d of %d visited states are on training rows", kept, len(states[0]))
    bal = data.summary["balance"]
    logger.info(
        "data: %d training rows (%d per epoch after balancing; exact zeros %.0f%% -> %.0f%%), "
        "%d validation frames, %d frames decoded",
        data.summary["train_rows"],
        bal["rows_per_epoch"],
        100 * bal["exact_zero_share_before"],
        100 * bal["exact_zero_share_after"],
        data.summary["val_frames"],
        data.summary["decoded_frames"],
    )

    run = create_run_folder(Path(config.out), config.arch)
    logger.info(
        "run folder: %s (pipeline %s, backend %s, lr %.2e)",
        run,
        pipeline,
        keras.backend.backend(),
        lr,
    )
    on_device = pipeline == "device"
    # The distribution must be in place before any variable is created.
    distribution = data_parallel() if on_device else None
    served = models.build_model(config.arch)
    if config.init_from:
        served.set_weights(models.load_model(config.init_from).get_weights())
        logger.info("starting from the weights of %s", config.init_from)
    counts = models.parameter_counts(served)
    if on_device and config.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            inner = models.build_model(config.arch)
        finally:
            keras.config.set_dtype_policy("float32")
        inner.set_weights(served.get_weights())
    else:
        inner = served
    trained = AugmentedTraining(inner, config.augment, data.frames if on_device else None)

    def predict_frames(idx):
        if on_device:
            x = {"source": idx.astype(np.int32)}
            return trained.predict(x, batch_size=1024, verbose=0)[:, 0]
        x = data.frames[idx].astype(np.float32)
        return served.predict(x, batch_size=batch_size, verbose=0)[:, 0]

    trained.compile(
        optimizer=keras.optimizers.Adam(lr),
        # A loss object, not "mse": a .h5 compiled with the string does not load
        # (keras-pitfalls item 4).
        loss=keras.losses.MeanSquaredError(),
        steps_per_execution=config.steps_per_execution,
    )
    train_seq = TrainSequence(data, settings, seed=config.seed, indices=on_device)
    val_seq = ValidationSequence(data, 1024 if on_device else batch_size, indices=on_device)
    extra = tuple(selection.COLUMNS) if selection is not None else ()
    log = EpochLog(run / "history.csv", data, train_seq.samples, predict_frames, extra)
    log.set_model(trained)
    # Epoch 0: the untrained model on the same fixed sets, the reference for every epoch.
    log.record(0, math.nan, float(trained.evaluate(val_seq, verbose=0)), 0.0)

    record = {
        "arch": config.arch,
        "summary": models.ARCHITECTURES[config.arch].summary,
        "params": counts,
        "settings": {
            **asdict(config),
            "val_fraction": val_fraction,
            "lr": lr,
            "batch_size": batch_size,
            "pipeline": pipeline,
        },
        "distribution": distribution,
        "data": [str(Path(p).resolve()) for p in train_paths],
        "val_recordings": [str(Path(p).resolve()) for p in config.val_recordings],
        "data_summary": data.summary,
        "versions": versions(),
        "git_commit": git_commit(REPO),
        "status": "training",
    }
    write_json(run / "config.json", record)

    if selection is not None:
        selection.attach(served, inner, run / "model.keras", config.epochs)
        callbacks = [selection, log]
    else:
        callbacks = [
            log,
            BestCheckpoint(run / "model.keras", served, inner),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
        ]
    started = time.perf_counter()
    interrupted = False
    try:
        trained.fit(
            train_seq,
            validation_data=val_seq,
            epochs=config.epochs,
            verbose=1 if progress else 0,
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: keeping the best model so far")
    wall = time.perf_counter() - started

    trained_rows = [r for r in log.rows if r["epoch"] > 0]
    if not (run / "model.keras").exists():
        raise RuntimeError(f"training stopped before any epoch finished; see {run}")
    best_row = best_epoch_row(trained_rows)
    best = models.load_model(run / "model.keras")
    # .keras first, then .h5 from a separately loaded copy: saving .h5 strips the
    # optimizer from the live model (keras-pitfalls item 5).
    best.save(run / "model.h5")
    plot_curves(log.rows, run / "curves.png", f"{config.arch}: {run.name}")
    images = train_seq.samples * len(trained_rows)
    record.update(
        status="interrupted" if interrupted else "finished",
        epochs_run=len(trained_rows),
        best_epoch=best_row["epoch"],
        best_val_mse=best_row["val_mse"],
        best_closed_loop={k: best_row[k] for k in extra},
        initial_val_mse=log.rows[0]["val_mse"],
        wall_seconds=round(wall, 1),
        train_images_per_s=round(images / sum(r["seconds"] for r in trained_rows), 1),
    )
    write_json(run / "config.json", record)
    logger.info(
        "best epoch %d: val_mse %.5f (untrained %.5f); %d epochs in %.0f s; wrote %s",
        best_row["epoch"],
        best_row["val_mse"],
        log.rows[0]["val_mse"],
        len(trained_rows),
        wall,
        run,
    )
    return run


def best_epoch_row(rows: list[dict]) -> dict:
    """The epoch whose checkpoint was kept: fewest closed-loop interventions per km
    (tie: lower val MSE) among epochs driven in closed loop, else lowest val MSE."""
    driven = [r for r in rows if math.isfinite(r.get("cl_interventions_per_km", math.nan))]
    if driven:
        return min(driven, key=lambda r: (r["cl_interventions_per_km"], r["val_mse"]))
    return min(rows, key=lambda r: r["val_mse"])


def data_parallel() -> dict | None:
    """Data parallel over every local accelerator through Keras' distribution API.

    One device is the degenerate case. On several hosts the same code runs once per
    process after ``jax.distributed.initialize()`` (coordinator address, process count
    and id from the launcher), and ``keras.distribution.list_devices()`` then spans all
    hosts. Only the JAX backend implements the API; elsewhere training is single-device.
    """
    if keras.backend.backend() != "jax":
        return None
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return {"strategy": "DataParallel", "devices": [str(d) for d in devices]}
