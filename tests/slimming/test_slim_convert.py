"""Layer surgery, parameter counts and the acceptance rule (slimming.convert, slimming.search)."""

from __future__ import annotations

import numpy as np
import pytest
from slim_testkit import tiny_conv_model

import models
from slimming.convert import (
    ConversionError,
    build_student,
    conv_weights,
    find_candidates,
    get_pair_factors,
    require_candidates,
)
from slimming.factorize import svd_factors
from slimming.search import Settings, SlimData, Slimmer, final_model


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 160, 320, 3), dtype=np.uint8)


def weights_equal(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


def test_base_fully_converted_has_the_parameter_count_computed_by_hand():
    base = models.build_model("base")
    cands = require_candidates(base)
    assert [c.name for c in cands] == [f"stage{i}_conv" for i in range(1, 6)]
    # Saved per layer: (K*K*C*O + O) - (K*K*C + C*O + O)
    #   stage1 5x5 3->64:    4,864 -    331 =   4,533
    #   stage2/3 3x3 64->64: 36,928 -  4,736 =  32,192 (twice)
    #   stage4 3x3 64->128:  73,856 -  8,896 =  64,960
    #   stage5 3x3 128->128: 147,584 - 17,664 = 129,920
    # 865,921 - 263,797 = 602,124, the registered `separable` arch's count.
    assert [c.params_before - c.params_after for c in cands] == [
        4_533,
        32_192,
        32_192,
        64_960,
        129_920,
    ]
    factors = {c.name: svd_factors(*conv_weights(base, c.name)) for c in cands}
    slim = build_student(base, factors, cands)
    assert models.parameter_counts(slim)["total"] == 865_921 - 263_797 == 602_124
    assert models.ARCHITECTURES["separable"].params == 602_124
    assert slim.get_layer("stage1_conv_dw").count_params() == 75
    assert slim.get_layer("stage1_conv_pw").count_params() == 3 * 64 + 64
    # Only stage2 replaced: 865,921 - 32,192.
    only2 = build_student(base, {"stage2_conv": factors["stage2_conv"]}, cands)
    assert models.parameter_counts(only2)["total"] == 833_729


def test_student_without_replacements_is_bit_identical():
    model = tiny_conv_model()
    student = build_student(model, {})
    x = frames(3).astype(np.float32)
    assert np.array_equal(model.predict_on_batch(x), student.predict_on_batch(x))
    for layer in model.layers:
        assert weights_equal(layer, student.get_layer(layer.name))


def test_replacement_keeps_every_other_weight_and_holds_the_factors():
    model = tiny_conv_model()
    kernel, bias = conv_weights(model, "stage2_conv")
    f = svd_factors(kernel, bias)
    student = build_student(model, {"stage2_conv": f})
    names = [layer.name for layer in student.layers]
    assert "stage2_conv" not in names
    assert names.index("stage2_conv_dw") + 1 == names.index("stage2_conv_pw")
    assert student.get_layer("stage2_conv_pw").get_config()["activation"] == "relu"
    got = get_pair_factors(student, "stage2_conv")
    np.testing.assert_array_equal(got.depthwise, f.depthwise)
    np.testing.assert_array_equal(got.pointwise, f.pointwise)
    for name in ("stage1_conv", "steering"):
        assert weights_equal(model.get_layer(name), student.get_layer(name))
    # The original is untouched.
    np.testing.assert_array_equal(conv_weights(model, "stage2_conv")[0], kernel)


def test_model_without_kxk_conv_is_refused():
    with pytest.raises(ConversionError, match="no KxK Conv2D.*stage1_conv \\(kernel 1x1"):
        require_candidates(tiny_conv_model(kxk=False), "m.keras")
    assert find_candidates(models.build_model("eff"))[0] == []  # 1x1 and (2,1) only


def slim_data(model, n_train=12, n_val=6, noise=0.0) -> SlimData:
    """Validation labels = the model's own outputs (+ noise): without noise its MSE is 0."""
    from slimming.activations import predict_batches

    val = frames(n_val, seed=1)
    labels = predict_batches(model, val).reshape(-1)
    return SlimData(
        train_frames=frames(n_train, seed=2),
        val_frames=val,
        val_labels=labels + noise * np.random.default_rng(0).normal(size=len(labels)),
        fit_idx=np.arange(0, 8),
        probe_idx=np.arange(8, 12),
    )


def test_tolerance_zero_rejects_a_lossy_replacement_and_restores_the_original_exactly():
    model = tiny_conv_model(seed=5)
    data = slim_data(model)
    settings = Settings(tolerance=0.0, local_steps=0, e2e="off")
    result = Slimmer(model, require_candidates(model), data, settings).run()

    assert result.original_val_mse == 0.0
    tried = [a for a in result.attempts if "skipped" not in a]
    assert [(a["layer"], a["sweep"]) for a in tried] == [
        ("stage1_conv", "forward"),
        ("stage2_conv", "forward"),
    ]
    assert all(a["val_mse"] > 0 and not a["accepted"] for a in tried)
    # Nothing was accepted, so the backward sweep's retries would repeat: skipped.
    assert [a["layer"] for a in result.attempts if "skipped" in a] == ["stage2_conv", "stage1_conv"]
    assert result.accepted == {}
    restored = final_model(model, result)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]
    for layer in model.layers:
        assert weights_equal(layer, restored.get_layer(layer.name))
    x = frames(2, seed=9).astype(np.float32)
    assert np.array_equal(model.predict_on_batch(x), restored.predict_on_batch(x))


def test_generous_tolerance_accepts_and_reports_errors(tmp_path):
    model = tiny_conv_model(seed=6)
    data = slim_data(model, noise=0.1)
    settings = Settings(tolerance=1e9, local_steps=3, e2e="always", e2e_steps=2, e2e_batch=4)
    cands = require_candidates(model)
    result = Slimmer(model, cands, data, settings).run()

    assert set(result.accepted) == {"stage1_conv", "stage2_conv"}
    assert [a["sweep"] for a in result.attempts] == ["forward", "forward"]  # none to retry
    first, second = result.attempts
    assert first["upstream_replaced"] == [] and second["upstream_replaced"] == ["stage1_conv"]
    assert first["error"]["upstream"]["pre"] == 0.0  # same inputs as the original
    assert second["error"]["upstream"]["pre"] > 0.0  # stage1's replacement shows up
    for a in result.attempts:
        # (LS is fitted on the fit frames; these errors are on the disjoint probe frames.)
        assert all(np.isfinite(a["error"][k]["pre"]) for k in ("svd", "ls", "tuned", "e2e"))
        assert {"tuned", "e2e"} <= set(a["error"])
        assert a["e2e"]["steps"] == 2
    slim = final_model(model, result)
    expected = models.parameter_counts(model)["total"] - sum(c.params_before for c in cands)
    expected += sum(c.params_after for c in cands)
    # stage1 5x5 3->8: 608 -> 75 + 32 = 107; stage2 3x3 8->12: 876 -> 72 + 108 = 180.
    assert [c.params_after for c in cands] == [107, 180]
    assert models.parameter_counts(slim)["total"] == expected
    # It saves and loads like any project model (stock layers only, safe_mode).
    path = tmp_path / "slim.keras"
    slim.save(path)
    loaded = models.load_model(path)
    x = frames(2, seed=3).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(x), slim.predict_on_batch(x), atol=1e-6)
