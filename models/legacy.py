"""Importing Keras 1.x / 2.x ``.h5`` steering models (the Udacity course's) safely.

``python -m models.legacy OLD.h5 --out model.keras [--crop TOP BOTTOM] [--resize HxW]
[--interpolation bilinear] [--colour rgb|bgr|yuv|yuv-opencv31] [--lambda NAME=SPEC]``

Keras 3 cannot load most models trained in the course: their layer configs use Keras 1
names (``Convolution2D`` with ``subsample``, ``border_mode``, ``nb_filter``...), and
their first layer is usually a ``Lambda`` holding marshalled bytecode of the Python
that trained them, which safe mode rightly refuses to run. This module reads the file
with h5py (the ``model_config`` JSON and the ``model_weights`` arrays), rebuilds the
network from Keras 3 built-in layers and sets the weights; it never unpickles,
unmarshals or runs anything stored in the file. A ``Lambda`` is read with
:mod:`models.bytecode`: one that computes ``scale * x + offset`` of its input (the
course's ``x / 255 - 0.5``, ``x / 127.5 - 1``...) becomes ``Rescaling``; any other is
refused, naming its constants, unless ``--lambda NAME=SPEC`` says what it does.

The old ``drive.py`` often cropped, resized and converted colours before calling the
model. The options put those steps in front of the network, in that order, as layers
(``Cropping2D``, :class:`models.layers.Resize`, :class:`models.layers.ColourConvert`),
so the imported model takes the raw ``(160, 320, 3)`` RGB frame like every model of
the project and runs in ``drive.py``, ``evaluate.py`` and ``export.py`` unchanged.

Weight layouts: Keras 1 names weights ``<layer>_W:0``, ``<layer>_b:0``; Keras 2
``<layer>/kernel:0``, ``<layer>/bias:0``. Kernels are stored ``(rows, cols, in, out)``
for channels-last models (the only ones imported) and load one to one; models saved
under Theano (``backend`` attribute) get their kernels flipped, as Keras 2's loader
did. Keras 1's BatchNormalization ``running_std`` holds the moving *variance* despite
its name (its inference call passes it to ``K.batch_normalization`` as the variance;
the training update tracks ``tf.nn.moments``' variance), so it loads as Keras 3's
``moving_variance`` unchanged.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers

from core.cli import setup_logging
from core.outputs import check_new_file
from models.blocks import frame_input
from models.bytecode import BytecodeError, affine_map, constants, keras_function_bytes, read_code
from models.io import check_signature, load_model
from models.layers import COLOUR_MODES, ColourConvert, Resize
from models.registry import INPUT_SHAPE

log = logging.getLogger("models.legacy")  # also under python -m

#: ``keras.ops.image.resize`` methods; ``bilinear`` (half-pixel centres, no antialias)
#: matches ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` to ~0.005 grey levels.
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area")
COLOURS = ("rgb", *COLOUR_MODES)
#: Activations whose Keras 1/2 and Keras 3 definitions agree (``hard_sigmoid`` does not).
ACTIVATIONS = (
    "linear",
    "relu",
    "elu",
    "selu",
    "tanh",
    "sigmoid",
    "softmax",
    "softplus",
    "softsign",
)


class LegacyImportError(ValueError):
    """A file or option the importer cannot turn into a steering model; says why."""


@dataclass(frozen=True)
class Preprocess:
    """What the old ``drive.py`` did to the frame before the network, in this order."""

    crop: tuple[int, int] | None = None  # rows off the top and the bottom
    resize: tuple[int, int] | None = None  # (height, width)
    interpolation: str = "bilinear"
    colour: str = "rgb"
    #: Lambda layer name -> ``rescale:SCALE,OFFSET``, ``resize:HxW`` or ``crop:TOP,BOTTOM``.
    lambdas: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the stored config; ``inbound`` is None for "the previous layer"."""

    name: str
    class_name: str
    config: dict
    inbound: tuple[str, ...] | None = None


