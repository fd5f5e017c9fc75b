"""Keras 1/2 ``.h5`` files written by hand for the tests of models.legacy, as Keras 1.2
and 2.x laid them out (``model_config`` JSON, ``model_weights`` groups)."""

from __future__ import annotations

import codecs
import json
import marshal
from pathlib import Path

import h5py
import keras
import numpy as np

import models

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
PEER = SHARED / "peers" / "naoki" / "model.h5"
LAKE = SHARED / "data" / "udacity" / "akbari_lake"
FRAMES = np.random.default_rng(0).integers(0, 256, (4, *models.INPUT_SHAPE)).astype("float32")
RNG = np.random.default_rng(1)


def keras1_function(func) -> list:
    """Keras 1.2's ``func_dump``: raw_unicode_escape text of the marshalled code."""
    return [marshal.dumps(func.__code__).decode("raw_unicode_escape"), None, None]


def keras2_function(func) -> list:
    """Keras 2.1.2+'s ``func_dump``: base64 (with newlines) of the marshalled code."""
    return [codecs.encode(marshal.dumps(func.__code__), "base64").decode("ascii"), None, None]


def lambda_from(source: str):
    """A real lambda of this interpreter, compiled (never called) from ``source``."""
    return eval(compile(source, "model.py", "eval"))


def write_h5(path: Path, config: dict, weights: dict, *, version: str, backend=None) -> Path:
    """An .h5 as Keras 1.2 / 2.x ``save_model`` wrote it: ``model_config`` JSON and
    ``model_weights/<layer>`` groups listing ``weight_names`` (all layers, even weightless)."""
    entries = config["config"]
    entries = entries if isinstance(entries, list) else entries["layers"]
    names = [e.get("name") or e["config"]["name"] for e in entries]
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version.encode() if version.startswith("2") else version
        text = json.dumps(config)
        f.attrs["model_config"] = text.encode() if version.startswith("2") else text
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode() for n in names]
        if backend:
            group.attrs["backend"] = backend.encode()
        for name in names:
            g = group.create_group(name)
            stored = weights.get(name, [])
            g.attrs["weight_names"] = [n.encode() for n, _ in stored]
            for weight_name, value in stored:
                g.create_dataset(weight_name, data=value)
    return path


def keras1_layer(class_name: str, name: str, **config) -> dict:
    return {"class_name": class_name, "config": {"name": name, "trainable": True, **config}}


def keras2_node(class_name: str, name: str, inbound: list[str], **config) -> dict:
    return {
        "name": name,
        "class_name": class_name,
        "config": {"name": name, "trainable": True, **config},
        "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else [],
    }


def random_like(layer) -> list[np.ndarray]:
    """Weights for ``layer`` with varied outputs; BatchNorm variances are positive."""
    out = []
    for w in layer.weights:
        value = RNG.normal(0, 0.3, tuple(w.shape)).astype("float32")
        if "variance" in w.path:
            value = RNG.uniform(0.5, 2.0, tuple(w.shape)).astype("float32")
        out.append(value)
    layer.set_weights(out)
    return out


def small_net(idiom, version: str, tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Lambda(idiom) -> Flatten -> Dense(1) on 8x16 inputs: (file, kernel, bias)."""
    kernel = RNG.normal(0, 0.05, (8 * 16 * 3, 1)).astype("float32")
    bias = np.float32([0.1])
    dump = keras1_function if version == "1.2.1" else keras2_function
    first = {"function": dump(idiom), "function_type": "lambda", "arguments": {}}
    first.update(output_shape=None, output_shape_type="raw", batch_input_shape=[None, 8, 16, 3])
    if version == "1.2.1":
        layer_list = [
            keras1_layer("Lambda", "lambda_1", **first),
            keras1_layer("Flatten", "flatten_1"),
            keras1_layer("Dense", "dense_1", output_dim=1, activation="linear", bias=True),
        ]
        config = {"class_name": "Sequential", "config": layer_list}
        weights = {"dense_1": [("dense_1_W:0", kernel), ("dense_1_b:0", bias)]}
    else:
        layer_list = [
            keras1_layer("Lambda", "lambda_1", **first),
            keras1_layer("Flatten", "flatten_1", data_format="channels_last"),
            keras1_layer("Dense", "dense_1", units=1, activation="linear", use_bias=True),
        ]
        config = {"class_name": "Sequential", "config": {"name": "seq", "layers": layer_list}}
        weights = {"dense_1": [("dense_1/kernel:0", kernel), ("dense_1/bias:0", bias)]}
    path = write_h5(tmp_path / f"old-{version}.h5", config, weights, version=version)
    return path, kernel, bias


def resized(frames: np.ndarray, size=(8, 16)) -> np.ndarray:
    return np.asarray(keras.ops.image.resize(frames, size, antialias=False))
