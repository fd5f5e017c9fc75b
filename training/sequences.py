"""Training and validation batches, as ``keras.utils.PyDataset`` over prepared data.

Training batches redraw every epoch the balanced rows, the camera of each row and the
augmentation parameters of each sample (:func:`training.augment.draw`); validation
batches are the centre frames in time order, never augmented, never resampled, so
the validation loss is comparable across epochs and runs. Both carry a dict for
:class:`training.device_pipeline.AugmentedTraining`, with decoded frames (host
pipeline) or frame indices (device pipeline).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from training.augment import draw
from training.data import CENTRE, LEFT, RIGHT, DataSettings, TrainingData, balance_indices
from training.recovery_view import SOURCE_X_M, nearest_source


class TrainSequence(keras.utils.PyDataset):
    """Training batches: balanced rows, the camera of each row, augmentation parameters.

    Each epoch redraws the balanced rows, the augmentation parameters of every
    sample (:func:`training.augment.draw`) and the camera it is taken from: with
    recovery views, the recorded camera nearest the displaced car's centre camera;
    without, a random camera with the fixed side-camera correction. So over the
    epochs every frame of every camera is seen while an epoch stays one pass over the
    (balanced) rows. A batch is a dict for
    :class:`training.device_pipeline.AugmentedTraining`, which augments in the train
    step; with ``indices`` it carries frame indices instead of frames.
    """

    def __init__(
        self,
        data: TrainingData,
        settings: DataSettings,
        *,
        seed: int,
        indices: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.data = data
        self.settings = settings
        self.indices = indices
        self.rng = np.random.default_rng(seed)
        self._draw()

    def _draw(self) -> None:
        passes = [self._draw_pass() for _ in range(self.settings.passes)]
        order = self.rng.permutation(sum(len(p["label"]) for p in passes))
        self.batches = {k: np.concatenate([p[k] for p in passes])[order] for k in passes[0]}

    @property
    def samples(self) -> int:
        """Samples per epoch."""
        return len(self.batches["label"])

    def _draw_pass(self) -> dict[str, np.ndarray]:
        d, s = self.data, self.settings
        rows = balance_indices(d.train_row_labels, s.balance_cap, self.rng)
        n = len(rows)
        params = draw(n, s.augment, self.rng, width=d.frames.shape[2])
        if d.states is not None and len(d.states["row"]) and s.augment.recovery_p:
            # DAgger: this share of the samples shows states the model itself visited.
            slots = self.rng.choice(n, int(round(s.dagger_share * n)), replace=False)
            pick = self.rng.integers(0, len(d.states["row"]), len(slots))
            rows[slots] = d.states["row"][pick]
            params["offset_m"][slots] = d.states["offset_m"][pick]
            params["yaw_rad"][slots] = d.states["yaw_rad"][pick]
        available = d.train_row_frames[rows] >= 0
        labels = d.train_row_labels[rows].copy()
        if s.augment.recovery_p:
            cams = nearest_source(params["offset_m"], params["yaw_rad"], available)
        else:
            cams = self.rng.integers(0, 3, n)
            cams[~available[np.arange(n), cams]] = CENTRE  # no such side image
            # The left camera sees the car displaced left: steer right (+) to return.
            correction = np.select([cams == LEFT, cams == RIGHT], [1.0, -1.0], 0.0)
            labels = np.clip(labels + s.side_correction * correction, -1.0, 1.0)
        return {
            "source": d.train_row_frames[rows, cams],
            "centre": d.train_row_frames[rows, CENTRE],
            "source_x": np.asarray(SOURCE_X_M, np.float32)[cams],
            "label": labels.astype(np.float32),
            **params,
        }

    def __len__(self) -> int:
        return math.ceil(self.samples / self.settings.batch_size)

    def __getitem__(self, index: int):
        bs = self.settings.batch_size
        batch = {k: v[index * bs : (index + 1) * bs] for k, v in self.batches.items()}
        for key in ("source", "centre"):
            sel = batch[key]
            batch[key] = sel.astype(np.int32) if self.indices else self.data.frames[sel]
        return batch, batch["label"][:, None]

    def on_epoch_end(self) -> None:
        self._draw()


class ValidationSequence(keras.utils.PyDataset):
    """Validation batches: centre frames in time order, exactly as recorded."""

    def __init__(self, data: TrainingData, batch_size: int, *, indices: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data = data
        self.batch_size = batch_size
        self.indices = indices

    def __len__(self) -> int:
        return math.ceil(len(self.data.val_frames) / self.batch_size)

    def __getitem__(self, index: int):
        bs = self.batch_size
        sel = self.data.val_frames[index * bs : (index + 1) * bs]
        y = self.data.val_labels[index * bs : (index + 1) * bs]
        x = sel.astype(np.int32) if self.indices else self.data.frames[sel]
        return {"source": x}, y[:, None]
