"""The registry of steering architectures; ``train.py --arch`` choices come from it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras

from core.frames import FRAME_SHAPE

#: The models' input: the simulator's centre-camera frame (160 rows, 320 columns, RGB,
#: values 0..255), whose shape core/frames.py holds.
INPUT_SHAPE = FRAME_SHAPE


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: Callable[..., keras.Model]
    summary: str
    #: Parameter count of the default build, asserted by the tests.
    params: int


ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, *, summary: str, params: int):
    """Class-free registration decorator: ``@register("eff", summary=..., params=...)``."""

    def wrap(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is already registered")
        ARCHITECTURES[name] = Architecture(name, builder, summary, params)
        return builder

    return wrap


def build_model(name: str, *, dropout_scale: float = 1.0, **kwargs) -> keras.Model:
    """Build a fresh, uncompiled model of the named architecture, every dropout rate
    times ``dropout_scale`` (:func:`scale_dropout`)."""
    try:
        arch = ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {name!r}; expected one of: {known}") from None
    model = arch.builder(**kwargs)
    return model if dropout_scale == 1.0 else scale_dropout(model, dropout_scale)


def scale_dropout(model: keras.Model, scale: float) -> keras.Model:
    """A fresh copy of ``model`` (new weights, same layers and names) with every
    Dropout layer's rate times ``scale``: 0 removes dropout, 0.5 halves it.

    Dropout in a regression network can shrink what it answers (it learns to hedge
    against its own noise): halving eff's doubled its answer to a displacement on the
    jungle recording, halving base's barely moved it (docs/driving-quality.md). So the
    rate is a training setting, measured per architecture without a new architecture
    for each rate. Built under a mixed dtype policy, the copy keeps it.
    """
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"dropout scale must be a finite number >= 0, got {scale}")
    rates = {
        layer.name: layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)
    }
    too_high = {n: r for n, r in rates.items() if not r * scale < 1}
    if too_high:
        name, rate = next(iter(too_high.items()))
        raise ValueError(
            f"dropout scale {scale:g} takes {model.name}'s {name} from rate {rate:g} to "
            f"{rate * scale:g}; a rate must stay below 1 (largest scale here: "
            f"below {1 / max(rates.values()):g})"
        )

    def clone(layer):
        config = layer.get_config()
        if layer.name in rates:
            config["rate"] = rates[layer.name] * scale
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)
