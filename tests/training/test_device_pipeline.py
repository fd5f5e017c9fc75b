"""The on-device augmentation wrapper matches the numpy pipeline's label algebra."""

import keras
import numpy as np
import pytest

from training.augment import NO_AUGMENT, AugmentConfig, shift
from training.device_pipeline import OnDeviceAugmentation, scaled_learning_rate


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
    return rng.integers(0, 256, (6, 160, 320, 3), dtype=np.uint8)


def run(wrapper, idx, training):
    return np.asarray(wrapper(np.asarray(idx, np.int32), training=training))[:, 0]


def test_inference_gathers_the_indexed_frames(frames):
    m = tiny_model()
    w = OnDeviceAugmentation(m, frames, AugmentConfig())
    expected = np.asarray(m(frames[[4, 1, 1]].astype(np.float32)))[:, 0]
    np.testing.assert_allclose(run(w, [4, 1, 1], training=False), expected, rtol=1e-5, atol=1e-6)


def test_no_augment_training_equals_plain_model(frames):
    m = tiny_model()
    w = OnDeviceAugmentation(m, frames, NO_AUGMENT)
    expected = np.asarray(m(frames.astype(np.float32)))[:, 0]
    np.testing.assert_allclose(run(w, range(6), training=True), expected, rtol=1e-5, atol=1e-6)


def test_flip_negates_prediction_of_mirrored_frame(frames):
    m = tiny_model()
    cfg = AugmentConfig(flip_p=1.0, brightness_p=0, shadow_p=0, shift_p=0)
    w = OnDeviceAugmentation(m, frames, cfg)
    mirrored = frames[:, :, ::-1].astype(np.float32)
    expected = -np.asarray(m(mirrored))[:, 0]
    np.testing.assert_allclose(run(w, range(6), training=True), expected, rtol=1e-5, atol=1e-6)


def test_shift_subtracts_the_same_correction_as_the_numpy_pipeline(frames):
    m = tiny_model()
    cfg = AugmentConfig(flip_p=0, brightness_p=0, shadow_p=0, shift_p=1.0, shift_max_px=3)
    w = OnDeviceAugmentation(m, frames, cfg, seed=3)
    out = run(w, range(6), training=True)
    for i in range(6):
        # Some shift t in -3..3 explains each output exactly as numpy's shift() would.
        candidates = []
        for t in range(-3, 4):
            x = frames[i : i + 1].astype(np.float32)
            y = np.zeros(1, np.float32)
            shift(x, y, np.array([t]), cfg.shift_per_px)
            candidates.append(float(np.asarray(m(x))[0, 0]) - y[0])
        assert np.min(np.abs(np.array(candidates) - out[i])) < 1e-5


def test_training_on_indices_equals_training_on_frames(frames):
    """Without augmentation, fitting the wrapper on indices is fitting the model on frames."""
    y = np.linspace(-0.3, 0.3, 6, dtype=np.float32)[:, None]
    a, b = tiny_model(), tiny_model()
    b.set_weights(a.get_weights())
    w = OnDeviceAugmentation(a, frames, NO_AUGMENT)
    for m in (w, b):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.MeanSquaredError())
    w.fit(np.arange(6, dtype=np.int32), y, epochs=3, batch_size=3, shuffle=False, verbose=0)
    b.fit(frames.astype(np.float32), y, epochs=3, batch_size=3, shuffle=False, verbose=0)
    changed = False
    for wa, wb, w0 in zip(
        a.get_weights(), b.get_weights(), tiny_model().get_weights(), strict=True
    ):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
        changed |= not np.allclose(wa, w0)
    assert changed


def test_sqrt_learning_rate_scaling():
    assert scaled_learning_rate(1e-3, 128) == pytest.approx(1e-3)
    assert scaled_learning_rate(1e-3, 512) == pytest.approx(2e-3)
