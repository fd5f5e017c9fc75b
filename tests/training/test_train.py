"""A short real training run on generated data, and the CLI's handling of bad input."""

import csv
import json

import numpy as np
import pytest

import models
from sim.demo_recording import write_demo_recording
from train import main
from training.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    write_demo_recording(root / "train", n_frames=240, seed=1)
    write_demo_recording(root / "val", n_frames=90, seed=2)
    return root


def demo_config(demo, out, **changes) -> TrainConfig:
    """A short pilotnet run on the module's demo recordings."""
    base = dict(
        arch="pilotnet",
        data=[str(demo / "train")],
        val_recordings=[str(demo / "val")],
        epochs=4,
        batch_size=32,
        passes=2,
        patience=10,
        seed=0,
        out=str(out),
        pipeline="host",
    )
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def run(demo, tmp_path_factory):
    return train(demo_config(demo, tmp_path_factory.mktemp("runs")), progress=False)


@pytest.fixture(scope="module")
def selected(demo, tmp_path_factory):
    """A run whose checkpoint is chosen by driving the validation recording."""
    from evaluation.closed_loop.selection import ClosedLoopSelection

    out = tmp_path_factory.mktemp("runs-cl")
    config = demo_config(demo, out, epochs=3, closed_loop_every=1)
    selection = ClosedLoopSelection(config.val_recordings, every=1, patience=10)
    return train(config, progress=False, selection=selection), selection


def test_closed_loop_selection_keeps_the_epoch_that_drives_best(selected):
    run, selection = selected
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    driven = rows[1:]
    for r in driven:
        assert int(r["cl_interventions"]) >= 0
        assert float(r["cl_seconds"]) > 0
        assert float(r["cl_autonomy_percent"]) <= 100.0
    best = min(driven, key=lambda r: (float(r["cl_interventions_per_km"]), float(r["val_mse"])))
    config = json.loads((run / "config.json").read_text())
    assert config["best_epoch"] == int(best["epoch"])
    assert config["best_closed_loop"]["cl_interventions"] == int(best["cl_interventions"])
    assert config["settings"]["closed_loop_every"] == 1
    # The kept model.keras is that epoch's: it drives exactly as recorded then.
    saved = models.load_model(run / "model.keras")
    selection.attach(saved, saved, run / "unused.keras", 3)
    again = selection.drive()
    assert again["interventions"] == int(best["cl_interventions"])
    assert again["interventions_per_km"] == pytest.approx(float(best["cl_interventions_per_km"]))
    assert (run / "curves.png").stat().st_size > 0


def test_closed_loop_selection_with_repeats_chooses_on_the_mean(selected, tmp_path, caplog):
    """--closed-loop-repeats 3: the model's own drive (the one a single-drive selection
    scores) and two with the repeat noise; the score is their mean, logged per drive."""
    import logging

    from evaluation.closed_loop.selection import ClosedLoopSelection

    run, once = selected
    config = json.loads((run / "config.json").read_text())
    thrice = ClosedLoopSelection(config["val_recordings"], every=1, repeats=3)
    model = models.load_model(run / "model.keras")
    once.attach(model, model, run / "unused.keras", 3)
    thrice.attach(model, model, tmp_path / "kept.keras", 3)
    one, three = once.drive(), thrice.drive()
    ((name, per),) = three["per_recording"].items()
    counts = [int(v) for v in per["drives"].split(", ")]
    assert len(counts) == 3 and counts[0] == one["interventions"]
    assert three["interventions"] == pytest.approx(np.mean(counts))
    assert per["interventions"] == pytest.approx(np.mean(counts))
    assert "drives" not in one and "drives" not in one["per_recording"][name]
    caplog.set_level(logging.INFO)
    logs = {"val_loss": 0.1}
    assert thrice.judge(1, logs) and (tmp_path / "kept.keras").exists()
    assert logs["cl_interventions"] == pytest.approx(np.mean(counts))
    text = f"{name} {per['drives']}: {np.mean(counts):.1f} ("
    assert text in caplog.text, caplog.text
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        ClosedLoopSelection(config["val_recordings"], repeats=0)


