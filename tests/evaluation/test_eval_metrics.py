"""Open-loop metrics against hand-computed values."""

import math

import numpy as np
import pytest

from evaluation.metrics import bucket_of, correlation, steering_metrics

PRED = np.array([0.1, -0.2, 0.0, 0.3])
HUMAN = np.array([0.0, -0.1, 0.05, 0.5])


def test_errors_by_hand():
    m = steering_metrics(PRED, HUMAN)
    # errors 0.1, -0.1, -0.05, -0.2
    assert m["n"] == 4
    assert m["mse"] == pytest.approx((0.01 + 0.01 + 0.0025 + 0.04) / 4)  # 0.015625
    assert m["mae"] == pytest.approx(0.45 / 4)
    assert m["rmse"] == pytest.approx(0.125)
    assert m["bias"] == pytest.approx(-0.0625)


def test_correlation_by_hand():
    # deviations: pred (0.05, -0.25, -0.05, 0.25), human (-0.1125, -0.2125, -0.0625, 0.3875)
    expected = 0.1475 / math.sqrt(0.13 * 0.211875)
    assert correlation(PRED, HUMAN) == pytest.approx(expected)
    assert steering_metrics(PRED, HUMAN)["correlation"] == pytest.approx(0.88875, abs=1e-4)
    assert math.isnan(correlation(np.zeros(5), np.arange(5.0)))


def test_buckets_and_sign_agreement():
    assert bucket_of(HUMAN).tolist() == [0, 1, 1, 2]
    m = steering_metrics(PRED, HUMAN)
    b = m["buckets"]
    assert (b["straight"]["n"], b["gentle"]["n"], b["sharp"]["n"]) == (1, 2, 1)
    assert b["straight"]["mae"] == pytest.approx(0.1)
    assert b["gentle"]["mae"] == pytest.approx(0.075)
    assert b["gentle"]["bias"] == pytest.approx(-0.075)
    assert b["sharp"]["mae"] == pytest.approx(0.2)
    # turns: -0.1 (pred -0.2 agrees), 0.05 (pred 0.0 does not), 0.5 (pred 0.3 agrees)
    assert m["turn_frames"] == 3
    assert m["sign_agreement_in_turns"] == pytest.approx(2 / 3)


def test_smoothness_within_segments_only():
    m = steering_metrics(PRED, HUMAN)
    assert m["pred_mean_abs_step"] == pytest.approx(0.8 / 3)  # 0.3, 0.2, 0.3
    assert m["human_mean_abs_step"] == pytest.approx(0.7 / 3)  # 0.1, 0.15, 0.45
    assert m["smoothness_ratio"] == pytest.approx(8 / 7)
    two = steering_metrics(PRED, HUMAN, segments=[2, 2])  # the step 0 -> -0.2 -> 0.0 is cut
    assert two["pred_mean_abs_step"] == pytest.approx(0.3)
    assert two["human_mean_abs_step"] == pytest.approx(0.275)


def test_empty_bucket_and_bad_input():
    m = steering_metrics(np.zeros(3), np.zeros(3))
    assert m["buckets"]["sharp"]["n"] == 0 and math.isnan(m["buckets"]["sharp"]["mae"])
    assert math.isnan(m["sign_agreement_in_turns"])
    with pytest.raises(ValueError, match="same length"):
        steering_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="segments must sum"):
        steering_metrics(np.zeros(3), np.zeros(3), segments=[1, 1])
