"""The simulator car's response to steering: the model and its fit."""

import math

import numpy as np
import pytest

from evaluation.closed_loop.car_model import (
    BICYCLE,
    CarResponse,
    ResponseState,
    fit_response,
    predicted_yaw,
    response_per_interval,
)


def test_first_order_lag_by_hand():
    r = CarResponse(lag_s=0.1)
    wheel, mean = r.advance(np.array([0.0]), np.array([0.5]), np.array([0.05]))
    assert wheel[0] == pytest.approx(0.5 * (1 - math.exp(-0.5)))
    assert mean[0] == pytest.approx(0.5 * (1 - 0.1 / 0.05 * (1 - math.exp(-0.5))))
    # The bicycle: at once.
    assert BICYCLE.advance(np.array([0.0]), np.array([0.5]), np.array([0.05]))[1][0] == 0.5
    # Gain scales the target; the wheel never goes past full lock.
    assert CarResponse(gain=1.5).advance(np.zeros(1), np.ones(1), np.ones(1))[0][0] == 1.0


def test_a_delayed_step_arrives_after_the_delay():
    """Delay 0.15 s, no lag, steps of 0.1 s: a step command given at t = 0 moves the
    wheel from t = 0.15, i.e. half-way through the second step."""
    state = ResponseState(CarResponse(delay_s=0.15), np.zeros(1))
    means = [state.step(np.ones(1), np.array([0.1]))[0] for _ in range(4)]
    assert means == pytest.approx([0.0, 0.5, 1.0, 1.0])
    state.reset(np.array([True]), np.array([-0.3]))
    assert state.step(np.array([-0.3]), np.array([0.1]))[0] == pytest.approx(-0.3)


def test_fit_recovers_a_known_response():
    """Turning generated from keyboard-like steering through delay 0.04 s, lag 0.1 s
    and gain 0.8 (plus 5% noise): the fit finds them and explains far more than
    the bicycle does."""
    rng = np.random.default_rng(1)
    n = 900
    t = np.cumsum(rng.uniform(0.06, 0.08, n))
    steer = np.where(rng.random(n) < 0.7, 0.0, rng.choice([-0.5, -0.25, 0.25, 0.5], n))
    ds = np.full(n - 1, 0.6)
    truth = CarResponse(delay_s=0.04, lag_s=0.1, gain=0.8)
    yaw = predicted_yaw(truth, t, steer, ds)
    yaw = yaw + rng.normal(0.0, 0.05 * yaw.std(), yaw.shape)
    fit = fit_response(t, steer, ds, yaw)
    r = fit["response"]
    assert r.delay_s == pytest.approx(0.04, abs=0.021)
    assert r.lag_s == pytest.approx(0.1, abs=0.021)
    assert r.gain == pytest.approx(0.8, abs=0.051)
    assert fit["r2"] > 0.95 > 0.7 > fit["bicycle_r2"]
    # response_per_interval is what predicted_yaw integrates.
    w = response_per_interval(truth, t, steer)
    assert len(w) == n - 1 and np.abs(w).max() <= 0.5 * 0.8 + 1e-9


def test_fit_refuses_too_little_data():
    with pytest.raises(ValueError, match="at least 20"):
        fit_response(np.arange(5.0), np.zeros(5), np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match="lag_s"):
        CarResponse(lag_s=-0.1)