def test_steering_gain_restores_a_model_whose_steering_was_scaled(selected, tmp_path, caplog):
    """--steering-gains: the kept model with its steering made 16 times as large weaves
    off the road; of the gains 1 and 1/16, 1/16 wins, and it restores the trained weights
    exactly (powers of two), so it drives exactly as the trained model did. model.keras
    and model.h5 become the scaled model, the model driven stays as
    model_uncalibrated.keras, config.json gets every gain's figures; a gain that drives
    worse leaves the model alone."""
    import logging
    import shutil

    from evaluation.closed_loop.selection import choose_steering_gain

    start, selection = selected
    trained = json.loads((start / "config.json").read_text())["best_closed_loop"]
    run = shutil.copytree(start, tmp_path / "run")
    boosted = models.load_model(run / "model.keras")
    models.scale_steering(boosted, 16.0)
    boosted.save(run / "model.keras")
    caplog.set_level(logging.INFO)
    record = choose_steering_gain(selection, run, (1.0, 0.0625))
    one, sixteenth = record["scores"]["1"], record["scores"]["0.0625"]
    assert sixteenth["interventions"] == trained["cl_interventions"]
    assert sixteenth["interventions_per_km"] == pytest.approx(trained["cl_interventions_per_km"])
    assert one["interventions_per_km"] > sixteenth["interventions_per_km"], record
    assert record["chosen"] == 0.0625 and record["gains"] == [1.0, 0.0625]
    assert json.loads((run / "config.json").read_text())["steering_gain"] == record
    original = models.load_model(start / "model.keras").get_weights()
    for name in ("model.keras", "model.h5"):
        for got, want in zip(models.load_model(run / name).get_weights(), original, strict=True):
            np.testing.assert_array_equal(got, want)
    kept = models.load_model(run / record["uncalibrated_model"]).get_weights()
    for got, want in zip(kept, boosted.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert "steering gain 0.0625 kept: model.keras and model.h5 steer 0.0625 times" in caplog.text
    # A second choice on the calibrated run would scale the scaled model and put it
    # where the trained one is: refused before any drive.
    with pytest.raises(FileExistsError, match="holds model_uncalibrated.keras already"):
        choose_steering_gain(selection, run, (1.0, 2.0))
    # The trained model itself: 16 times its steering drives worse, so gain 1 stays.
    plain = shutil.copytree(start, tmp_path / "plain")
    again = choose_steering_gain(selection, plain, (16.0, 1.0))
    assert again["chosen"] == 1.0 and "uncalibrated_model" not in again
    assert again["scores"]["1"]["interventions"] == trained["cl_interventions"]
    assert again["scores"]["16"]["interventions"] == one["interventions"]
    assert not (plain / "model_uncalibrated.keras").exists()
    kept = models.load_model(plain / "model.keras").get_weights()
    for got, want in zip(kept, original, strict=True):
        np.testing.assert_array_equal(got, want)


def test_closed_loop_selection_needs_validation_recordings():
    from evaluation.closed_loop.selection import ClosedLoopSelection

    with pytest.raises(ValueError, match="--val-recording"):
        ClosedLoopSelection([])
    with pytest.raises(ValueError, match="needs a closed-loop selection"):
        train(TrainConfig(data=["x"], closed_loop_every=2), progress=False)


def test_run_folder_is_complete(run):
    names = {p.name for p in run.iterdir()}
    assert {"model.h5", "model.keras", "config.json", "history.csv", "curves.png"} <= names
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished"
    assert config["arch"] == "pilotnet"
    assert config["params"]["total"] == 252_219
    assert config["settings"]["seed"] == 0
    assert config["data_summary"]["train_rows"] == 240
    assert config["data_summary"]["val_frames"] == 90
    assert config["versions"]["keras"].startswith("3.")
    assert "git_commit" in config


def test_training_loss_falls_and_history_is_written(run):
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    train_loss = [float(r["train_loss"]) for r in rows[1:]]
    assert train_loss[-1] < train_loss[0]
    config = json.loads((run / "config.json").read_text())
    best = min(float(r["val_mse"]) for r in rows[1:])
    assert config["best_val_mse"] == pytest.approx(best)


def test_a_cosine_schedule_takes_the_rate_to_its_floor_at_the_last_step(demo, tmp_path):
    """--lr-schedule cosine over 2 epochs: history.csv's rate after each epoch is
    1e-3 (0.01 + 0.99 (1 + cos(pi t / T)) / 2): 1e-3 at the start, 0.505e-3 half way,
    the floor 1e-5 at the end; the kept model (saved with its schedule) loads."""
    run = train(
        demo_config(demo, tmp_path, epochs=2, lr=1e-3, lr_schedule="cosine"), progress=False
    )
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 0.505e-3, 1e-5], rel=1e-5)
    assert json.loads((run / "config.json").read_text())["settings"]["lr_schedule"] == "cosine"
    assert models.load_model(run / "model.keras").count_params() == 252_219
    with pytest.raises(ValueError, match="--lr-schedule must be one of constant, cosine"):
        demo_config(demo, tmp_path, lr_schedule="step").validate()


