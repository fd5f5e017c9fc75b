"""The imported model: raw frame, the old ``drive.py``'s preprocessing, the old network.

The options put the old ``drive.py``'s steps in front of the network, in this order,
as layers (``Cropping2D``, :class:`models.layers.Resize`,
:class:`models.layers.ColourConvert`), so the imported model takes the raw
``(160, 320, 3)`` RGB frame like every model of the project.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import keras
from keras import layers

from models.blocks import frame_input
from models.io import check_signature
from models.layers import ColourConvert, Resize
from models.legacy.converters import CONVERTERS, layer_error, set_weights
from models.legacy.h5file import read_legacy
from models.legacy.spec import COLOURS, INTERPOLATIONS, LegacyImportError, LegacyModel, Preprocess
from models.registry import INPUT_SHAPE

log = logging.getLogger(__name__)


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
            raise layer_error(
                spec, f"this layer type is not imported; expected one of {sorted(CONVERTERS)}"
            )
        layer = convert(spec, pre)
        if spec.inbound is None:
            inputs = previous
        else:
            missing = [n for n in spec.inbound if n not in tensors]
            if missing:
                raise layer_error(spec, f"takes {missing}, which come later or not at all")
            inputs = [tensors[n] for n in spec.inbound]
            inputs = inputs[0] if len(inputs) == 1 else inputs
        try:
            previous = tensors[spec.name] = layer(inputs)
        except ValueError as exc:
            raise layer_error(spec, f"does not fit its input: {str(exc).splitlines()[0]}") from exc
        set_weights(layer, spec, legacy.weights.get(spec.name, []), flip)
    name = "legacy_" + re.sub(r"\W", "_", legacy.path.stem)
    model = keras.Model(frame, tensors[legacy.output_name], name=name)
    try:
        check_signature(model, source=str(legacy.path))
    except ValueError as exc:
        raise LegacyImportError(str(exc)) from exc
    return model


def import_model(path: str | Path, pre: Preprocess = Preprocess()) -> keras.Model:  # noqa: B008 - frozen
    """Read a Keras 1/2 ``.h5`` and rebuild it as a raw-frame Keras 3 steering model."""
    return build(read_legacy(path), pre)
