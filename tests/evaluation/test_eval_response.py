"""``evaluate.py response``: the model's answer to a displacement against its label."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from evaluation.cli import main
from evaluation.closed_loop import response
from sim.camera import MAX_STEER_DEG, WHEELBASE_M


def _pure_pursuit(
    human: float, offset_m: float, yaw_deg: float, lookahead_m: float, gain: float = 1.0
) -> float:
    """The recovery label by hand: the recorded wheel's curvature plus gain x 2 x / L^2
    towards the path point L ahead (x sideways in the car's frame), back to the -1..1
    command."""
    max_steer, yaw = math.radians(MAX_STEER_DEG), math.radians(yaw_deg)
    ahead = math.sqrt(lookahead_m**2 - offset_m**2)
    x = -offset_m * math.cos(yaw) - ahead * math.sin(yaw)
    curvature = math.tan(human * max_steer) / WHEELBASE_M + gain * 2 * x / lookahead_m**2
    return max(-1.0, min(1.0, math.atan(curvature * WHEELBASE_M) / max_steer))


def test_displacements_are_the_recovery_trials_and_zero_is_refused():
    names = [k.name for k in response.kinds()]
    assert names == ["-1 m", "-0.5 m", "+0.5 m", "+1 m", "-5 deg", "+5 deg"]
    with pytest.raises(ValueError, match=r"non-zero offsets .* got offsets \[0.0\]"):
        response.kinds((0.0,), ())
    with pytest.raises(ValueError, match="--lookahead needs a look-ahead in metres > 0, got 0"):
        response.check_lookahead(0.0)


def test_probe_frames_are_spread_clear_of_the_ends():
    assert response.probe_frames(100).tolist() == [5, 35, 65, 95]
    assert response.probe_frames(30).tolist() == [5, 25]  # at least two
    assert response.probe_frames(100, every=50).tolist() == [5, 95]
    assert response.probe_frames(10).size == 0
    with pytest.raises(ValueError, match="every N >= 1 frames; got 0"):
        response.probe_frames(100, every=0)


def _constant_model(path, value: float = 0.1):
    """A model that never looks: its answer cannot change with the view."""
    import keras
    from keras import layers

    frame = keras.Input(shape=(160, 320, 3), name="frame")
    x = layers.AveragePooling2D(16)(frame)
    x = layers.Flatten()(x)
    dense = layers.Dense(1, name="steering")
    out = dense(x)
    dense.set_weights([np.zeros((dense.kernel.shape[0], 1)), np.array([value])])
    keras.Model(frame, out).save(path)
    return path


def _run(model, log, out, *extra) -> dict:
    args = ["response", str(model), str(log), "--out", str(out), "-q", *extra]
    assert main(args) == 0
    return json.loads((out / "response.json").read_text())


def _probes(out) -> list[dict]:
    with (out / "probes.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_the_label_taught_comes_from_the_option_the_run_or_the_default():
    run = {"settings": {"augment": {"lookahead_m": 6.0, "recovery_gain": 1.5}}}
    assert response.taught(run, None, 4.0) == {
        "lookahead_m": 6.0,
        "gain": 1.5,
        "source": "run config",
    }
    assert response.taught(run, 3.0, 4.0)["lookahead_m"] == 3.0
    assert response.taught({}, None, 4.0) == {
        "lookahead_m": 4.0,
        "gain": 1.0,
        "source": "default (no run config)",
    }


def test_labels_are_pure_pursuit_and_a_blind_model_answers_nothing(demo_log, tmp_path):
    model = _constant_model(tmp_path / "blind.keras")
    # the run's own look-ahead and gain, read from the config.json beside the model
    run = {"settings": {"augment": {"lookahead_m": 6.0, "recovery_gain": 1.5}}}
    (tmp_path / "config.json").write_text(json.dumps(run))
    summary = _run(model, demo_log, tmp_path / "r", "--every", "40")
    log = summary["logs"]["demo_rec"]
    assert summary["lookahead_m"] == 6.0 and summary["gain"] == 1.5
    assert summary["label_source"] == "run config" and summary["every"] == 40
    assert summary["kinds"] == ["-1 m", "-0.5 m", "+0.5 m", "+1 m", "-5 deg", "+5 deg"]
    rows = _probes(tmp_path / "r")
    assert len(rows) == 6 * log["frames"] and log["frames"] >= 2
    for r in rows:
        text, unit = r["kind"].split()
        value = float(text)
        off, yaw = (value, 0.0) if unit == "m" else (0.0, value)
        human = float(r["human"])
        want = _pure_pursuit(human, off, yaw, 6.0, 1.5) - _pure_pursuit(human, 0.0, 0.0, 6.0, 1.5)
        assert float(r["label_change"]) == pytest.approx(want, abs=2e-5)
        # a car to the right of the line (or turned right) is taught to steer left
        assert (float(r["label_change"]) < 0) == (value > 0)
        assert float(r["model"]) == pytest.approx(0.1, abs=1e-5)
        assert float(r["model_change"]) == pytest.approx(0.0, abs=1e-6)
    for name, fig in log["kinds"].items():
        mine = [float(r["label_change"]) for r in rows if r["kind"] == name]
        assert fig["label_change"] == pytest.approx(np.mean(mine), abs=1e-6)
        assert fig["ratio"] == pytest.approx(0.0, abs=1e-4) and fig["probes"] == log["frames"]
    assert log["slope"] == pytest.approx(0.0, abs=1e-4)
    # 1 m off over 6 m: twice the curvature of 0.5 m, so about twice the label
    ratio = log["kinds"]["+1 m"]["label_change"] / log["kinds"]["+0.5 m"]["label_change"]
    assert 1.9 < ratio < 2.1


def test_a_seeing_model_is_measured_against_its_own_path_answer(
    tiny_model_path, demo_log, tmp_path
):
    summary = _run(tiny_model_path, demo_log, tmp_path / "r", "--offsets", "0.5", "--yaws", "5")
    log = summary["logs"]["demo_rec"]
    assert summary["kinds"] == ["+0.5 m", "+5 deg"] and summary["model"] == "tiny"
    assert summary["lookahead_m"] == 4.0 and summary["label_source"] == "default (no run config)"
    rows = _probes(tmp_path / "r")
    changes = {k: [] for k in summary["kinds"]}
    for r in rows:
        model, on_path = float(r["model"]), float(r["model_on_path"])
        assert float(r["model_change"]) == pytest.approx(model - on_path, abs=1e-5)
        changes[r["kind"]].append(model - on_path)
    assert any(abs(c) > 1e-6 for c in changes["+0.5 m"])  # the view did change
    for name, fig in log["kinds"].items():
        assert fig["model_change"] == pytest.approx(np.mean(changes[name]), abs=1e-5)
        assert fig["ratio"] == pytest.approx(fig["model_change"] / fig["label_change"])
    dm = np.array([float(r["model_change"]) for r in rows])
    dl = np.array([float(r["label_change"]) for r in rows])
    assert log["slope"] == pytest.approx(float(dm @ dl / (dl @ dl)), rel=1e-4)
    text = (tmp_path / "r" / "response.md").read_text()
    assert "| demo_rec |" in text and f"{log['kinds']['+0.5 m']['ratio']:.2f}x" in text
    assert (tmp_path / "r" / "response.png").stat().st_size > 5000


def test_bad_options_are_refused_before_anything_is_written(
    tiny_model_path, demo_log, tmp_path, caplog
):
    base = ["response", str(tiny_model_path), str(demo_log), "-q"]
    assert main([*base, "--out", str(tmp_path / "a"), "--lookahead", "0"]) == 2
    assert "--lookahead needs a look-ahead in metres > 0, got 0" in caplog.text
    assert main([*base, "--out", str(tmp_path / "b"), "--offsets", "0", "--yaws", "0"]) == 2
    assert "expected non-zero offsets (m) and yaws (degrees)" in caplog.text
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(SystemExit):
        main([*base, "--out", str(tmp_path / "c"), "--every", "0"])


@pytest.mark.parametrize("command", ["response", "closed-loop"])
def test_a_log_too_short_to_drive_is_named(command, tiny_model_path, tmp_path, caplog):
    # Both used to end in a TypeError from the reference's turn measurement, which
    # had measured nothing.
    from sim.demo_recording import write_demo_recording

    short = tmp_path / "short"
    write_demo_recording(short, n_frames=30, seed=5)  # about 2 s: no 3 s stretch
    out = tmp_path / "r"
    assert main([command, str(tiny_model_path), str(short), "--out", str(out), "-q"]) == 2
    assert "no log had a drivable stretch (car moving, regular frames, >= 3 s)" in caplog.text
    assert not any(out.iterdir())
