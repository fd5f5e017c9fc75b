"""The registry of steering architectures; ``train.py --arch`` choices come from it."""

from __future__ import annotations

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


def build_model(name: str, **kwargs) -> keras.Model:
    """Build a fresh, uncompiled model of the named architecture."""
    try:
        arch = ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {name!r}; expected one of: {known}") from None
    return arch.builder(**kwargs)
