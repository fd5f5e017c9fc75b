"""``python train.py``: train a steering model on simulator recordings."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import models
from training.augment import NO_AUGMENT, AugmentConfig
from training.recordings import RecordingError
from training.trainer import TrainConfig, train

logger = logging.getLogger("train")

#: Built-in default data: two procedurally rendered demo recordings (different seeds,
#: so validation is a different stretch of road), made once and reused.
DEMO_TRAIN = dict(n_frames=1500, seed=1)
DEMO_VAL = dict(n_frames=400, seed=2)
#: Epochs on the demo data unless --epochs is given: enough for the demo road (one
#: texture, no lighting changes) and about 10 minutes for eff on a 2-core CPU.
DEMO_EPOCHS = 5


def parse_args(argv=None) -> argparse.Namespace:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train a steering model on Udacity simulator recordings "
        "(folders holding driving_log.csv and IMG/). Without --data, trains on a "
        "generated demo recording.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate (default 1e-3 at batch 128, sqrt-scaled with batch)",
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
    p.add_argument(
        "--pipeline",
        choices=("auto", "host", "device"),
        default=defaults.pipeline,
        help="host: numpy batches; device: frames and augmentation on the "
        "accelerator; auto: device when a GPU is visible",
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
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", default=defaults.out, help="folder that receives the run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def demo_recordings(out: Path) -> tuple[list[str], list[str]]:
    """Generate (once) and return the demo training and validation recordings."""
    from sim.demo_road import write_demo_recording

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


def defaults_epochs(args) -> int:
    return DEMO_EPOCHS if not args.data else TrainConfig().epochs


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Keras warns on every .h5 save that the format is legacy; .h5 is the Udacity convention.
    logging.getLogger("absl").setLevel(logging.ERROR)
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
        augment=NO_AUGMENT if args.no_augment else AugmentConfig(),
    )
    try:  # before the demo data is rendered: a bad setting should not cost 25 s
        config.validate_settings()
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    if not config.data:
        if config.val_recordings:
            logger.error("--val-recording needs --data as well")
            return 2
        config.data, config.val_recordings = demo_recordings(Path(args.out))
        config.demo = True
        logger.warning(
            "no --data given: training on PROCEDURALLY GENERATED DEMO DATA (%s), "
            "not on simulator recordings",
            ", ".join(config.data + config.val_recordings),
        )
    try:
        run = train(config, progress=not args.quiet)
    except (RecordingError, ValueError, FileExistsError) as exc:
        logger.error("%s", exc)
        return 2
    print(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
