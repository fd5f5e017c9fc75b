"""The three digit classifiers. Inputs are raw 28x28x1 pixels 0..255 (scaled in-graph).

How the seed's counts were matched (no source came with the seed): an exhaustive
search over small conv/pool/dense stacks (/tmp scripts, not kept) found that a
LeNet-style net gives exactly 147,658 trainable parameters:

    conv 5x5x1x16 + 16       =     416   (28 -> 24, pool -> 12)
    conv 5x5x16x32 + 32      =  12,832   (12 -> 8, pool -> 4)
    dense 4*4*32=512 -> 256  = 131,328
    BatchNorm(256) gamma+beta=     512   (+512 non-trainable moving statistics)
    dense 256 -> 10          =   2,570
                               147,658

(the brief's guess, Keras' conv 32/64 3x3 example, gives 34,826 or 1.2M depending
on the head). No natural EffNet stack gave 68,090: the EffNet here is two of the
project's blocks (32 -> 64, 64 -> 128) and a Flatten -> Dense 10 head, 88,874
trainable parameters; docs/slimming.md reports both counts.
"""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import BN_MOMENTUM, effnet_block

INPUT = (28, 28, 1)


def _input():
    inp = keras.Input(INPUT, name="digit")
    return inp, layers.Rescaling(1 / 255.0, name="scale")(inp)


def baseline() -> keras.Model:
    inp, x = _input()
    for i, filters in enumerate((16, 32), start=1):
        x = layers.Conv2D(filters, 5, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="fc1_bn")(x)
    x = layers.Dropout(0.3, name="fc1_drop")(x)
    return keras.Model(inp, layers.Dense(10, name="logits")(x), name="baseline")


def effnet() -> keras.Model:
    inp, x = _input()
    x = effnet_block(x, 32, 64, name="block1")  # 28x28 -> 14x14
    x = effnet_block(x, 64, 128, name="block2")  # 14x14 -> 7x7
    x = layers.Flatten(name="flatten")(x)  # 7*7*128 = 6,272 -> 62,730 of the 88,874
    return keras.Model(inp, layers.Dense(10, name="logits")(x), name="effnet")


def effnet_plus() -> keras.Model:
    """Our EffNet: a 3x3 stem, two EffNet blocks, global average pool.

    - The seed's first 1x1 conv on a 1-channel digit is rank 1 (every channel a
      scaled copy of the pixels); a 3x3 stem (16 filters, 144 weights) gives the
      blocks real edges to work on.
    - The Flatten head of ``effnet`` holds 62,730 of its 88,874 parameters (71%);
      after two blocks a digit is a 7x7 map that global average pooling summarises
      for 1,290 parameters (128 -> 10).
    - Depthwise kernels start at std sqrt(2/3), as every EffNet block's do
      (:func:`models.blocks.depthwise_he`: Keras' he_normal uses 3*channels as the
      fan-in of a depthwise kernel).
    """
    inp, x = _input()
    x = layers.Conv2D(
        16, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name="stem"
    )(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.LeakyReLU(negative_slope=0.3, name="stem_act")(x)
    for i, (ch_in, ch_out) in enumerate(((32, 64), (64, 128)), start=1):
        x = effnet_block(x, ch_in, ch_out, name=f"block{i}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, layers.Dense(10, name="logits")(x), name="effnet-plus")


NETS = {"baseline": baseline, "effnet": effnet, "effnet-plus": effnet_plus}
