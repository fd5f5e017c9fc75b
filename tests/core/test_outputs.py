"""core/outputs.py: the one overwrite guard, atomic writes, JSON."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from core.outputs import (
    OutputExistsError,
    check_new_file,
    check_new_folder,
    prepare_out_dir,
    write_atomic,
    write_json,
)


class ToolError(ValueError):
    pass


def test_an_existing_file_is_refused_naming_it_unless_overwrite(tmp_path):
    model = tmp_path / "model.keras"
    assert check_new_file(model) == model  # absent: fine
    model.write_bytes(b"weights")
    with pytest.raises(OutputExistsError, match=f"{model} already exists; pass --overwrite"):
        check_new_file(model)
    with pytest.raises(ToolError, match="already exists"):
        check_new_file(model, error=ToolError)  # the caller's own error type
    assert check_new_file(model, overwrite=True) == model
    assert model.read_bytes() == b"weights"  # the guard touches nothing
    assert issubclass(OutputExistsError, FileExistsError) and issubclass(
        OutputExistsError, ValueError
    )


def test_a_folder_holding_files_is_refused_naming_them(tmp_path):
    out = tmp_path / "rec"
    assert check_new_folder(out) is False and not out.exists()
    out.mkdir()
    assert check_new_folder(out) is False  # empty
    for name in "abcdefg":
        (out / f"{name}.jpg").write_bytes(b"")
    with pytest.raises(OutputExistsError, match=r"already holds files \(a.jpg, .*e.jpg, ...\)"):
        check_new_folder(out)
    with pytest.raises(ToolError, match=f"recording folder {out} .*: move it"):
        check_new_folder(out, what="recording folder", remedy="move it", error=ToolError)
    assert check_new_folder(out, overwrite=True) is True
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="exists and is not a folder"):
        check_new_folder(tmp_path / "file", overwrite=True)
    assert prepare_out_dir(tmp_path / "new" / "deep").is_dir()


def test_write_json_is_atomic_valid_json_and_keeps_the_umask_mode(tmp_path):
    path = tmp_path / "config.json"
    data = {"a": np.float32(0.5), "n": np.int64(3), "nan": math.nan, "p": Path("x"),
            "t": (1, 2), 4: np.arange(2)}  # fmt: skip
    assert write_json(path, data) == path
    assert json.loads(path.read_text()) == {
        "a": 0.5, "n": 3, "nan": None, "p": "x", "t": [1, 2], "4": [0, 1]
    }  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [path.name]
