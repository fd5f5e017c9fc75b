"""The robustness benchmark's image corruptions: ordered by intensity, deterministic
with a seed, the formulas they document, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.robustness.corruptions import (
    CORRUPTIONS,
    CorruptionError,
    corrupt,
    corrupt_batch,
    disk_kernel,
    line_blur,
    parse_intensities,
    parse_names,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "udacity"


@pytest.fixture(scope="module")
def demo_frames(demo_log):
    """Three frames of the procedural demo road (sky, hills, asphalt, lines)."""
    from core.recordings import decode_images, read_recording

    rec = read_recording(demo_log)
    return decode_images(list(rec.centre_paths[[5, 50, 95]]), progress=False)


def _change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _assert_ordered(frames: np.ndarray) -> None:
    for name in CORRUPTIONS:
        for i, frame in enumerate(frames):
            changes = [_change(corrupt(frame, name, s, key=i), frame) for s in range(6)]
            assert changes[0] == 0.0, name
            assert all(b > a for a, b in zip(changes, changes[1:], strict=False)), (
                f"{name} on frame {i}: mean |change| per intensity 0-5 {np.round(changes, 2)}"
            )


def test_every_corruption_changes_the_pixels_more_at_each_higher_intensity(demo_frames):
    assert len(CORRUPTIONS) == 11
    _assert_ordered(demo_frames)


def test_intensity_ordering_on_real_frames():
    """The same on real frames of every shared recording (tuned there: ImageNet-C's fog
    and snow severities were not ordered, see the sources in CORRUPTIONS)."""
    root = SHARED_DATA
    if not (root / "jclc_mountain" / "driving_log.csv").is_file():
        pytest.skip(f"shared recordings not found at {root}")
    from core.recordings import decode_images, read_recording

    frames = []
    for name in ("akbari_lake", "bsh_t2new_jungle", "jclc_mountain", "nicholas_t2_jungle"):
        rec = read_recording(root / name)
        frames.append(decode_images(list(rec.centre_paths[[len(rec) // 3]]), progress=False))
    _assert_ordered(np.concatenate(frames))


def test_same_seed_and_key_give_the_same_pixels_and_others_differ(demo_frames):
    frame = demo_frames[1]
    random = {"gaussian_noise", "motion_blur", "fog", "snow", "rain", "shadow"}
    for name in CORRUPTIONS:
        a = corrupt(frame, name, 3, seed=7, key=11)
        assert np.array_equal(a, corrupt(frame, name, 3, seed=7, key=11)), name
        if name in random:
            assert not np.array_equal(a, corrupt(frame, name, 3, seed=8, key=11)), name
            assert not np.array_equal(a, corrupt(frame, name, 3, seed=7, key=12)), name
        else:  # deterministic by construction: no random draw at all
            assert np.array_equal(a, corrupt(frame, name, 3, seed=8, key=12)), name
    batch = corrupt_batch(demo_frames, "rain", 4, seed=3, keys=[10, 20, 30])
    assert np.array_equal(batch[2], corrupt(demo_frames[2], "rain", 4, seed=3, key=30))


def test_intensity_zero_is_the_frame_itself(demo_frames):
    for name in CORRUPTIONS:
        out = corrupt(demo_frames[0], name, 0)
        assert out.dtype == np.uint8 and np.array_equal(out, demo_frames[0])
        assert out is not demo_frames[0]


def test_gaussian_noise_has_imagenet_c_sigma():
    grey = np.full((160, 320, 3), 128, np.uint8)
    for level, sigma in zip(range(1, 6), (0.08, 0.12, 0.18, 0.26, 0.38), strict=True):
        diff = (corrupt(grey, "gaussian_noise", level).astype(np.float64) - 128) / 255
        if sigma <= 0.18:  # clipping at 0 and 255 starts 2.8 sigma out: negligible
            assert diff.std() == pytest.approx(sigma, rel=0.03)
        else:
            assert 0.8 * sigma < diff.std() < sigma
        assert abs(diff.mean()) < 0.01


def test_blur_kernels_keep_a_flat_frame_flat_and_sum_to_one():
    flat = np.full((40, 60, 3), 0.25, np.float32)
    assert np.allclose(line_blur(flat, 20, 15, 30.0), 0.25, atol=1e-6)
    for r, s in ((3, 0.1), (10, 0.5)):
        k = disk_kernel(r, s)
        assert k.sum() == pytest.approx(1.0, abs=1e-5) and k.shape[0] >= 17
    # A one-sided line: a single bright pixel spreads along one direction only.
    dot = np.zeros((41, 41), np.float32)
    dot[20, 20] = 1.0
    out = line_blur(dot, 5, 3, 0.0)
    row = out[20]
    assert row.sum() == pytest.approx(1.0, abs=1e-5) and np.abs(np.delete(out, 20, 0)).max() == 0
    # Taps at x + i, i >= 0: the dot spreads to the columns at and before it, weights
    # exp(-i^2 / 18) for i = 0..10, normalised (the first is 0.235).
    w = np.exp(-(np.arange(11) ** 2) / 18.0)
    assert np.allclose(row[10:21][::-1], w / w.sum(), atol=1e-6) and (row[21:] == 0).all()


def test_brightness_keeps_hue_and_contrast_keeps_the_mean(demo_frames):
    import cv2

    frame = demo_frames[1]
    hue0 = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL)[..., 0].astype(int)
    up = corrupt(frame, "brightness_up", 2)
    hue1 = cv2.cvtColor(up, cv2.COLOR_RGB2HSV_FULL)[..., 0].astype(int)
    sat = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL)[..., 1] > 60
    d = np.abs(hue0 - hue1)[sat]
    assert np.median(np.minimum(d, 256 - d)) <= 2
    low = corrupt(frame, "contrast", 5)
    assert np.allclose(low.mean(axis=(0, 1)), frame.mean(axis=(0, 1)), atol=1.0)
    for c in range(3):  # each channel's spread scaled by 0.05, up to rounding
        assert low[..., c].std() == pytest.approx(0.05 * frame[..., c].std(), abs=0.4)


def test_bad_names_and_intensities_are_refused_clearly():
    frame = np.zeros((160, 320, 3), np.uint8)
    with pytest.raises(CorruptionError, match="unknown corruption 'fgo'; expected one of: "):
        corrupt(frame, "fgo", 1)
    for bad in (6, -1, 2.5, True):
        with pytest.raises(CorruptionError, match="outside 0-5"):
            corrupt(frame, "fog", bad)
    with pytest.raises(CorruptionError, match="uint8 H x W x 3"):
        corrupt(frame.astype(np.float32), "fog", 1)
    assert parse_names("all") == tuple(CORRUPTIONS)
    assert parse_names("fog, rain,fog") == ("fog", "rain")
    with pytest.raises(CorruptionError, match="unknown corruption 'hail'"):
        parse_names("fog,hail")
    assert parse_intensities("5,1,3") == (1, 3, 5)
    with pytest.raises(CorruptionError, match="outside 1-5"):
        parse_intensities("0,1")
    with pytest.raises(CorruptionError, match="not an integer"):
        parse_intensities("1,high")
