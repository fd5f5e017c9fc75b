"""The seeds' worked numbers, recomputed by evaluation.explain with models.macs."""

import numpy as np
import pytest

from evaluation.explain import main, variants
from models.layers import ChannelShuffle


@pytest.fixture(scope="module")
def seed_rows():
    return {r.variant: r for r in variants(3, 256, 5, 12, padding="valid", bias=False)}


def test_regular_conv_of_the_seed(seed_rows):
    """256 filters of 5x5x3: 5*5*3*256 = 19,200 weights (no bias). 'valid' on 12x12
    leaves 12-5+1 = 8 -> 8x8 outputs; each of the 8*8*256 = 16,384 outputs needs
    5*5*3 = 75 multiplications: 1,228,800."""
    r = seed_rows["regular"]
    assert (r.params, r.macs, r.output) == (19_200, 1_228_800, (8, 8, 256))


def test_depthwise_separable_of_the_seed(seed_rows):
    """Depthwise 5x5 per input channel: 5*5*3 = 75 weights, 8*8*75 = 4,800 MACs.
    Pointwise 1x1x3 x 256: 768 weights, 8*8*3*256 = 49,152 MACs.
    Total 843 weights and 53,952 MACs; 53,952 / 1,228,800 = 4.39%."""
    r = seed_rows["depthwise"]
    assert (r.params, r.macs) == (843, 53_952)
    assert round(100 * r.macs / seed_rows["regular"].macs, 2) == 4.39


def test_spatially_separable_3x3_is_six_of_nine():
    """One 3x3 single-channel filter as 3x1 then 1x3: 3 + 3 = 6 weights instead of 9."""
    rows = {r.variant: r for r in variants(1, 1, 3, 12)}
    assert (rows["spatial"].params, rows["regular"].params) == (6, 9)
    # MACs: 3x1 valid -> 10x12 outputs x 3 = 360; then 1x3 -> 10x10 x 3 = 300; 660
    # against 10*10*9 = 900.
    assert (rows["spatial"].macs, rows["regular"].macs) == (660, 900)


@pytest.mark.parametrize(
    ("groups", "params", "thop_ops", "macs"),
    [
        (1, 1_650, 19_965_000, 19_602_000),
        (2, 840, 10_164_000, 9_801_000),
        (3, 570, 6_897_000, 6_534_000),
        (6, 300, 3_630_000, 3_267_000),
    ],
)
def test_grouped_conv_matches_thop(groups, params, thop_ops, macs):
    """Conv2d(6, 30, 3, groups=g) with bias on 6x112x112: 30*(6/g)*9 + 30 weights =
    1,650 / 840 / 570 / 300. The seed's operation counts (19.96M, 10.16M, 6.90M,
    3.63M) fit a 110x110 output (padding 0, not 1: a 112x112 output would give
    376,320*55 = 20.70M): 30*110*110 = 363,000 outputs x (6/g*9 + 1 for the bias) =
    363,000*55 = 19,965,000; *28 = 10,164,000; *19 = 6,897,000; *10 = 3,630,000.
    Plain MACs drop the bias: 363,000 * 54 / 27 / 18 / 9."""
    rows = {r.variant: r for r in variants(6, 30, 3, 112, groups=groups, bias=True)}
    r = rows["regular"] if groups == 1 else rows["grouped"]
    assert (r.params, r.thop_ops, r.macs, r.output) == (params, thop_ops, macs, (110, 110, 30))


def test_channel_shuffle_permutes_and_round_trips():
    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
    layer = ChannelShuffle(2)
    # groups (0 1 2)(3 4 5) interleave to 0 3 1 4 2 5.
    np.testing.assert_array_equal(np.asarray(layer(x))[0, 0, 0], [0, 3, 1, 4, 2, 5])
    clone = ChannelShuffle.from_config(layer.get_config())
    assert clone.groups == 2
    with pytest.raises(ValueError, match="groups must be >= 1"):
        ChannelShuffle(0)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="larger than"):
        variants(3, 8, 5, 4)
    with pytest.raises(ValueError, match="padding must be"):
        variants(3, 8, 3, 8, padding="full")


def test_cli_prints_the_table(capsys):
    assert main(["--conv", "3", "256", "5", "--input", "12"]) == 0
    out = capsys.readouterr().out
    assert "| regular | 19,200 |" in out and "| depthwise | 843 | 4.39% | 53,952 | 4.39%" in out
