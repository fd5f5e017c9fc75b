"""Reading a Keras 1/2 ``.h5`` with h5py only: layer configs, input shape, weights.

:func:`read_legacy` parses the ``model_config`` JSON and reads the ``model_weights``
arrays into a :class:`~models.legacy.spec.LegacyModel`; it never unpickles,
unmarshals or runs anything stored in the file. :func:`legacy_hint` is what
``models.io.load_model`` says about such a file instead of handing it to Keras: who
saved it, its Lambda layers and the import command.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from models.legacy.spec import COLOURS, LayerSpec, LegacyImportError, LegacyModel


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _names(attrs, key: str) -> list[str]:
    """A list attribute, also when Keras 2 split a long one into ``key0``, ``key1``..."""
    if key in attrs:
        return [_text(v) for v in np.atleast_1d(attrs[key])]
    out, chunk = [], 0
    while f"{key}{chunk}" in attrs:
        out += [_text(v) for v in np.atleast_1d(attrs[f"{key}{chunk}"])]
        chunk += 1
    return out


def _version(f: h5py.File) -> str | None:
    for attrs in (f.attrs, f["model_weights"].attrs if "model_weights" in f else {}):
        if "keras_version" in attrs:
            return _text(attrs["keras_version"])
    return None


def _layer_entries(config: dict) -> list[dict]:
    inner = config.get("config")
    if config.get("class_name") == "Sequential":
        return inner if isinstance(inner, list) else (inner or {}).get("layers", [])
    return (inner or {}).get("layers", []) if isinstance(inner, dict) else []


def legacy_hint(path: str | Path) -> str | None:
    """One line for a Keras 1/2 ``.h5`` (which is never loaded directly), else None.

    Says who saved it, names its Lambda layers and gives the import command. Files that
    are not HDF5 or were saved by Keras 3 give None and go to Keras as usual.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            version = _version(f)
            raw = f.attrs.get("model_config")
            config = json.loads(_text(raw)) if raw is not None else None
    except (OSError, ValueError):
        return None
    if config is None or (version is not None and not version.startswith(("1.", "2."))):
        return None
    entries = _layer_entries(config)
    lambdas = [
        e.get("config", {}).get("name", "?") for e in entries if e.get("class_name") == "Lambda"
    ]
    held = f"; its Lambda layer {', '.join(lambdas)} holds Python bytecode, never run here"
    return (
        f"{path} was saved by Keras {version or '1/2 (no version recorded)'}"
        f"{held if lambdas else ''}: import it once with: {import_command(path)}"
    )


def import_command(path: str | Path) -> str:
    return (
        f"python -m models.legacy {path} --out {Path(path).stem}.keras "
        f"[--crop TOP BOTTOM] [--resize HxW] [--colour {'|'.join(COLOURS)}] "
        "(the preprocessing its own drive.py did; README: Driving a model from the Udacity course)"
    )


def read_legacy(path: str | Path) -> LegacyModel:
    """The layers, input shape and weights of a Keras 1/2 ``.h5``, read with h5py only."""
    path = Path(path)
    if not path.is_file():
        raise LegacyImportError(f"model file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise LegacyImportError(f"{path}: expected a Keras .h5 (HDF5) file: {exc}") from exc
    with f:
        if "model_config" not in f.attrs:
            raise LegacyImportError(
                f"{path}: expected a whole model (a model_config attribute), found weights only "
                f"(attributes: {', '.join(f.attrs) or 'none'})"
            )
        version = _version(f) or "1/2 (no version recorded)"
        if not version.startswith(("1", "2")):
            raise LegacyImportError(
                f"{path}: saved by Keras {version}, not Keras 1 or 2: load it directly "
                f"(python drive.py {path})"
            )
        backend = f.attrs.get("backend", f.get("model_weights", f).attrs.get("backend"))
        backend = _text(backend) if backend is not None else None
        try:
            config = json.loads(_text(f.attrs["model_config"]))
        except ValueError as exc:
            raise LegacyImportError(f"{path}: model_config is not JSON: {exc}") from exc
        try:
            specs, input_name, output_name, input_shape = _topology(config, path)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise LegacyImportError(
                f"{path}: model_config is not a Keras 1/2 model config ({type(exc).__name__}: "
                f"{exc})"
            ) from exc
        weights = _read_weights(f, path)
    return LegacyModel(path, version, backend, input_shape, specs, input_name, output_name, weights)


def _shape_of(config: dict) -> tuple | None:
    shape = config.get("batch_input_shape") or config.get("batch_shape")
    return tuple(shape[1:]) if shape else None


def _topology(config: dict, path: Path):
    """(layer specs, input layer name, output layer name, input shape) from model_config."""
    kind = config.get("class_name")
    entries = _layer_entries(config)
    if kind == "Sequential":
        if not entries:
            raise LegacyImportError(f"{path}: the Sequential model has no layers")
        if entries[0].get("class_name") == "InputLayer":  # tf.keras lists it
            shape, entries = _shape_of(entries[0]["config"]), entries[1:]
        else:
            shape = _shape_of(entries[0].get("config", {}))
        specs = [LayerSpec(e["config"]["name"], e["class_name"], e["config"]) for e in entries]
        if shape is None:
            raise LegacyImportError(f"{path}: the first layer records no input shape")
        return specs, None, specs[-1].name, shape
    if kind not in ("Model", "Functional"):
        raise LegacyImportError(
            f"{path}: expected a Sequential or functional (Model) config, got {kind!r}"
        )
    inner = config["config"]
    ins, outs = inner.get("input_layers", []), inner.get("output_layers", [])
    if len(ins) != 1 or len(outs) != 1:
        raise LegacyImportError(
            f"{path}: expected one input and one output, got inputs {ins} and outputs {outs}"
        )
    specs, input_name, shape = [], ins[0][0], None
    for e in entries:
        name = e.get("name") or e["config"]["name"]
        if e["class_name"] == "InputLayer":
            if name == input_name:
                shape = _shape_of(e["config"])
            continue
        nodes = e.get("inbound_nodes", [])
        if len(nodes) != 1:
            raise LegacyImportError(
                f"{path}: layer {name!r} is used {len(nodes)} times (shared layers are not "
                "imported); expected each layer applied once"
            )
        inbound = []
        for ref in nodes[0]:
            if ref[1] != 0 or ref[2] != 0:
                raise LegacyImportError(
                    f"{path}: layer {name!r} takes output {ref[1:3]} of {ref[0]!r}; expected the "
                    "first output of each layer"
                )
            inbound.append(ref[0])
        specs.append(LayerSpec(name, e["class_name"], e["config"], tuple(inbound)))
    if shape is None:
        raise LegacyImportError(f"{path}: no input shape recorded for input {input_name!r}")
    return specs, input_name, outs[0][0], shape


def _read_weights(f: h5py.File, path: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    group = f.get("model_weights")
    if group is None:
        raise LegacyImportError(f"{path}: no model_weights group (keys: {', '.join(f)})")
    out = {}
    for layer in _names(group.attrs, "layer_names"):
        g = group[layer]
        out[layer] = [(n, np.asarray(g[n])) for n in _names(g.attrs, "weight_names")]
    return out
