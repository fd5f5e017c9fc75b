"""A recording's reference: built once, cached outside the recording, reused."""

import numpy as np

from core.recordings import read_recording
from evaluation.closed_loop.reference import build_reference, cache_dir


def test_the_reference_is_cached_and_reused(demo_log, tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_STEERING_CACHE", str(tmp_path / "cache"))
    before = sorted(p.name for p in demo_log.rglob("*"))
    rec = read_recording(demo_log)
    first = build_reference(rec)
    files = list(cache_dir().glob("*.npz"))
    assert len(files) == 1 and cache_dir().is_relative_to(tmp_path)
    second = build_reference(rec)
    np.testing.assert_array_equal(first.yaw, second.yaw)
    for a, b in zip(first.segments, second.segments, strict=True):
        np.testing.assert_array_equal(a.edges.left, b.edges.left)
        np.testing.assert_array_equal(a.path.x, b.path.x)
    # Nothing is written beside the recording.
    assert sorted(p.name for p in demo_log.rglob("*")) == before
    # The old reference: the logged steering through a plain bicycle, no fit.
    old = build_reference(rec, path="steering", car="bicycle", edges=False)
    assert old.path_source == "steering" and old.fit is None
    assert old.yaw_measured_share == 0.0 and old.segments[0].edges is None
    # The demo recording is rendered: no bonnet in its frames.
    assert not first.bonnet
