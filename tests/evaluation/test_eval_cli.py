"""The four commands end to end on generated data, as a new user runs them."""

import csv
import json
import logging

import pytest

from evaluation.cli import main


@pytest.fixture(autouse=True)
def _quiet_root_logger():
    # main() calls basicConfig; keep pytest's own capture handlers in charge.
    yield
    logging.getLogger().setLevel(logging.WARNING)


def test_replay_writes_everything(tiny_model_path, demo_log, tmp_path):
    out = tmp_path / "replay"
    assert main(["replay", str(tiny_model_path), str(demo_log), "--out", str(out), "-q"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "predictions.csv",
        "summary.json",
        "summary.md",
        "steering_over_time.png",
        "error_histogram.png",
        "worst_frames.png",
    } <= names
    with (out / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 100
    assert abs(float(rows[5]["error"]) - (float(rows[5]["model"]) - float(rows[5]["human"]))) < 1e-5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pooled"]["n"] == 100 and summary["runtime"] == "litert"
    assert set(summary["pooled"]["buckets"]) == {"straight", "gentle", "sharp"}
    assert "| MAE |" in (out / "summary.md").read_text()


def test_existing_output_needs_overwrite(tiny_model_path, demo_log, tmp_path, caplog):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    assert main(["replay", str(tiny_model_path), str(demo_log), "--out", str(out), "-q"]) == 2
    assert "already holds files" in caplog.text and "--overwrite" in caplog.text
    assert (out / "summary.json").read_text() == "{}"


def test_bad_model_and_log_arguments(demo_log, tmp_path, caplog):
    assert (
        main(
            [
                "replay",
                str(tmp_path / "nope.keras"),
                str(demo_log),
                "--out",
                str(tmp_path / "a"),
                "-q",
            ]
        )
        == 2
    )
    assert "does not exist" in caplog.text
    (tmp_path / "model.txt").write_text("x")
    assert (
        main(
            [
                "replay",
                str(tmp_path / "model.txt"),
                str(demo_log),
                "--out",
                str(tmp_path / "b"),
                "-q",
            ]
        )
        == 2
    )
    assert "expected a .h5" in caplog.text
    run = tmp_path / "emptyrun"
    run.mkdir()
    assert main(["replay", str(run), str(demo_log), "--out", str(tmp_path / "c"), "-q"]) == 2
    assert "neither model.keras nor model.h5" in caplog.text


def test_closed_loop_short_run(tiny_run, demo_log_long, tmp_path):
    out = tmp_path / "cl"
    cal = tmp_path / "calibration.json"
    cal.write_text(json.dumps({"camera": {"pitch_deg": 9.0, "height_m": 1.3, "vfov_deg": 60}}))
    args = ["closed-loop", str(tiny_run), str(demo_log_long), "--out", str(out), "-q"]
    args += ["--recovery-points", "1", "--latency", "1", "--calibration", str(cal)]
    code = main(args)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    o = summary["overall"]
    assert o["elapsed_s"] > 8.0 and o["steps"] > 120
    assert o["autonomy_percent"] == pytest.approx(
        100 * (1 - 6 * o["interventions"] / o["elapsed_s"])
    )
    rec = o["recovery"]
    # one start point, six starts: judged, started off the road, or without a twin
    assert rec["trials"] + rec["skipped_off_road"] + rec["skipped_twin_intervention"] == 6
    assert 0.0 <= o["invalid_pixel_share"]["mean"] < 0.5
    cfg = summary["config"]
    assert cfg["latency_frames"] == 1 and cfg["criterion"] == "road"
    assert cfg["path"] == "images" and cfg["car"] == "fitted"
    assert cfg["camera"]["pitch_deg"] == 9.0
    assert cfg["camera"]["height_m"] == 1.3
    # The recording as the evaluator saw it: turning measured from every frame pair,
    # the demo road's 7.5 m of asphalt, and the blind baselines beside the model.
    ref = summary["references"]["demo_long"]
    assert ref["yaw_measured_share"] > 0.95
    assert 6.5 < ref["road_width_m"]["median"] < 8.0
    assert set(summary["baselines"]) == {"constant +0", "human replay +0.02"}
    for b in summary["baselines"].values():
        assert b["overall"]["elapsed_s"] == pytest.approx(o["elapsed_s"], rel=0.1)
    # The expert (the labels from the true pose) beside them, by default at 4 m: on
    # the demo road it drives without an intervention and recovers from every trial.
    assert cfg["expert_lookahead_m"] == 4.0 and set(summary["expert"]) == {"expert 4 m"}
    ex = summary["expert"]["expert 4 m"]["overall"]
    assert ex["interventions"] == 0 and ex["recovery"]["success_share"] == 1.0
    names = {p.name for p in out.iterdir()}
    expected = {"summary.md", "steps.csv", "filmstrip.png", "offset_demo_long.png"}
    assert expected | {"path_demo_long.png", "edges_demo_long.png"} <= names
    assert "views.mp4" in names  # imageio-ffmpeg is a pinned requirement
    text = (out / "summary.md").read_text()
    assert "| constant +0 |" in text and "a wheel beyond a road edge" in text
    assert "| expert 4 m |" in text and "the ceiling of the labels" in text
    with (out / "steps.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == o["steps"]
    assert sum(int(r["intervention"]) for r in rows) == o["interventions"]
    assert all(r["road_margin_m"] != "" for r in rows)


def test_closed_loop_repeats_give_each_drive_and_the_spread(tiny_run, demo_log_long, tmp_path):
    """--repeats 3: the first drive is the one the report is about, two more with the
    steering noise; without noise the three are the same drive (the loop is
    deterministic), with a noise big enough to matter they are not."""
    base = ["closed-loop", str(tiny_run), str(demo_log_long), "-q", "--no-video"]
    base += ["--recovery-points", "0", "--repeats", "3"]
    assert main([*base, "--out", str(tmp_path / "still"), "--repeat-noise", "0"]) == 0
    still = json.loads((tmp_path / "still" / "summary.json").read_text())
    o = still["overall"]
    assert still["config"]["repeats"] == 3 and still["config"]["repeat_noise"] == 0.0
    assert o["repeats"]["interventions"]["values"] == [o["interventions"]] * 3
    assert o["repeats"]["interventions"]["sd"] == 0.0
    for b in still["baselines"].values():
        assert b["logs"]["demo_long"]["repeats"]["drives"] == 3

    assert main([*base, "--out", str(tmp_path / "shaken"), "--repeat-noise", "0.3"]) == 0
    shaken = json.loads((tmp_path / "shaken" / "summary.json").read_text())
    rep = shaken["logs"]["demo_long"]["repeats"]
    # The first drive has no noise: it is the drive without --repeats.
    assert rep["interventions"]["values"][0] == o["interventions"]
    assert shaken["logs"]["demo_long"]["interventions"] == o["interventions"]
    assert rep["interventions"]["max"] > rep["interventions"]["values"][0]
    text = (tmp_path / "shaken" / "summary.md").read_text()
    assert "driven 3 times by each policy" in text and "noise of 0.3" in text
    assert "| constant +0 | demo_long |" in text


def test_closed_loop_refuses_a_negative_repeat_noise(tiny_run, demo_log, tmp_path, caplog):
    args = ["closed-loop", str(tiny_run), str(demo_log), "--out", str(tmp_path / "x")]
    assert main([*args, "--repeats", "2", "--repeat-noise", "-0.1", "-q"]) == 2
    assert "repeat noise must be >= 0" in caplog.text and not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):
        main([*args, "--repeats", "0"])


def test_closed_loop_smooths_the_model_only_and_refuses_a_zero_weight(
    tiny_run, demo_log, tmp_path, caplog
):
    """--steering-smoothing 0.5: the model's policy is the smoothed one and the
    summary says so; the baselines are driven as they are (their figures are those of
    a run without smoothing); 0 is refused before anything is written."""
    args = ["closed-loop", str(tiny_run), str(demo_log), "-q", "--no-video"]
    args += ["--recovery-points", "0"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--out", str(tmp_path / "ema"), "--steering-smoothing", "0.5"]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    ema = json.loads((tmp_path / "ema" / "summary.json").read_text())
    assert ema["config"]["steering_smoothing"] == 0.5
    assert plain["config"]["steering_smoothing"] == 1.0
    assert ema["policy"].endswith("smoothed 0.5") and "smoothed" not in plain["policy"]
    assert ema["baselines"] == plain["baselines"]
    assert main([*args, "--out", str(tmp_path / "x"), "--steering-smoothing", "0"]) == 2
    assert "weight on the new answer in (0, 1], got 0.0" in caplog.text
    assert not (tmp_path / "x").exists()


def test_closed_loop_expert_zero_drives_none_and_a_negative_one_is_refused(
    tiny_run, demo_log, tmp_path, caplog
):
    args = ["closed-loop", str(tiny_run), str(demo_log), "-q", "--no-video"]
    args += ["--recovery-points", "0"]
    assert main([*args, "--out", str(tmp_path / "none"), "--expert", "0"]) == 0
    none = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert "expert" not in none and none["config"]["expert_lookahead_m"] == 0.0
    assert "expert" not in (tmp_path / "none" / "summary.md").read_text()
    assert main([*args, "--out", str(tmp_path / "x"), "--expert", "-2"]) == 2
    assert "--expert needs a look-ahead in metres > 0 (0 = no expert), got -2" in caplog.text
    assert not (tmp_path / "x").exists()


def test_calibrate_finds_the_demo_camera_and_closed_loop_reads_it(demo_log, tmp_path):
    out = tmp_path / "cal"
    code = main(
        [
            "calibrate",
            str(demo_log),
            "--out",
            str(out),
            "-q",
            "--frames",
            "4",
            "--pitch",
            "7,9.5,12",
            "--height",
            "1.28",
            "--fov",
            "60",
        ]
    )
    assert code == 0
    cal = json.loads((out / "calibration.json").read_text())
    # The demo recording's side cameras are rendered with the simulator's constants.
    assert cal["camera"] == {"pitch_deg": 9.5, "height_m": 1.28, "vfov_deg": 60.0}
    assert cal["mae_default"] < 0.5 * cal["mae_no_warp"]
    # The reverse warp (a side frame to the centre view) is as good as the forward one.
    assert cal["mae_centre_from_sides"] < 0.5 * cal["mae_no_warp"]
    assert "from a side frame" in (out / "calibration.md").read_text()
    assert len(cal["grid"]) == 3
    from sim.calibrate import CalibrationError, load_camera

    assert load_camera(out / "calibration.json").pitch_deg == 9.5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"camera": {"pitch_deg": 9}}))
    with pytest.raises(CalibrationError, match="expected a calibration.json"):
        load_camera(bad)


