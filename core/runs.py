"""Run folders: "model file or run folder", the model suffixes and the run's config.json.

Every command that takes a MODEL argument (``drive.py``, ``evaluate.py``, ``export.py``,
``slim.py``) resolves it here, so they accept the same things and fail with the same
words: :func:`resolve_model` gives the model file, :func:`read_config` the run's
``config.json`` under one policy, and :class:`ModelLoadError` is the one error for a
model that cannot be found or loaded (``models.io`` and the serving runtime raise it
too). :func:`create_run_folder` makes the folders ``train.py`` writes.

Standard library only: this is the bottom layer and imports nothing of the project.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

#: Keras model files, in order of preference inside a run folder (the native format
#: first: ``model.h5`` is the Udacity convention and holds the same weights).
KERAS_SUFFIXES = (".keras", ".h5")
#: Exported model files (``export.py``), served by LiteRT and ONNX Runtime.
EXPORT_SUFFIXES = (".tflite", ".onnx")
#: Every model file some command takes.
MODEL_SUFFIXES = KERAS_SUFFIXES + EXPORT_SUFFIXES
#: The model files a run folder from ``train.py`` holds, preferred first.
RUN_MODEL_NAMES = tuple(f"model{suffix}" for suffix in KERAS_SUFFIXES)
#: The run's settings and results, beside the model files.
CONFIG_NAME = "config.json"


class ModelLoadError(ValueError):
    """A model that cannot be used: missing, not a model, corrupt, wrong shape or an
    unreadable run config. The message names what was expected and what was found."""


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def expected(suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> str:
    """What a MODEL argument accepting ``suffixes`` may be, in words."""
    keras = [s for s in KERAS_SUFFIXES if s in suffixes]
    exported = [s for s in EXPORT_SUFFIXES if s in suffixes]
    if not exported:
        return f"a Keras model ({', '.join(keras)}) or a run folder"
    listed = f"a {_or(sorted(keras) + exported)} file"
    return f"{listed} or a run folder" if keras else listed


def resolve_model(path: str | os.PathLike, suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> Path:
    """The model file that ``path`` (a model file or a run folder) names.

    A run folder gives its ``model.keras``, else its ``model.h5`` (only when ``suffixes``
    take Keras files). A file must exist and carry one of ``suffixes``. Anything else
    raises :class:`ModelLoadError` naming what was expected and what was found.
    """
    path = Path(path)
    keras_ok = any(s in suffixes for s in KERAS_SUFFIXES)
    if path.is_dir() and keras_ok:
        for name in RUN_MODEL_NAMES:
            if (path / name).is_file():
                return path / name
        listing = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        first, second = RUN_MODEL_NAMES
        raise ModelLoadError(
            f"run folder {path} holds no model: expected {first} or {second}, found "
            f"{listing} (neither {first} nor {second} is there; train.py writes both)"
        )
    if not path.exists():
        kind = "model" if keras_ok else "exported model"
        raise ModelLoadError(
            f"{kind} not found: {path} does not exist (expected {expected(suffixes)})"
        )
    if path.is_dir() or path.suffix.lower() not in suffixes:
        raise ModelLoadError(f"expected {expected(suffixes)}, got {path.name!r}")
    return path


def config_path(path: str | os.PathLike) -> Path:
    """The run config beside a model file, or inside a run folder."""
    path = Path(path)
    return (path if path.is_dir() else path.parent) / CONFIG_NAME


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The run's ``config.json`` (beside a model file or inside a run folder), or ``{}``.

    Policy: a missing config is normal (a bare model file, an imported or exported
    model) and gives ``{}``; a config that exists but cannot be read or is not a JSON
    object raises :class:`ModelLoadError` naming the file. Ignoring it, with or without
    a warning, would let a truncated or hand-edited file silently change what a command
    does: ``export.py`` and ``slim.py`` take their training recordings from it (int8
    calibration, validation frames), ``evaluate.py`` its labels and architecture. The
    error says the file is optional, so deleting it is a fix when it cannot be repaired.
    """
    config = config_path(path)
    if not config.is_file():
        return {}
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot read run config {config}: {exc} (repair it, or delete it: the model "
            "loads without it)"
        ) from exc
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"cannot read run config {config}: expected a JSON object, got "
            f"{type(data).__name__} (repair it, or delete it: the model loads without it)"
        )
    return data


def create_run_folder(out: str | os.PathLike, arch: str) -> Path:
    """Create ``out/<YYYYmmdd-HHMMSS>_<arch>``; add ``-2``, ``-3``... if it exists."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{arch}"
    for n in range(1, 1000):
        folder = out / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"could not create a new run folder named {stem}* in {out}")