def test_saved_models_agree_and_load_for_serving(run):
    frames = np.random.default_rng(0).integers(0, 256, (3, 160, 320, 3)).astype("float32")
    h5, keras_file = models.load_model(run / "model.h5"), models.load_model(run / "model.keras")
    np.testing.assert_array_equal(
        h5.predict(frames, verbose=0), keras_file.predict(frames, verbose=0)
    )


def test_run_folders_are_never_reused(run, demo):
    from core.runs import create_run_folder

    a = create_run_folder(run.parent, "x")
    b = create_run_folder(run.parent, "x")
    assert a != b and a.exists() and b.exists()


def test_cli_reports_bad_data_clearly(tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    assert (
        main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    )
    assert "driving_log.csv" in caplog.text
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_cli_rejects_unknown_arch(capsys):
    with pytest.raises(SystemExit):
        main(["--arch", "nope"])
    assert "invalid choice" in capsys.readouterr().err


def test_an_interrupted_demo_render_leaves_no_half_recording(tmp_path, monkeypatch):
    import sim.demo_recording as demo_recording

    calls = []
    render = demo_recording.render_view

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 10:
            raise KeyboardInterrupt  # the user's Ctrl-C, part way through
        return render(*args, **kwargs)

    monkeypatch.setattr(demo_recording, "render_view", interrupted)
    out = tmp_path / "demo-data" / "train"
    with pytest.raises(KeyboardInterrupt):
        write_demo_recording(out, n_frames=8, seed=1)
    assert list((tmp_path / "demo-data").iterdir()) == []  # neither IMG/ nor a temporary


def test_train_recovers_from_a_half_rendered_demo_recording(tmp_path, monkeypatch, caplog):
    from core.recordings import read_recording
    from training import cli

    monkeypatch.setattr(cli, "DEMO_TRAIN", dict(n_frames=12, seed=1))
    monkeypatch.setattr(cli, "DEMO_VAL", dict(n_frames=6, seed=2))
    half = tmp_path / "demo-data" / "train-seed1-12"
    (half / "IMG").mkdir(parents=True)  # what an interrupted render used to leave
    (half / "IMG" / "center_2020_01_01_12_00_00_000.jpg").write_bytes(b"partial")
    train, val = cli.demo_recordings(tmp_path)
    assert train == [str(half)] and len(read_recording(half)) == 12
    assert len(read_recording(val[0])) == 6
    (aside,) = (tmp_path / "demo-data").glob("train-seed1-12.incomplete-*")
    assert (aside / "IMG" / "center_2020_01_01_12_00_00_000.jpg").read_bytes() == b"partial"
    assert "interrupted render" in caplog.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs must be >= 1 (or 0 with --init-from: keep the model"),
        (["--epochs", "-3"], "--epochs must be >= 1 (or 0 with --init-from"),
        (["--epochs", "-3"], "got -3"),
        (
            ["--mixed-precision", "--pipeline", "host"],
            "--mixed-precision needs the device pipeline",
        ),
        (
            ["--closed-loop-repeats", "3"],
            "--closed-loop-repeats 3 needs the closed-loop selection it repeats",
        ),
        (
            ["--closed-loop-repeats", "0", "--closed-loop-every", "1"],
            "--closed-loop-repeats must be >= 1 (the drive itself), got 0",
        ),
        (
            ["--steering-gains", "1,1.5"],
            "--steering-gains 1,1.5 chooses a gain by driving the validation recordings: add "
            "--closed-loop-every N",
        ),
        (
            ["--steering-gains", "1,0", "--closed-loop-every", "1"],
            "--steering-gains needs finite gains > 0, got 1,0",
        ),
        (
            ["--steering-gains", "1.5,1.5", "--closed-loop-every", "1"],
            "--steering-gains names a gain twice: 1.5,1.5",
        ),
        (
            ["--arch", "base", "--dropout-scale", "2.5"],
            "--dropout-scale: dropout scale 2.5 takes base's head_fc1_drop from rate 0.5 to "
            "1.25; a rate must stay below 1 (largest scale here: below 2)",
        ),
        (
            ["--dropout-scale", "-0.5"],
            "--dropout-scale: dropout scale must be a finite number >= 0, got -0.5",
        ),
    ],
)
def test_settings_that_would_be_ignored_are_refused_before_any_work(
    tmp_path, monkeypatch, caplog, args, message
):
    from training import cli, trainer

    def must_not_run(*a, **k):
        raise AssertionError("refused settings must stop before rendering or training")

    monkeypatch.setattr(cli, "demo_recordings", must_not_run)
    monkeypatch.setattr(trainer, "train", must_not_run)
    assert main([*args, "--out", str(tmp_path), "--quiet"]) == 2
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert message in error