@dataclass
class LegacyModel:
    """What an old ``.h5`` holds, as plain data: nothing in it has been run."""

    path: Path
    keras_version: str
    backend: str | None
    input_shape: tuple  # (height, width, channels); None where any size was allowed
    layers: list[LayerSpec]
    input_name: str | None  # the functional model's InputLayer
    output_name: str
    weights: dict[str, list[tuple[str, np.ndarray]]]


# ------------------------------------------------------------------------ reading


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


# ------------------------------------------------------------------- converting


def _fail(spec: LayerSpec, message: str) -> LegacyImportError:
    return LegacyImportError(f"layer {spec.name!r} ({spec.class_name}): {message}")


def _get(spec: LayerSpec, *keys, default=...):
    """The first of ``keys`` (Keras 2 name first, then Keras 1's) present in the config."""
    for key in keys:
        if key in spec.config:
            return spec.config[key]
    if default is ...:
        raise _fail(spec, f"expected one of {keys} in its config, found {sorted(spec.config)}")
    return default


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _channels_last(spec: LayerSpec) -> None:
    order = spec.config.get("data_format") or spec.config.get("dim_ordering")
    if order in ("th", "channels_first"):
        raise _fail(
            spec,
            f"channels-first ordering ({order!r}) is not imported; expected 'tf' / "
            "'channels_last' (TensorFlow-trained course models all are)",
        )


def _padding(spec: LayerSpec) -> str:
    padding = _get(spec, "padding", "border_mode", default="valid")
    if padding not in ("valid", "same"):
        raise _fail(spec, f"expected padding 'valid' or 'same', got {padding!r}")
    return padding


def _activation(spec: LayerSpec, key: str = "activation") -> str:
    name = spec.config.get(key, "linear")
    if isinstance(name, dict):  # Keras 2.x serialised some as {"class_name": ...}
        name = name.get("config", {}).get("name", name.get("class_name"))
    if name not in ACTIVATIONS:
        raise _fail(spec, f"activation {name!r} is not imported; expected one of {ACTIVATIONS}")
    return name


def _conv2d(spec: LayerSpec, pre: Preprocess):
    _channels_last(spec)
    kernel = spec.config.get("kernel_size") or (_get(spec, "nb_row"), _get(spec, "nb_col"))
    return layers.Conv2D(
        int(_get(spec, "filters", "nb_filter")),
        _pair(kernel),
        strides=_pair(_get(spec, "strides", "subsample", default=1)),
        padding=_padding(spec),
        dilation_rate=_pair(_get(spec, "dilation_rate", "atrous_rate", default=1)),
        activation=_activation(spec),
        use_bias=bool(_get(spec, "use_bias", "bias", default=True)),
        name=spec.name,
    )


def _dense(spec: LayerSpec, pre: Preprocess):
    return layers.Dense(
        int(_get(spec, "units", "output_dim")),
        activation=_activation(spec),
        use_bias=bool(_get(spec, "use_bias", "bias", default=True)),
        name=spec.name,
    )


def _pooling(cls):
    def convert(spec: LayerSpec, pre: Preprocess):
        _channels_last(spec)
        size = _pair(_get(spec, "pool_size", default=2))
        strides = _get(spec, "strides", default=None)
        return cls(
            size,
            strides=_pair(strides) if strides else size,
            padding=_padding(spec),
            name=spec.name,
        )

    return convert


def _dropout(cls):
    def convert(spec: LayerSpec, pre: Preprocess):
        _channels_last(spec)
        return cls(float(_get(spec, "rate", "p")), name=spec.name)

    return convert


def _flatten(spec: LayerSpec, pre: Preprocess):
    _channels_last(spec)
    return layers.Flatten(name=spec.name)


def _cropping2d(spec: LayerSpec, pre: Preprocess):
    _channels_last(spec)
    crop = _get(spec, "cropping")
    rows, cols = (crop, crop) if isinstance(crop, int) else crop
    return layers.Cropping2D((_pair(rows), _pair(cols)), name=spec.name)


