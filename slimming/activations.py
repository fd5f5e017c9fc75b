"""Real input activations of one convolution, and how well a pair reproduces its output.

Targets always come from the *original* network: the original layer applied to the
original network's input activations of that layer. The pair is fed the *student's*
input activations (the network with the replacements accepted so far), which is what
it will see once in place; when nothing upstream has been replaced the two inputs are
the same. The error of the original kernel on the student's inputs (``upstream``) is
the part of the error no replacement of this layer can be blamed for.

Everything here runs through ``keras.ops`` and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from slimming.convert import Candidate
from slimming.factorize import Factors, PointwiseLeastSquares, RelativeError

#: Frames per batch when running sub-models and convolutions on cached activations.
BATCH = 16


def predict_batches(model: keras.Model, frames: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """``model`` on uint8 (or float) frames in inference mode, batch by batch (float32)."""
    outs = []
    for lo in range(0, len(frames), batch):
        x = np.asarray(frames[lo : lo + batch], dtype=np.float32)
        outs.append(np.asarray(model.predict_on_batch(x), dtype=np.float32))
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def layer_inputs(model: keras.Model, name: str, frames: np.ndarray, batch: int = BATCH):
    """The input activations of layer ``name`` of ``model`` for ``frames``."""
    extractor = keras.Model(model.inputs, model.get_layer(name).input)
    return predict_batches(extractor, frames, batch)


def conv_pre(x, kernel: np.ndarray, bias: np.ndarray | None, cand: Candidate) -> np.ndarray:
    """The original convolution's pre-activation output (float32 numpy)."""
    y = ops.conv(
        ops.convert_to_tensor(x),
        ops.convert_to_tensor(kernel),
        strides=cand.strides,
        padding=cand.padding,
        dilation_rate=cand.dilation_rate,
    )
    y = ops.convert_to_numpy(y)
    return y + bias if bias is not None else y


def depthwise(x, factors: Factors, cand: Candidate) -> np.ndarray:
    z = ops.depthwise_conv(
        ops.convert_to_tensor(x),
        ops.convert_to_tensor(factors.depthwise),
        strides=cand.strides,
        padding=cand.padding,
        dilation_rate=cand.dilation_rate,
    )
    return ops.convert_to_numpy(z)


def pointwise(z: np.ndarray, factors: Factors) -> np.ndarray:
    y = z @ factors.pointwise[0, 0]
    return y + factors.bias if factors.bias is not None else y


def pair_pre(x, factors: Factors, cand: Candidate) -> np.ndarray:
    """The pair's pre-activation output."""
    return pointwise(depthwise(x, factors, cand), factors)


def activate(y: np.ndarray, cand: Candidate) -> np.ndarray:
    fn = keras.activations.get(cand.activation)
    return ops.convert_to_numpy(fn(ops.convert_to_tensor(y)))


@dataclass
class LayerData:
    """Cached input activations of one layer: fit frames and disjoint probe frames."""

    student_fit: np.ndarray
    teacher_fit: np.ndarray
    student_probe: np.ndarray
    teacher_probe: np.ndarray


def collect(
    teacher: keras.Model,
    student: keras.Model,
    name: str,
    fit_frames: np.ndarray,
    probe_frames: np.ndarray,
    *,
    upstream_replaced: bool,
) -> LayerData:
    t_fit = layer_inputs(teacher, name, fit_frames)
    t_probe = layer_inputs(teacher, name, probe_frames)
    if not upstream_replaced:
        return LayerData(t_fit, t_fit, t_probe, t_probe)
    return LayerData(
        layer_inputs(student, name, fit_frames),
        t_fit,
        layer_inputs(student, name, probe_frames),
        t_probe,
    )


def fit_pointwise(
    cand: Candidate,
    start: Factors,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    student_x: np.ndarray,
    teacher_x: np.ndarray,
    batch: int = BATCH,
) -> Factors:
    """Least-squares refit of the pointwise weights and bias (depthwise of ``start`` kept)."""
    _, _, c, o = cand.kernel_shape
    ls = PointwiseLeastSquares(c, o, bias=cand.use_bias)
    for lo in range(0, len(student_x), batch):
        z = depthwise(student_x[lo : lo + batch], start, cand)
        ls.add(z, conv_pre(teacher_x[lo : lo + batch], kernel, bias, cand))
    return ls.solve(start)


def errors(
    cand: Candidate,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    student_x: np.ndarray,
    teacher_x: np.ndarray,
    candidates: dict[str, Factors | None],
    batch: int = BATCH,
) -> dict[str, dict[str, float]]:
    """Relative MSE of each candidate's output against the original layer's output.

    ``candidates`` maps a label to factors, or to None for the original kernel on the
    student's inputs (the upstream error). Returns ``{label: {"pre": e, "post": e}}``:
    before and after the activation (what the next layer sees).
    """
    acc = {k: (RelativeError(), RelativeError()) for k in candidates}
    for lo in range(0, len(student_x), batch):
        xs = student_x[lo : lo + batch]
        target = conv_pre(teacher_x[lo : lo + batch], kernel, bias, cand)
        target_post = activate(target, cand)
        for key, f in candidates.items():
            pred = conv_pre(xs, kernel, bias, cand) if f is None else pair_pre(xs, f, cand)
            acc[key][0].add(pred, target)
            acc[key][1].add(activate(pred, cand), target_post)
    return {k: {"pre": pre.value, "post": post.value} for k, (pre, post) in acc.items()}
