"""Preprocessing layers that live inside every model.

Built-in ``Cropping2D`` and ``Rescaling`` are used as they are. Resizing is our own
layer: Keras 3.15.1's ``Resizing`` defaults to ``training=True`` and hands that to
every later layer, so a BatchNorm model called as ``model(x)`` (and its exports)
silently runs BatchNorm in training mode (../shared/docs/keras-pitfalls.md, item 1).
``Resize`` takes no ``training`` argument and so cannot leak one.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="steering")
class Resize(keras.layers.Layer):
    """Bilinear resize to ``(height, width)``; output is float32 like the input."""

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        if height <= 0 or width <= 0:
            raise ValueError(f"height and width must be > 0. Received: {height=}, {width=}")
        self.height = int(height)
        self.width = int(width)
        self.interpolation = interpolation

    def call(self, inputs):
        return ops.image.resize(
            inputs,
            (self.height, self.width),
            interpolation=self.interpolation,
            antialias=False,
            data_format="channels_last",
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, interpolation=self.interpolation)
        return config


@keras.saving.register_keras_serializable(package="steering")
class ChannelShuffle(keras.layers.Layer):
    """ShuffleNet's channel shuffle (Zhang et al. 2018): reshape the channels to
    ``(groups, channels // groups)``, transpose, flatten, so the next grouped conv
    sees channels from every group. No weights, no MACs (a permutation)."""

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        if int(groups) < 1:
            raise ValueError(f"groups must be >= 1. Received: groups={groups}")
        self.groups = int(groups)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels % self.groups:
            raise ValueError(
                f"channels must be divisible by groups. Received: {channels=}, groups={self.groups}"
            )
        super().build(input_shape)

    def call(self, inputs):
        h, w, c = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        x = ops.reshape(inputs, (-1, h, w, self.groups, c // self.groups))
        x = ops.transpose(x, (0, 1, 2, 4, 3))
        return ops.reshape(x, (-1, h, w, c))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups)
        return config