def _batchnorm(spec: LayerSpec, pre: Preprocess):
    mode = spec.config.get("mode", 0)
    if mode != 0:
        raise _fail(
            spec,
            f"Keras 1 BatchNormalization mode {mode} normalises with each batch's own "
            "statistics, also when driving; expected mode 0 (moving statistics)",
        )
    axis = spec.config.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:  # later Keras 2 stores [3]
        axis = axis[0]
    return layers.BatchNormalization(
        axis=axis,
        epsilon=float(spec.config.get("epsilon", 1e-3)),
        center=bool(spec.config.get("center", True)),
        scale=bool(spec.config.get("scale", True)),
        name=spec.name,
    )


def _activation_layer(spec: LayerSpec, pre: Preprocess):
    return layers.Activation(_activation(spec), name=spec.name)


def _elu(spec: LayerSpec, pre: Preprocess):
    return layers.ELU(alpha=float(spec.config.get("alpha", 1.0)), name=spec.name)


def _leaky_relu(spec: LayerSpec, pre: Preprocess):
    slope = spec.config.get("negative_slope", spec.config.get("alpha", 0.3))
    return layers.LeakyReLU(negative_slope=float(slope), name=spec.name)


def _relu(spec: LayerSpec, pre: Preprocess):
    return layers.ReLU(
        max_value=spec.config.get("max_value"),
        negative_slope=float(spec.config.get("negative_slope", 0.0)),
        threshold=float(spec.config.get("threshold", 0.0)),
        name=spec.name,
    )


def _merge(cls):
    def convert(spec: LayerSpec, pre: Preprocess):
        kwargs = {"axis": int(spec.config.get("axis", -1))} if cls is layers.Concatenate else {}
        return cls(name=spec.name, **kwargs)

    return convert


_LAMBDA_SPEC = re.compile(
    r"^(?:rescale:(?P<scale>[-+0-9.eE]+),(?P<offset>[-+0-9.eE]+)"
    r"|resize:(?P<h>\d+)x(?P<w>\d+)|crop:(?P<top>\d+),(?P<bottom>\d+))$"
)


def _lambda_options(name: str) -> str:
    return (
        f"--lambda {name}=rescale:SCALE,OFFSET if it scales pixels, "
        f"--lambda {name}=resize:HxW if it resizes, --lambda {name}=crop:TOP,BOTTOM if it "
        "crops rows"
    )


def _lambda_replacement(spec: LayerSpec, text: str, pre: Preprocess):
    m = _LAMBDA_SPEC.match(text)
    if m is None:
        raise _fail(spec, f"--lambda {spec.name}={text}: expected {_lambda_options(spec.name)}")
    log.info("%s: replaced by --lambda %s=%s (its code was not read)", spec.name, spec.name, text)
    if m["scale"] is not None:
        return layers.Rescaling(float(m["scale"]), float(m["offset"]), name=spec.name)
    if m["h"] is not None:
        return Resize(int(m["h"]), int(m["w"]), pre.interpolation, name=spec.name)
    return layers.Cropping2D(((int(m["top"]), int(m["bottom"])), (0, 0)), name=spec.name)


def _lambda(spec: LayerSpec, pre: Preprocess):
    if spec.name in pre.lambdas:
        return _lambda_replacement(spec, pre.lambdas[spec.name], pre)
    config, name = spec.config, spec.name
    if config.get("function_type", "lambda") != "lambda":
        raise _fail(
            spec,
            f"calls the named function {config.get('function')!r}, whose code is not in the "
            f"file; pass {_lambda_options(name)}",
        )
    if config.get("arguments"):
        raise _fail(spec, f"passes arguments {config['arguments']}; pass {_lambda_options(name)}")
    try:
        info = read_code(keras_function_bytes(config.get("function")))
    except BytecodeError as exc:
        raise _fail(
            spec, f"its function is unreadable ({exc}); pass {_lambda_options(name)}"
        ) from None
    try:
        found = affine_map(info)
    except BytecodeError as exc:
        raise _fail(
            spec,
            f"not a per-pixel scaling a*x+b (constants {constants(info)}, names "
            f"{info.names or '()'}; {exc}); nothing in it was run. Pass {_lambda_options(name)}",
        ) from None
    log.info(
        "%s: %s bytecode computes %.9g * x + %.9g -> Rescaling",
        name,
        found.dialect,
        found.scale,
        found.offset,
    )
    log.debug("%s: the disassembly matched (%s):\n%s", name, found.dialect, found.listing)
    return layers.Rescaling(found.scale, found.offset, name=name)


