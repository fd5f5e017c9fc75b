"""What an old ``.h5`` holds and what the options ask for, as plain data.

:class:`LegacyModel` and its :class:`LayerSpec` are the file as read by
:mod:`models.legacy.h5file`, before anything is built; nothing in them has been run.
:class:`Preprocess` is what the old ``drive.py`` did to the frame, from the command
line; :data:`INTERPOLATIONS` and :data:`COLOURS` are its choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.layers import COLOUR_MODES

#: ``keras.ops.image.resize`` methods; ``bilinear`` (half-pixel centres, no antialias)
#: matches ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` to ~0.005 grey levels.
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area")
COLOURS = ("rgb", *COLOUR_MODES)


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
