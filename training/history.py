"""What a run keeps of each epoch: ``history.csv``, the best checkpoint, ``curves.png``.

:class:`EpochLog` writes one log line and one ``history.csv`` row per epoch as
training goes (so an interrupted run keeps them), :class:`BestCheckpoint` saves the
served model whenever validation MSE improves, :func:`best_epoch_row` says afterwards
which epoch that was, :func:`plot_curves` draws the rows and :func:`read_history`
reads them back.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np

from training.data import TrainingData

logger = logging.getLogger(__name__)

#: Training frames (centre camera, not augmented) re-scored after every epoch, so the
#: training error is comparable across epochs and runs (Keras' own ``loss`` is a
#: running mean over an epoch of augmented batches with dropout on).
PROBE_FRAMES = 512


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


def read_history(path: Path, numbers: bool = False) -> list[dict]:
    """The rows of a ``history.csv`` as :class:`EpochLog` wrote them: values as text, or
    with ``numbers`` as floats (an empty cell as NaN), as :func:`best_epoch_row` takes
    them."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if numbers:
        rows = [
            {k: float(v) if v not in (None, "") else math.nan for k, v in r.items()} for r in rows
        ]
    return rows


def best_epoch_row(rows: list[dict]) -> dict:
    """The epoch whose checkpoint was kept: fewest closed-loop interventions per km
    (tie: lower val MSE) among epochs driven in closed loop, else lowest val MSE."""
    driven = [r for r in rows if math.isfinite(r.get("cl_interventions_per_km", math.nan))]
    if driven:
        return min(driven, key=lambda r: (r["cl_interventions_per_km"], r["val_mse"]))
    return min(rows, key=lambda r: r["val_mse"])


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    """Loss curves; with closed-loop selection, interventions per km below them."""
    import matplotlib  # heavy: imported on use

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
