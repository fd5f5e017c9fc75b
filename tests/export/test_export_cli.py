"""``python export.py``: default paths, run folders, refusal to overwrite, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from export_testkit import make_model, write_recording

from export import synthetic_frames
from export.cli import default_output, main, resolve_source
from serving import load

ROOT = Path(__file__).resolve().parents[2]


def error_line(caplog) -> str:
    """The one error line of the last failed command (core.cli.error_exit), checked single."""
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors and "\n" not in errors[-1], errors
    caplog.clear()
    return errors[-1]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A generated 24-frame recording (csv with Windows paths + IMG/)."""
    folder = tmp_path_factory.mktemp("rec") / "generated_lake"
    return write_recording(folder, synthetic_frames(24, seed=11).frames)


@pytest.fixture(scope="module")
def pilotnet(frames):
    return make_model("pilotnet", frames)


@pytest.fixture
def run_dir(tmp_path, pilotnet, recording) -> Path:
    """A training run folder: model.keras + config.json naming the recording."""
    run = tmp_path / "20260101-120000_pilotnet"
    run.mkdir()
    pilotnet.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"arch": "pilotnet", "data": [str(recording)]}))
    return run


def test_run_folder_float_export_goes_next_to_the_model(run_dir, pilotnet, capsys):
    assert main([str(run_dir), "--to", "tflite", "--samples", "8"]) == 0
    out = run_dir / "model.tflite"
    assert out.is_file()
    text = capsys.readouterr().out
    assert f"-> {out}" in text and "parity on 8 frames of 1 recording(s) (generated_lake)" in text
    assert "size: keras" in text and "ms per frame at batch 1" in text
    frames = synthetic_frames(4, seed=5).frames
    expected = pilotnet.predict(frames.astype(np.float32), verbose=0)
    np.testing.assert_allclose(load(out).predict_batch(frames)[:, None], expected, atol=1e-4)


def test_int8_uses_the_run_config_data_and_its_own_default_name(run_dir, capsys):
    assert main([str(run_dir), "--to", "tflite", "--quantize", "int8", "--samples", "8"]) == 0
    assert (run_dir / "model.int8.tflite").is_file()
    text = capsys.readouterr().out
    assert "calibrated on 8 frames of 1 recording(s)" in text
    assert "(not the calibration ones)" in text


def test_h5_file_onnx_default_name_and_explicit_data(tmp_path, pilotnet, recording, capsys):
    model_file = tmp_path / "steer.h5"
    pilotnet.save(model_file)
    args = [str(model_file), "--to", "onnx", "--data", str(recording), "--samples", "4"]
    assert main(args) == 0
    assert (tmp_path / "steer.onnx").is_file()


def test_refuses_to_overwrite_without_flag(run_dir, caplog):
    out = run_dir / "model.tflite"
    out.write_bytes(b"keep me")
    assert main([str(run_dir), "--to", "tflite"]) == 2
    err = error_line(caplog)
    assert f"{out} already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    assert main([str(run_dir), "--to", "tflite", "--overwrite", "--samples", "4"]) == 0
    assert out.read_bytes()[4:8] == b"TFL3"  # a flatbuffer with the TFLite identifier


def test_explicit_out_path_and_wrong_suffix(run_dir, tmp_path, caplog):
    assert main([str(run_dir), "--to", "onnx", "--out", str(tmp_path / "x.tflite")]) == 2
    assert "--to onnx writes a .onnx file, got --out" in error_line(caplog)
    out = tmp_path / "serve" / "steer.onnx"
    assert main([str(run_dir), "--to", "onnx", "--out", str(out)]) == 2
    assert f"output folder {out.parent} does not exist" in error_line(caplog)


def test_missing_model_names_what_was_expected(tmp_path, caplog):
    missing = tmp_path / "nope.keras"
    assert main([str(missing), "--to", "tflite"]) == 2
    err = error_line(caplog)
    assert f"model not found: {missing}" in err and "run folder" in err


def test_run_folder_without_model(tmp_path, caplog):
    (tmp_path / "config.json").write_text("{}")
    assert main([str(tmp_path), "--to", "onnx"]) == 2
    err = error_line(caplog)
    assert "holds no model: expected model.keras or model.h5, found config.json" in err


def test_not_a_model_file(tmp_path, caplog):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"x")
    assert main([str(bad), "--to", "onnx"]) == 2
    assert "expected a Keras model (.keras, .h5) or a run folder, got 'model.tflite'" in (
        error_line(caplog)
    )


def test_wrong_to_is_a_usage_error(run_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(run_dir), "--to", "tflit"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --to: invalid choice: 'tflit'" in err and "onnx" in err and "tflite" in err


def test_int8_without_any_data_is_an_error(tmp_path, pilotnet, caplog):
    model_file = tmp_path / "m.keras"
    pilotnet.save(model_file)
    assert main([str(model_file), "--to", "tflite", "--quantize", "int8"]) == 2
    err = error_line(caplog)
    assert "int8 quantisation needs representative frames" in err
    assert "expected --data DIR" in err and "no run config.json" in err
    assert not (tmp_path / "m.int8.tflite").exists()


def test_int8_with_missing_recording_names_it(run_dir, tmp_path, caplog):
    gone = tmp_path / "gone"
    args = [str(run_dir), "--to", "onnx", "--quantize", "int8", "--data", str(gone)]
    assert main(args) == 2
    assert f"recording folder(s) not found: {gone}" in error_line(caplog)


def test_float_export_without_data_checks_on_generated_frames(tmp_path, pilotnet, capsys):
    model_file = tmp_path / "m.keras"
    pilotnet.save(model_file)
    assert main([str(model_file), "--to", "onnx", "--samples", "4"]) == 0
    assert "parity on 4 generated road-like frames" in capsys.readouterr().out


def test_resolve_source_and_default_names(run_dir, recording):
    source = resolve_source(run_dir)
    assert source.model_file == run_dir / "model.keras"
    assert source.data == (str(recording),)
    assert default_output(source.model_file, "onnx", None) == run_dir / "model.onnx"
    assert default_output(source.model_file, "tflite", "float16") == run_dir / (
        "model.float16.tflite"
    )


def test_root_script_reports_errors_cleanly(tmp_path):
    """The root script runs the package's main: exit code 2 and one log line, no trace."""
    proc = subprocess.run(
        [sys.executable, "export.py", str(tmp_path / "missing.h5"), "--to", "onnx"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "ERROR export.cli: model not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_float_export_with_config_data_absent_here_falls_back(tmp_path, pilotnet, capsys):
    """A run trained on another machine names recordings this one lacks."""
    run = tmp_path / "run"
    run.mkdir()
    pilotnet.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"data": ["/elsewhere/lake"]}))
    assert main([str(run), "--to", "onnx", "--samples", "4"]) == 0
    assert "parity on 4 generated road-like frames" in capsys.readouterr().out


def test_explicit_data_that_is_missing_is_an_error_even_for_float(run_dir, tmp_path, caplog):
    args = [str(run_dir), "--to", "onnx", "--data", str(tmp_path / "gone")]
    assert main(args) == 2
    assert "--data: recording folder(s) not found" in error_line(caplog)
