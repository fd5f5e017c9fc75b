"""Tiny steering models for the slimming tests (imported by the test modules)."""

from __future__ import annotations


def tiny_conv_model(seed: int = 0, *, kxk: bool = True):
    """A steering model (160x320x3 in, 1 out) with two 'same' KxK convs + ReLU + pool.

    Average pooling first keeps it fast: the convs see 20x40 maps. ``kxk=False`` gives
    1x1 convs only (nothing to replace).
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    k1, k2 = (5, 3) if kxk else (1, 1)
    frame = keras.Input(shape=(160, 320, 3), name="frame")
    x = layers.AveragePooling2D(8, name="pre_pool")(frame)
    x = layers.Rescaling(1.0 / 255.0, offset=-0.5, name="pre_scale")(x)
    x = layers.Conv2D(8, k1, padding="same", activation="relu", name="stage1_conv")(x)
    x = layers.Dropout(0.2, name="stage1_drop")(x)
    x = layers.MaxPooling2D(2, name="stage1_pool")(x)
    x = layers.Conv2D(12, k2, padding="same", activation="relu", name="stage2_conv")(x)
    x = layers.Dropout(0.2, name="stage2_drop")(x)
    x = layers.MaxPooling2D(2, name="stage2_pool")(x)
    x = layers.Flatten(name="head_flatten")(x)
    out = layers.Dense(1, name="steering")(x)
    return keras.Model(frame, out, name="tiny_base")
