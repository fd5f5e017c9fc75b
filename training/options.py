"""The command line of ``python train.py``: its options, each default read once.

An option that sets a field of :class:`training.config.TrainConfig` or
:class:`training.augment.AugmentConfig` is named after that field (its ``dest``) and
takes the field's default, so ``--help`` shows what the dataclass says;
:func:`core.cli.fields_from` builds the dataclass back from the parsed options field by field
(:mod:`training.cli`). A default is written once, on the dataclass.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import models
from core.cli import HelpFormatter
from training.augment import RECOVERY_DRAWS, AugmentConfig
from training.config import (
    COSINE_FLOOR,
    DEFAULT_VAL_FRACTION,
    DEMO_EPOCHS,
    DEMO_LR,
    HOST_BATCH_SIZE,
    LR_SCHEDULES,
    PIPELINES,
    SEED_BATCH_SIZE,
    SEED_LR,
    TrainConfig,
    default_of,
)
from training.corruption_augment import HELD_OUT_CORRUPTIONS, TRAIN_CORRUPTIONS
from training.geometry import LOOKAHEAD_M, SIDE_CAMERA_CORRECTION

#: Steering noise while DAgger collects states (--dagger-noise).
DAGGER_NOISE = 0.1


def gain_list(text: str) -> tuple[float, ...]:
    """``--steering-gains 1,1.25,1.5``: comma-separated numbers (checked for range by
    :meth:`TrainConfig.validate_gains`)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 1,1.25,1.5, got {text!r}"
        ) from None


def field_options(p: argparse.ArgumentParser, cls: type) -> Callable[..., argparse.Action]:
    """``add(flag, name, ...)``: an option that sets field ``name`` of dataclass ``cls``
    (its ``dest``), with the field's default."""

    def add(flag: str, name: str, **kwargs) -> argparse.Action:
        return p.add_argument(flag, dest=name, default=default_of(cls, name), **kwargs)

    return add


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train a steering model on Udacity simulator recordings "
        "(folders holding driving_log.csv and IMG/). Without --data, trains on a "
        "generated demo recording.",
        formatter_class=HelpFormatter,
    )
    _add_data_options(p)
    _add_fitting_options(p)
    _add_augment_options(p)
    _add_pipeline_options(p)
    _add_selection_options(p)
    _add_run_options(p)
    return p


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """What is trained, on what."""
    train = field_options(p, TrainConfig)
    train(
        "--arch",
        "arch",
        choices=sorted(models.ARCHITECTURES),
        help="architecture from the registry",
    )
    train(
        "--data",
        "data",
        nargs="+",
        metavar="DIR",
        help="recording folders or driving_log.csv files (default: demo data)",
    )
    train(
        "--val-recording",
        "val_recordings",
        action="append",
        metavar="DIR",
        help="recording used only for validation (repeatable)",
    )
    train(
        "--init-from",
        "init_from",
        metavar="MODEL_OR_RUN",
        help="start from the weights of this model (.keras/.h5) or run folder, of the same "
        "--arch, to train a finished run on (default: fresh weights)",
    )


def _add_fitting_options(p: argparse.ArgumentParser) -> None:
    """How long, in what batches, at what rate, on which rows and cameras."""
    train = field_options(p, TrainConfig)
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs, early stopping may end sooner "
        f"(default {default_of(TrainConfig, 'epochs')}; {DEMO_EPOCHS} on the demo data); "
        "0 with --init-from keeps the model it starts from (DAgger rounds on a finished "
        "run: --epochs 0 --dagger N --dagger-epochs E)",
    )
    train(
        "--batch-size",
        "batch_size",
        type=int,
        help=f"batch size (default {HOST_BATCH_SIZE} on the host pipeline, the CPU's fastest "
        f"per image; {SEED_BATCH_SIZE} on the device pipeline)",
    )
    train(
        "--lr",
        "lr",
        type=float,
        help=f"Adam learning rate (default {SEED_LR:g} at batch {SEED_BATCH_SIZE}, sqrt-scaled "
        f"with batch; {DEMO_LR:g} on the demo data)",
    )
    train(
        "--lr-schedule",
        "lr_schedule",
        choices=LR_SCHEDULES,
        help=f"Adam's rate over the run: constant, or a cosine from --lr down to "
        f"{COSINE_FLOOR:g} x --lr at the last epoch",
    )
    train(
        "--val-fraction",
        "val_fraction",
        type=float,
        help="share of each training recording held out by time blocks "
        f"(default {DEFAULT_VAL_FRACTION:g}, or 0 when --val-recording is given)",
    )
    train(
        "--side-correction",
        "side_correction",
        type=float,
        help="steering added for the left camera, subtracted for the right "
        f"({SIDE_CAMERA_CORRECTION:g} = pure pursuit over {LOOKAHEAD_M:g} m from the 0.81 m "
        "camera offset)",
    )
    p.add_argument("--no-side-cameras", action="store_true", help="train on centre frames only")
    train(
        "--balance-cap",
        "balance_cap",
        type=float,
        help="max rows per steering bin as a multiple of the mean (0 = off)",
    )
    train(
        "--smooth-steering",
        "smooth_steering_s",
        type=float,
        metavar="S",
        help="label each training row with the mean of its recording's steering over S "
        "seconds centred on it (keyboard taps become the turn they mean; 0 = as recorded)",
    )
    train(
        "--passes",
        "passes",
        type=int,
        help="passes over the balanced training rows per epoch (more steps between validations)",
    )
    train(
        "--dropout-scale",
        "dropout_scale",
        type=float,
        metavar="S",
        help="every dropout rate of the architecture times S (0 = none, 0.5 = halved; "
        "1 = as registered)",
    )
    train(
        "--patience",
        "patience",
        type=int,
        help="early stopping: epochs without a better validation MSE",
    )


