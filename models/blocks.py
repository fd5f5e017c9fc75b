"""Block helpers shared by the architectures.

Each helper takes a tensor and returns a tensor; every layer is named from its
block (``f"{name}_dw"``, ``f"{name}_bn"``) so ``summary()`` reads like a table.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from models.layers import Resize
from models.registry import INPUT_SHAPE


def preprocess(
    frame,
    *,
    crop_top: int,
    crop_bottom: int,
    size: tuple[int, int],
    value_range: tuple[float, float],
    name: str = "pre",
):
    """Crop rows, resize and map 0..255 pixels to ``value_range`` inside the graph."""
    rows = INPUT_SHAPE[0]
    if not 0 <= crop_top < rows - crop_bottom <= rows:
        raise ValueError(
            f"crop must leave rows of the {rows}-row frame. Received: {crop_top=}, {crop_bottom=}"
        )
    lo, hi = value_range
    x = layers.Cropping2D(((crop_top, crop_bottom), (0, 0)), name=f"{name}_crop")(frame)
    x = Resize(*size, name=f"{name}_resize")(x)
    return layers.Rescaling(scale=(hi - lo) / 255.0, offset=lo, name=f"{name}_scale")(x)


def conv_pool(x, filters: int, kernel: int, *, separable: bool = False, dropout: float, name: str):
    """The seed's conventional stage: conv (same, ReLU), dropout, 2x2 max-pool."""
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    x = conv(filters, kernel, padding="same", activation="relu", name=f"{name}_conv")(x)
    x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


#: BatchNorm momentum. Keras' 0.99 needs ~500 steps for the moving statistics to
#: forget their initial (0, 1); an epoch on one recording is 10-40 steps, and with
#: 24 BatchNorms in series a stale variance compounds: at 0.99 the EffNet still gave
#: the same steering for every frame at inference after 400 steps (measured). 0.9
#: settles in ~50 steps.
BN_MOMENTUM = 0.9


def _post(x, name: str, *, alpha: float):
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=alpha, name=f"{name}_act")(x)


#: The standard deviation of a unit normal truncated at +-2, as Keras' VarianceScaling
#: divides by it so that a truncated draw keeps the intended standard deviation.
_TRUNCATED_STD = 0.87962566103423978


def depthwise_he(taps: int, *, truncated: bool = False):
    """He initialisation for a depthwise kernel: each output sees ``taps`` (kh*kw) inputs.

    Keras' ``he_normal`` takes the fan-in of a depthwise kernel as kh*kw*channels (the
    kernel is stored as (kh, kw, channels, 1)), which starts it sqrt(channels) too small:
    the untrained eff's activations shrank ~30x per block for 32-128 channels, to 1e-9
    at the head. This gives standard deviation sqrt(2 / taps): a normal draw, or with
    ``truncated`` a normal truncated at two standard deviations and rescaled, exactly
    as ``VarianceScaling(2 * channels, "fan_in", "truncated_normal")`` draws it.
    """
    if truncated:
        stddev = math.sqrt(2.0 / taps) / _TRUNCATED_STD
        return keras.initializers.TruncatedNormal(stddev=stddev)
    return keras.initializers.RandomNormal(stddev=(2.0 / taps) ** 0.5)


def effnet_block(x, ch_in: int, ch_out: int, *, alpha: float = 0.3, name: str):
    """EffNet block (Freeman et al. 2018): halves height and width.

    1x1 conv to ``ch_in``; depthwise 1x3; max-pool (2,1); depthwise 3x1; a (2,1)
    conv with stride (1,2) to ``ch_out``. Every conv is bias-free and followed by
    BatchNorm and LeakyReLU (the bias would be cancelled by BatchNorm's mean).

    Kernels use He initialisation. With Keras' default Glorot, a depthwise 1x3 kernel
    (fan-in 3) shrinks activations about 4x per conv: after the 20 convs of five blocks
    the signal was ~1e-12 of the input (measured), far below BatchNorm's epsilon
    (1e-3), so at inference every frame gave the same steering.
    """
    init = "he_normal"
    x = layers.Conv2D(
        ch_in, 1, padding="same", use_bias=False, kernel_initializer=init, name=f"{name}_pw"
    )(x)
    x = _post(x, f"{name}_pw", alpha=alpha)
    x = layers.DepthwiseConv2D(
        (1, 3),
        padding="same",
        use_bias=False,
        depthwise_initializer=depthwise_he(3),
        name=f"{name}_dw13",
    )(x)
    x = _post(x, f"{name}_dw13", alpha=alpha)
    x = layers.MaxPooling2D((2, 1), strides=(2, 1), name=f"{name}_pool")(x)
    x = layers.DepthwiseConv2D(
        (3, 1),
        padding="same",
        use_bias=False,
        depthwise_initializer=depthwise_he(3),
        name=f"{name}_dw31",
    )(x)
    x = _post(x, f"{name}_dw31", alpha=alpha)
    x = layers.Conv2D(
        ch_out,
        (2, 1),
        strides=(1, 2),
        padding="same",
        use_bias=False,
        kernel_initializer=init,
        name=f"{name}_proj",
    )(x)
    return _post(x, f"{name}_proj", alpha=alpha)


def dense_head(
    x,
    units: tuple[int, ...],
    *,
    dropout: float,
    activation: str = "relu",
    batchnorm: bool = False,
    alpha: float = 0.3,
    name: str = "head",
):
    """Flatten, then Dense layers (each with activation, optional BatchNorm, dropout), Dense 1."""
    x = layers.Flatten(name=f"{name}_flatten")(x)
    for i, n in enumerate(units, start=1):
        if activation == "leaky_relu":
            x = layers.Dense(n, name=f"{name}_fc{i}")(x)
            x = layers.LeakyReLU(negative_slope=alpha, name=f"{name}_fc{i}_act")(x)
        else:
            x = layers.Dense(n, activation=activation, name=f"{name}_fc{i}")(x)
        if batchnorm:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_fc{i}_bn")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_fc{i}_drop")(x)
    # After BatchNorm and dropout 0.5 the last layer's inputs have unit variance times
    # 2: a Glorot-initialised output then starts with a training loss of 3-4 against
    # labels of variance 0.02. Starting it at zero starts the loss at the labels' variance.
    init = "zeros" if batchnorm else "glorot_uniform"
    return layers.Dense(1, kernel_initializer=init, name="steering")(x)


def frame_input() -> keras.KerasTensor:
    return keras.Input(shape=INPUT_SHAPE, name="frame")
