"""The registered steering architectures.

Parameter counts are asserted exactly by ``tests/models/test_architectures.py``.
"""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import conv_pool, dense_head, effnet_block, frame_input, preprocess
from models.registry import register

# The seed's preprocessing for base/eff/separable: rows 80..140 hold the road ahead
# (above is sky and scenery, below the bonnet); 128x128 after resizing.
SEED_PRE = dict(crop_top=80, crop_bottom=20, size=(128, 128), value_range=(-0.5, 0.5))

# Seed conv stages: (filters, kernel). Five 2x2 pools take 128x128 down to 4x4.
SEED_STAGES = ((64, 5), (64, 3), (64, 3), (128, 3), (128, 3))
SEED_HEAD = (256, 128, 64)


def _conventional(name: str, *, separable: bool) -> keras.Model:
    frame = frame_input()
    x = preprocess(frame, **SEED_PRE)
    for i, (filters, kernel) in enumerate(SEED_STAGES, start=1):
        x = conv_pool(x, filters, kernel, separable=separable, dropout=0.2, name=f"stage{i}")
    out = dense_head(x, SEED_HEAD, dropout=0.5)
    return keras.Model(frame, out, name=name)


@register(
    "base",
    summary="the seed's conventional CNN: 5 conv+pool stages (64..128), dense 256-128-64",
    params=865_921,
)
def base() -> keras.Model:
    return _conventional("base", separable=False)


@register(
    "separable",
    summary="base with every 3x3/5x5 conv depthwise-separable (MobileNet style), same head",
    params=602_124,
)
def separable() -> keras.Model:
    return _conventional("separable", separable=True)


# EffNet blocks of the seed: (ch_in, ch_out); each halves height and width.
EFF_BLOCKS = ((32, 64), (32, 64), (32, 64), (64, 128), (64, 128))


@register(
    "eff",
    summary="the seed's EffNet (5 blocks, BatchNorm + LeakyReLU in every block), dense head",
    # The seed shipped BatchNorm only in the head (630,433 parameters). BatchNorm
    # after every block conv adds 4 x (32+32+32+64) x 3 + 4 x (64+64+64+128) x 2 =
    # 4,480 parameters (half of them non-trainable moving statistics): 634,913.
    params=634_913,
)
def eff() -> keras.Model:
    frame = frame_input()
    x = preprocess(frame, **SEED_PRE)
    for i, (ch_in, ch_out) in enumerate(EFF_BLOCKS, start=1):
        x = effnet_block(x, ch_in, ch_out, name=f"block{i}")
        x = layers.Dropout(0.25, name=f"block{i}_drop")(x)
    out = dense_head(x, SEED_HEAD, dropout=0.5, activation="leaky_relu", batchnorm=True)
    return keras.Model(frame, out, name="eff")


@register(
    "pilotnet",
    summary="NVIDIA PilotNet as the community uses it: 66x200 input, 5 convs, ELU, dense 100-50-10",
    params=252_219,
)
def pilotnet() -> keras.Model:
    frame = frame_input()
    # 60 rows of sky and 25 of bonnet removed; 66x200 is NVIDIA's input size.
    x = preprocess(frame, crop_top=60, crop_bottom=25, size=(66, 200), value_range=(-1.0, 1.0))
    for i, (filters, kernel, stride) in enumerate(
        ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1)), start=1
    ):
        x = layers.Conv2D(filters, kernel, strides=stride, activation="elu", name=f"conv{i}")(x)
    x = layers.Flatten(name="head_flatten")(x)
    for i, n in enumerate((100, 50, 10), start=1):
        x = layers.Dense(n, activation="elu", name=f"head_fc{i}")(x)
    out = layers.Dense(1, name="steering")(x)
    return keras.Model(frame, out, name="pilotnet")