CONVERTERS = {
    "Convolution2D": _conv2d,
    "AtrousConvolution2D": _conv2d,
    "Conv2D": _conv2d,
    "Dense": _dense,
    "MaxPooling2D": _pooling(layers.MaxPooling2D),
    "AveragePooling2D": _pooling(layers.AveragePooling2D),
    "Dropout": _dropout(layers.Dropout),
    "SpatialDropout2D": _dropout(layers.SpatialDropout2D),
    "Flatten": _flatten,
    "Cropping2D": _cropping2d,
    "BatchNormalization": _batchnorm,
    "Activation": _activation_layer,
    "ELU": _elu,
    "LeakyReLU": _leaky_relu,
    "ReLU": _relu,
    "Add": _merge(layers.Add),
    "Concatenate": _merge(layers.Concatenate),
    "Lambda": _lambda,
}

#: Stored weight names (after the layer name) -> role; Keras 1 first, then Keras 2.
_ROLES = {
    "W": "kernel",
    "kernel": "kernel",
    "b": "bias",
    "bias": "bias",
    "gamma": "gamma",
    "beta": "beta",
    "running_mean": "moving_mean",
    "moving_mean": "moving_mean",
    "running_std": "moving_variance",  # a variance despite the name (module docstring)
    "moving_variance": "moving_variance",
}


def _role(weight_name: str, layer: str) -> str | None:
    base = weight_name.split(":")[0].rsplit("/", 1)[-1]
    if base.startswith(f"{layer}_"):
        base = base[len(layer) + 1 :]
    return _ROLES.get(base)


def _expected_roles(layer) -> list[str]:
    if isinstance(layer, layers.BatchNormalization):
        return (
            ["gamma"] * layer.scale + ["beta"] * layer.center + ["moving_mean", "moving_variance"]
        )
    if isinstance(layer, layers.Conv2D | layers.Dense):
        return ["kernel"] + ["bias"] * layer.use_bias
    return []


def _set_weights(layer, spec: LayerSpec, stored: list[tuple[str, np.ndarray]], flip: bool):
    roles = _expected_roles(layer)
    if len(stored) != len(roles):
        raise _fail(
            spec,
            f"expected {len(roles)} weights ({', '.join(roles) or 'none'}), the file holds "
            f"{len(stored)} ({', '.join(n for n, _ in stored) or 'none'})",
        )
    if not roles:
        return
    named = {_role(n, spec.name): a for n, a in stored}
    if set(named) != set(roles):  # unrecognised names: Keras stores them in layer order
        named = dict(zip(roles, (a for _, a in stored), strict=True))
    values = [named[r] for r in roles]
    if flip and isinstance(layer, layers.Conv2D):
        values[0] = values[0][::-1, ::-1]  # Theano convolved; Keras 3 cross-correlates
    for role, value, variable in zip(roles, values, layer.weights, strict=True):
        if tuple(value.shape) != tuple(variable.shape):
            raise _fail(
                spec,
                f"expected {role} of shape {tuple(variable.shape)}, the file holds "
                f"{tuple(value.shape)}",
            )
    layer.set_weights([np.asarray(v, dtype="float32") for v in values])


# -------------------------------------------------------------------- building