def _keras_replay_mae(model_path, log) -> float:
    """Mean |Keras prediction - human steering| over the log's centre frames, computed
    here without the evaluation package: what compare's replay MAE must equal."""
    import keras
    import numpy as np

    from core.recordings import decode_images, read_recording

    rec = read_recording(log)
    model = keras.models.load_model(model_path, compile=False)
    frames = decode_images(rec.centre_paths, progress=False).astype(np.float32)
    predicted = model.predict(frames, verbose=0)[:, 0]
    return float(np.mean(np.abs(predicted - rec.steering)))


def _history(run_dir, rows, extra=()):
    """A history.csv as training.history.EpochLog writes it."""
    from training.history import EpochLog

    run_dir.mkdir()
    with (run_dir / "history.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*EpochLog.FIELDS, *extra])
        writer.writeheader()
        for epoch, val, *cl in rows:
            row = {k: 1.0 for k in EpochLog.FIELDS} | {"epoch": epoch, "val_mse": val}
            writer.writerow(row | dict(zip(extra, cl, strict=True)))


def test_compare_val_mse_of_an_unfinished_run_is_its_kept_epochs(tmp_path):
    """Without best_val_mse in config.json (a run stopped early), compare reads
    history.csv: the kept epoch's val MSE, chosen as the trainer chooses it (fewest
    closed-loop interventions per km where epochs were driven, else lowest val MSE)."""
    from evaluation.compare import _val_mse
    from evaluation.inference import ModelSpec

    by_mse = tmp_path / "by_mse"
    _history(by_mse, [(1, 0.30), (2, 0.125), (3, 0.25)])
    spec = ModelSpec(path=by_mse / "model.keras", label="a", run_dir=by_mse)
    assert _val_mse(spec) == 0.125

    driven = tmp_path / "driven"
    # Epoch 1 has the lowest MSE but was not driven; epoch 4 drove best.
    _history(
        driven, [(1, 0.10, ""), (2, 0.20, 30.0), (4, 0.25, 18.5)], ("cl_interventions_per_km",)
    )
    spec = ModelSpec(path=driven / "model.keras", label="b", run_dir=driven)
    assert _val_mse(spec) == 0.25

    spec.config["best_val_mse"] = 0.0123
    assert _val_mse(spec) == 0.0123
    empty = tmp_path / "empty"
    _history(empty, [])
    assert _val_mse(ModelSpec(path=empty / "model.keras", label="c", run_dir=empty)) is None


def test_compare_report(tiny_model_path, tiny_run, demo_log, tmp_path):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            str(tiny_model_path),
            str(tiny_run),
            "--logs",
            str(demo_log),
            "--out",
            str(out),
            "-q",
            "--latency-runs",
            "20",
            "--repeats",
            "2",
            "--repeat-noise",
            "0",
        ]
    )
    assert code == 0
    data = json.loads((out / "compare.json").read_text())
    a, b = data["models"]
    assert a["label"] == "tiny" and b["label"] == tiny_run.name
    assert b["val_mse"] == pytest.approx(0.0123) and a["val_mse"] is None
    assert a["params_total"] == b["params_total"] > 0
    assert a["macs"] > 0 and a["latency"]["p50_ms"] > 0
    sizes = a["size_bytes"]
    assert sizes["h5_with_optimizer"] > sizes["h5_no_optimizer"] > 0 and sizes["keras"] > 0
    assert a["replay"]["mae"] == pytest.approx(
        _keras_replay_mae(tiny_model_path, demo_log), abs=1e-4
    )
    # compare's closed-loop figures are closed-loop's own for the same model and log,
    # and the blind baselines stand beside them.
    cl = tmp_path / "cl"
    args = ["closed-loop", str(tiny_model_path), str(demo_log), "--out", str(cl), "-q"]
    assert main([*args, "--recovery-points", "0", "--no-video"]) == 0
    own = json.loads((cl / "summary.json").read_text())
    assert a["closed_loop"]["interventions"] == own["overall"]["interventions"]
    assert a["closed_loop"]["autonomy_percent"] == pytest.approx(own["overall"]["autonomy_percent"])
    n = own["overall"]["interventions"]
    assert a["closed_loop"]["logs"]["demo_rec"]["interventions"] == n
    straight = data["baselines"]["constant +0"]
    n0 = own["baselines"]["constant +0"]["overall"]["interventions"]
    assert straight["interventions"] == n0
    # --repeats 2 without noise: each policy drove the log twice, the same drive.
    assert a["closed_loop"]["repeats"]["interventions"]["values"] == [n, n]
    assert straight["logs"]["demo_rec"]["repeats"]["interventions"]["values"] == [n0, n0]
    # The expert beside them, as closed-loop drives it.
    ex = data["expert"]["expert 4 m"]
    assert ex["interventions"] == own["expert"]["expert 4 m"]["overall"]["interventions"]
    assert ex["logs"]["demo_rec"]["repeats"]["drives"] == 2
    report = (out / "report.md").read_text()
    assert "| tiny |" in report and "| constant +0 |" in report and "| expert 4 m |" in report
    assert "and expert 4 m (the recorded steering plus" in report
    assert data["closed_loop_repeats"] == {"drives": 2, "noise": 0.0}
    assert "driven 2 times by each policy" in report and "noise of 0 (" in report
    assert "demo_rec: interventions" in report
    # the recovered share is read beside its trials (none without --recovery-points)
    assert "| recovered_share | recovery_trials_judged | recovery_trials_not_judged |" in report
    assert a["closed_loop"]["recovery_trials_judged"] == 0
    assert f"| {n:g}, {n:g}: {n:.1f} (0.0) |" in report
    for name in (
        "bar_params.png",
        "bar_macs.png",
        "bar_size.png",
        "bar_latency.png",
        "bar_error.png",
        "scatter_error_vs_macs.png",
        "profiles.md",
    ):
        assert (out / name).is_file(), name


