"""Multiply-accumulates per frame, layer by layer (like the seeds' thop profile).

Conventions (one multiply-add = one MAC; biases, activations and max-pooling cost
nothing, as in thop):

| layer | MACs |
|---|---|
| Conv1D/2D/3D | output positions x kernel size x input channels / groups x filters |
| DepthwiseConv2D | output positions x kernel size x channels x depth multiplier |
| SeparableConv2D | the depthwise part plus output positions x (channels x multiplier) x filters |
| Conv2DTranspose | input positions x kernel size x input channels x filters |
| Dense | leading positions x inputs x units |
| BatchNormalization | one per output element (folded into scale and shift at inference) |
| Rescaling | one per output element (``x * scale + offset``) |
| AveragePooling | output elements x pool size; GlobalAveragePooling: input elements |
| MaxPooling, GlobalMaxPooling | 0 (comparisons) |
| Resize / Resizing | bilinear: 4 per output element (weighted sum of 4 taps); nearest: 0 |
| Multiply | one per output element; Add, Subtract, Concatenate: 0 |
| Activations, Dropout, Flatten, Cropping, Reshape, InputLayer | 0 |

Any other layer that holds weights is reported with ``counted=False`` (and a
warning) rather than silently given 0. Nested models are expanded (``outer/inner``).
``evaluate.py compare`` writes the per-layer table
(:func:`profile_markdown`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from core.outputs import markdown_table

logger = logging.getLogger(__name__)

_FREE = {
    "InputLayer",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "Softmax",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "Flatten",
    "Reshape",
    "Permute",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Add",
    "Subtract",
    "Concatenate",
    "Identity",
    "UpSampling2D",
    "RepeatVector",
}


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    counted: bool = True


def _shape(t) -> tuple:
    """Shape of a tensor, or of the first of several (Add, Concatenate inputs)."""
    if isinstance(t, list | tuple):
        t = t[0]
    return tuple(t.shape)


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


def _kernel(layer, attr: str) -> tuple:
    return tuple(getattr(layer, attr).shape)


def layer_macs(layer, in_shape: tuple, out_shape: tuple) -> int | None:
    """MACs of one call of ``layer`` for one sample (batch dimension ignored), or
    None for a weighted layer type this counter does not know."""
    kind = type(layer).__name__
    out_pos = _prod(out_shape[1:-1])  # spatial positions, channels_last
    out_elems = _prod(out_shape[1:])
    if kind in _FREE:
        return 0
    if kind == "SeparableConv2D" or kind == "SeparableConv1D":
        return out_pos * (
            _prod(_kernel(layer, "depthwise_kernel")) + _prod(_kernel(layer, "pointwise_kernel"))
        )
    if kind.startswith("DepthwiseConv"):
        return out_pos * _prod(_kernel(layer, "kernel"))
    if kind.startswith("Conv") and kind.endswith("Transpose"):
        return _prod(in_shape[1:-1]) * _prod(_kernel(layer, "kernel"))
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        return out_pos * _prod(_kernel(layer, "kernel"))
    if kind in ("Dense", "EinsumDense") and hasattr(layer, "kernel"):
        return _prod(out_shape[1:-1]) * _prod(_kernel(layer, "kernel"))
    if kind in ("BatchNormalization", "LayerNormalization", "Rescaling", "Multiply"):
        return out_elems
    if kind.startswith("AveragePooling"):
        return out_elems * _prod(layer.pool_size)
    if kind.startswith("GlobalAveragePooling"):
        return _prod(in_shape[1:])
    if kind in ("Resize", "Resizing"):
        return 4 * out_elems if getattr(layer, "interpolation", "bilinear") == "bilinear" else 0
    if not layer.weights:
        return 0  # an unknown weightless layer: elementwise glue
    return None


def profile(model) -> list[LayerRow]:
    """One row per layer (nested models expanded), in the model's layer order."""
    rows: list[LayerRow] = []
    _profile_into(model, "", rows)
    return rows


def _profile_into(model, prefix: str, rows: list[LayerRow]) -> None:
    for layer in model.layers:
        name = prefix + layer.name
        if hasattr(layer, "layers") and layer.layers:  # a nested model
            _profile_into(layer, name + "/", rows)
            continue
        try:
            out_shape = _shape(layer.output)
            in_shape = _shape(layer.input) if type(layer).__name__ != "InputLayer" else out_shape
        except (AttributeError, ValueError) as exc:
            raise ValueError(
                f"layer {name!r} ({type(layer).__name__}) has no single input/output "
                f"(shared layers are not supported): {exc}"
            ) from exc
        params = _prod_params(layer)
        macs = layer_macs(layer, in_shape, out_shape)
        if macs is None:
            logger.warning(
                "MAC counter: layer %s of type %s has weights but no rule; counted as 0",
                name,
                type(layer).__name__,
            )
        rows.append(
            LayerRow(
                name, type(layer).__name__, out_shape, params, macs or 0, counted=macs is not None
            )
        )


def _prod_params(layer) -> int:
    return int(sum(math.prod(w.shape) for w in layer.weights))


def total_macs(model) -> int:
    return sum(r.macs for r in profile(model))


def profile_markdown(rows: list[LayerRow], title: str = "") -> str:
    """A thop-like table: layer, type, output shape, params, MACs, share of the total."""
    total = sum(r.macs for r in rows) or 1
    body = [
        [
            r.name,
            r.type,
            "x".join(str(d) for d in r.output_shape[1:]),
            r.params,
            r.macs,
            f"{100.0 * r.macs / total:.1f}%" + ("" if r.counted else " (no rule)"),
        ]
        for r in rows
    ]
    body.append(["total", "", "", sum(r.params for r in rows), sum(r.macs for r in rows), "100%"])
    head = f"### {title}\n\n" if title else ""
    return head + markdown_table(["layer", "type", "output", "params", "MACs", "share"], body)
