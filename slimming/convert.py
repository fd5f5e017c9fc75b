"""Layer surgery on a Keras functional model: KxK ``Conv2D`` -> depthwise KxK + pointwise 1x1.

:func:`find_candidates` lists the convolutions that can be replaced; :func:`build_student`
rebuilds the whole graph (``keras.models.clone_model`` with a ``call_function``) with
some of them replaced. Every other layer gets a bit-exact copy of the original's
weights, so a model built without a replacement computes exactly what the original
does, which is how a rejected replacement is undone.

The pair is ``DepthwiseConv2D(K, strides, padding, dilation, use_bias=False)`` named
``<conv>_dw`` and ``Conv2D(O, 1, activation=<the conv's activation>)`` named
``<conv>_pw``: the activation (ReLU in ``base``) stays after the pointwise, where
the original applied it. Both are stock Keras layers, so the converted model saves
as ``.keras`` and loads with ``safe_mode=True`` like any model of the project.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from slimming.factorize import Factors, conv_params, pair_params

#: Smallest kernel side replaced: a 1x1 conv is already pointwise.
MIN_KERNEL = 3


class ConversionError(ValueError):
    """A model that cannot be converted (no KxK convolution, not functional, ...)."""


@dataclass(frozen=True)
class Candidate:
    """A replaceable convolution of the original model."""

    name: str
    kernel_shape: tuple[int, int, int, int]  # (kh, kw, C, O)
    use_bias: bool
    strides: tuple[int, int]
    padding: str
    dilation_rate: tuple[int, int]
    activation: str | dict  # as in the layer's config ("relu")

    @property
    def params_before(self) -> int:
        return conv_params(self.kernel_shape, self.use_bias)

    @property
    def params_after(self) -> int:
        return pair_params(self.kernel_shape, self.use_bias)

    @property
    def label(self) -> str:
        kh, kw, c, o = self.kernel_shape
        return f"{kh}x{kw} {c}->{o}"


def _why_not(layer) -> str | None:
    """Why a Conv2D cannot be replaced, or None if it can."""
    kh, kw = layer.kernel_size
    if kh != kw or kh < MIN_KERNEL:
        return f"kernel {kh}x{kw} is not KxK with K >= {MIN_KERNEL}"
    if layer.groups != 1:
        return f"grouped convolution (groups={layer.groups})"
    if layer.data_format != "channels_last":
        return f"data_format {layer.data_format}"
    if layer.padding not in ("same", "valid"):
        return f"padding {layer.padding}"
    return None


def find_candidates(model: keras.Model) -> tuple[list[Candidate], dict[str, str]]:
    """Replaceable convolutions in graph order, and the other Conv2Ds with the reason."""
    found: list[Candidate] = []
    skipped: dict[str, str] = {}
    for layer in model.layers:
        if type(layer) is not layers.Conv2D:  # not Depthwise/Separable/Transpose subclasses
            continue
        reason = _why_not(layer)
        if reason:
            skipped[layer.name] = reason
            continue
        kernel = layer.kernel
        found.append(
            Candidate(
                name=layer.name,
                kernel_shape=tuple(int(d) for d in kernel.shape),
                use_bias=bool(layer.use_bias),
                strides=tuple(int(s) for s in layer.strides),
                padding=layer.padding,
                dilation_rate=tuple(int(d) for d in layer.dilation_rate),
                activation=layer.get_config()["activation"],
            )
        )
    return found, skipped


def require_candidates(model: keras.Model, source: str = "model") -> list[Candidate]:
    """:func:`find_candidates`, raising :class:`ConversionError` when there is none."""
    if not isinstance(model, keras.Model) or not hasattr(model, "_run_through_graph"):
        raise ConversionError(f"{source}: expected a Keras functional model")
    found, skipped = find_candidates(model)
    if not found:
        convs = ", ".join(f"{n} ({why})" for n, why in skipped.items()) or "none"
        raise ConversionError(
            f"{source} ({model.name}) has no KxK Conv2D with K >= {MIN_KERNEL} to replace; "
            f"other Conv2D layers: {convs}"
        )
    return found


def conv_weights(model: keras.Model, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Kernel and bias (or None) of a Conv2D, as float32 numpy copies."""
    layer = model.get_layer(name)
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float32)
    bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float32) if layer.use_bias else None
    return kernel, bias


def pair_layers(cand: Candidate, factors: Factors | None = None, *, activation=None):
    """The (depthwise, pointwise) layers replacing ``cand``, built and holding ``factors``."""
    kh, kw, c, o = cand.kernel_shape
    dw = layers.DepthwiseConv2D(
        (kh, kw),
        strides=cand.strides,
        padding=cand.padding,
        dilation_rate=cand.dilation_rate,
        use_bias=False,
        name=f"{cand.name}_dw",
    )
    pw = layers.Conv2D(
        o,
        1,
        use_bias=cand.use_bias,
        activation=cand.activation if activation is None else activation,
        name=f"{cand.name}_pw",
    )
    dw.build((None, None, None, c))
    pw.build((None, None, None, c))
    if factors is not None:
        set_pair_weights(dw, pw, factors)
    return dw, pw


def set_pair_weights(dw, pw, factors: Factors) -> None:
    dw.set_weights([factors.depthwise])
    pw.set_weights([factors.pointwise] + ([] if factors.bias is None else [factors.bias]))


def get_pair_factors(model: keras.Model, name: str) -> Factors:
    """The factors held by the pair replacing ``name`` in a student model."""
    dw = model.get_layer(f"{name}_dw")
    pw = model.get_layer(f"{name}_pw")
    depthwise = keras.ops.convert_to_numpy(dw.kernel).astype(np.float32)
    pointwise = keras.ops.convert_to_numpy(pw.kernel).astype(np.float32)
    bias = keras.ops.convert_to_numpy(pw.bias).astype(np.float32) if pw.use_bias else None
    return Factors(depthwise=depthwise, pointwise=pointwise, bias=bias)


def build_student(
    original: keras.Model,
    replacements: dict[str, Factors],
    candidates: list[Candidate] | None = None,
    *,
    drop_dropout: bool = False,
    name: str | None = None,
) -> keras.Model:
    """A new model: ``original`` with the convolutions in ``replacements`` replaced.

    Every other layer is a fresh layer from the original's config holding a copy of its
    weights (the original is never modified). ``drop_dropout`` leaves out Dropout layers
    (identities at inference) for the end-to-end distillation, which trains in training
    mode and must not see dropout noise.
    """
    by_name = {c.name: c for c in (candidates or find_candidates(original)[0])}
    unknown = set(replacements) - set(by_name)
    if unknown:
        raise ConversionError(f"not replaceable convolutions of {original.name}: {sorted(unknown)}")
    pairs: dict[str, tuple] = {}

    def call_function(layer, *args, **kwargs):
        if layer.name in replacements:
            if layer.name not in pairs:
                pairs[layer.name] = pair_layers(by_name[layer.name], replacements[layer.name])
            dw, pw = pairs[layer.name]
            return pw(dw(*args, **kwargs))
        if drop_dropout and isinstance(layer, layers.Dropout):
            return args[0]
        return layer(*args, **kwargs)

    student = keras.models.clone_model(original, call_function=call_function)
    new_layers = {layer.name for pair in pairs.values() for layer in pair}
    for layer in student.layers:
        if layer.name in new_layers or not layer.weights:
            continue
        source = original.get_layer(layer.name)
        layer.set_weights([np.array(w) for w in source.get_weights()])
    if name:
        student.name = name
    return student