def test_undecodable_images_are_skipped_and_counted_like_missing_ones(tmp_path, caplog):
    from core.recordings import read_recording
    from training.data import DataSettings, prepare

    write_demo_recording(tmp_path / "train", n_frames=30, seed=1)
    write_demo_recording(tmp_path / "val", n_frames=10, seed=2)
    train_rec, val_rec = read_recording(tmp_path / "train"), read_recording(tmp_path / "val")
    broken = {
        train_rec.rows[3].centre: lambda b: b[: len(b) // 3],  # a truncated copy
        train_rec.rows[5].left: lambda b: b"not a jpeg at all",
        val_rec.rows[2].centre: lambda b: b"\xff\xd8" + bytes(100),
    }
    for path, damage in broken.items():
        path.write_bytes(damage(path.read_bytes()))
    settings = DataSettings(val_fraction=0.0, balance_cap=0.0)
    data = prepare([train_rec], [val_rec], settings, progress=False)

    train_summary, val_summary = data.summary["recordings"]
    assert train_summary["skipped"] == {"centre_image_unreadable": 1, "side_image_unreadable": 1}
    assert val_summary["skipped"] == {"centre_image_unreadable": 1}
    assert (train_summary["train_rows"], val_summary["val_rows"]) == (29, 9)
    named = " ".join(train_summary["unreadable_images"] + val_summary["unreadable_images"])
    assert all(str(path) in named for path in broken)
    assert all(str(path) in caplog.text for path in broken)
    assert len(data.train_row_labels) == 29 and len(data.val_labels) == 9
    assert data.summary["train_rows"] == 29 and data.summary["val_frames"] == 9
    np.testing.assert_array_equal(
        data.train_row_labels, np.delete(train_rec.steering, 3).astype(np.float32)
    )
    used = np.concatenate([data.train_row_frames[data.train_row_frames >= 0], data.val_frames])
    assert not (data.frames[used].reshape(len(used), -1).max(axis=1) == 0).any()  # no blanks
    assert (data.train_row_frames[:, 1] >= 0).sum() == 28  # row 5's left camera dropped


def test_dagger_states_are_visited_off_the_line_and_drawn_as_recovery_views(demo):
    """A badly steering model drives the training recording: the states it visits off
    the line come back keyed by csv line, attach to those training rows, and the
    sequence draws them (rows, offsets and yaws) as recovery views."""
    from core.recordings import read_recordings
    from evaluation.closed_loop.dagger import collect_states
    from evaluation.closed_loop.loop import LoopConfig
    from evaluation.closed_loop.policies import ConstantPolicy, NoisyPolicy
    from evaluation.closed_loop.run import build_references
    from training.augment import AugmentConfig
    from training.data import DataSettings, prepare
    from training.sequences import TrainSequence

    recs = read_recordings([demo / "train"])
    loop = LoopConfig()
    refs = build_references(recs, loop.camera, progress=False)
    got = collect_states(refs, ConstantPolicy(0.15), loop, noise=0.0, every=1)
    assert len(got["keys"]) > 20 and got["interventions"] >= 0
    assert np.all((np.abs(got["offset_m"]) >= 0.1) | (np.abs(got["yaw_rad"]) >= np.radians(1)))
    assert np.mean(got["yaw_rad"] > 0) > 0.8  # steering right turns the car right of the path
    lines = {r.line for r in recs[0].rows}
    assert all(k.startswith("train:") and int(k.split(":")[1]) in lines for k in got["keys"])

    cfg = AugmentConfig(recovery_p=1.0, flip_p=0, brightness_p=0, shadow_p=0)
    settings = DataSettings(val_fraction=0.2, balance_cap=0, batch_size=512, augment=cfg)
    data = prepare(recs, [], settings, progress=False)
    kept = data.attach_states(got["keys"], got["offset_m"], got["yaw_rad"])
    assert 0 < kept <= len(got["keys"])  # states on validation rows are dropped
    on_rows = [k for k in got["keys"] if k in set(data.train_row_keys)]
    assert list(data.train_row_keys[data.states["row"]]) == on_rows
    seq = TrainSequence(data, settings, seed=0)
    b = seq.batches
    st = np.stack([data.states["offset_m"], data.states["yaw_rad"]], axis=1)
    pairs = {tuple(p) for p in st.tolist()}
    drawn = np.stack([b["offset_m"], b["yaw_rad"]], axis=1).tolist()
    from_states = [tuple(p) in pairs for p in drawn]
    assert 0.4 < np.mean(from_states) < 0.6  # dagger_share 0.5

    wrapped = NoisyPolicy(ConstantPolicy(0.0), 0.2, seed=1)
    ctx = None
    noise = np.concatenate([wrapped(np.zeros((2, 1)), ctx) for _ in range(300)])
    assert 0.1 < noise.std() < 0.3 and np.abs(noise).max() <= 1.0
    with pytest.raises(ValueError, match="sigma"):
        NoisyPolicy(ConstantPolicy(0.0), -1)


def test_dagger_needs_recovery_views(tmp_path, caplog):
    args = ["--data", str(tmp_path), "--out", str(tmp_path)]
    assert main(["--dagger", "1", "--recovery", "0", *args]) == 2
    assert "--dagger trains on recovery views" in caplog.text
    assert main(["--dagger", "-1", *args]) == 2
    assert "rounds >= 0, got -1" in caplog.text
    assert main(["--dagger", "1", "--dagger-epochs", "0", *args]) == 2
    assert "--dagger-epochs needs a number of epochs >= 1, got 0" in caplog.text
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_the_demo_ends_by_driving_the_trained_model_in_closed_loop(tmp_path, monkeypatch, caplog):
    """The first command's whole path on a small demo: render, train with the recipe,
    then the evaluator's closed loop on the held-out demo road with its video."""
    import logging

    import training.cli as cli

    monkeypatch.setattr(cli, "DEMO_TRAIN", dict(n_frames=120, seed=1))
    monkeypatch.setattr(cli, "DEMO_VAL", dict(n_frames=90, seed=2))
    caplog.set_level(logging.INFO)
    assert main(["--arch", "pilotnet", "--epochs", "1", "--out", str(tmp_path), "--quiet"]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.name.endswith("_pilotnet")]
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["lr"] == pytest.approx(cli.DEMO_LR)
    assert config["settings"]["batch_size"] == 16  # the host pipeline's default
    assert config["settings"]["augment"]["recovery_p"] == pytest.approx(0.8)
    summary = json.loads((run / "closed-loop" / "summary.json").read_text())
    assert summary["overall"]["interventions"] >= 0
    assert set(summary["baselines"]) == {"constant +0", "human replay +0.02"}
    assert (run / "closed-loop" / "views.mp4").stat().st_size > 0
    assert "interventions in" in caplog.text and "autonomy" in caplog.text
    # --no-drive skips it.
    assert (
        main(
            ["--arch", "pilotnet", "--epochs", "1", "--out", str(tmp_path), "--quiet", "--no-drive"]
        )
        == 0
    )
    runs = sorted(p for p in tmp_path.iterdir() if p.name.endswith("_pilotnet"))
    assert len(runs) == 2 and not (runs[-1] / "closed-loop").exists()


def test_init_from_a_run_folder_starts_from_its_weights(run, demo, tmp_path, caplog):
    import logging

    from training.trainer import build_networks

    caplog.set_level(logging.INFO, logger="training.trainer")
    args = ["--data", str(demo / "train"), "--val-recording", str(demo / "val")]
    args += ["--arch", "pilotnet", "--epochs", "1", "--pipeline", "host", "--quiet"]
    assert main([*args, "--init-from", str(run), "--out", str(tmp_path)]) == 0
    (config,) = tmp_path.glob("*/config.json")
    assert json.loads(config.read_text())["settings"]["init_from"] == str(run / "model.keras")
    assert "(at the start, from --init-from," in caplog.text and "untrained" not in caplog.text
    served, _ = build_networks(
        demo_config(demo, tmp_path, init_from=str(run / "model.keras")), on_device=False
    )
    trained = models.load_model(run / "model.keras")
    for got, want in zip(served.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_dropout_scale_reaches_the_trained_network_and_the_run_record(demo, tmp_path):
    """--dropout-scale 0.5 on base: every Dropout of the network that is trained and
    saved at half its registered rate (stages 0.2 -> 0.1, head 0.5 -> 0.25), the same
    parameters; the option and its default as config.json records them."""
    from training.cli import train_config
    from training.options import build_parser
    from training.trainer import build_networks

    parse = build_parser().parse_args
    assert train_config(parse(["--data", "x"])).dropout_scale == 1.0
    config = train_config(parse(["--arch", "base", "--data", "x", "--dropout-scale", "0.5"]))
    assert config.dropout_scale == 0.5
    served, inner = build_networks(config, on_device=False)
    assert inner is served
    rates = [layer.rate for layer in served.layers if type(layer).__name__ == "Dropout"]
    assert rates == [0.1] * 5 + [0.25] * 3
    assert served.count_params() == 865_921
    run = train(demo_config(demo, tmp_path, epochs=1, dropout_scale=0.5), progress=False)
    assert json.loads((run / "config.json").read_text())["settings"]["dropout_scale"] == 0.5


@pytest.mark.parametrize(
    ("init", "arch", "message"),
    [
        ("missing", "pilotnet", "model not found"),
        ("run", "eff-slim", "expected the weights of --arch eff-slim"),
    ],
)
def test_a_bad_init_from_is_refused_without_a_run_folder(
    run, demo, tmp_path, caplog, init, arch, message
):
    source = run if init == "run" else tmp_path / "missing.keras"
    args = ["--data", str(demo / "train"), "--arch", arch, "--epochs", "1", "--quiet"]
    out = tmp_path / "out"
    assert main([*args, "--init-from", str(source), "--out", str(out)]) == 2
    assert message in caplog.text, caplog.text
    assert not out.exists() or not any(out.iterdir())


def test_a_run_from_trained_weights_drives_them_first_and_keeps_them_when_better(
    selected, demo, tmp_path
):
    """With --init-from the starting weights are epoch 0 of the closed-loop selection:
    here training at a ruinous rate drives worse, so the run keeps what it started from."""
    start, selection = selected
    start_cl = json.loads((start / "config.json").read_text())["best_closed_loop"]
    config = demo_config(
        demo, tmp_path, epochs=1, lr=5.0, closed_loop_every=1, init_from=str(start / "model.keras")
    )
    run = train(config, progress=False, selection=selection)
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    # Driving is deterministic: epoch 0 scores as the start's kept epoch did.
    assert int(rows[0]["cl_interventions"]) == start_cl["cl_interventions"]
    assert float(rows[1]["cl_interventions_per_km"]) > float(rows[0]["cl_interventions_per_km"])
    record = json.loads((run / "config.json").read_text())
    assert record["best_epoch"] == 0 and record["epochs_run"] == 1
    assert record["best_closed_loop"]["cl_interventions"] == start_cl["cl_interventions"]
    kept, was = models.load_model(run / "model.keras"), models.load_model(start / "model.keras")
    for got, want in zip(kept.get_weights(), was.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_epochs_0_keeps_the_start_for_dagger_rounds_on_a_finished_run(run, demo, tmp_path):
    config = demo_config(demo, tmp_path, epochs=0, init_from=str(run / "model.keras"))
    kept = train(config, progress=False)
    record = json.loads((kept / "config.json").read_text())
    assert record["epochs_run"] == 0 and record["best_epoch"] == 0
    assert record["train_images_per_s"] is None
    assert (kept / "model.h5").exists()
    a, b = models.load_model(kept / "model.keras"), models.load_model(run / "model.keras")
    for got, want in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "-1", "--init-from", "x.keras"], "--epochs must be >= 1"),
        (
            ["--epochs", "0", "--dagger", "1", "--init-from", "x.keras"],
            "--dagger after --epochs 0 needs --dagger-epochs N",
        ),
    ],
)
def test_epochs_0_needs_a_start_and_dagger_epochs(tmp_path, caplog, args, message):
    assert main(["--data", str(tmp_path), "--out", str(tmp_path), *args]) == 2
    assert message in caplog.text, caplog.text
    assert list(tmp_path.iterdir()) == []


