"""What one training run is asked to do: :class:`TrainConfig`, each default written once.

``train.py``'s options take their defaults from these fields (:mod:`training.cli`
reads them with :func:`dataclasses.fields`), the data settings of the trainer take
theirs from here too (:class:`training.data.DataSettings`), and ``config.json``
records the fields as given and as resolved for the machine (batch size, learning
rate, pipeline, validation share). Change a default here and ``--help``, the run and
its ``config.json`` all follow.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import keras
import numpy as np

import models
from training.augment import AugmentConfig
from training.geometry import SIDE_CAMERA_CORRECTION

#: The seeds' training: Adam at 1e-3 with batch 128 and MSE. Other batches scale the
#: learning rate by the square root of the batch ratio (:func:`scaled_learning_rate`).
SEED_LR = 1e-3
SEED_BATCH_SIZE = 128
#: Batch size on the host pipeline when none is given: this 2-core CPU's fastest per
#: image (eff-slim 57 images/s at 16, 29 at 64, docs/slimming.md). The device
#: pipeline's is the seeds' batch.
HOST_BATCH_SIZE = 16
#: Share of each training recording held out by time blocks when no recording is
#: held out whole (``--val-recording``) and no ``--val-fraction`` is given.
DEFAULT_VAL_FRACTION = 0.2
PIPELINES = ("auto", "host", "device")
#: ``--lr-schedule``: Adam's rate constant, or a cosine from ``--lr`` down to
#: COSINE_FLOOR times it at the run's last step (Loshchilov & Hutter 2017, without
#: restarts).
LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.01
#: Epochs and learning rate on the demo data unless --epochs / --lr are given: with
#: recovery views, eff drives the held-out demo road after 3 epochs at 1e-3 (1
#: intervention in 26 s, steering straight 6; docs/driving-quality.md), and the
#: whole first command (render, train, drive) stays within about 5 minutes on the
#: 2-core CPU.
DEMO_EPOCHS = 3
DEMO_LR = 1e-3


def default_of(cls: type, name: str) -> Any:
    """The default written on dataclass ``cls`` for its field ``name`` (a fresh one
    for a field with a default factory)."""
    for f in fields(cls):
        if f.name == name:
            if f.default_factory is not MISSING:
                return f.default_factory()
            return f.default
    raise AttributeError(f"{cls.__name__} has no field {name!r}")


def check_dagger(
    rounds: int, epochs: int | None, recovery_p: float, *, first_epochs: int | None = None
) -> None:
    """DAgger's settings (``--dagger``, ``--dagger-epochs``, ``--recovery``; the first
    run's ``--epochs``, each round's default), checked before any training and again by
    the rounds themselves (ValueError, named)."""
    if rounds < 0:
        raise ValueError(f"--dagger needs a number of rounds >= 0, got {rounds}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"--dagger-epochs needs a number of epochs >= 1, got {epochs}")
    if rounds and epochs is None and first_epochs == 0:
        raise ValueError(
            "--dagger after --epochs 0 needs --dagger-epochs N: the epochs of each round"
        )
    if rounds and not recovery_p:
        raise ValueError("--dagger trains on recovery views: give --recovery P with P > 0")


def scaled_learning_rate(
    base_lr: float, batch_size: int, base_batch: int = SEED_BATCH_SIZE
) -> float:
    """Square-root scaling for Adam when the batch grows beyond the seeds' 128.

    Linear scaling suits SGD; for Adam, whose step is normalised by the gradient's
    second moment, the square root keeps the noise scale of the update comparable.
    """
    return base_lr * float(np.sqrt(batch_size / base_batch))


def learning_rate(lr: float, schedule: str, steps: int):
    """Adam's learning rate for a run of ``steps`` training steps: ``lr`` itself
    ("constant"), or a cosine decay from ``lr`` to ``COSINE_FLOOR * lr`` at the last
    step ("cosine"; the steps of one ``fit``, so each DAgger round decays anew).
    ``schedule`` is one of LR_SCHEDULES (:meth:`TrainConfig.validate` checks it)."""
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(int(steps), 1), alpha=COSINE_FLOOR
        )
    return lr


def accelerators() -> list:
    """GPUs/TPUs visible to the current Keras backend ([] on a CPU-only machine)."""
    # Only the active backend's framework is imported (the others may be absent).
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


@dataclass
class TrainConfig:
    arch: str = "eff"
    data: list[str] = field(default_factory=list)
    val_recordings: list[str] = field(default_factory=list)
    # Seed defaults: Adam 1e-3, MSE, batch 128 (the seeds trained this way).
    epochs: int = 20
    #: None: HOST_BATCH_SIZE on the host pipeline, SEED_BATCH_SIZE on the device one.
    batch_size: int | None = None
    #: None: SEED_LR at SEED_BATCH_SIZE, square-root scaled for other batches.
    lr: float | None = None
    #: "constant": Adam at ``lr`` throughout; "cosine": from ``lr`` down to
    #: COSINE_FLOOR x ``lr`` over the run's steps (:func:`learning_rate`).
    lr_schedule: str = "constant"
    #: None: DEFAULT_VAL_FRACTION of each recording by time blocks, or 0 when
    #: --val-recording is given.
    val_fraction: float | None = None
    side_cameras: bool = True
    #: training.geometry.SIDE_CAMERA_CORRECTION: 0.2 by pure pursuit over 7.3 m.
    side_correction: float = SIDE_CAMERA_CORRECTION
    balance_cap: float = 2.0
    #: Seconds: each training row's steering label is the mean of its recording's
    #: steering over this window centred on it (0 = as recorded; training.data.
    #: smooth_steering).
    smooth_steering_s: float = 0.0
    #: Passes over the balanced training rows per epoch (see DataSettings.passes).
    passes: int = 1
    #: Stop after this many epochs without a better validation MSE.
    patience: int = 5
    #: Every dropout rate of the architecture times this (models.scale_dropout);
    #: 1 = the architecture as registered, 0 = no dropout.
    dropout_scale: float = 1.0
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
    #: checkpoint that drives best (evaluation's closed-loop selection); 0 = select by
    #: val MSE.
    closed_loop_every: int = 0
    #: Drives of each validation recording at each closed-loop check: the first the
    #: model's own, the others with the evaluator's repeat noise; the checkpoint is
    #: chosen on their mean, which one drive's count (+-5 on a jungle log) can hide.
    closed_loop_repeats: int = 1
    #: After training, drive the kept checkpoint with its steering times each gain and
    #: keep the gain that drives best, folded into the output layer (evaluation's
    #: closed-loop selection): models trained on these recordings steer too little in
    #: sharp turns (docs/driving-quality.md, "Steering gain"). (1.0,): no calibration.
    steering_gains: tuple[float, ...] = (1.0,)
    #: Start from this model's weights (same architecture): DAgger rounds train on.
    init_from: str | None = None
    #: DAgger round of this run (0: trained from scratch or from init_from alone).
    dagger_round: int = 0

    def calibrates_gain(self) -> bool:
        """Whether the run ends by choosing a steering gain (``--steering-gains``)."""
        return tuple(self.steering_gains) != (1.0,)

    def validate_gains(self) -> None:
        gains = tuple(self.steering_gains)
        text = ",".join(f"{g:g}" for g in gains)
        if not gains or not all(np.isfinite(g) and g > 0 for g in gains):
            raise ValueError(f"--steering-gains needs finite gains > 0, got {text or 'none'}")
        if len(set(gains)) != len(gains):
            raise ValueError(f"--steering-gains names a gain twice: {text}")
        if self.calibrates_gain() and not self.closed_loop_every:
            raise ValueError(
                f"--steering-gains {text} chooses a gain by driving the validation recordings: "
                "add --closed-loop-every N (and --val-recording)"
            )

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return scaled_learning_rate(SEED_LR, self.resolved_batch_size())

    def resolved_batch_size(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return SEED_BATCH_SIZE if self.resolved_pipeline() == "device" else HOST_BATCH_SIZE

    def resolved_pipeline(self) -> str:
        if self.pipeline != "auto":
            return self.pipeline
        return "device" if accelerators() else "host"

    def resolved_val_fraction(self) -> float:
        if self.val_fraction is not None:
            return self.val_fraction
        return 0.0 if self.val_recordings else DEFAULT_VAL_FRACTION

    def validate(self) -> None:
        self.validate_settings()
        if not self.data:
            raise ValueError("no training data: give --data DIR [DIR ...]")

    def validate_settings(self) -> None:
        """Everything but the data: checked before the demo data is rendered."""
        if self.arch not in models.ARCHITECTURES:
            known = ", ".join(sorted(models.ARCHITECTURES))
            raise ValueError(f"unknown --arch {self.arch!r}; expected one of: {known}")
        if self.epochs < 0 or (self.epochs == 0 and not self.init_from):
            raise ValueError(
                f"--epochs must be >= 1 (or 0 with --init-from: keep the model it starts "
                f"from, for DAgger rounds on it), got {self.epochs}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if not (math.isfinite(self.smooth_steering_s) and self.smooth_steering_s >= 0):
            raise ValueError(
                f"--smooth-steering needs a window in seconds >= 0, got {self.smooth_steering_s}"
            )
        if self.dropout_scale > 1 or not self.dropout_scale >= 0:
            # A rate must stay below 1: the build names the layer it would take past it.
            try:
                models.build_model(self.arch, dropout_scale=self.dropout_scale)
            except ValueError as exc:
                raise ValueError(f"--dropout-scale: {exc}") from None
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if self.pipeline not in PIPELINES:
            raise ValueError(f"--pipeline must be auto, host or device, got {self.pipeline!r}")
        if self.closed_loop_every < 0:
            raise ValueError(f"--closed-loop-every must be >= 0, got {self.closed_loop_every}")
        if self.closed_loop_repeats < 1:
            raise ValueError(
                "--closed-loop-repeats must be >= 1 (the drive itself), "
                f"got {self.closed_loop_repeats}"
            )
        if self.closed_loop_repeats > 1 and not self.closed_loop_every:
            raise ValueError(
                f"--closed-loop-repeats {self.closed_loop_repeats} needs the closed-loop "
                "selection it repeats: add --closed-loop-every N"
            )
        self.validate_gains()
        if self.mixed_precision and self.resolved_pipeline() != "device":
            raise ValueError(
                "--mixed-precision needs the device pipeline (--pipeline device, the default "
                "when a GPU is visible); got the host pipeline, which trains in float32"
            )
