"""The training wrapper: one augmentation for both pipelines, exact label algebra."""

import keras
import numpy as np
import pytest

from training.augment import NO_AUGMENT, PARAMS, AugmentConfig, apply, draw
from training.config import scaled_learning_rate
from training.device_pipeline import AugmentedTraining

ONLY = {
    "recovery": dict(recovery_p=1.0),
    "shift": dict(shift_p=1.0),
    "flip": dict(flip_p=1.0),
    "shadow": dict(shadow_p=1.0),
    "brightness": dict(brightness_p=1.0),
    "corruption": dict(corruption_p=1.0),
}


def only(name):
    off = dict(flip_p=0.0, brightness_p=0.0, shadow_p=0.0, shift_p=0.0, recovery_p=0.0)
    return AugmentConfig(**{**off, **ONLY[name]})


def tiny_model():
    """A small steering model on raw frames; asymmetric so a flip changes its output."""
    frame = keras.Input((160, 320, 3))
    x = keras.layers.Rescaling(1 / 255.0)(frame)
    x = keras.layers.AveragePooling2D(8)(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.RandomNormal(0, 0.01, seed=1)
    )(x)
    return keras.Model(frame, out)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (9, 160, 320, 3), dtype=np.uint8)


def batch(frames, config, *, indices, seed=0):
    """Rows 0..5 with centre frames 0..5 and (recovery) side frames 6..8 as sources."""
    n = 6
    params = draw(n, config, np.random.default_rng(seed))
    source = np.array([0, 1, 6, 7, 4, 8])
    out = {
        "source": source.astype(np.int32) if indices else frames[source],
        "centre": np.arange(n, dtype=np.int32) if indices else frames[:n],
        "source_x": np.float32([0, 0, -0.806, 0.825, 0, -0.806]),
        "label": np.linspace(-0.3, 0.3, n, dtype=np.float32),
        **params,
    }
    return out


def call(wrapper, b, training=True):
    return np.asarray(wrapper(b, training=training))[:, 0]


@pytest.mark.parametrize("name", sorted(ONLY))
def test_host_and_device_pipelines_give_the_same_pixels_and_labels(frames, name):
    """Same drawn parameters: frames fed from the host or gathered on the device give
    the same output, and it is the model on apply()'s pixels minus apply()'s label
    plus the recorded one (so fit's MSE is against the augmented label)."""
    cfg = only(name)
    m = tiny_model()
    host = AugmentedTraining(m, cfg)
    device = AugmentedTraining(m, cfg, frames)
    bh, bd = batch(frames, cfg, indices=False), batch(frames, cfg, indices=True)
    out_h, out_d = call(host, bh), call(device, bd)
    np.testing.assert_allclose(out_h, out_d, rtol=1e-6, atol=1e-6)
    params = {k: bh[k] for k in PARAMS}
    x, y = apply(bh["source"], bh["centre"], bh["label"], params, bh["source_x"], cfg)
    expected = np.asarray(m(np.asarray(x)))[:, 0] - np.asarray(y) + bh["label"]
    np.testing.assert_allclose(out_h, expected, rtol=1e-5, atol=1e-5)
    # The transform did something to the pixels or labels of this batch.
    moved = not np.allclose(np.asarray(x), bh["source"].astype(np.float32))
    assert moved or not np.allclose(np.asarray(y), bh["label"])


def test_inference_is_the_plain_model_on_the_given_or_gathered_frames(frames):
    m = tiny_model()
    expected = np.asarray(m(frames[[4, 1, 1]].astype(np.float32)))[:, 0]
    device = AugmentedTraining(m, AugmentConfig(), frames)
    got = call(device, {"source": np.int32([4, 1, 1])}, training=False)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    host = AugmentedTraining(m, AugmentConfig())
    got = call(host, {"source": frames[[4, 1, 1]]}, training=False)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_no_augment_training_equals_plain_model(frames):
    m = tiny_model()
    w = AugmentedTraining(m, NO_AUGMENT, frames)
    b = batch(frames, NO_AUGMENT, indices=True)
    expected = np.asarray(m(frames[b["source"]].astype(np.float32)))[:, 0]
    np.testing.assert_allclose(call(w, b), expected, rtol=1e-5, atol=1e-6)


def test_flip_negates_prediction_of_mirrored_frame(frames):
    m = tiny_model()
    cfg = only("flip")
    b = batch(frames, cfg, indices=True)
    b["flip"][:] = 1.0
    mirrored = frames[b["source"]][:, :, ::-1].astype(np.float32)
    # Output = model(mirrored) - (-label) + label.
    expected = np.asarray(m(mirrored))[:, 0] + 2 * b["label"]
    np.testing.assert_allclose(call(AugmentedTraining(m, cfg, frames), b), expected, atol=1e-5)


def test_training_on_indices_equals_training_on_frames(frames):
    """Fitting the device wrapper on indices is fitting the host wrapper on frames."""
    cfg = AugmentConfig(recovery_p=0.5)
    a, b = tiny_model(), tiny_model()
    b.set_weights(a.get_weights())
    wd, wh = AugmentedTraining(a, cfg, frames), AugmentedTraining(b, cfg)
    for w, indices in ((wd, True), (wh, False)):
        w.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.MeanSquaredError())
        x = batch(frames, cfg, indices=indices, seed=5)
        w.fit(x, x["label"][:, None], epochs=3, batch_size=3, shuffle=False, verbose=0)
    changed = False
    start = tiny_model().get_weights()
    for wa, wb, w0 in zip(a.get_weights(), b.get_weights(), start, strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
        changed |= not np.allclose(wa, w0)
    assert changed


def test_sqrt_learning_rate_scaling():
    assert scaled_learning_rate(1e-3, 128) == pytest.approx(1e-3)
    assert scaled_learning_rate(1e-3, 512) == pytest.approx(2e-3)
