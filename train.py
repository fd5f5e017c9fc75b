"""Train a steering model: ``python train.py --arch eff --data REC [REC ...]``.

Without ``--data`` it trains on the rendered demo road and ends by driving the trained
model in closed loop on a held-out stretch of it. This entry point wires the layers
together: :mod:`training` turns the options into a checked run and fits the model;
the evaluator above it (:mod:`evaluation`) chooses the checkpoint that drives best
(``--closed-loop-every``) and the steering gain (``--steering-gains``), runs the
DAgger rounds (``--dagger``) and drives the demo road. Nothing in ``training``
imports ``evaluation``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from core.allocator import retain_freed_memory
from core.cli import error_exit, setup_logging
from core.recordings import RecordingError
from training import cli, trainer

logger = logging.getLogger("train")


def closed_loop_selection(config, *, progress: bool = True):
    """The closed-loop selection the config asks for, or None; ``progress`` shows the
    references being built (visual odometry, road edges: minutes on a new recording)."""
    if not config.closed_loop_every:
        return None
    from evaluation.closed_loop.selection import ClosedLoopSelection  # heavy: the evaluator

    return ClosedLoopSelection(
        config.val_recordings,
        every=config.closed_loop_every,
        repeats=config.closed_loop_repeats,
        patience=config.patience,
        progress=progress,
    )


def dagger_rounds(config, args, first_run: Path, selection) -> Path:
    """The DAgger rounds after the first run, logged; the last round's run folder."""
    from evaluation.closed_loop.dagger import run_rounds  # heavy: the evaluator

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


def drive_demo(run: Path, recording: str, *, quiet: bool) -> int:
    """Drive the trained model in closed loop on the held-out demo road (the evaluator's
    ``closed-loop`` command, outputs in RUN/closed-loop/: summary, views.mp4, plots)."""
    from evaluation.cli import main as evaluate  # heavy: the evaluator

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


def main(argv=None) -> int:
    args = cli.parse_args(argv)
    setup_logging()
    try:
        retain_freed_memory()  # CPU steps 2x faster: freed activations are not faulted in again
    except ValueError as exc:
        return error_exit(exc, logger)
    # Keras warns on every .h5 save that the format is legacy; .h5 is the Udacity convention.
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        config = cli.train_config(args)
    except ValueError as exc:
        return error_exit(exc, logger)
    if not config.data:
        if config.val_recordings:
            return error_exit("--val-recording needs --data as well", logger)
        cli.use_demo_data(config, lr_given=args.lr is not None)
    try:
        selection = closed_loop_selection(config, progress=not args.quiet)
        run = trainer.train(config, progress=not args.quiet, selection=selection)
    except (RecordingError, ValueError, FileExistsError) as exc:
        return error_exit(exc, logger)
    if args.dagger:
        try:
            run = dagger_rounds(config, args, run, selection)
        except (RecordingError, ValueError) as exc:
            return error_exit(exc, logger)
    if config.calibrates_gain():
        from evaluation.closed_loop.selection import choose_steering_gain  # heavy: the evaluator

        try:
            choose_steering_gain(selection, run, config.steering_gains)
        except (ValueError, FileExistsError) as exc:
            return error_exit(exc, logger)
    if config.demo and not args.no_drive:
        drive_demo(run, config.val_recordings[0], quiet=args.quiet)
    print(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
