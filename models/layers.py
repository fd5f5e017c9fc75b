"""Preprocessing layers that live inside every model.

Built-in ``Cropping2D`` and ``Rescaling`` are used as they are. Resizing is our own
layer: Keras 3.15.1's ``Resizing`` defaults to ``training=True`` and hands that to
every later layer, so a BatchNorm model called as ``model(x)`` (and its exports)
silently runs BatchNorm in training mode (../shared/docs/keras-pitfalls.md, item 1).
``Resize`` takes no ``training`` argument and so cannot leak one. ``ColourConvert`` is
the colour conversion a model imported from the Udacity course had in its own
``drive.py`` (``models/legacy/``).
"""

from __future__ import annotations

import keras
import numpy as np
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


def _yuv_matrix() -> np.ndarray:
    """OpenCV's ``COLOR_RGB2YUV`` (BT.601) as rows Y, U, V over columns R, G, B.

    Y = 0.299 R + 0.587 G + 0.114 B; U = 0.492 (B - Y) + 128; V = 0.877 (R - Y) + 128
    (OpenCV's ``B2UF`` and ``R2VF`` constants; 128 is its offset for 8-bit images).
    """
    y = np.array([0.299, 0.587, 0.114])
    u = 0.492 * (np.array([0.0, 0.0, 1.0]) - y)
    v = 0.877 * (np.array([1.0, 0.0, 0.0]) - y)
    return np.stack([y, u, v])


#: mode -> (3x3 matrix: output channels x input R, G, B; offsets; clip to 0..255).
#: ``yuv-opencv31`` is OpenCV 3.1's RGB-to-YUV, which exchanged the red and blue roles
#: (fixed in 3.2): the numbers today's ``cv2.cvtColor(rgb, cv2.COLOR_BGR2YUV)`` gives.
#: The YUV modes clip like OpenCV's uint8 result (V leaves 0..255 for saturated reds and
#: blues) but do not round.
COLOUR_MODES = {
    "bgr": (np.eye(3)[::-1], np.zeros(3), False),
    "yuv": (_yuv_matrix(), np.array([0.0, 128.0, 128.0]), True),
    "yuv-opencv31": (_yuv_matrix()[:, ::-1], np.array([0.0, 128.0, 128.0]), True),
}


@keras.saving.register_keras_serializable(package="steering")
class ColourConvert(keras.layers.Layer):
    """A fixed per-pixel colour conversion of 0..255 RGB frames: ``bgr``, ``yuv`` or
    ``yuv-opencv31`` (see :data:`COLOUR_MODES`). No weights; the output is float32."""

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in COLOUR_MODES:
            raise ValueError(f"mode must be one of {sorted(COLOUR_MODES)}. Received: {mode=}")
        self.mode = mode
        matrix, offset, self._clip = COLOUR_MODES[mode]
        self._matrix = np.ascontiguousarray(matrix.T, dtype="float32")  # x @ matrix.T
        self._offset = offset.astype("float32")

    def call(self, inputs):
        x = ops.matmul(inputs, ops.convert_to_tensor(self._matrix, dtype=inputs.dtype))
        x = x + ops.convert_to_tensor(self._offset, dtype=inputs.dtype)
        return ops.clip(x, 0.0, 255.0) if self._clip else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config
