"""The training half of ``python train.py``: options to a checked run, and the demo data.

The options are :mod:`training.options`; this module turns them into a
:class:`training.config.TrainConfig` (every setting checked before any work) and
renders the demo recordings when no ``--data`` is given. ``train.py`` itself wires
training to the evaluator above it (closed-loop selection, DAgger rounds, the demo
drive), so nothing in ``training`` imports ``evaluation``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from core.cli import fields_from
from core.runs import KERAS_SUFFIXES, resolve_model
from sim.demo_recording import write_demo_recording
from training.augment import NO_AUGMENT, AugmentConfig
from training.config import DEMO_EPOCHS, DEMO_LR, TrainConfig, check_dagger, default_of
from training.options import build_parser

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


def train_config(args) -> TrainConfig:
    """The run asked for, every setting checked (ValueError, named): before the demo
    data is rendered, so a bad setting does not cost 25 s."""
    augment = augment_config(args)
    check_dagger(args.dagger, args.dagger_epochs, augment.recovery_p, first_epochs=args.epochs)
    given = fields_from(TrainConfig, args)
    given.update(
        epochs=args.epochs if args.epochs is not None else defaults_epochs(args),
        side_cameras=not args.no_side_cameras,
        augment=augment,
    )
    config = TrainConfig(**given)
    config.validate_settings()
    if config.init_from:  # a run folder names its model; checked before any work
        config.init_from = str(resolve_model(config.init_from, KERAS_SUFFIXES))
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


def defaults_epochs(args) -> int:
    return DEMO_EPOCHS if not args.data else default_of(TrainConfig, "epochs")