def _preprocess(frame, pre: Preprocess):
    x = frame
    if pre.crop is not None:
        top, bottom = pre.crop
        if top < 0 or bottom < 0 or top + bottom >= INPUT_SHAPE[0]:
            raise LegacyImportError(
                f"--crop {top} {bottom}: expected rows to remove from the top and bottom "
                f"leaving some of the {INPUT_SHAPE[0]}"
            )
        x = layers.Cropping2D(((top, bottom), (0, 0)), name="legacy_crop")(x)
    if pre.resize is not None:
        height, width = pre.resize
        if height < 1 or width < 1:
            raise LegacyImportError(f"--resize {height}x{width}: expected positive sizes")
        if pre.interpolation not in INTERPOLATIONS:
            raise LegacyImportError(
                f"--interpolation {pre.interpolation!r}: expected one of {INTERPOLATIONS}"
            )
        x = Resize(height, width, pre.interpolation, name="legacy_resize")(x)
    if pre.colour not in COLOURS:
        raise LegacyImportError(f"--colour {pre.colour!r}: expected one of {COLOURS}")
    if pre.colour != "rgb":
        x = ColourConvert(pre.colour, name="legacy_colour")(x)
    return x


def _check_input(got: tuple, legacy: LegacyModel, pre: Preprocess) -> None:
    want = legacy.input_shape
    if len(want) == 3 and all(w is None or w == g for w, g in zip(want, got, strict=True)):
        return
    hint = ""
    if len(want) == 3 and want[2] not in (None, 3):
        hint = f"; the network takes {want[2]} channels and frames have 3"
    elif len(want) == 3 and want[0] and want[1]:
        hint = f": pass --resize {want[0]}x{want[1]} (after --crop, if its drive.py cropped)"
    raise LegacyImportError(
        f"{legacy.path}: the network takes {want} inputs, the frame after the options is "
        f"{got}{hint}"
    )


def build(legacy: LegacyModel, pre: Preprocess) -> keras.Model:
    """The Keras 3 steering model: raw frame -> preprocessing options -> the old network."""
    unknown = sorted(set(pre.lambdas) - {s.name for s in legacy.layers if s.class_name == "Lambda"})
    if unknown:
        lambdas = [s.name for s in legacy.layers if s.class_name == "Lambda"]
        raise LegacyImportError(
            f"--lambda names {unknown}; the Lambda layers of {legacy.path} are {lambdas or 'none'}"
        )
    flip = legacy.backend == "theano"
    if flip:
        log.info("%s was trained under Theano: convolution kernels are flipped", legacy.path)
    frame = frame_input()
    x = _preprocess(frame, pre)
    _check_input(tuple(x.shape[1:]), legacy, pre)
    tensors, previous = {legacy.input_name: x}, x
    for spec in legacy.layers:
        convert = CONVERTERS.get(spec.class_name)
        if convert is None:
            raise _fail(
                spec, f"this layer type is not imported; expected one of {sorted(CONVERTERS)}"
            )
        layer = convert(spec, pre)
        if spec.inbound is None:
            inputs = previous
        else:
            missing = [n for n in spec.inbound if n not in tensors]
            if missing:
                raise _fail(spec, f"takes {missing}, which come later or not at all")
            inputs = [tensors[n] for n in spec.inbound]
            inputs = inputs[0] if len(inputs) == 1 else inputs
        try:
            previous = tensors[spec.name] = layer(inputs)
        except ValueError as exc:
            raise _fail(spec, f"does not fit its input: {str(exc).splitlines()[0]}") from exc
        _set_weights(layer, spec, legacy.weights.get(spec.name, []), flip)
    name = "legacy_" + re.sub(r"\W", "_", legacy.path.stem)
    model = keras.Model(frame, tensors[legacy.output_name], name=name)
    try:
        check_signature(model, source=str(legacy.path))
    except ValueError as exc:
        raise LegacyImportError(str(exc)) from exc
    return model


def import_model(path: str | Path, pre: Preprocess = Preprocess()) -> keras.Model:
    """Read a Keras 1/2 ``.h5`` and rebuild it as a raw-frame Keras 3 steering model."""
    return build(read_legacy(path), pre)


