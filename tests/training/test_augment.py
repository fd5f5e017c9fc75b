"""Augmentation and sampling: label changes in the right direction, validation untouched."""

import numpy as np
import pytest

from training.augment import (
    NO_AUGMENT,
    PARAMS,
    AugmentConfig,
    apply,
    brightness,
    draw,
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
    balance_indices,
    split_blocks,
)
from training.geometry import (
    LOOKAHEAD_M,
    SIDE_CAMERA_CORRECTION,
    SIDE_CAMERA_OFFSET_M,
    shift_correction_per_pixel,
)
from training.sequences import TrainSequence, ValidationSequence


def ramp_batch(n=4):
    """Frames whose pixel value encodes the column, so moves are checkable exactly."""
    cols = np.arange(320, dtype=np.float32)[None, None, :, None]
    return np.broadcast_to(cols * 0.5, (n, 160, 320, 3)).copy()


def identity_params(n):
    p = draw(n, NO_AUGMENT, np.random.default_rng(0))
    return {k: v.copy() for k, v in p.items()}


def run_apply(x, y, params, config):
    xa, ya = apply(x, x, y, params, np.zeros(len(y), np.float32), config)
    return np.asarray(xa), np.asarray(ya)


def test_flip_mirrors_and_negates():
    x = ramp_batch(3)
    y = np.array([0.3, -0.2, 0.1], np.float32)
    p = identity_params(3)
    p["flip"][:] = [1, 0, 1]
    xa, ya = run_apply(x, y, p, AugmentConfig(flip_p=1, brightness_p=0, shadow_p=0, recovery_p=0))
    np.testing.assert_array_equal(xa[0, 0, :, 0], np.arange(320)[::-1] * 0.5)
    np.testing.assert_array_equal(xa[1, 0, :, 0], np.arange(320) * 0.5)
    np.testing.assert_allclose(ya, [-0.3, -0.2, -0.1])
    np.testing.assert_array_equal(np.asarray(flip(x, np.array([0, 0, 0]))), x)


def test_shift_right_moves_content_right_and_steers_right():
    x = ramp_batch(2)
    y = np.array([0.0, 0.95], np.float32)
    p = identity_params(2)
    p["shift_px"][:] = [10, 20]
    cfg = AugmentConfig(
        flip_p=0, brightness_p=0, shadow_p=0, shift_p=1, shift_per_px=0.01, recovery_p=0
    )
    xa, ya = run_apply(x, y, p, cfg)
    # Content moved 10 px right: column 30 now shows what column 20 showed.
    assert xa[0, 0, 30, 0] == 20 * 0.5
    assert xa[0, 0, 0, 0] == 0.0  # edge repeated
    np.testing.assert_allclose(ya, [0.10, 1.0])  # clipped at 1
    left = np.asarray(shift(x, np.array([-5, 0])))
    assert left[0, 0, 20, 0] == 25 * 0.5 and left[0, 0, 319, 0] == 319 * 0.5


def test_brightness_and_shadow_leave_labels_and_darken():
    x = np.full((2, 160, 320, 3), 200.0, np.float32)
    xb = np.asarray(brightness(x, np.array([1.0, 0.5], np.float32)))
    assert xb[0].max() == 200.0 and xb[1].max() == 100.0
    assert np.asarray(brightness(x, np.array([2.0, 2.0], np.float32))).max() == 255.0
    one = x[:1]
    xs = np.asarray(shadow(one, *(np.array([v], np.float32) for v in (160.0, 160.0, 1.0, 0.5))))
    assert xs[0, :, :160].max() == 100.0 and xs[0, :, 160:].min() == 200.0
    p = identity_params(2)
    p["brightness"][:] = 0.5
    p["shadow_gain"][:] = 0.5
    y = np.array([0.3, -0.4], np.float32)
    _, ya = run_apply(x, y, p, AugmentConfig(flip_p=0, brightness_p=1, shadow_p=1, recovery_p=0))
    np.testing.assert_array_equal(ya, y)


