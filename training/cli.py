"""``python train.py``: train a steering model on simulator recordings.

The options are :mod:`training.options`; this module turns them into a
:class:`training.config.TrainConfig`, renders the demo data when no ``--data`` is
given, trains, runs the DAgger rounds asked for and drives the demo road.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from core.cli import error_exit, setup_logging
from core.recordings import RecordingError
from sim.demo_recording import write_demo_recording
from training.augment import NO_AUGMENT, AugmentConfig
from training.config import DEMO_EPOCHS, DEMO_LR, TrainConfig, default_of
from training.options import build_parser, fields_from
from training.trainer import train

logger = logging.getLogger("train")

#: Built-in default data: two procedurally rendered demo recordings (different seeds,
#: so validation is a different stretch of road), made once and reused.
DEMO_TRAIN = dict(n_frames=1500, seed=1)
DEMO_VAL = dict(n_frames=400, seed=2)


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def demo_recordings(out: Path) -> tuple[list[str], list[str]]:
    """Generate (once) and return the demo training and validation recordings."""
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
    p = args.corruption_p
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"--augment-corruptions needs a probability in [0, 1] (0 = off); got {p}")
    if args.no_augment:
        if p:
            raise ValueError(
                "--no-augment turns every augmentation off; drop it to use "
                f"--augment-corruptions {p}"
            )
        return NO_AUGMENT
    return AugmentConfig(**fields_from(AugmentConfig, args))


def check_dagger(args, augment: AugmentConfig) -> None:
    """The DAgger options, checked before training (ValueError, named)."""
    if args.dagger < 0:
        raise ValueError(f"--dagger needs a number of rounds >= 0, got {args.dagger}")
    if args.dagger_epochs is not None and args.dagger_epochs < 1:
        raise ValueError(f"--dagger-epochs needs a number of epochs >= 1, got {args.dagger_epochs}")
    if args.dagger and not augment.recovery_p:
        raise ValueError("--dagger trains on recovery views: give --recovery P with P > 0")


def train_config(args) -> TrainConfig:
    """The run asked for, every setting checked (ValueError, named): before the demo
    data is rendered, so a bad setting does not cost 25 s."""
    augment = augment_config(args)
    check_dagger(args, augment)
    given = fields_from(TrainConfig, args)
    given.update(
        epochs=args.epochs if args.epochs is not None else defaults_epochs(args),
        side_cameras=not args.no_side_cameras,
        augment=augment,
    )
    config = TrainConfig(**given)
    config.validate_settings()
    return config


def use_demo_data(config: TrainConfig, *, lr_given: bool) -> None:
    """Train on the demo recordings (rendered on first use), at the demo's rate."""
    config.data, config.val_recordings = demo_recordings(Path(config.out))
    config.demo = True
    if not lr_given:
        config.lr = DEMO_LR
    logger.warning(
        "no --data given: training on PROCEDURALLY GENERATED DEMO DATA (%s), "
        "not on simulator recordings",
        ", ".join(config.data + config.val_recordings),
    )


def closed_loop_selection(config: TrainConfig):
    """The closed-loop selection the config asks for, or None."""
    if not config.closed_loop_every:
        return None
    # The evaluator sits above training (it reads recordings through training's
    # reader); only the train.py entry point wires the two together.
    from evaluation.closed_loop.selection import ClosedLoopSelection

    return ClosedLoopSelection(
        config.val_recordings,
        every=config.closed_loop_every,
        patience=config.patience,
        progress=True,
    )


def defaults_epochs(args) -> int:
    return DEMO_EPOCHS if not args.data else default_of(TrainConfig, "epochs")


def dagger_rounds(config: TrainConfig, args, first_run: Path, selection) -> Path:
    """The DAgger rounds after the first run, logged; the last round's run folder."""
    from evaluation.closed_loop.dagger import run_rounds

    rounds = run_rounds(
        config,
        args.dagger,
        noise=args.dagger_noise,
        first_run=first_run,
        epochs=args.dagger_epochs,
        selection=selection,
        progress=not args.quiet,
    )
    for r in rounds:
        logger.info(
            "DAgger round %d: %s interventions/km on the validation recordings, %s states; %s",
            r["round"],
            r.get("cl_interventions_per_km", "n/a"),
            r["states"],
            r["run"],
        )
    return Path(rounds[-1]["run"])


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    # Keras warns on every .h5 save that the format is legacy; .h5 is the Udacity convention.
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        config = train_config(args)
    except ValueError as exc:
        return error_exit(exc, logger)
    if not config.data:
        if config.val_recordings:
            return error_exit("--val-recording needs --data as well", logger)
        use_demo_data(config, lr_given=args.lr is not None)
    try:
        selection = closed_loop_selection(config)
        run = train(config, progress=not args.quiet, selection=selection)
    except (RecordingError, ValueError, FileExistsError) as exc:
        return error_exit(exc, logger)
    if args.dagger:
        try:
            run = dagger_rounds(config, args, run, selection)
        except (RecordingError, ValueError) as exc:
            return error_exit(exc, logger)
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
