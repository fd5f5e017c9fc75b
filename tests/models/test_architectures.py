"""Every registered architecture: exact parameter counts, shapes, round trips."""

import re

import numpy as np
import pytest

import models
from core.runs import ModelLoadError

ARCHS = sorted(models.ARCHITECTURES)
RNG = np.random.default_rng(0)
FRAMES = RNG.integers(0, 256, size=(4, *models.INPUT_SHAPE)).astype("float32")


@pytest.fixture(scope="module", params=ARCHS)
def model(request):
    return models.build_model(request.param)


def test_registry_has_required_architectures():
    assert {"base", "eff", "pilotnet", "separable"} <= set(models.ARCHITECTURES)


def test_parameter_count_is_exact(model):
    assert models.parameter_counts(model)["total"] == models.ARCHITECTURES[model.name].params


@pytest.mark.parametrize(
    ("name", "params"),
    [("base", 865_921), ("eff", 634_913), ("pilotnet", 252_219), ("separable", 602_124)],
)
def test_required_counts_from_the_issue(name, params):
    # Stated independently of the registry so a registry edit cannot hide a change.
    assert models.parameter_counts(models.build_model(name))["total"] == params


def test_eff_batchnorm_split():
    counts = models.parameter_counts(models.build_model("eff"))
    # Moving mean+variance of BatchNorm: blocks 2*(32+32+32+64)*3 + 2*(64+64+64+128)*2
    # = 2,240; head 2*(256+128+64) = 896.
    assert counts["non_trainable"] == 2_240 + 896


def test_takes_raw_frame_and_outputs_finite_steering(model):
    assert model.input_shape == (None, 160, 320, 3)
    assert model.output_shape == (None, 1)
    out = np.asarray(model(FRAMES, training=False))
    assert out.shape == (4, 1)
    assert np.isfinite(out).all()


def test_no_lambda_layers(model):
    assert not [layer for layer in model.layers if type(layer).__name__ == "Lambda"]


def test_serving_call_matches_predict_and_does_not_touch_batchnorm(model):
    """keras-pitfalls item 1: Resizing must not switch BatchNorm to training mode."""
    before = [np.array(w) for w in model.non_trainable_weights]
    expected = model.predict(FRAMES, verbose=0)
    np.testing.assert_allclose(np.asarray(model(FRAMES)), expected, rtol=1e-5, atol=1e-5)
    for w0, w1 in zip(before, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(w0, np.array(w1))


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_save_load_round_trip_is_identical(model, tmp_path, suffix):
    model.compile(optimizer="adam", loss="mean_squared_error")
    path = tmp_path / f"model{suffix}"
    model.save(path)
    loaded = models.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(FRAMES, verbose=0), model.predict(FRAMES, verbose=0)
    )


