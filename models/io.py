"""Loading and describing trained models safely.

Models load with ``compile=False`` (a ``.h5`` compiled with ``loss="mse"`` does not
deserialise otherwise, keras-pitfalls item 4; serving needs no optimizer) and
``safe_mode=True`` so no code stored in a file is executed. A ``.h5`` saved by Keras 1
or 2 (a model from the Udacity course) is not handed to Keras at all: the error says,
in one line, the ``python -m models.legacy`` command that imports it (``models/legacy/``).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import h5py
import keras

from core.runs import KERAS_SUFFIXES, ModelLoadError
from models import layers as _layers  # noqa: F401  registers custom layers for loading
from models.registry import INPUT_SHAPE


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.h5``/``.keras`` steering model and check its input and output shapes."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if path.suffix not in KERAS_SUFFIXES:
        raise ModelLoadError(
            f"expected a Keras model file ({', '.join(KERAS_SUFFIXES)}), got {path.name!r}"
        )
    problem = _container_problem(path)
    if problem:
        raise ModelLoadError(f"could not load {path}: not a loadable Keras model ({problem})")
    if path.suffix == ".h5":
        from models.legacy import legacy_hint  # here: models.legacy imports this module

        hint = legacy_hint(path)
        if hint:
            raise ModelLoadError(hint)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # keras raises many types for corrupt/incompatible files
        raise ModelLoadError(
            f"could not load {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from exc
    check_signature(model, source=str(path))
    return model


def _container_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the container its suffix promises, or None.

    Checked before Keras, whose message for a corrupt ``.keras`` is "File not found"
    (its zip reader's failure passed on as a missing file).
    """
    size = path.stat().st_size
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        return f"expected a .keras zip archive, found {size} bytes that are not one"
    if path.suffix == ".h5" and not h5py.is_hdf5(path):
        return f"expected an HDF5 file, found {size} bytes without its signature"
    return None


def check_signature(model: keras.Model, *, source: str = "model") -> None:
    in_shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    out_shape = tuple(model.output_shape[1:]) if not isinstance(model.output_shape, list) else None
    if in_shape != INPUT_SHAPE or out_shape != (1,):
        raise ModelLoadError(
            f"{source}: expected a steering model taking {INPUT_SHAPE} frames and giving (1,) "
            f"outputs; it takes {model.input_shape} and gives {model.output_shape}"
        )


def scale_steering(model: keras.Model, gain: float) -> None:
    """Multiply the model's steering by ``gain`` in place, exactly, by scaling the kernel
    and bias of its output layer (the linear ``Dense(1)`` named "steering" that every
    architecture of the registry ends in): the file saved afterwards steers ``gain``
    times as much in every runtime (Keras, LiteRT, ``drive.py``), with the same
    parameters. ``train.py --steering-gains`` chooses the gain by driving."""
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"a steering gain must be a finite number > 0, got {gain}")
    try:
        layer = model.get_layer("steering")
    except ValueError:
        layer = None
    linear = getattr(layer, "activation", None) is keras.activations.linear
    if layer is None or not isinstance(layer, keras.layers.Dense) or not linear:
        raise ValueError(
            f"{model.name}: expected a linear Dense output layer named 'steering' to scale, "
            f"found {type(layer).__name__ if layer is not None else 'none'}"
        )
    if model.get_layer(index=-1) is not layer:
        raise ValueError(
            f"{model.name}: the 'steering' layer is not the model's output layer "
            f"({model.get_layer(index=-1).name} comes after it), so scaling it would not "
            "scale the steering"
        )
    layer.set_weights([w * gain for w in layer.get_weights()])


def parameter_counts(model: keras.Model) -> dict[str, int]:
    def count(weights) -> int:
        return int(sum(math.prod(w.shape) for w in weights))

    trainable = count(model.trainable_weights)
    total = count(model.weights)
    return {"trainable": trainable, "non_trainable": total - trainable, "total": total}


def describe(model: keras.Model) -> str:
    counts = parameter_counts(model)
    return f"{model.name}: {counts['total']:,} parameters ({counts['trainable']:,} trainable)"
