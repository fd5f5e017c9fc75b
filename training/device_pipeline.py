"""The fast training path: frames kept on the accelerator, augmentation done there.

Measured before (../shared/docs/keras-pitfalls.md item 9): ``model.fit`` on float32
host arrays reached 4-5k images/s for PilotNet on an H100; the bound was the input
path, not the GPU. Here the decoded uint8 frames become one non-trainable variable
on the device (1.8 GB for the three shared recordings, 150 KB per frame), and a batch
is just 256 int32 frame indices plus labels. The label-aware augmentation runs in
``keras.ops`` inside the compiled train step, so it works on the JAX, TensorFlow and
PyTorch backends alike (no ``tf.*``).

Label changes without touching the labels: the wrapper returns
``sign * model(augmented) - shift * per_px`` where ``sign`` is -1 for flipped frames.
For a flipped, shifted frame the numpy pipeline's label is ``-(y + shift * per_px)``;
MSE against that equals MSE of the wrapper's output against ``y`` exactly (up to the
clip at +-1). So ``fit`` sees plain ``(indices, labels)`` and the served model stays
the plain architecture.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from training.augment import AugmentConfig


class OnDeviceAugmentation(keras.Model):
    """Training-only wrapper: frame indices in, (sign-and-shift-adjusted) steering out."""

    def __init__(
        self,
        model: keras.Model,
        frames: np.ndarray,
        augment: AugmentConfig,
        *,
        seed: int = 0,
        compute_dtype: str = "float32",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.model = model
        self.augment = augment
        self.height, self.width = frames.shape[1:3]
        self.frames = keras.Variable(frames, dtype="uint8", trainable=False, name="frames")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.compute_dtype_name = compute_dtype

    def _uniform(self, n, lo=0.0, hi=1.0):
        return keras.random.uniform((n,), lo, hi, seed=self.seed_generator)

    def call(self, indices, training=False):
        indices = ops.cast(ops.reshape(indices, (-1,)), "int32")
        x = ops.cast(ops.take(self.frames, indices, axis=0), "float32")
        if not training:
            return ops.cast(self.model(x, training=False), "float32")
        a = self.augment
        n = ops.shape(indices)[0]
        zeros = ops.zeros((n,), "float32")

        # Horizontal shift by t pixels (content moves right for t > 0), edges repeated.
        if a.shift_p:
            t = ops.round(self._uniform(n, -a.shift_max_px - 0.5, a.shift_max_px + 0.5))
            t = ops.where(self._uniform(n) < a.shift_p, t, zeros)
            cols = ops.arange(self.width, dtype="float32")[None, :] - t[:, None]
            cols = ops.cast(ops.clip(cols, 0, self.width - 1), "int32")
            idx = ops.broadcast_to(cols[:, None, :, None], ops.shape(x))
            x = ops.take_along_axis(x, idx, axis=2)
        else:
            t = zeros
        if a.flip_p:
            flipped = self._uniform(n) < a.flip_p
            x = ops.where(flipped[:, None, None, None], ops.flip(x, axis=2), x)
            sign = ops.where(flipped, -1.0, 1.0)
        else:
            sign = ops.ones((n,), "float32")
        if a.shadow_p:
            lo, hi = a.shadow_gain
            gain = ops.where(self._uniform(n) < a.shadow_p, self._uniform(n, lo, hi), 1.0)
            top, bottom = self._uniform(n, 0, self.width), self._uniform(n, 0, self.width)
            left = self._uniform(n) < 0.5
            rows = ops.arange(self.height, dtype="float32")[None, :, None] / (self.height - 1)
            cols_f = ops.arange(self.width, dtype="float32")[None, None, :]
            boundary = top[:, None, None] + (bottom - top)[:, None, None] * rows
            mask = ops.equal(cols_f < boundary, left[:, None, None])
            x = x * ops.where(mask, gain[:, None, None], 1.0)[..., None]
        if a.brightness_p:
            lo, hi = a.brightness_range
            gain = ops.where(self._uniform(n) < a.brightness_p, self._uniform(n, lo, hi), 1.0)
            x = ops.clip(x * gain[:, None, None, None], 0.0, 255.0)
        pred = ops.cast(self.model(x, training=True), "float32")[:, 0]
        return (sign * pred - t * a.shift_per_px)[:, None]


def scaled_learning_rate(base_lr: float, batch_size: int, base_batch: int = 128) -> float:
    """Square-root scaling for Adam when the batch grows beyond the seed's 128.

    Linear scaling suits SGD; for Adam, whose step is normalised by the gradient's
    second moment, the square root keeps the noise scale of the update comparable.
    """
    return base_lr * float(np.sqrt(batch_size / base_batch))
