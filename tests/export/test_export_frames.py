"""Representative frames: spread over recordings, disjoint phases, generated fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from export_testkit import write_recording

from export import FramesError, recording_frames, synthetic_frames


@pytest.fixture(scope="module")
def two_recordings(tmp_path_factory):
    base = tmp_path_factory.mktemp("frames")

    # Each frame carries its index in a flat grey level, so the picks can be read back.
    def flat(n, offset):
        return np.stack([np.full((160, 320, 3), offset + 4 * i, np.uint8) for i in range(n)])

    long = write_recording(base / "long", flat(40, 0))
    short = write_recording(base / "short", flat(10, 200))
    return long, short


def grey_levels(frames):
    return [int(round(f.mean())) for f in frames]


def test_equal_share_per_recording_evenly_spaced(two_recordings):
    got = recording_frames(two_recordings, 8, phase=0.0)
    assert len(got) == 8 and got.frames.dtype == np.uint8
    assert grey_levels(got.frames) == [0, 40, 80, 120, 200, 208, 220, 228]
    assert got.source == "8 frames of 2 recording(s) (long, short)"


def test_phases_interleave_without_overlap(two_recordings):
    a = set(grey_levels(recording_frames(two_recordings, 10, phase=0.25).frames))
    b = set(grey_levels(recording_frames(two_recordings, 10, phase=0.75).frames))
    assert len(a) == len(b) == 10 and not a & b


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FramesError, match=r"recording folder\(s\) not found: .*nowhere"):
        recording_frames([tmp_path / "nowhere"], 4)


def test_folder_without_csv_is_explained(tmp_path):
    with pytest.raises(FramesError, match="has no driving_log.csv"):
        recording_frames([tmp_path], 4)


def test_synthetic_frames_look_like_images_not_noise():
    a = synthetic_frames(4, seed=3).frames
    assert a.shape == (4, 160, 320, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, synthetic_frames(4, seed=3).frames)
    x = a.astype(np.float32)
    # Neighbouring pixels are strongly correlated (pure noise would give ~0).
    corr = np.corrcoef(x[:, :, 1:].ravel(), x[:, :, :-1].ravel())[0, 1]
    assert corr > 0.8
    assert x.std() > 20  # and there is real content: sky, road, lines