def test_a_diverged_epoch_is_scored_out_of_the_selection(selected, tmp_path, caplog):
    """An epoch whose weights went to NaN cannot drive: it is logged and never kept,
    and training goes on (it used to hang the drive)."""
    import math

    start, selection = selected
    model = models.load_model(start / "model.keras")
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    selection.attach(model, model, tmp_path / "kept.keras", 3)
    logs = {"val_loss": 0.1}
    assert selection.judge(2, logs) is False
    assert logs["cl_interventions_per_km"] == math.inf and math.isnan(logs["cl_interventions"])
    assert "epoch 2 closed loop: not a candidate" in caplog.text and "diverged" in caplog.text
    assert not (tmp_path / "kept.keras").exists()


def test_dagger_rounds_on_a_finished_run_from_the_command_line(run, demo, tmp_path, caplog, capsys):
    """--init-from RUN --epochs 0 --dagger 1: round 0 is the finished run's model, driven
    once; round 1 drives the training recording, trains on its states from those weights.
    --quiet shows no progress bar, the closed-loop selection's included."""
    import logging

    caplog.set_level(logging.INFO)
    args = ["--data", str(demo / "train"), "--val-recording", str(demo / "val")]
    args += ["--arch", "pilotnet", "--batch-size", "32", "--pipeline", "host", "--quiet"]
    args += ["--init-from", str(run), "--epochs", "0", "--closed-loop-every", "1"]
    assert main([*args, "--dagger", "1", "--dagger-epochs", "1", "--out", str(tmp_path)]) == 0
    first, second = sorted(tmp_path.iterdir())
    r0 = json.loads((first / "config.json").read_text())
    r1 = json.loads((second / "config.json").read_text())
    assert (r0["epochs_run"], r0["best_epoch"], r0["settings"]["dagger_round"]) == (0, 0, 0)
    assert r1["settings"]["dagger_round"] == 1 and r1["epochs_run"] == 1
    assert r1["settings"]["init_from"] == str(first / "model.keras")
    rows = list(csv.DictReader((second / "history.csv").open()))
    # Round 1 starts from round 0's model: its epoch 0 drives exactly as round 0 did.
    assert int(rows[0]["cl_interventions"]) == r0["best_closed_loop"]["cl_interventions"]
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert "states off the line collected" in caplog.text and "DAgger round 1:" in caplog.text
    # tqdm writes its bars to stderr; the selection decodes the validation frames anew.
    assert "frame/s" not in capsys.readouterr().err


