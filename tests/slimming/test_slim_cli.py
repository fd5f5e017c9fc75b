"""``python slim.py`` end to end on generated recordings, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from slim_testkit import tiny_conv_model

import models
from slimming.cli import main

FAST = [
    "--train-frames",
    "24",
    "--fit-frames",
    "8",
    "--probe-frames",
    "4",
    "--local-steps",
    "2",
    "--e2e-steps",
    "2",
    "--e2e-batch",
    "4",
    "--latency-calls",
    "4",
    "-q",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, recordings):
    """A run folder like train.py's: model.keras + config.json naming the recordings."""
    train, val = recordings
    run = tmp_path_factory.mktemp("runs") / "20250101-000000_tiny"
    run.mkdir()
    tiny_conv_model(seed=2).save(run / "model.keras")
    config = {"arch": "tiny", "data": [str(train)], "val_recordings": [str(val)]}
    (run / "config.json").write_text(json.dumps(config))
    return run


def test_run_folder_end_to_end_then_refuses_to_overwrite(run_dir, capsys, caplog):
    assert main([str(run_dir), *FAST]) == 0
    out = run_dir / "slim"
    assert sorted(p.name for p in out.iterdir()) == ["model.keras", "report.json", "report.md"]
    assert "replaced" in capsys.readouterr().out

    report = json.loads((out / "report.json").read_text())
    assert report["data"]["train_frames"] == 24 and report["data"]["val_frames"] == 16
    assert report["data"]["validation"] == "held-out recordings"
    assert set(report["layers"]) == {"stage1_conv", "stage2_conv"}
    tried = [a for a in report["attempts"] if "skipped" not in a]
    assert tried[0]["layer"] == "stage1_conv" and tried[0]["sweep"] == "forward"
    for a in tried:
        assert {"svd", "ls", "upstream", "tuned"} <= set(a["error"])
        assert a["params_saved"] == a["params_before"] - a["params_after"]
        assert a["accepted"] == (a["val_mse"] <= report["val_mse"]["limit"])
    limit = report["val_mse"]["limit"]
    assert limit == pytest.approx(1.02 * report["val_mse"]["original"])
    assert report["val_mse"]["converted"] <= limit
    converted = models.load_model(out / "model.keras")
    assert report["converted"]["params"]["total"] == models.parameter_counts(converted)["total"]
    # 5x5 3->8: 608; 3x3 8->12: 876; Dense on the 5x10x12 map: 600 + 1.
    assert report["original"]["params"]["total"] == 608 + 876 + 601 == 2_085
    saved = sum(a["params_saved"] for a in tried if report["layers"][a["layer"]] == "replaced")
    assert report["converted"]["params"]["total"] == 2_085 - saved
    lat = report["latency"]
    assert lat["original"]["median_ms"] > 0 and lat["converted"]["median_ms"] > 0
    md = (out / "report.md").read_text()
    assert "| stage1_conv | 5x5 3->8 | forward |" in md and "validation MSE" in md

    # A second run refuses, naming the file, and leaves it untouched.
    before = (out / "report.json").read_bytes()
    caplog.clear()
    assert main([str(run_dir), *FAST]) == 2
    (err,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]  # one line
    assert str(out / "model.keras") in err and "--overwrite" in err
    assert "slim.py: error" not in capsys.readouterr().err  # logged, not printed by hand
    assert (out / "report.json").read_bytes() == before


def test_model_file_with_explicit_data_and_out(tmp_path, recordings, capsys):
    train, val = recordings
    model_file = tmp_path / "m.keras"
    tiny_conv_model(seed=3).save(model_file)
    out = tmp_path / "elsewhere"
    args = [str(model_file), "--data", str(train), "--val", str(val), "--out", str(out)]
    args += [*FAST, "--tolerance", "0", "--no-backward", "--latency-calls", "0", "--e2e", "off"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["tolerance"] == 0.0
    assert report["latency"] is None
    assert [a["sweep"] for a in report["attempts"]] == ["forward", "forward"]
    for a in report["attempts"]:
        assert a["accepted"] == (a["val_mse"] <= report["val_mse"]["original"])
        assert a["e2e"] is None
    # Rejected layers are the original ones, bit for bit.
    original, converted = models.load_model(model_file), models.load_model(out / "model.keras")
    for name, status in report["layers"].items():
        if status == "kept":
            for a, b in zip(
                original.get_layer(name).get_weights(),
                converted.get_layer(name).get_weights(),
                strict=True,
            ):
                assert np.array_equal(a, b)
    # The default output folder of a model file is beside it.
    assert main([str(model_file), "--data", str(train), "--val", str(val), *FAST[:-1]]) == 0
    assert (tmp_path / "m_slim" / "report.md").is_file()


def test_bad_inputs_are_one_clear_error(tmp_path, recordings, caplog):
    train, _ = recordings

    def error(args) -> str:
        caplog.clear()
        assert main([*args, "-q"]) == 2
        (message,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        return message

    assert "does not exist" in error([str(tmp_path / "missing.keras")])
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip file")
    assert "could not load" in error([str(corrupt), "--data", str(train)])
    no_kxk = tmp_path / "pointwise.keras"
    tiny_conv_model(kxk=False).save(no_kxk)
    assert "no KxK Conv2D" in error([str(no_kxk), "--data", str(train)])
    empty = tmp_path / "not_a_recording"
    empty.mkdir()
    good = tmp_path / "good.keras"
    tiny_conv_model().save(good)
    msg = error([str(good), "--data", str(empty), "--out", str(tmp_path / "o")])
    assert "has no driving_log.csv" in msg and str(empty) in msg
    assert "stage9" in error([str(good), "--data", str(train), "--layers", "stage9"])
    assert not (tmp_path / "o").exists()  # nothing written on failure
