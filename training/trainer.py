"""Train one architecture and write its run folder.

A run folder holds: ``model.keras`` (best validation epoch, with optimizer state),
``model.h5`` (the same weights, the Udacity convention), ``config.json`` (resolved
settings, data summary, versions, git commit, results), ``history.csv`` (one row
per epoch, written as training goes so an interrupted run keeps it) and
``curves.png`` (:mod:`training.history`). What a run is asked to do is a
:class:`training.config.TrainConfig`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, fields
from pathlib import Path

import keras
import numpy as np

import models
from core.outputs import write_json
from core.recordings import read_recordings
from core.runs import create_run_folder
from training.config import TrainConfig, learning_rate
from training.data import DataSettings, TrainingData, prepare
from training.device_pipeline import AugmentedTraining
from training.history import BestCheckpoint, EpochLog, best_epoch_row, plot_curves
from training.run_folder import git_commit, versions
from training.sequences import TrainSequence, ValidationSequence

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
#: Batch size of the device pipeline's validation and probe predictions.
DEVICE_PREDICT_BATCH = 1024


def train(config: TrainConfig, *, progress: bool = True, selection=None, states=None) -> Path:
    """Train ``config.arch`` on ``config.data``; return the run folder.

    ``selection`` (evaluation's closed-loop selection, needed when
    ``config.closed_loop_every`` > 0) picks and saves the checkpoint that drives best
    in closed loop, and stops early, instead of validation MSE. ``states`` (keys,
    offsets, yaws; evaluation's DAgger rounds) are visited states drawn as recovery
    views.
    """
    if config.closed_loop_every and selection is None:
        raise ValueError("closed_loop_every > 0 needs a closed-loop selection callback")
    config.validate()
    keras.utils.set_random_seed(config.seed)
    settings = data_settings(config)
    pipeline, lr = config.resolved_pipeline(), config.resolved_lr()
    train_paths = training_paths(config)
    data = load_data(config, train_paths, settings, progress=progress, states=states)

    on_device = pipeline == "device"
    # The distribution must be in place before any variable is created.
    distribution = data_parallel() if on_device else None
    served, inner = build_networks(config, on_device=on_device)  # a bad --init-from: no folder
    run = create_run_folder(Path(config.out), config.arch)
    logger.info(
        "run folder: %s (pipeline %s, backend %s, lr %.2e)",
        run,
        pipeline,
        keras.backend.backend(),
        lr,
    )
    trained = AugmentedTraining(inner, config.augment, data.frames if on_device else None)
    train_seq = TrainSequence(data, settings, seed=config.seed, indices=on_device)
    trained.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate(lr, config.lr_schedule, config.epochs * len(train_seq))
        ),
        # A loss object, not "mse": a .h5 compiled with the string does not load
        # (keras-pitfalls item 4).
        loss=keras.losses.MeanSquaredError(),
        steps_per_execution=config.steps_per_execution,
    )
    val_batch = DEVICE_PREDICT_BATCH if on_device else settings.batch_size
    val_seq = ValidationSequence(data, val_batch, indices=on_device)
    extra = tuple(selection.COLUMNS) if selection is not None else ()
    predict = frame_predictor(
        trained, served, data, on_device=on_device, batch_size=settings.batch_size
    )
    log = EpochLog(run / "history.csv", data, train_seq.samples, predict, extra)
    log.set_model(trained)
    record = run_record(
        config, served, settings, data, train_paths, pipeline, lr, distribution=distribution
    )
    write_json(run / "config.json", record)

    callbacks = epoch_callbacks(config, run, selection, log, served, inner)
    # Epoch 0: the model before training (untrained, or --init-from's weights) on the same
    # fixed sets, the reference for every epoch; trained weights are a candidate too.
    val0 = float(trained.evaluate(val_seq, verbose=0))
    start = (
        selection.judge_start(val0, config.init_from)
        if selection is not None and config.init_from
        else None
    )
    log.record(0, math.nan, val0, 0.0, start)
    if config.epochs:
        wall, interrupted = fit(trained, train_seq, val_seq, config.epochs, callbacks, progress)
    else:  # --init-from with --epochs 0: the run is the model it starts from
        if not (run / "model.keras").exists():
            served.save(run / "model.keras")
        wall, interrupted = 0.0, False
    finish_run(run, record, log, train_seq.samples, extra, wall=wall, interrupted=interrupted)
    return run


def data_settings(config: TrainConfig) -> DataSettings:
    """The data side of ``config``: its fields of the same names, with the validation
    share and the batch size resolved for this machine."""
    same = {
        f.name: getattr(config, f.name) for f in fields(DataSettings) if hasattr(config, f.name)
    }
    same.update(
        val_fraction=config.resolved_val_fraction(), batch_size=config.resolved_batch_size()
    )
    return DataSettings(**same)


def training_paths(config: TrainConfig) -> list[str]:
    """``config.data`` less the recordings also given for validation."""
    val_set = {str(Path(p).resolve()) for p in config.val_recordings}
    train_paths = [p for p in config.data if str(Path(p).resolve()) not in val_set]
    if len(train_paths) < len(config.data):
        logger.info("recordings given with --val-recording are used for validation only")
    return train_paths


def load_data(
    config: TrainConfig, train_paths: list[str], settings: DataSettings, *, progress, states
) -> TrainingData:
    """Read and prepare the recordings, attach DAgger's visited states, log a summary."""
    train_recs = read_recordings(train_paths) if train_paths else []
    val_recs = read_recordings(config.val_recordings) if config.val_recordings else []
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
    return data


def start_from(served: keras.Model, config: TrainConfig) -> None:
    """Set ``served``'s weights to those of ``config.init_from`` (ValueError, named,
    when that model is not the same architecture)."""
    source = models.load_model(config.init_from)
    got = [tuple(w.shape) for w in source.weights]
    want = [tuple(w.shape) for w in served.weights]
    if got != want:
        raise ValueError(
            f"--init-from {config.init_from}: expected the weights of --arch {config.arch} "
            f"({len(want)} arrays, {served.count_params():,} parameters), got {len(got)} "
            f"arrays, {source.count_params():,} parameters (another architecture?)"
        )
    served.set_weights(source.get_weights())
    logger.info("starting from the weights of %s", config.init_from)


def build_networks(config: TrainConfig, *, on_device: bool) -> tuple[keras.Model, keras.Model]:
    """(served, inner): the float32 network that is saved, and the one trained inside
    the wrapper: the same one, or under mixed precision a bfloat16 copy of it."""
    served = models.build_model(config.arch, dropout_scale=config.dropout_scale)
    if config.init_from:
        start_from(served, config)
    if not (on_device and config.mixed_precision):
        return served, served
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        inner = models.build_model(config.arch, dropout_scale=config.dropout_scale)
    finally:
        keras.config.set_dtype_policy("float32")
    inner.set_weights(served.get_weights())
    return served, inner


def frame_predictor(trained, served, data: TrainingData, *, on_device: bool, batch_size: int):
    """Steering of the current weights for frame indices (EpochLog's fixed probe):
    through the wrapper on the device pipeline, the served network on the host one."""

    def predict_frames(idx):
        if on_device:
            x = {"source": idx.astype(np.int32)}
            return trained.predict(x, batch_size=DEVICE_PREDICT_BATCH, verbose=0)[:, 0]
        x = data.frames[idx].astype(np.float32)
        return served.predict(x, batch_size=batch_size, verbose=0)[:, 0]

    return predict_frames


def run_record(
    config: TrainConfig,
    served,
    settings: DataSettings,
    data: TrainingData,
    train_paths: list[str],
    pipeline: str,
    lr: float,
    *,
    distribution: dict | None,
) -> dict:
    """config.json while training: architecture, parameters, settings as given and as
    resolved, data, versions."""
    return {
        "arch": config.arch,
        "summary": models.ARCHITECTURES[config.arch].summary,
        "params": models.parameter_counts(served),
        "settings": {
            **asdict(config),
            "val_fraction": settings.val_fraction,
            "lr": lr,
            "batch_size": settings.batch_size,
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


def epoch_callbacks(config: TrainConfig, run: Path, selection, log, served, inner) -> list:
    """Closed-loop selection keeps and stops by driving; otherwise val MSE does."""
    if selection is not None:
        selection.attach(served, inner, run / "model.keras", config.epochs)
        return [selection, log]
    return [
        log,
        BestCheckpoint(run / "model.keras", served, inner),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
    ]


def fit(trained, train_seq, val_seq, epochs: int, callbacks, progress) -> tuple[float, bool]:
    """``model.fit``; Ctrl-C ends it keeping the best model so far. Returns (seconds,
    interrupted)."""
    started = time.perf_counter()
    interrupted = False
    try:
        trained.fit(
            train_seq,
            validation_data=val_seq,
            epochs=epochs,
            verbose=1 if progress else 0,
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: keeping the best model so far")
    return time.perf_counter() - started, interrupted


def finish_run(
    run: Path, record: dict, log: EpochLog, samples: int, extra, *, wall, interrupted
) -> None:
    """model.h5 beside the kept model.keras, curves.png, and the results in config.json."""
    trained_rows = [r for r in log.rows if r["epoch"] > 0]
    if not (run / "model.keras").exists():
        raise RuntimeError(
            f"no checkpoint kept: training stopped before any epoch finished, or no epoch "
            f"could drive (the closed-loop warnings say why); see {run}"
        )
    # Candidates: the trained epochs, and the start when it was driven or is all there is.
    start = log.rows[0]
    started_driven = math.isfinite(start.get("cl_interventions_per_km", math.nan))
    candidates = trained_rows + ([start] if started_driven or not trained_rows else [])
    best_row = best_epoch_row(candidates)
    best = models.load_model(run / "model.keras")
    # .keras first, then .h5 from a separately loaded copy: saving .h5 strips the
    # optimizer from the live model (keras-pitfalls item 5).
    best.save(run / "model.h5")
    plot_curves(log.rows, run / "curves.png", f"{record['arch']}: {run.name}")
    images = samples * len(trained_rows)
    record.update(
        status="interrupted" if interrupted else "finished",
        epochs_run=len(trained_rows),
        best_epoch=best_row["epoch"],
        best_val_mse=best_row["val_mse"],
        best_closed_loop={k: best_row[k] for k in extra},
        initial_val_mse=log.rows[0]["val_mse"],
        wall_seconds=round(wall, 1),
        train_images_per_s=(
            round(images / sum(r["seconds"] for r in trained_rows), 1) if trained_rows else None
        ),
    )
    write_json(run / "config.json", record)
    logger.info(
        "best epoch %d: val_mse %.5f (%s %.5f); %d epochs in %.0f s; wrote %s",
        best_row["epoch"],
        best_row["val_mse"],
        "at the start, from --init-from," if record["settings"].get("init_from") else "untrained",
        log.rows[0]["val_mse"],
        len(trained_rows),
        wall,
        run,
    )


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