def _add_augment_options(p: argparse.ArgumentParser) -> None:
    """The augmentation (training.augment), its recovery views and corruptions."""
    augment = field_options(p, AugmentConfig)
    p.add_argument("--no-augment", action="store_true", help="disable augmentation")
    augment(
        "--recovery",
        "recovery_p",
        type=float,
        metavar="P",
        help="share of samples shown as recovery views: the car displaced and turned, its "
        "view synthesised from the nearest recorded camera, the label corrected by pure "
        "pursuit (replaces the fixed side-camera correction; 0 = off)",
    )
    augment(
        "--max-offset",
        "max_offset_m",
        type=float,
        metavar="M",
        help="recovery views: largest lateral offset in metres",
    )
    augment(
        "--max-yaw",
        "max_yaw_deg",
        type=float,
        metavar="DEG",
        help="recovery views: largest yaw in degrees",
    )
    augment(
        "--recovery-draw",
        "recovery_draw",
        choices=RECOVERY_DRAWS,
        help="recovery views: how offset and yaw are drawn within +-max (triangular: "
        "densest on the line, more small displacements)",
    )
    augment(
        "--lookahead",
        "lookahead_m",
        type=float,
        metavar="M",
        help="recovery views: pure-pursuit look-ahead of the corrective label",
    )
    augment(
        "--recovery-gain",
        "recovery_gain",
        type=float,
        help="recovery views: gain on the corrective curvature (1 = pure pursuit)",
    )
    augment(
        "--shift",
        "shift_p",
        type=float,
        metavar="P",
        help="share of samples shifted sideways up to "
        f"{default_of(AugmentConfig, 'shift_max_px')} px with a per-pixel correction",
    )
    augment(
        "--augment-corruptions",
        "corruption_p",
        type=float,
        metavar="P",
        help="share of samples given one image corruption of the robustness benchmark, "
        f"drawn from {', '.join(TRAIN_CORRUPTIONS)}, at an intensity drawn from 1-5 "
        f"(held out, never trained on: {', '.join(HELD_OUT_CORRUPTIONS)}; 0 = off)",
    )


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    """Where the batches are made and how the train step is compiled."""
    train = field_options(p, TrainConfig)
    train(
        "--pipeline",
        "pipeline",
        choices=PIPELINES,
        help="host: decoded frames fed from the host; device: frames kept on the "
        "accelerator, batches of indices (both augment inside the train step); auto: device "
        "when a GPU is visible",
    )
    train(
        "--mixed-precision",
        "mixed_precision",
        action="store_true",
        help="bfloat16 compute, float32 weights (device pipeline only; refused on the host one)",
    )
    train(
        "--steps-per-execution",
        "steps_per_execution",
        type=int,
        help="train steps per compiled call",
    )


def _add_selection_options(p: argparse.ArgumentParser) -> None:
    """Checkpoint selection in closed loop, and DAgger rounds after training."""
    field_options(p, TrainConfig)(
        "--closed-loop-every",
        "closed_loop_every",
        type=int,
        metavar="N",
        help="drive the --val-recording recordings in closed loop every N epochs and keep "
        "the checkpoint with the fewest interventions per km (0 = keep the lowest val MSE)",
    )
    field_options(p, TrainConfig)(
        "--closed-loop-repeats",
        "closed_loop_repeats",
        type=int,
        metavar="N",
        help="closed-loop selection: drive each validation recording N times per check "
        "(the 2nd and later with the evaluator's repeat steering noise) and choose on the "
        "mean; each check costs N times as long",
    )
    field_options(p, TrainConfig)(
        "--steering-gains",
        "steering_gains",
        type=gain_list,
        metavar="G[,G...]",
        help="after training, drive the kept checkpoint with its steering times each gain "
        "(e.g. 1,1.25,1.5) and keep the one with the fewest interventions per km, folded into "
        "the model's output layer (the trained model stays beside it); needs "
        "--closed-loop-every",
    )
    p.add_argument(
        "--dagger",
        type=int,
        default=0,
        metavar="N",
        help="after training, N DAgger rounds: drive the training recordings in closed loop "
        "(with steering noise), add the states visited off the line as recovery views, "
        "train on (needs --recovery)",
    )
    p.add_argument(
        "--dagger-epochs",
        type=int,
        default=None,
        metavar="N",
        help="DAgger: epochs of training per round (default: --epochs)",
    )
    p.add_argument(
        "--dagger-noise",
        type=float,
        default=DAGGER_NOISE,
        help="DAgger: standard deviation of the steering noise while collecting states",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """The seed, the output folder, what happens after training, the progress bars."""
    train = field_options(p, TrainConfig)
    train("--seed", "seed", type=int)
    train("--out", "out", help="folder that receives the run folder")
    p.add_argument(
        "--no-drive",
        action="store_true",
        help="demo data: skip the closed-loop drive on the held-out demo road after training",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