def test_compare_refuses_a_negative_repeat_noise(tiny_model_path, demo_log, tmp_path, caplog):
    args = ["compare", str(tiny_model_path), "--logs", str(demo_log), "--out", str(tmp_path / "c")]
    assert main([*args, "--repeats", "2", "--repeat-noise", "-1", "-q"]) == 2
    assert "repeat noise must be >= 0" in caplog.text and not (tmp_path / "c").exists()


def test_closed_loop_via_the_drive_server(tiny_model_path, demo_log_long, tmp_path):
    """The whole stack: simulator-protocol client -> drive server -> LiteRT model. It
    must give the same verdict as the model in-process: the same interventions and,
    step by step, the same drive up to the JPEG coding of the views."""
    from drive.server import DriveServer
    from serving import load

    common = ["-q", "--recovery-points", "0", "--no-video"]
    predictor = load(tiny_model_path)
    with DriveServer(predictor, host="127.0.0.1", port=0, log_every=100_000) as server:
        out = tmp_path / "via"
        args = ["closed-loop", str(tiny_model_path), str(demo_log_long), "--out", str(out)]
        assert main([*args, *common, "--via-server", server.url]) == 0
        # Smoothed, the server's round trips are still reported.
        smooth = tmp_path / "via_smoothed"
        args_s = ["closed-loop", str(tiny_model_path), str(demo_log_long), "--out", str(smooth)]
        assert (
            main([*args_s, *common, "--via-server", server.url, "--steering-smoothing", "0.5"]) == 0
        )
    smoothed = json.loads((smooth / "summary.json").read_text())
    assert smoothed["policy"].endswith("via drive server smoothed 0.5")
    assert smoothed["server_rtt_ms"]["p50"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runtime"].startswith("drive server at ws://127.0.0.1:")
    assert summary["server_rtt_ms"]["p50"] > 0
    out2 = tmp_path / "inproc"
    args = ["closed-loop", str(tiny_model_path), str(demo_log_long), "--out", str(out2)]
    assert main([*args, *common]) == 0
    inproc = json.loads((out2 / "summary.json").read_text())["overall"]
    via = summary["overall"]
    assert via["steps"] == pytest.approx(inproc["steps"], abs=2)
    assert abs(via["interventions"] - inproc["interventions"]) <= max(
        1, 0.02 * inproc["interventions"]
    )

    def offsets(folder):
        with (folder / "steps.csv").open() as fh:
            return [float(r["offset_m"]) for r in csv.DictReader(fh)]

    a, b = offsets(out), offsets(out2)
    n = min(len(a), len(b))
    diffs = sorted(abs(x - y) for x, y in zip(a[:n], b[:n], strict=True))
    assert diffs[n // 2] < 0.02 and diffs[-1] < 0.5, (diffs[n // 2], diffs[-1])


def test_via_server_without_a_server(demo_log, tmp_path, caplog):
    code = main(
        [
            "closed-loop",
            "m.keras",
            str(demo_log),
            "--out",
            str(tmp_path / "x"),
            "-q",
            "--via-server",
            "ws://127.0.0.1:9/socket.io/?EIO=4&transport=websocket",
        ]
    )
    assert code == 2
    assert "no drive server answering" in caplog.text


def test_root_script_lists_every_command():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "evaluate.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    assert out.returncode == 0
    for command in ("replay", "closed-loop", "calibrate", "compare", "robustness", "response"):
        assert command in out.stdout
