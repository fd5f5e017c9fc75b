"""The training-only wrapper that augments inside the compiled train step.

Both pipelines train through :class:`AugmentedTraining`, so the augmentation of
:mod:`training.augment` (``keras.ops``) is one piece of code on every backend:

- **host** (any machine): batches carry decoded uint8 frames;
- **device** (an accelerator): the decoded uint8 frames become one non-trainable
  variable on the device (1.8 GB for the three shared recordings, 150 KB per
  frame), and a batch is just frame indices plus the drawn parameters. Measured
  before (../shared/docs/keras-pitfalls.md item 9): ``model.fit`` on float32 host
  arrays reached 4-5k images/s for PilotNet on an H100, bound by the input path.

Labels change without a custom train step: the wrapper returns
``model(augmented) - augmented_label + label``, so the MSE against the recorded
``label`` that ``fit`` computes is exactly the MSE of the model against the
augmented label, and the served model stays the plain architecture.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from training.augment import PARAMS, AugmentConfig, apply


class AugmentedTraining(keras.Model):
    """Training-only wrapper: a batch dict in, (label-adjusted) steering out.

    The batch holds ``source`` and ``centre`` (frames, or frame indices when
    ``frames`` is given), ``source_x`` (lateral position of the camera that took
    ``source``), ``label`` and the parameters drawn by :func:`training.augment.draw`.
    Outside training only ``source`` is needed and the plain model's answer returned.
    """

    def __init__(
        self,
        model: keras.Model,
        augment: AugmentConfig,
        frames: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.model = model
        self.augment = augment
        self.frames = (
            None
            if frames is None
            else keras.Variable(frames, dtype="uint8", trainable=False, name="frames")
        )

    def _frames(self, x):
        if self.frames is None:
            return ops.cast(x, "float32")
        idx = ops.cast(ops.reshape(x, (-1,)), "int32")
        return ops.cast(ops.take(self.frames, idx, axis=0), "float32")

    def call(self, batch, training=False):
        source = self._frames(batch["source"])
        if not training:
            return ops.cast(self.model(source, training=False), "float32")
        centre = self._frames(batch["centre"])
        label = ops.reshape(ops.cast(batch["label"], "float32"), (-1,))
        params = {k: ops.reshape(batch[k], (-1,)) for k in PARAMS}
        source_x = ops.reshape(ops.cast(batch["source_x"], "float32"), (-1,))
        x, target = apply(source, centre, label, params, source_x, self.augment)
        pred = ops.cast(self.model(x, training=True), "float32")[:, 0]
        return (pred - target + label)[:, None]
