"""The maths of the depthwise-separable replacement (slimming.factorize, slimming.activations)."""

from __future__ import annotations

import numpy as np
import pytest

from slimming import activations as act
from slimming.convert import Candidate
from slimming.factorize import (
    Factors,
    PointwiseLeastSquares,
    RelativeError,
    conv_params,
    dropped_energy,
    kernel_error,
    pair_params,
    svd_factors,
)


def candidate(kernel_shape, *, bias=True, padding="same") -> Candidate:
    return Candidate(
        name="conv",
        kernel_shape=kernel_shape,
        use_bias=bias,
        strides=(1, 1),
        padding=padding,
        dilation_rate=(1, 1),
        activation="relu",
    )


def relative_error(pred, target) -> float:
    e = RelativeError()
    e.add(pred, target)
    return e.value


def test_an_exactly_separable_kernel_is_reproduced_exactly():
    rng = np.random.default_rng(0)
    depthwise = rng.normal(size=(5, 5, 3, 1)).astype(np.float32)
    pointwise = rng.normal(size=(1, 1, 3, 16)).astype(np.float32)
    bias = rng.normal(size=16).astype(np.float32)
    kernel = Factors(depthwise, pointwise, bias).kernel()

    f = svd_factors(kernel, bias)

    assert dropped_energy(kernel) < 1e-9 * np.sum(kernel.astype(np.float64) ** 2)
    np.testing.assert_allclose(f.kernel(), kernel, atol=1e-5)
    np.testing.assert_array_equal(f.bias, bias)
    # The layer output on real-valued inputs: the pair and the conv agree to rounding.
    cand = candidate((5, 5, 3, 16))
    x = rng.normal(size=(4, 12, 20, 3)).astype(np.float32)
    target = act.conv_pre(x, kernel, bias, cand)
    err = relative_error(act.pair_pre(x, f, cand), target)
    assert err < 1e-10, err
    assert act.errors(cand, kernel, bias, x, x, {"svd": f})["svd"]["pre"] < 1e-10


def test_kernel_error_is_the_sum_of_the_dropped_squared_singular_values():
    # By hand: channel 0's 9x2 slice has singular values (3, 2), channel 1's (5, 1); the
    # rank-1 fit drops 2 and 1, so the squared kernel error is 2^2 + 1^2 = 5.
    rng = np.random.default_rng(1)
    kernel = np.zeros((3, 3, 2, 2))
    for c, s in enumerate(((3.0, 2.0), (5.0, 1.0))):
        u, _ = np.linalg.qr(rng.normal(size=(9, 2)))
        v, _ = np.linalg.qr(rng.normal(size=(2, 2)))
        kernel[:, :, c, :] = (u @ np.diag(s) @ v.T).reshape(3, 3, 2)
    assert dropped_energy(kernel) == pytest.approx(5.0, rel=1e-12)
    assert kernel_error(kernel, svd_factors(kernel)) == pytest.approx(5.0, rel=1e-6)


def test_svd_fit_is_the_best_rank_one_fit_for_a_random_kernel():
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(3, 3, 6, 10))
    f = svd_factors(kernel)
    best = kernel_error(kernel, f)
    s = np.linalg.svd(np.moveaxis(kernel, 2, 0).reshape(6, 9, 10), compute_uv=False)
    assert best == pytest.approx(float(np.sum(s[:, 1:] ** 2)), rel=1e-6)
    assert best == pytest.approx(dropped_energy(kernel), rel=1e-6)
    # Any other pair (here: perturbed) is worse.
    for scale in (1e-3, 1e-1):
        other = Factors(
            f.depthwise + scale * rng.normal(size=f.depthwise.shape).astype(np.float32),
            f.pointwise,
            None,
        )
        assert kernel_error(kernel, other) > best


@pytest.mark.parametrize("seed", [0, 1])
def test_least_squares_refit_is_never_worse_than_the_svd_init(seed):
    rng = np.random.default_rng(seed)
    cand = candidate((3, 3, 4, 6))
    kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
    bias = rng.normal(size=6).astype(np.float32)
    # Correlated, non-centred inputs like real activations; channel 3 is dead (always 0).
    base = rng.normal(size=(8, 10, 12, 1))
    x = (base + 0.3 * rng.normal(size=(8, 10, 12, 4)) + 0.5).astype(np.float32)
    x[..., 3] = 0.0
    svd = svd_factors(kernel, bias)

    ls = act.fit_pointwise(cand, svd, kernel, bias, x, x)
    err = act.errors(cand, kernel, bias, x, x, {"svd": svd, "ls": ls})

    assert err["ls"]["pre"] <= err["svd"]["pre"] + 1e-12
    assert err["ls"]["pre"] < 0.9 * err["svd"]["pre"]  # and here strictly better
    np.testing.assert_array_equal(ls.depthwise, svd.depthwise)
    # The dead channel's pointwise weights are not excited by the data: they stay.
    np.testing.assert_allclose(ls.pointwise[0, 0, 3], svd.pointwise[0, 0, 3], atol=1e-6)


def test_least_squares_is_exact_when_the_target_is_reachable():
    rng = np.random.default_rng(3)
    c, o = 5, 7
    z = rng.normal(size=(500, c))
    p = rng.normal(size=(c, o))
    b = rng.normal(size=o)
    ls = PointwiseLeastSquares(c, o)
    ls.add(z[:200], z[:200] @ p + b)
    ls.add(z[200:], z[200:] @ p + b)
    start = Factors(np.ones((3, 3, c, 1), np.float32), np.zeros((1, 1, c, o), np.float32), None)
    f = ls.solve(start)
    np.testing.assert_allclose(f.pointwise[0, 0], p, atol=1e-5)
    np.testing.assert_allclose(f.bias, b, atol=1e-5)


def test_parameter_counts_are_exact():
    # Conv2D 5x5 3->64 with bias: 5*5*3*64 + 64 = 4,864; depthwise 5*5*3 = 75 and
    # pointwise 3*64 + 64 = 256: 331.
    assert conv_params((5, 5, 3, 64), True) == 4_864
    assert pair_params((5, 5, 3, 64), True) == 331
    assert pair_params((3, 3, 128, 128), True) == 3 * 3 * 128 + 128 * 128 + 128 == 17_664
    assert pair_params((3, 3, 64, 64), False) == 576 + 4_096
    kernel = np.zeros((5, 5, 3, 64), np.float32)
    assert svd_factors(kernel, np.zeros(64, np.float32)).params == 331


def test_relative_error_is_normalised_by_the_variance_not_the_energy():
    rng = np.random.default_rng(4)
    target = 10.0 + rng.normal(size=(1000, 3))  # large mean, unit variance
    mean_only = np.broadcast_to(target.mean(axis=0), target.shape)
    assert relative_error(mean_only, target) == pytest.approx(1.0, rel=1e-9)
    assert relative_error(target, target) == 0.0
