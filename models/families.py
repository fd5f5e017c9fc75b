"""More efficient steering families: ``eff-slim`` (EffNet) and ``mnv2`` (MobileNetV2).

Both take the raw ``(160, 320, 3)`` frame with the seed's in-graph preprocessing
(rows 80..140, 128x128, -0.5..0.5) so they are compared with ``base`` and ``eff`` on
the same pixels. Every figure in the comments is from ``models.macs.profile`` on
the default build (regenerate: ``python -m evaluation.explain --profile eff-slim mnv2``);
parameter counts are asserted exactly by ``tests/models/test_families.py``.

The budget (docs/slimming.md): parameters <= 25% of base (865,921 -> 216,480) and
MACs <= 15% of base (296.5M measured by models.macs -> 44.5M).
"""

from __future__ import annotations

import keras
from keras import layers

from models.architectures import SEED_PRE
from models.blocks import BN_MOMENTUM, depthwise_he, effnet_block, frame_input, preprocess
from models.registry import register

# He initialisation everywhere (models/blocks.py: Glorot shrank the signal ~4x per
# depthwise conv, to ~1e-12 after 20 convs).
INIT = "he_normal"

# --- eff-slim -------------------------------------------------------------------
# The seed's eff, measured: 634,913 parameters, 43.1M MACs. Its Flatten -> Dense 256
# head holds 567,488 parameters (89%) for 0.57M MACs; the five blocks hold 67,360
# parameters and 42.3M MACs, of which block1 takes 22.3M (its (2,1) projection
# 32->64 at 64x64 alone is 16.8M) and block2 13.6M.
#
# eff-slim: block1 gets half the seed's channels (1x1 to 16, out 32), so its
# projection costs 64*64*2*16*32 = 4.2M instead of 16.8M: block1 6.9M MACs (seed
# 22.3M), block2 (now fed 32 channels) 9.4M (seed 13.6M). Blocks 3-5 keep the seed's
# widths: together they cost only 6.4M MACs and hold most of the capacity (55k of
# the 63k block parameters). Total: 81,681 parameters (9.4% of base), 23.0M MACs
# (7.8% of base's 296.5M).
EFF_SLIM_BLOCKS = ((16, 32), (32, 64), (32, 64), (64, 128), (64, 128))
# Head: a 1x1 conv 128 -> 16 on the final 4x4 map, then Flatten (256) -> Dense 64.
# Global average pooling would be cheaper still but discards *where* in the frame
# the road edges are, which is what steering is read from; the 16-channel 4x4 map
# keeps that layout with 2,048 + 16,448 parameters instead of the seed's 524,544 for
# Dense(2048 -> 256) alone.
EFF_SLIM_SQUEEZE = 16
EFF_SLIM_HEAD = 64


def _bn_act(x, name: str, *, act: str):
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    if act == "relu6":
        return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x)
    if act == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.3, name=f"{name}_act")(x)
    raise ValueError(f"act must be 'relu6' or 'leaky_relu'. Received: {act=}")


def _squeeze_head(x, squeeze: int, units: int, *, act: str, dropout: float):
    """1x1 conv to ``squeeze`` channels, Flatten, Dense ``units``, Dense 1 (zero init)."""
    x = layers.Conv2D(squeeze, 1, use_bias=False, kernel_initializer=INIT, name="head_squeeze")(x)
    x = _bn_act(x, "head_squeeze", act=act)
    x = layers.Flatten(name="head_flatten")(x)
    x = layers.Dense(units, kernel_initializer=INIT, name="head_fc1")(x)
    x = _bn_act(x, "head_fc1", act=act)
    x = layers.Dropout(dropout, name="head_fc1_drop")(x)
    # Zero-initialised output: the loss starts at the labels' variance (models/blocks.py).
    return layers.Dense(1, kernel_initializer="zeros", name="steering")(x)


