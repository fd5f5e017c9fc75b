"""``python train.py``: train a steering model on simulator recordings."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import models
from core.cli import HelpFormatter, error_exit, setup_logging
from core.recordings import RecordingError
from training.augment import NO_AUGMENT, AugmentConfig
from training.corruption_augment import HELD_OUT_CORRUPTIONS, TRAIN_CORRUPTIONS
from training.trainer import TrainConfig, train

logger = logging.getLogger("train")

#: Built-in default data: two procedurally rendered demo recordings (different seeds,
#: so validation is a different stretch of road), made once and reused.
DEMO_TRAIN = dict(n_frames=1500, seed=1)
DEMO_VAL = dict(n_frames=400, seed=2)
#: Epochs and learning rate on the demo data unless --epochs / --lr are given: with
#: recovery views, eff drives the held-out demo road after 3 epochs at 1e-3 (1
#: intervention in 26 s, steering straight 6; docs/driving-quality.md), and the
#: whole first command (render, train, drive) stays within about 5 minutes on the
#: 2-core CPU.
DEMO_EPOCHS = 3
DEMO_LR = 1e-3


def parse_args(argv=None) -> argparse.Namespace:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train a steering model on Udacity simulator recordings "
        "(folders holding driving_log.csv and IMG/). Without --data, trains on a "
        "generated demo recording.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--arch",
        default=defaults.arch,
        choices=sorted(models.ARCHITECTURES),
        help="architecture from the registry",
    )
    p.add_argument(
        "--data",
        nargs="+",
        metavar="DIR",
        default=[],
        help="recording folders or driving_log.csv files (default: demo data)",
    )
    p.add_argument(
        "--val-recording",
        action="append",
        default=[],
        metavar="DIR",
        help="recording used only for validation (repeatable)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"maximum epochs, early stopping may end sooner (default {defaults.epochs}; "
        f"{DEMO_EPOCHS} on the demo data)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch size (default 16 on the host pipeline, the CPU's fastest per image; "
        "128 on the device pipeline)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate (default 1e-3 at batch 128, sqrt-scaled with batch; "
        f"{DEMO_LR:g} on the demo data)",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="share of each training recording held out by time blocks "
        "(default 0.2, or 0 when --val-recording is given)",
    )
    p.add_argument(
        "--side-correction",
        type=float,
        default=defaults.side_correction,
        help="steering added for the left camera, subtracted for the right "
        "(0.2 = pure pursuit over 7.3 m from the 0.81 m camera offset)",
    )
    p.add_argument("--no-side-cameras", action="store_true", help="train on centre frames only")
    p.add_argument(
        "--balance-cap",
        type=float,
        default=defaults.balance_cap,
        help="max rows per steering bin as a multiple of the mean (0 = off)",
    )
    p.add_argument(
        "--passes",
        type=int,
        default=defaults.passes,
        help="passes over the balanced training rows per epoch (more steps between validations)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=defaults.patience,
        help="early stopping: epochs without a better validation MSE",
    )
    p.add_argument("--no-augment", action="store_true", help="disable augmentation")
    aug = AugmentConfig()
    p.add_argument(
        "--recovery",
        type=float,
        default=aug.recovery_p,
        metavar="P",
        help="share of samples shown as recovery views: the car displaced and turned, its "
        "view synthesised from the nearest recorded camera, the label corrected by pure "
        "pursuit (replaces the fixed side-camera correction; 0 = off)",
    )
    p.add_argument(
        "--max-offset",
        type=float,
        default=aug.max_offset_m,
        metavar="M",
        help="recovery views: largest lateral offset in metres",
    )
    p.add_argument(
        "--max-yaw",
        type=float,
        default=aug.max_yaw_deg,
        metavar="DEG",
        help="recovery views: largest yaw in degrees",
    )
    p.add_argument(
        "--lookahead",
        type=float,
        default=aug.lookahead_m,
        metavar="M",
        help="recovery views: pure-pursuit look-ahead of the corrective label",
    )
    p.add_argument(
        "--recovery-gain",
        type=float,
        default=aug.recovery_gain,
        help="recovery views: gain on the corrective curvature (1 = pure pursuit)",
    )
    p.add_argument(
        "--shift",
        type=float,
        default=aug.shift_p,
        metavar="P",
        help="share of samples shifted sideways up to 20 px with a per-pixel correction",
    )
    p.add_argument(
        "--augment-corruptions",
        type=float,
        default=aug.corruption_p,
        metavar="P",
        help="share of samples given one image corruption of the robustness benchmark, "
        f"drawn from {', '.join(TRAIN_CORRUPTIONS)}, at an intensity drawn from 1-5 "
        f"(held out, never trained on: {', '.join(HELD_OUT_CORRUPTIONS)}; 0 = off)",
    )
    p.add_argument(
        "--pipeline",
        choices=("auto", "host", "device"),
        default=defaults.pipeline,
        help="host: decoded frames fed from the host; device: frames kept on the "
        "accelerator, batches of indices (both augment inside the train step); auto: device "
        "when a GPU is visible",
    )
    p.add_argument(
        "--mixed-precision",
        action="store_true",
        help="bfloat16 compute, float32 weights (device pipeline only; refused on the host one)",
    )
    p.add_argument(
        "--steps-per-execution",
        type=int,
        default=defaults.steps_per_execution,
        help="train steps per compiled call",
    )
    p.add_argument(
        "--closed-loop-every",
        type=int,
        default=defaults.closed_loop_every,
        metavar="N",
        help="drive the --val-recording recordings in closed loop every N epochs and keep "
        "the checkpoint with the fewest interventions per km (0 = keep the lowest val MSE)",
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
        default=0.1,
        help="DAgger: standard deviation of the steering noise while collecting states",
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", default=defaults.out, help="folder that receives the run folder")
    p.add_argument(
        "--no-drive",
        action="store_true",
        help="demo data: skip the closed-loop drive on the held-out demo road after training",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def demo_recordings(out: Path) -> tuple[list[str], list[str]]:
    """Generate (once) and return the demo training and validation recordings."""
    from sim.demo_recording import write_demo_recording

    root = out / "demo-data"
    made = []
    for name, kwargs in (("train", DEMO_TRAIN), ("val", DEMO_VAL)):
        folder = root / f"{name}-seed{kwargs['seed']}-{kwargs['n_frames']}"
        if not (folder / "driving_log.csv").exists():
            if folder.exists():  # a render interrupted before renders were atomic
                aside = folder.with_name(
                    f"{folder.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}"
                )
                folder.rename(aside)
                logger.warning(
                    "demo recording %s had no driving_log.csv (an interrupted render): "
                    "moved it to %s (delete it when you like) and rendering it again",
                    folder,
                    aside,
                )
            logger.info("rendering demo recording %s (%d frames)", folder, kwargs["n_frames"])
            write_demo_recording(folder, **kwargs)  # atomic: all of it or nothing
        made.append(str(folder))
    return [made[0]], [made[1]]


def augment_config(args) -> AugmentConfig:
    """The augmentation asked for (ValueError, named, for an impossible setting)."""
    p = args.augment_corruptions
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"--augment-corruptions needs a probability in [0, 1] (0 = off); got {p}")
    if args.no_augment:
        if p:
            raise ValueError(
                "--no-augment turns every augmentation off; drop it to use "
                f"--augment-corruptions {p}"
            )
        return NO_AUGMENT
    return AugmentConfig(
        recovery_p=args.recovery,
        max_offset_m=args.max_offset,
        max_yaw_deg=args.max_yaw,
        lookahead_m=args.lookahead,
        recovery_gain=args.recovery_gain,
        shift_p=args.shift,
        corruption_p=p,
    )


def closed_loop_selection(config: TrainConfig):
    """The closed-loop selection the config asks for, or None."""
    if not config.closed_loop_every:
        return None
    # The evaluator sits above training (it reads recordings through training's
    # reader); only the train.py entry point wires the two together.
    from evaluation.selection import ClosedLoopSelection

    return ClosedLoopSelection(
        config.val_recordings,
        every=config.closed_loop_every,
        patience=config.patience,
        progress=True,
    )


def defaults_epochs(args) -> int:
    return DEMO_EPOCHS if not args.data else TrainConfig().epochs


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    # Keras warns on every .h5 save that the format is legacy; .h5 is the Udacity convention.
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        augment = augment_config(args)
        if args.dagger < 0:
            raise ValueError(f"--dagger needs a number of rounds >= 0, got {args.dagger}")
        if args.dagger_epochs is not None and args.dagger_epochs < 1:
            raise ValueError(
                f"--dagger-epochs needs a number of epochs >= 1, got {args.dagger_epochs}"
            )
        if args.dagger and not augment.recovery_p:
            raise ValueError("--dagger trains on recovery views: give --recovery P with P > 0")
    except ValueError as exc:
        return error_exit(exc, logger)
    config = TrainConfig(
        arch=args.arch,
        data=list(args.data),
        val_recordings=list(args.val_recording),
        epochs=args.epochs if args.epochs is not None else defaults_epochs(args),
        batch_size=args.batch_size,
        lr=args.lr,
        val_fraction=args.val_fraction,
        side_cameras=not args.no_side_cameras,
        side_correction=args.side_correction,
        balance_cap=args.balance_cap,
        passes=args.passes,
        patience=args.patience,
        seed=args.seed,
        out=args.out,
        pipeline=args.pipeline,
        mixed_precision=args.mixed_precision,
        steps_per_execution=args.steps_per_execution,
        closed_loop_every=args.closed_loop_every,
        augment=augment,
    )
    try:  # before the demo data is rendered: a bad setting should not cost 25 s
        config.validate_settings()
    except ValueError as exc:
        return error_exit(exc, logger)
    if not config.data:
        if config.val_recordings:
            return error_exit("--val-recording needs --data as well", logger)
        config.data, config.val_recordings = demo_recordings(Path(args.out))
        config.demo = True
        if args.lr is None:
            config.lr = DEMO_LR
        logger.warning(
            "no --data given: training on PROCEDURALLY GENERATED DEMO DATA (%s), "
            "not on simulator recordings",
            ", ".join(config.data + config.val_recordings),
        )
    try:
        selection = closed_loop_selection(config)
        run = train(config, progress=not args.quiet, selection=selection)
    except (RecordingError, ValueError, FileExistsError) as exc:
        return error_exit(exc, logger)
    if args.dagger:
        from evaluation.dagger import run_rounds

        try:
            rounds = run_rounds(
                config,
                args.dagger,
                noise=args.dagger_noise,
                first_run=run,
                epochs=args.dagger_epochs,
                selection=selection,
                progress=not args.quiet,
            )
        except (RecordingError, ValueError) as exc:
            return error_exit(exc, logger)
        for r in rounds:
            logger.info(
                "DAgger round %d: %s interventions/km on the validation recordings, %s states; %s",
                r["round"],
                r.get("cl_interventions_per_km", "n/a"),
                r["states"],
                r["run"],
            )
        run = Path(rounds[-1]["run"])
    if config.demo and not args.no_drive:
        drive_demo(run, config.val_recordings[0], quiet=args.quiet)
    print(run)
    return 0


def drive_demo(run: Path, recording: str, *, quiet: bool) -> int:
    """Drive the trained model in closed loop on the held-out demo road (the evaluator's
    ``closed-loop`` command, outputs in RUN/closed-loop/: summary, views.mp4, plots)."""
    from evaluation.cli import main as evaluate

    out = run / "closed-loop"
    logger.info(
        "driving the trained model in closed loop on the held-out demo road "
        "(python evaluate.py closed-loop %s %s --out %s)",
        run,
        recording,
        out,
    )
    argv = ["closed-loop", str(run), recording, "--out", str(out), "--recovery-points", "4"]
    status = evaluate(argv + (["--quiet"] if quiet else []))
    if status == 0:
        logger.info("the car's view while driving: %s", out / "views.mp4")
    return status


if __name__ == "__main__":
    sys.exit(main())
