"""models.blocks.depthwise_he: the one He initialisation of depthwise kernels.

EffNet blocks (eff, eff-slim, the digits nets) and mnv2's inverted residuals all use
it; these tests pin that it draws exactly what each used to draw with the same seed,
so a seeded model starts from the same weights as before it was shared.
"""

from __future__ import annotations

import keras
import numpy as np

from models.blocks import depthwise_he


def _draw(make_init, shape):
    keras.utils.set_random_seed(11)  # before the initialiser: it takes its seed when made
    return np.asarray(make_init()(shape))


def test_normal_draw_is_the_effnet_blocks_former_one():
    shape = (1, 3, 64, 1)
    old = lambda: keras.initializers.RandomNormal(stddev=(2.0 / 3) ** 0.5)  # noqa: E731
    np.testing.assert_array_equal(_draw(lambda: depthwise_he(3), shape), _draw(old, shape))


def test_truncated_draw_is_mnv2s_former_variance_scaling():
    for channels in (16, 96, 960):
        shape = (3, 3, channels, 1)
        got = _draw(lambda: depthwise_he(9, truncated=True), shape)
        old = lambda c=channels: keras.initializers.VarianceScaling(  # noqa: E731
            2.0 * c, "fan_in", "truncated_normal"
        )
        np.testing.assert_array_equal(got, _draw(old, shape))
        assert abs(got.std() / (2.0 / 9) ** 0.5 - 1) < 0.1


def test_digits_effnet_plus_depthwise_kernels_come_from_the_shared_init():
    from digits.nets import effnet_plus

    def kernels():
        keras.utils.set_random_seed(5)
        model = effnet_plus()
        return [
            np.asarray(layer.kernel)
            for layer in model.layers
            if isinstance(layer, keras.layers.DepthwiseConv2D)
        ]

    first, again = kernels(), kernels()
    assert len(first) == 4
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)  # a seed fixes them: no separate re-draw
    pooled = np.concatenate([k.ravel() for k in first])  # 576 weights
    # std sqrt(2 / 3) (fan-in 3), not he_normal's sqrt(2 / (3 * channels)) <= 0.15
    assert abs(pooled.std() / (2.0 / 3) ** 0.5 - 1) < 0.1
