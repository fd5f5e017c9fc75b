"""Keras 1/2 layer configs as Keras 3 built-in layers, and their stored weights.

:data:`CONVERTERS` maps each class name the importer knows (Keras 1's
``Convolution2D`` with ``subsample``, ``border_mode``, ``nb_filter``... and Keras 2's
``Conv2D``) to a function building the Keras 3 layer. A ``Lambda`` is read with
:mod:`models.legacy.codeobject` and :mod:`models.legacy.affine`: one that computes
``scale * x + offset`` of its input (the course's ``x / 255 - 0.5``, ``x / 127.5 - 1``...)
becomes ``Rescaling``; any other is refused, naming its constants, unless
``--lambda NAME=SPEC`` says what it does.

Weight layouts (:func:`set_weights`): Keras 1 names weights ``<layer>_W:0``,
``<layer>_b:0``; Keras 2 ``<layer>/kernel:0``, ``<layer>/bias:0``. Kernels are stored
``(rows, cols, in, out)`` for channels-last models (the only ones imported) and load
one to one; models saved under Theano (``backend`` attribute) get their kernels
flipped, as Keras 2's loader did. Keras 1's BatchNormalization ``running_std`` holds
the moving *variance* despite its name (its inference call passes it to
``K.batch_normalization`` as the variance; the training update tracks
``tf.nn.moments``' variance), so it loads as Keras 3's ``moving_variance`` unchanged.
"""

from __future__ import annotations

import logging
import re

import numpy as np
from keras import layers

from models.layers import Resize
from models.legacy.affine import affine_map
from models.legacy.codeobject import BytecodeError, constants, keras_function_bytes, read_code
from models.legacy.spec import LayerSpec, LegacyImportError, Preprocess

log = logging.getLogger(__name__)

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


def layer_error(spec: LayerSpec, message: str) -> LegacyImportError:
    return LegacyImportError(f"layer {spec.name!r} ({spec.class_name}): {message}")


def _get(spec: LayerSpec, *keys, default=...):
    """The first of ``keys`` (Keras 2 name first, then Keras 1's) present in the config."""
    for key in keys:
        if key in spec.config:
            return spec.config[key]
    if default is ...:
        raise layer_error(
            spec, f"expected one of {keys} in its config, found {sorted(spec.config)}"
        )
    return default


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _channels_last(spec: LayerSpec) -> None:
    order = spec.config.get("data_format") or spec.config.get("dim_ordering")
    if order in ("th", "channels_first"):
        raise layer_error(
            spec,
            f"channels-first ordering ({order!r}) is not imported; expected 'tf' / "
            "'channels_last' (TensorFlow-trained course models all are)",
        )


def _padding(spec: LayerSpec) -> str:
    padding = _get(spec, "padding", "border_mode", default="valid")
    if padding not in ("valid", "same"):
        raise layer_error(spec, f"expected padding 'valid' or 'same', got {padding!r}")
    return padding


def _activation(spec: LayerSpec, key: str = "activation") -> str:
    name = spec.config.get(key, "linear")
    if isinstance(name, dict):  # Keras 2.x serialised some as {"class_name": ...}
        name = name.get("config", {}).get("name", name.get("class_name"))
    if name not in ACTIVATIONS:
        raise layer_error(
            spec, f"activation {name!r} is not imported; expected one of {ACTIVATIONS}"
        )
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
        raise layer_error(
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
        raise layer_error(
            spec, f"--lambda {spec.name}={text}: expected {_lambda_options(spec.name)}"
        )
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
        raise layer_error(
            spec,
            f"calls the named function {config.get('function')!r}, whose code is not in the "
            f"file; pass {_lambda_options(name)}",
        )
    if config.get("arguments"):
        raise layer_error(
            spec, f"passes arguments {config['arguments']}; pass {_lambda_options(name)}"
        )
    try:
        info = read_code(keras_function_bytes(config.get("function")))
    except BytecodeError as exc:
        raise layer_error(
            spec, f"its function is unreadable ({exc}); pass {_lambda_options(name)}"
        ) from None
    try:
        found = affine_map(info)
    except BytecodeError as exc:
        raise layer_error(
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


def set_weights(layer, spec: LayerSpec, stored: list[tuple[str, np.ndarray]], flip: bool):
    roles = _expected_roles(layer)
    if len(stored) != len(roles):
        raise layer_error(
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
            raise layer_error(
                spec,
                f"expected {role} of shape {tuple(variable.shape)}, the file holds "
                f"{tuple(value.shape)}",
            )
    layer.set_weights([np.asarray(v, dtype="float32") for v in values])