def test_scale_steering_multiplies_the_steering_exactly(model, tmp_path):
    """The gain folded into the output layer: steering x4 in every frame (a power of two,
    so exactly), the parameters unchanged, and the scaled file loads and steers x4 too."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    out = copy.get_layer("steering")  # families start it at zeros: give it a slope
    out.set_weights([RNG.normal(0, 0.1, w.shape).astype("float32") for w in out.get_weights()])
    before = np.asarray(copy(FRAMES, training=False))
    assert np.abs(before).min() > 0
    models.scale_steering(copy, 4.0)
    after = np.asarray(copy(FRAMES, training=False))
    np.testing.assert_array_equal(after, 4.0 * before)
    assert models.parameter_counts(copy) == models.parameter_counts(model)
    copy.save(tmp_path / "scaled.keras")
    loaded = models.load_model(tmp_path / "scaled.keras")
    np.testing.assert_array_equal(np.asarray(loaded(FRAMES, training=False)), after)


def test_scale_steering_refuses_what_it_cannot_scale_exactly():
    import keras

    x = keras.Input(models.INPUT_SHAPE)
    flat = keras.layers.GlobalAveragePooling2D()(x)
    squashed = keras.Model(x, keras.layers.Dense(1, activation="tanh", name="steering")(flat))
    with pytest.raises(ValueError, match="expected a linear Dense output layer named 'steering'"):
        models.scale_steering(squashed, 1.5)
    steering = keras.layers.Dense(1, name="steering")(flat)
    after = keras.Model(x, keras.layers.Dense(1, name="late")(steering))
    with pytest.raises(ValueError, match="late comes after it"):
        models.scale_steering(after, 1.5)
    unnamed = keras.Model(x, keras.layers.Dense(1)(flat))
    with pytest.raises(ValueError, match="found none"):
        models.scale_steering(unnamed, 1.5)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="finite number > 0"):
            models.scale_steering(squashed, bad)


def test_preprocessing_crops_the_configured_rows():
    """Only rows 80..140 reach the base model: changing others leaves the output unchanged."""
    m = models.build_model("base")
    x = FRAMES[:1].copy()
    y = x.copy()
    y[:, :80] = 0
    y[:, 140:] = 255
    np.testing.assert_allclose(m.predict(x, verbose=0), m.predict(y, verbose=0), atol=1e-6)
    z = x.copy()
    z[:, 100:110] = 0
    assert not np.allclose(m.predict(x, verbose=0), m.predict(z, verbose=0))


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="expected one of: .*base.*eff"):
        models.build_model("nope")


def _truncated_keras_file(tmp_path) -> bytes:
    """The first half of a real .keras file: what an interrupted copy leaves."""
    import keras

    inp = keras.Input((4,))
    keras.Model(inp, keras.layers.Dense(1)(inp)).save(tmp_path / "whole.keras")
    content = (tmp_path / "whole.keras").read_bytes()
    return content[: len(content) // 2]


def test_load_rejects_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        models.load_model(tmp_path / "absent.h5")
    bad = tmp_path / "model.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(ModelLoadError, match="could not load") as e:
        models.load_model(bad)
    assert f"{bad}: not a loadable Keras model (expected an HDF5 file, found 16 bytes" in str(
        e.value
    )
    for content in (b"not a zip file", _truncated_keras_file(tmp_path)):
        corrupt = tmp_path / "corrupt.keras"
        corrupt.write_bytes(content)
        with pytest.raises(ModelLoadError) as e:
            models.load_model(corrupt)
        message = str(e.value)
        assert f"could not load {corrupt}: not a loadable Keras model" in message
        assert "expected a .keras zip archive" in message and "not found" not in message
    with pytest.raises(ModelLoadError, match="expected a Keras model file"):
        models.load_model(bad.rename(tmp_path / "model.txt"))


def test_load_rejects_wrong_shape(tmp_path):
    import keras

    inp = keras.Input((64, 64, 3))
    wrong = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(inp)))
    wrong.save(tmp_path / "wrong.keras")
    with pytest.raises(ModelLoadError, match=r"expected a steering model taking \(160, 320, 3\)"):
        models.load_model(tmp_path / "wrong.keras")


def test_scale_dropout_scales_every_rate_and_keeps_the_network():
    registered = models.build_model("eff")
    halved = models.build_model("eff", dropout_scale=0.5)

    def rates(model):
        return {
            layer.name: layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"
        }

    # eff: 0.25 after each of the five blocks, 0.5 in the three head layers.
    assert rates(registered) == {
        **{f"block{i}_drop": 0.25 for i in range(1, 6)},
        **{f"head_fc{i}_drop": 0.5 for i in range(1, 4)},
    }
    assert rates(halved) == {name: rate / 2 for name, rate in rates(registered).items()}
    assert [layer.name for layer in halved.layers] == [layer.name for layer in registered.layers]
    assert halved.name == "eff"
    assert models.parameter_counts(halved) == models.parameter_counts(registered)


def test_dropout_scale_0_makes_training_mode_deterministic(tmp_path):
    """base has no BatchNorm, so with no dropout left a training-mode call is the
    inference call; with the registered rates it is not (the control)."""
    x = FRAMES[:2]
    for scale, same in ((1.0, False), (0.0, True)):
        model = models.build_model("base", dropout_scale=scale)
        train, infer = np.asarray(model(x, training=True)), np.asarray(model(x, training=False))
        assert np.allclose(train, infer, rtol=0, atol=1e-6) == same, scale
    model.save(tmp_path / "m.keras")  # the rates travel with the saved model
    loaded = models.load_model(tmp_path / "m.keras")
    assert {layer.rate for layer in loaded.layers if type(layer).__name__ == "Dropout"} == {0.0}


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        (-1.0, "dropout scale must be a finite number >= 0, got -1.0"),
        (float("nan"), "dropout scale must be a finite number >= 0, got nan"),
        (2.0, "dropout scale 2 takes base's head_fc1_drop from rate 0.5 to 1; a rate must"),
    ],
)
def test_a_dropout_scale_that_leaves_no_valid_rate_is_refused(scale, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        models.build_model("base", dropout_scale=scale)


def test_a_dropout_scaled_copy_keeps_the_mixed_dtype_policy_it_was_built_under():
    """training.trainer builds the bfloat16 twin under mixed_bfloat16: the scaled copy
    must compute in bfloat16 too, not fall back to float32."""
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.build_model("base", dropout_scale=0.5)
    finally:
        keras.config.set_dtype_policy("float32")
    assert {layer.dtype_policy.name for layer in model.layers if layer.weights} == {
        "mixed_bfloat16"
    }
    plain = models.build_model("base", dropout_scale=0.5)
    assert plain.get_layer("stage1_conv").dtype_policy.name == "float32"
