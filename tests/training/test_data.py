"""Training data: steering labels smoothed over time, checked by hand on a small real
recording (csv and JPEG files as the simulator writes them)."""

import cv2
import numpy as np
import pytest

from core.recordings import read_recording
from training.config import TrainConfig
from training.data import smooth_steering

#: Frame times (s) and steering of the recording: taps of full lock between zeros.
TIMES = (0.0, 0.1, 0.2, 0.3, 0.5)
STEERING = (0.0, 1.0, 0.0, 0.0, 1.0)


def write_recording(folder, times=TIMES, steering=STEERING):
    img = folder / "IMG"
    img.mkdir(parents=True)
    lines = []
    for t, s in zip(times, steering, strict=True):
        ms = round(t * 1000)
        name = f"center_2020_01_01_12_00_{ms // 1000:02d}_{ms % 1000:03d}.jpg"
        cv2.imwrite(str(img / name), np.zeros((160, 320, 3), np.uint8))
        lines.append(f"{img / name}, , ,{s},0.5,0,20")
    (folder / "driving_log.csv").write_text("\n".join(lines) + "\n")
    return read_recording(folder)


def test_steering_is_smoothed_over_a_centred_window_by_hand(tmp_path):
    """0.25 s: each row averages the rows within 0.125 s of it. Row 0 (0.0 s) sees
    0.0 and 0.1: (0 + 1) / 2; row 1 sees 0.0-0.2: 1/3; row 2 sees 0.1-0.3: 1/3; row 3
    sees 0.2-0.3: 0; row 4 (0.5 s) only itself: 1."""
    rec = write_recording(tmp_path / "rec")
    np.testing.assert_array_equal(smooth_steering(rec, 0.0), STEERING)
    assert smooth_steering(rec, 0.25) == pytest.approx([0.5, 1 / 3, 1 / 3, 0.0, 1.0])
    # A window wider than the recording gives every row the mean.
    assert smooth_steering(rec, 10.0) == pytest.approx([0.4] * 5)


def test_a_recording_whose_times_run_backwards_keeps_its_steering(tmp_path, caplog):
    rec = write_recording(tmp_path / "rec", times=(0.0, 0.2, 0.1), steering=(0.0, 1.0, 0.0))
    np.testing.assert_array_equal(smooth_steering(rec, 0.25), [0.0, 1.0, 0.0])
    assert "frame times missing or not in order: steering labels not smoothed" in caplog.text


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_a_negative_window_is_refused(bad):
    with pytest.raises(ValueError, match="--smooth-steering needs a window in seconds >= 0"):
        TrainConfig(data=["x"], smooth_steering_s=bad).validate()