def test_corrections_follow_geometry():
    # Pure pursuit over 7.3 m from a 0.8155 m offset: atan(2.87 * 2 * 0.8155 / 7.3^2) / 25 deg.
    pursuit = np.degrees(np.arctan(2.87 * 2 * SIDE_CAMERA_OFFSET_M / LOOKAHEAD_M**2)) / 25
    assert pursuit == pytest.approx(np.degrees(np.arctan(2.87 * 2 * 0.8155 / 7.3**2)) / 25)
    assert pursuit == pytest.approx(SIDE_CAMERA_CORRECTION, abs=0.005)
    assert 0.01 < shift_correction_per_pixel() < 0.016


def test_draw_gives_identity_values_where_a_transform_is_off_and_is_seeded():
    a = draw(500, AugmentConfig(recovery_p=0.5), np.random.default_rng(7))
    b = draw(500, AugmentConfig(recovery_p=0.5), np.random.default_rng(7))
    assert set(a) == set(PARAMS)
    for k in PARAMS:
        np.testing.assert_array_equal(a[k], b[k])
    moved = a["offset_m"] != 0
    assert 200 < moved.sum() < 300
    np.testing.assert_array_equal(moved, a["yaw_rad"] != 0)
    assert np.abs(a["offset_m"]).max() <= 1.5 and np.abs(a["yaw_rad"]).max() <= np.radians(8)
    assert np.all(a["shift_px"] == 0)  # shift is off by default now
    off = draw(50, NO_AUGMENT, np.random.default_rng(1))
    assert not off["flip"].any() and np.all(off["brightness"] == 1)
    assert np.all(off["shadow_gain"] == 1) and not off["offset_m"].any()


def test_triangular_recovery_draw_keeps_the_range_and_favours_small_displacements():
    rng = np.random.default_rng(3)
    uniform = draw(20000, AugmentConfig(recovery_p=1.0), rng)
    tri = draw(20000, AugmentConfig(recovery_p=1.0, recovery_draw="triangular"), rng)
    # Within a third of the range: 1/3 uniform, 1 - (2/3)^2 = 5/9 triangular.
    for params, share in ((uniform, 1 / 3), (tri, 5 / 9)):
        small = np.abs(params["offset_m"]) <= 0.5
        assert small.mean() == pytest.approx(share, abs=0.015)
        assert (np.abs(params["yaw_rad"]) <= np.radians(8 / 3)).mean() == pytest.approx(
            share, abs=0.015
        )
        assert np.abs(params["offset_m"]).max() <= 1.5
        assert np.abs(params["yaw_rad"]).max() <= np.radians(8)
        # Symmetric: as many left as right, mean |offset| max/2 uniform, max/3 triangular.
        assert (params["offset_m"] > 0).mean() == pytest.approx(0.5, abs=0.015)
    assert np.abs(uniform["offset_m"]).mean() == pytest.approx(0.75, abs=0.015)
    assert np.abs(tri["offset_m"]).mean() == pytest.approx(0.5, abs=0.015)
    still = draw(10, AugmentConfig(recovery_draw="triangular", max_yaw_deg=0), rng)
    assert not still["yaw_rad"].any()


def test_no_augment_is_identity():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 160, 320, 3)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, 8).astype(np.float32)
    xa, ya = run_apply(x, y, draw(8, NO_AUGMENT, rng), NO_AUGMENT)
    np.testing.assert_array_equal(xa, x)
    np.testing.assert_array_equal(ya, y)
    xa, _ = run_apply(x, y, draw(8, AugmentConfig(), rng), AugmentConfig())
    assert not np.array_equal(xa, x)