@register(
    "eff-slim",
    summary="EffNet, narrow first block, 1x1-squeeze head: 9.4% of base params, 7.8% of MACs",
    params=81_681,
)
def eff_slim() -> keras.Model:
    frame = frame_input()
    x = preprocess(frame, **SEED_PRE)
    for i, (ch_in, ch_out) in enumerate(EFF_SLIM_BLOCKS, start=1):
        x = effnet_block(x, ch_in, ch_out, name=f"block{i}")
        # The seed's eff drops 0.25 after every block; with 12x fewer parameters the
        # model needs less regularisation, so 0.1.
        x = layers.Dropout(0.1, name=f"block{i}_drop")(x)
    out = _squeeze_head(x, EFF_SLIM_SQUEEZE, EFF_SLIM_HEAD, act="leaky_relu", dropout=0.3)
    return keras.Model(frame, out, name="eff-slim")


# --- mnv2 -----------------------------------------------------------------------
# MobileNetV2 (Sandler et al. 2018) stages: (expansion t, channels c, repeats n,
# stride s) as in the paper's Table 2, cut to the 128x128 crop: the stem's stride 2
# gives 64x64 and four stride-2 stages give 4x4, the same final grid as eff.
# Widths: the paper's 16/24/32 for the early stages, then 48/64 instead of 64/96
# (its last stages would alone hold >150k parameters, over budget with the head).
# Measured: stage2 (t=6 at 64x64 -> 32x32) costs 18.8M of the 37.2M MACs, its first
# expansion 16 -> 96 at 64x64 alone 6.3M; stage4 holds the most parameters (51.6k).
# Total: 149,185 parameters (17.2% of base), 37.2M MACs (12.5% of base).
MNV2_STEM = 16
MNV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 48, 2, 2), (6, 64, 1, 2))


def inverted_residual(x, expansion: int, filters: int, *, strides: int, name: str):
    """Expansion 1x1 (skipped when t == 1), depthwise 3x3, linear 1x1 projection;
    identity shortcut when stride 1 and channel counts match. BatchNorm + ReLU6
    after the expansion and the depthwise conv, BatchNorm only after the projection
    (the paper's linear bottleneck: ReLU on the narrow tensor destroys information)."""
    c_in = x.shape[-1]
    shortcut = x
    if expansion != 1:
        x = layers.Conv2D(
            c_in * expansion, 1, use_bias=False, kernel_initializer=INIT, name=f"{name}_expand"
        )(x)
        x = _bn_act(x, f"{name}_expand", act="relu6")
    x = layers.DepthwiseConv2D(
        3,
        strides=strides,
        padding="same",
        use_bias=False,
        depthwise_initializer=depthwise_he(3 * 3, truncated=True),
        name=f"{name}_dw",
    )(x)
    x = _bn_act(x, f"{name}_dw", act="relu6")
    x = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=INIT, name=f"{name}_project")(
        x
    )
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_project_bn")(x)
    if strides == 1 and c_in == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


@register(
    "mnv2",
    summary="MobileNetV2 inverted residuals (ReLU6, linear bottleneck), 1x1-squeeze head",
    params=149_185,
)
def mnv2() -> keras.Model:
    frame = frame_input()
    x = preprocess(frame, **SEED_PRE)
    x = layers.Conv2D(
        MNV2_STEM,
        3,
        strides=2,
        padding="same",
        use_bias=False,
        kernel_initializer=INIT,
        name="stem",
    )(x)
    x = _bn_act(x, "stem", act="relu6")
    for s, (t, c, n, stride) in enumerate(MNV2_STAGES, start=1):
        for b in range(n):
            x = inverted_residual(
                x, t, c, strides=stride if b == 0 else 1, name=f"stage{s}_block{b + 1}"
            )
    out = _squeeze_head(x, EFF_SLIM_SQUEEZE, EFF_SLIM_HEAD, act="relu6", dropout=0.3)
    return keras.Model(frame, out, name="mnv2")