def test_steering_gains_from_the_command_line(selected, demo, tmp_path, caplog):
    """--init-from RUN --epochs 0 --steering-gains 1,16: gain 1 is the selection's epoch-0
    drive (not driven again), 16 is driven once and steers the car off the demo road, so
    the run keeps the model as it was and config.json says why."""
    import logging

    caplog.set_level(logging.INFO)
    run, _ = selected  # its model weaves off the road with 16 times its steering
    args = ["--data", str(demo / "train"), "--val-recording", str(demo / "val")]
    args += ["--arch", "pilotnet", "--batch-size", "32", "--pipeline", "host", "--quiet"]
    args += ["--init-from", str(run), "--epochs", "0", "--closed-loop-every", "1"]
    assert main([*args, "--steering-gains", "1,16", "--out", str(tmp_path)]) == 0
    (kept,) = tmp_path.iterdir()
    record = json.loads((kept / "config.json").read_text())
    gain = record["steering_gain"]
    assert gain["gains"] == [1.0, 16.0] and gain["chosen"] == 1.0
    assert gain["scores"]["1"]["interventions"] == record["best_closed_loop"]["cl_interventions"]
    assert gain["scores"]["16"]["interventions"] > gain["scores"]["1"]["interventions"]
    assert record["settings"]["steering_gains"] == [1.0, 16.0]
    assert "steering gain 1: " in caplog.text and "as scored when saved" in caplog.text
    assert "steering gain 1 kept: the trained model unchanged" in caplog.text
    assert not (kept / "model_uncalibrated.keras").exists()
