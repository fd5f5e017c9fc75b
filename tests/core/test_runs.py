"""``core.runs``: "model file or run folder", one policy for config.json, and the one
``--runtime`` set every command offers."""

from __future__ import annotations

import json

import pytest

from core.runs import (
    EXPORT_SUFFIXES,
    KERAS_SUFFIXES,
    MODEL_SUFFIXES,
    RUN_MODEL_NAMES,
    ModelLoadError,
    create_run_folder,
    read_config,
    resolve_model,
)


def test_one_list_of_suffixes():
    assert KERAS_SUFFIXES == (".keras", ".h5")
    assert (
        MODEL_SUFFIXES == (".keras", ".h5", ".tflite", ".onnx") == KERAS_SUFFIXES + EXPORT_SUFFIXES
    )
    assert RUN_MODEL_NAMES == ("model.keras", "model.h5")


def test_a_model_file_is_itself(tmp_path):
    for suffix in MODEL_SUFFIXES:
        path = tmp_path / f"m{suffix}"
        path.write_bytes(b"x")
        assert resolve_model(path) == path
    assert resolve_model(tmp_path / "m.h5", KERAS_SUFFIXES) == tmp_path / "m.h5"


def test_a_run_folder_gives_model_keras_then_model_h5(tmp_path):
    (tmp_path / "model.h5").write_bytes(b"x")
    assert resolve_model(tmp_path) == tmp_path / "model.h5"
    (tmp_path / "model.keras").write_bytes(b"x")
    assert resolve_model(tmp_path) == tmp_path / "model.keras"
    assert resolve_model(str(tmp_path), KERAS_SUFFIXES) == tmp_path / "model.keras"


def test_missing_names_the_path_and_what_was_expected(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(ModelLoadError) as e:
        resolve_model(missing)
    assert str(e.value) == (
        f"model not found: {missing} does not exist (expected a .h5, .keras, .tflite or "
        ".onnx file or a run folder)"
    )
    with pytest.raises(ModelLoadError, match=r"model not found: .*\(expected a Keras model"):
        resolve_model(missing, KERAS_SUFFIXES)
    with pytest.raises(ModelLoadError, match=r"exported model not found: .*\.tflite or \.onnx"):
        resolve_model(tmp_path / "m.onnx", EXPORT_SUFFIXES)


def test_a_folder_without_a_model_lists_what_it_holds(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "history.csv").write_text("")
    with pytest.raises(ModelLoadError) as e:
        resolve_model(tmp_path)
    message = str(e.value)
    assert message.startswith(f"run folder {tmp_path} holds no model: expected model.keras or")
    assert "found config.json, history.csv" in message
    assert "neither model.keras nor model.h5" in message


def test_wrong_suffix_names_what_came(tmp_path):
    for name in ("model.pt", "model.tflite"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ModelLoadError) as e:
        resolve_model(tmp_path / "model.pt")
    assert str(e.value) == (
        "expected a .h5, .keras, .tflite or .onnx file or a run folder, got 'model.pt'"
    )
    with pytest.raises(ModelLoadError) as e:
        resolve_model(tmp_path / "model.tflite", KERAS_SUFFIXES)
    assert str(e.value) == (
        "expected a Keras model (.keras, .h5) or a run folder, got 'model.tflite'"
    )
    with pytest.raises(ModelLoadError, match=r"expected a \.tflite or \.onnx file, got 'run'"):
        (tmp_path / "run").mkdir()
        resolve_model(tmp_path / "run", EXPORT_SUFFIXES)


def test_config_is_optional_but_never_silently_ignored(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    assert read_config(model) == {} == read_config(tmp_path)  # none: a bare model file
    (tmp_path / "config.json").write_text(json.dumps({"arch": "eff", "data": ["/rec"]}))
    assert read_config(model) == read_config(tmp_path) == {"arch": "eff", "data": ["/rec"]}
    (tmp_path / "config.json").write_text('{"arch": "eff", "da')  # a truncated write
    with pytest.raises(ModelLoadError) as e:
        read_config(model)
    message = str(e.value)
    assert message.startswith(f"cannot read run config {tmp_path / 'config.json'}: ")
    assert "delete it: the model loads without it" in message
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelLoadError, match="expected a JSON object, got list"):
        read_config(tmp_path)


def test_unreadable_config_stops_every_command_the_same_way(tmp_path):
    """drive.py (serving.load), evaluate.py and export.py all read the config through
    read_config: one error, before any model is loaded."""
    from evaluation.inference import resolve_model as evaluation_model
    from export.cli import resolve_source
    from serving import load

    (tmp_path / "model.keras").write_bytes(b"not loaded: the config fails first")
    (tmp_path / "config.json").write_text("{")
    for resolve in (load, evaluation_model, resolve_source):
        with pytest.raises(ModelLoadError, match="cannot read run config .*config.json"):
            resolve(tmp_path)


def test_run_folders_are_never_reused(tmp_path):
    a = create_run_folder(tmp_path / "runs", "eff")
    b = create_run_folder(tmp_path / "runs", "eff")
    assert a != b and a.is_dir() and b.is_dir() and a.name.endswith("_eff")
    assert b.name == f"{a.name}-2"


def test_every_command_offers_the_same_runtimes():
    """One tuple of --runtime choices (serving.RUNTIMES) behind drive.py and every
    evaluate.py command that loads a model."""
    import argparse

    from drive.cli import build_parser as drive_parser
    from evaluation.cli import build_parser as evaluate_parser
    from serving import RUNTIMES

    def runtime_choices(parser: argparse.ArgumentParser) -> list[tuple]:
        found = []
        for action in parser._actions:
            if "--runtime" in action.option_strings:
                found.append(tuple(action.choices))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += runtime_choices(sub)
        return found

    assert RUNTIMES == ("auto", "keras", "tflite", "onnx")
    offered = runtime_choices(drive_parser()) + runtime_choices(evaluate_parser())
    assert len(offered) >= 5  # drive.py; replay, closed-loop, compare, robustness
    assert set(offered) == {RUNTIMES}
