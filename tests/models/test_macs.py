"""The MAC counter (models.macs) against hand computation, layer type by layer type."""

import keras
import pytest
from keras import layers

import models
from models.macs import profile, profile_markdown, total_macs


def rows_of(shape, *stack):
    inp = keras.Input(shape=shape)
    x = inp
    for layer in stack:
        x = layer(x)
    return {r.name: r for r in profile(keras.Model(inp, x))}


def one(shape, layer):
    rows = rows_of(shape, layer)
    return rows[layer.name]


@pytest.mark.parametrize(
    ("padding", "expected"),
    [
        # 12x12x3 input, 5x5 kernel, 256 filters. 'valid' leaves 8x8 outputs:
        # 8*8 * 5*5*3 * 256 = 64 * 75 * 256 = 1,228,800
        ("valid", 1_228_800),
        # 'same' keeps 12x12: 144 * 75 * 256 = 2,764,800
        ("same", 2_764_800),
    ],
)
def test_conv2d(padding, expected):
    r = one((12, 12, 3), layers.Conv2D(256, 5, padding=padding, name="c"))
    assert r.macs == expected
    assert r.params == 5 * 5 * 3 * 256 + 256  # the bias costs a parameter, not a MAC


def test_strided_and_grouped_conv2d():
    # 9x9x8, 3x3 stride 2 valid -> 4x4x16: 16 positions * 9 * 8 * 16 = 18,432
    assert one((9, 9, 8), layers.Conv2D(16, 3, strides=2, name="c")).macs == 18_432
    # groups=4: each filter sees 8/4 = 2 channels: 16 * 9 * 2 * 16 = 4,608
    assert one((9, 9, 8), layers.Conv2D(16, 3, strides=2, groups=4, name="g")).macs == 4_608
    # EffNet's (2,1) kernel, stride (1,2), same: 64x128x32 -> 64x64x64: 4096 * 2*32 * 64
    r = one((64, 128, 32), layers.Conv2D(64, (2, 1), strides=(1, 2), padding="same", name="p"))
    assert r.macs == 16_777_216


def test_depthwise_conv2d():
    # 10x10x16 same, 3x3, multiplier 2: 100 positions * 9 * 16 * 2 = 28,800
    r = one((10, 10, 16), layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="d"))
    assert r.macs == 28_800
    # EffNet's 1x3 depthwise on 128x128x32: 16384 * 3 * 32 = 1,572,864
    assert one((128, 128, 32), layers.DepthwiseConv2D((1, 3), padding="same", name="e")).macs == (
        1_572_864
    )


def test_separable_conv2d():
    # 10x10x16 -> 32, 3x3 same: depthwise 100*9*16 = 14,400 + pointwise 100*16*32 = 51,200
    r = one((10, 10, 16), layers.SeparableConv2D(32, 3, padding="same", name="s"))
    assert r.macs == 14_400 + 51_200
    # valid 3x3 on 10x10 -> 8x8: 64*9*16 + 64*16*32 = 9,216 + 32,768
    assert one((10, 10, 16), layers.SeparableConv2D(32, 3, name="v")).macs == 41_984


def test_dense():
    assert one((128,), layers.Dense(64, name="d")).macs == 128 * 64  # 8,192
    # Dense on a (5, 128) sequence: applied at 5 positions
    assert one((5, 128), layers.Dense(64, name="t")).macs == 5 * 8_192


def test_pooling_and_batchnorm():
    # 8x8x4 input
    assert one((8, 8, 4), layers.MaxPooling2D(2, name="m")).macs == 0
    assert one((8, 8, 4), layers.AveragePooling2D(2, name="a")).macs == 4 * 4 * 4 * 4  # 256
    assert one((8, 8, 4), layers.GlobalAveragePooling2D(name="g")).macs == 256
    assert one((8, 8, 4), layers.GlobalMaxPooling2D(name="x")).macs == 0
    bn = one((8, 8, 4), layers.BatchNormalization(name="b"))
    assert bn.macs == 256 and bn.params == 16
    assert one((8, 8, 4), layers.Rescaling(0.5, name="r")).macs == 256


def test_free_layers_and_total():
    rows = rows_of(
        (6, 6, 2),
        layers.Flatten(name="f"),
        layers.Dropout(0.5, name="dr"),
        layers.Dense(3, name="d"),
        layers.ReLU(name="a"),
    )
    assert [rows[n].macs for n in ("f", "dr", "d", "a")] == [0, 0, 72 * 3, 0]


def test_pilotnet_layers_by_hand():
    rows = {r.name: r for r in profile(models.build_model("pilotnet"))}
    # 66x200x3, 5x5 stride 2 valid -> 31x98x24: 3,038 * 75 * 24
    assert rows["conv1"].output_shape[1:] == (31, 98, 24)
    assert rows["conv1"].macs == 31 * 98 * 75 * 24  # 5,468,400
    # 3x3 stride 1 on 3x20x64 -> 1x18x64: 18 * 9 * 64 * 64
    assert rows["conv5"].macs == 18 * 9 * 64 * 64
    assert rows["head_fc1"].macs == 1152 * 100
    assert rows["pre_resize"].macs == 4 * 66 * 200 * 3  # bilinear, 4 taps per output


def test_every_architecture_is_fully_counted():
    for name in models.ARCHITECTURES:
        model = models.build_model(name)
        rows = profile(model)
        assert all(r.counted for r in rows), name
        assert sum(r.params for r in rows) == models.parameter_counts(model)["total"]
        assert total_macs(model) == sum(r.macs for r in rows) > 0
    text = profile_markdown(profile(models.build_model("eff")), "eff")
    assert "block1_proj" in text and "| total |" in text


def test_unknown_weighted_layer_is_flagged(caplog):
    rows = rows_of((4,), layers.Embedding(10, 3, name="emb"))
    assert rows["emb"].counted is False and rows["emb"].macs == 0
    assert "no rule" in caplog.text