# ------------------------------------------------------------------------- CLI


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 66x200, got {text!r}")
    return int(m[1]), int(m[2])


def _lambda_option(text: str) -> tuple[str, str]:
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(
            f"expected NAME=SPEC such as lambda_1=resize:66x200, got {text!r}"
        )
    return name, spec


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m models.legacy",
        description="Import a Keras 1/2 .h5 steering model (e.g. from the Udacity course) as a "
        "Keras 3 model taking the raw 160x320 RGB frame; nothing stored in the file is run.",
    )
    p.add_argument("model", metavar="OLD.h5", help="the Keras 1.x or 2.x model file")
    p.add_argument("--out", type=Path, required=True, help="the .keras file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--crop",
        nargs=2,
        type=int,
        metavar=("TOP", "BOTTOM"),
        help="rows its drive.py cut off the top and the bottom (image[TOP:-BOTTOM])",
    )
    p.add_argument("--resize", type=_size, metavar="HxW", help="size its drive.py resized to")
    p.add_argument(
        "--interpolation",
        choices=INTERPOLATIONS,
        default="bilinear",
        help="resize method (default bilinear = cv2.INTER_LINEAR, also cv2.resize's default)",
    )
    p.add_argument(
        "--colour",
        choices=COLOURS,
        default="rgb",
        help="colour conversion its drive.py applied to the RGB frame (default rgb: none); "
        "yuv = cv2.COLOR_RGB2YUV; yuv-opencv31 = OpenCV 3.1's RGB2YUV (red and blue "
        "exchanged, = today's cv2.COLOR_BGR2YUV on the RGB frame)",
    )
    p.add_argument(
        "--lambda",
        dest="lambdas",
        action="append",
        type=_lambda_option,
        default=[],
        metavar="NAME=SPEC",
        help="what a Lambda layer the importer refuses does: rescale:SCALE,OFFSET, resize:HxW "
        "or crop:TOP,BOTTOM (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging (disassembly)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    logging.getLogger("h5py").setLevel(logging.INFO)  # its converter notices at debug
    try:
        return run(args)
    except (LegacyImportError, OSError) as exc:
        print(f"models.legacy: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.suffix != ".keras":
        raise LegacyImportError(f"--out must name a .keras file, got {out}")
    check_new_file(out, overwrite=args.overwrite, error=LegacyImportError)
    pre = Preprocess(
        crop=tuple(args.crop) if args.crop else None,
        resize=args.resize,
        interpolation=args.interpolation,
        colour=args.colour,
        lambdas=dict(args.lambdas),
    )
    legacy = read_legacy(args.model)
    model = build(legacy, pre)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    # Read back the way drive.py, evaluate.py and export.py will: safe mode, raw frames.
    reloaded = load_model(out)
    frames = np.random.default_rng(0).integers(0, 256, (4, *INPUT_SHAPE)).astype("float32")
    diff = float(
        np.max(np.abs(model.predict(frames, verbose=0) - reloaded.predict(frames, verbose=0)))
    )
    steps = [f"crop {pre.crop[0]}/{pre.crop[1]}" if pre.crop else None]
    steps += [f"resize {pre.resize[0]}x{pre.resize[1]} {pre.interpolation}" if pre.resize else None]
    steps += [f"colour {pre.colour}" if pre.colour != "rgb" else None]
    params = model.count_params()
    backend = f"{legacy.backend} backend" if legacy.backend else "backend not recorded"
    print(
        f"imported {legacy.path} (Keras {legacy.keras_version}, {backend}): "
        f"{len(legacy.layers)} layers, {params:,} parameters"
    )
    print(f"  frame preprocessing in the graph: {', '.join(s for s in steps if s) or 'none'}")
    print(f"  wrote {out}; reloaded in safe mode, max |diff| {diff:.2g} on 4 probe frames")
    print(f"  drive it with: python drive.py {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
