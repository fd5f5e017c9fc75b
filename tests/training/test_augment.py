"""Augmentation and sampling: label changes in the right direction, validation untouched."""

import numpy as np
import pytest

from training.augment import (
    NO_AUGMENT,
    AugmentConfig,
    augment_batch,
    brightness,
    flip,
    shadow,
    shift,
)
from training.data import (
    CENTRE,
    LEFT,
    RIGHT,
    DataSettings,
    TrainingData,
    TrainSequence,
    ValidationSequence,
    balance_indices,
    split_blocks,
)
from training.geometry import shift_correction_per_pixel, side_camera_correction


def ramp_batch(n=4):
    """Frames whose pixel value encodes the column, so moves are checkable exactly."""
    cols = np.arange(320, dtype=np.float32)[None, None, :, None]
    return np.broadcast_to(cols * 0.5, (n, 160, 320, 3)).copy()


def test_flip_mirrors_and_negates():
    x = ramp_batch(3)
    y = np.array([0.3, -0.2, 0.1], np.float32)
    flip(x, y, np.array([True, False, True]))
    np.testing.assert_array_equal(x[0, 0, :, 0], np.arange(320)[::-1] * 0.5)
    np.testing.assert_array_equal(x[1, 0, :, 0], np.arange(320) * 0.5)
    np.testing.assert_allclose(y, [-0.3, -0.2, -0.1])


def test_shift_right_moves_content_right_and_steers_right():
    x = ramp_batch(2)
    y = np.zeros(2, np.float32)
    shift(x, y, np.array([10, -5]), per_px=0.01)
    # Content moved 10 px right: column 30 now shows what column 20 showed.
    assert x[0, 0, 30, 0] == 20 * 0.5
    assert x[0, 0, 0, 0] == 0.0  # edge repeated
    assert x[1, 0, 20, 0] == 25 * 0.5
    assert x[1, 0, 319, 0] == 319 * 0.5
    np.testing.assert_allclose(y, [0.10, -0.05])


def test_shift_labels_are_clipped():
    x = ramp_batch(1)
    y = np.array([0.95], np.float32)
    shift(x, y, np.array([20]), per_px=0.01)
    assert y[0] == 1.0


def test_brightness_and_shadow_leave_labels_and_darken():
    x = np.full((2, 160, 320, 3), 200.0, np.float32)
    brightness(x, np.array([1.0, 0.5]))
    assert x[0].max() == 200.0 and x[1].max() == 100.0
    x = np.full((1, 160, 320, 3), 200.0, np.float32)
    shadow(x, np.array([160.0]), np.array([160.0]), np.array([True]), np.array([0.5]))
    assert x[0, :, :160].max() == 100.0 and x[0, :, 160:].min() == 200.0


def test_corrections_follow_geometry():
    # Pure pursuit over 7.3 m from a 0.8155 m offset: atan(2.87 * 2 * 0.8155 / 7.3^2) / 25 deg.
    assert side_camera_correction() == pytest.approx(
        np.degrees(np.arctan(2.87 * 2 * 0.8155 / 7.3**2)) / 25
    )
    assert side_camera_correction() == pytest.approx(0.2, abs=0.005)
    assert 0.01 < shift_correction_per_pixel() < 0.016


def test_augment_batch_keeps_input_and_no_augment_is_identity():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 160, 320, 3)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, 8).astype(np.float32)
    x0, y0 = x.copy(), y.copy()
    xa, ya = augment_batch(x, y, AugmentConfig(), rng)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert not np.array_equal(xa, x0)
    xs, ys = augment_batch(x, y, NO_AUGMENT, rng)
    np.testing.assert_array_equal(xs, x0)
    np.testing.assert_array_equal(ys, y0)


def test_flip_only_config_negates_exactly_the_flipped():
    rng = np.random.default_rng(3)
    x = ramp_batch(64)
    y = np.linspace(-0.5, 0.5, 64).astype(np.float32)
    cfg = AugmentConfig(flip_p=0.5, brightness_p=0, shadow_p=0, shift_p=0)
    xa, ya = augment_batch(x, y, cfg, rng)
    flipped = xa[:, 0, 0, 0] > 0
    assert 10 < flipped.sum() < 54
    np.testing.assert_allclose(ya[flipped], -y[flipped])
    np.testing.assert_allclose(ya[~flipped], y[~flipped])


