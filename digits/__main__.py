"""``python -m digits --epochs N``: train the three digit classifiers, print a table."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass

import numpy as np

from core.cli import setup_logging
from digits import data
from digits.nets import NETS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    name: str
    trainable: int
    total: int
    macs: int
    accuracy: float
    train_s: float


def run(
    epochs: int,
    *,
    directory=data.DEFAULT_DIR,
    limit: int | None = None,
    batch_size: int = 64,
    names=tuple(NETS),
    seed: int = 0,
) -> list[Result]:
    """Train each named net on the fixed split and test it on the held-out digits."""
    import keras

    from models.io import parameter_counts
    from models.macs import total_macs

    (x_tr, y_tr), (x_te, y_te) = data.split(*data.load(directory), limit=limit)
    x_tr, x_te = x_tr.astype("float32"), x_te.astype("float32")
    results = []
    for name in names:
        keras.utils.set_random_seed(seed)
        model = NETS[name]()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        start = time.perf_counter()
        model.fit(x_tr, y_tr, batch_size=batch_size, epochs=epochs, verbose=0)
        train_s = time.perf_counter() - start
        pred = np.argmax(model.predict(x_te, batch_size=500, verbose=0), axis=1)
        counts = parameter_counts(model)
        results.append(
            Result(
                name,
                counts["trainable"],
                counts["total"],
                total_macs(model),
                float(np.mean(pred == y_te)),
                train_s,
            )
        )
        logger.info("%s: accuracy %.4f in %.1f s", name, results[-1].accuracy, train_s)
    return results


def table(results: list[Result], *, n_train: int, n_test: int, epochs: int) -> str:
    lines = [
        f"MNIST t10k split: train {n_train:,}, test {n_test:,} (fixed, seed {data.SPLIT_SEED}); "
        f"{epochs} epoch(s), CPU",
        "",
        "| net | trainable params | total params | MACs | test accuracy | train time (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.name} | {r.trainable:,} | {r.total:,} | {r.macs:,} | {r.accuracy:.4f} "
        f"| {r.train_s:.1f} |"
        for r in results
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digits", description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", default=str(data.DEFAULT_DIR), help="folder of the IDX .gz files")
    parser.add_argument("--limit", type=int, default=None, help="use only this many digits")
    parser.add_argument("--nets", nargs="+", choices=tuple(NETS), default=tuple(NETS))
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    setup_logging()
    try:
        results = run(args.epochs, directory=args.data, limit=args.limit, names=args.nets)
    except data.DigitsDataError as exc:
        parser.error(str(exc))
    n = args.limit or 10_000
    n_train = int(round(n * data.N_TRAIN / 10_000))
    print(table(results, n_train=n_train, n_test=n - n_train, epochs=args.epochs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