def test_augment_config_rejects_bad_values():
    with pytest.raises(ValueError, match="flip_p must be in"):
        AugmentConfig(flip_p=1.5)
    with pytest.raises(ValueError, match="recovery_p must be in"):
        AugmentConfig(recovery_p=-0.1)
    with pytest.raises(ValueError, match="lookahead_m must be > 0"):
        AugmentConfig(lookahead_m=0)
    with pytest.raises(
        ValueError, match="recovery_draw must be one of uniform, triangular. Received: 'gauss'"
    ):
        AugmentConfig(recovery_draw="gauss")


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
        batch, y = seq[i]
        np.testing.assert_array_equal(batch["label"], y[:, 0])
        for img, label in zip(batch["source"], y[:, 0], strict=True):
            cam, row = int(img[0, 0, 0]), int(img[0, 0, 1])
            seen.add(cam)
            expected = data.train_row_labels[row] + {CENTRE: 0.0, LEFT: 0.2, RIGHT: -0.2}[cam]
            assert label == pytest.approx(expected, abs=1e-6)
    assert seen == {CENTRE, LEFT, RIGHT}


def test_validation_is_fixed_and_untouched():
    data = fake_data()
    seq = ValidationSequence(data, batch_size=4)
    first = [seq[i] for i in range(len(seq))]
    x = np.concatenate([b[0]["source"] for b in first])
    y = np.concatenate([b[1] for b in first])[:, 0]
    np.testing.assert_array_equal(x[:, 5, 5, 0], np.arange(10))  # time order, every frame once
    np.testing.assert_array_equal(y, data.val_labels)
    np.testing.assert_array_equal(x, data.frames[data.val_frames])
    again = np.concatenate([seq[i][0]["source"] for i in range(len(seq))])
    np.testing.assert_array_equal(again, x)


def test_recovery_draws_the_nearest_camera_and_keeps_the_recorded_label():
    """With recovery views the sequence picks the camera nearest the displaced car's
    centre camera (left for a car moved left) and leaves the correction to the graph."""
    data = fake_data()
    cfg = AugmentConfig(recovery_p=1.0, flip_p=0, brightness_p=0, shadow_p=0)
    seq = TrainSequence(data, DataSettings(balance_cap=0, batch_size=64, augment=cfg), seed=1)
    batch, y = seq[0]
    cams = batch["source"][:, 0, 0, 0].astype(int)
    rows = batch["source"][:, 0, 0, 1].astype(int)
    cam_x = batch["offset_m"] + 2.6 * np.sin(batch["yaw_rad"])
    np.testing.assert_array_equal(cams[cam_x < -0.45], LEFT)
    np.testing.assert_array_equal(cams[cam_x > 0.45], RIGHT)
    np.testing.assert_array_equal(cams[np.abs(cam_x) < 0.35], CENTRE)
    np.testing.assert_allclose(batch["source_x"], np.array([0.0, -0.806, 0.825])[cams], atol=1e-6)
    np.testing.assert_array_equal(batch["centre"][:, 0, 0, 0], CENTRE)
    np.testing.assert_array_equal(batch["centre"][:, 0, 0, 1], rows)
    np.testing.assert_allclose(y[:, 0], data.train_row_labels[rows], atol=1e-6)
    assert {CENTRE, LEFT, RIGHT} <= set(cams)
    # A centre-only recording: every view comes from the centre frame.
    data.train_row_frames[:, 1:] = -1
    seq = TrainSequence(data, DataSettings(balance_cap=0, batch_size=64, augment=cfg), seed=1)
    assert np.all(seq[0][0]["source"][:, 0, 0, 0] == CENTRE)


def test_recovery_draw_option_reaches_the_config(capsys):
    from training.cli import augment_config
    from training.options import build_parser

    parser = build_parser()
    assert augment_config(parser.parse_args([])).recovery_draw == "uniform"
    args = parser.parse_args(["--recovery-draw", "triangular", "--max-offset", "1"])
    config = augment_config(args)
    assert (config.recovery_draw, config.max_offset_m) == ("triangular", 1.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--recovery-draw", "gauss"])
    assert "invalid choice: 'gauss'" in capsys.readouterr().err