def test_augment_config_rejects_bad_probability():
    with pytest.raises(ValueError, match="flip_p must be in"):
        AugmentConfig(flip_p=1.5)


def test_split_blocks_is_contiguous_with_gap():
    train, val = split_blocks(1000, 0.2, blocks=5, gap=10)
    assert len(val) == 200
    # Five contiguous validation runs of 40 frames each.
    runs = np.split(val, np.flatnonzero(np.diff(val) > 1) + 1)
    assert [len(r) for r in runs] == [40] * 5
    assert not set(train) & set(val)
    # No training frame within 10 frames of a validation frame.
    assert np.min(np.abs(train[:, None] - val[None, :])) > 10
    train, val = split_blocks(50, 0.0)
    assert len(train) == 50 and len(val) == 0


def test_balance_caps_dominant_bin():
    rare = np.concatenate([np.linspace(-0.9, -0.1, 110), np.linspace(0.1, 0.9, 110)])
    labels = np.array([0.0] * 780 + list(rare), np.float32)
    keep = balance_indices(labels, 2.0, np.random.default_rng(0))
    zeros = np.count_nonzero(labels[keep] == 0)
    nonempty = np.count_nonzero(np.histogram(labels, np.linspace(-1.05, 1.05, 22))[0])
    assert zeros == int(np.ceil(2.0 * 1000 / nonempty))
    assert np.all(np.isin(np.flatnonzero(labels != 0), keep))  # rare rows all kept
    assert len(balance_indices(labels, 0, np.random.default_rng(0))) == 1000


def fake_data(n_rows=40, val=10):
    """Frames whose first pixel encodes (camera, row) so batches can be traced back."""
    frames = np.zeros((3 * n_rows + val, 160, 320, 3), np.uint8)
    row_frames = np.arange(3 * n_rows).reshape(n_rows, 3)
    for r in range(n_rows):
        for cam in range(3):
            frames[row_frames[r, cam], 0, 0] = (cam, r, 0)
    labels = np.linspace(-0.3, 0.3, n_rows).astype(np.float32)
    val_frames = np.arange(3 * n_rows, 3 * n_rows + val)
    frames[val_frames, 5, 5, 0] = np.arange(val)
    return TrainingData(
        frames, row_frames, labels, val_frames, np.linspace(-0.1, 0.1, val).astype(np.float32), {}
    )


def test_side_cameras_corrected_in_the_right_direction():
    data = fake_data()
    settings = DataSettings(side_correction=0.2, balance_cap=0, batch_size=16, augment=NO_AUGMENT)
    seq = TrainSequence(data, settings, seed=0)
    seen = set()
    for i in range(len(seq)):
        x, y = seq[i]
        for img, label in zip(x, y[:, 0], strict=True):
            cam, row = int(img[0, 0, 0]), int(img[0, 0, 1])
            seen.add(cam)
            expected = data.train_row_labels[row] + {CENTRE: 0.0, LEFT: 0.2, RIGHT: -0.2}[cam]
            assert label == pytest.approx(expected, abs=1e-6)
    assert seen == {CENTRE, LEFT, RIGHT}


def test_validation_is_fixed_and_untouched():
    data = fake_data()
    seq = ValidationSequence(data, batch_size=4)
    first = [seq[i] for i in range(len(seq))]
    x = np.concatenate([b[0] for b in first])
    y = np.concatenate([b[1] for b in first])[:, 0]
    np.testing.assert_array_equal(x[:, 5, 5, 0], np.arange(10))  # time order, every frame once
    np.testing.assert_array_equal(y, data.val_labels)
    np.testing.assert_array_equal(x, data.frames[data.val_frames].astype(np.float32))
    again = np.concatenate([seq[i][0] for i in range(len(seq))])
    np.testing.assert_array_equal(again, x)
