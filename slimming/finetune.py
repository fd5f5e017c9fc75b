"""Brief fine-tuning of a new pair with the original network as teacher (keras + numpy only).

- :func:`local_distill`: only the pair trains, to match the original layer's output
  (after the activation: what the next layer consumes) on cached input activations of
  real training frames. The original layer runs frozen inside the training model, so
  its (large) outputs are never cached.
- :func:`e2e_distill`: only the pair trains, end to end, to match the original
  network's steering on training frames (the student is built without Dropout, so
  training mode adds no noise; there is no BatchNorm in ``base``, and a frozen one
  runs in inference mode in Keras 3).

Both use ``train_on_batch`` on a compiled model: no backend-specific gradient code,
so they run unchanged on the TensorFlow and JAX backends.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
from keras import layers, ops

from slimming.convert import Candidate, get_pair_factors, pair_layers
from slimming.factorize import Factors

logger = logging.getLogger(__name__)


class PerSampleSquaredError(layers.Layer):
    """``mean((a - b)^2)`` over all but the batch axis, shape ``(N, 1)``."""

    def call(self, inputs):
        a, b = inputs
        axes = tuple(range(1, len(a.shape)))
        return ops.mean(ops.square(a - b), axis=axes)[:, None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)


def _mean_of_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def _steps(model, inputs_fn, n: int, steps: int, batch: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    losses = []
    batch = min(batch, n)
    for _ in range(steps):
        idx = np.sort(rng.choice(n, batch, replace=False))
        x, y = inputs_fn(idx)
        loss = model.train_on_batch(x, y)
        losses.append(float(np.asarray(loss).reshape(-1)[0]))
    return losses


def local_distill(
    cand: Candidate,
    start: Factors,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    student_x: np.ndarray,
    teacher_x: np.ndarray,
    *,
    steps: int,
    lr: float,
    batch: int,
    seed: int = 0,
) -> tuple[Factors, list[float]]:
    """Adam on the pair only: its activated output vs the original layer's, per sample MSE."""
    keras.utils.set_random_seed(seed)
    kh, kw, c, o = cand.kernel_shape
    xs_in = keras.Input(student_x.shape[1:], name="student_input")
    xt_in = keras.Input(teacher_x.shape[1:], name="teacher_input")
    dw, pw = pair_layers(cand, start, activation="linear")
    original = layers.Conv2D(
        o,
        (kh, kw),
        strides=cand.strides,
        padding=cand.padding,
        dilation_rate=cand.dilation_rate,
        use_bias=cand.use_bias,
        name="original",
    )
    original.build((None, None, None, c))
    original.set_weights([kernel] + ([] if bias is None else [bias]))
    original.trainable = False
    act = layers.Activation(cand.activation, name="activation")
    out = PerSampleSquaredError(name="squared_error")([act(pw(dw(xs_in))), act(original(xt_in))])
    model = keras.Model([xs_in, xt_in], out, name=f"{cand.name}_local")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=_mean_of_prediction, jit_compile=False)
    zeros = np.zeros((batch, 1), np.float32)

    def inputs(idx):
        return [student_x[idx], teacher_x[idx]], zeros[: len(idx)]

    start_s = time.perf_counter()
    losses = _steps(model, inputs, len(student_x), steps, batch, seed)
    logger.info(
        "  %s local distillation: %d steps in %.1f s, loss %.4g -> %.4g",
        cand.name,
        steps,
        time.perf_counter() - start_s,
        losses[0] if losses else float("nan"),
        np.mean(losses[-10:]) if losses else float("nan"),
    )
    kernel_dw = ops.convert_to_numpy(dw.kernel).astype(np.float32)
    kernel_pw = ops.convert_to_numpy(pw.kernel).astype(np.float32)
    bias_pw = ops.convert_to_numpy(pw.bias).astype(np.float32) if pw.use_bias else None
    return Factors(kernel_dw, kernel_pw, bias_pw), losses


def e2e_distill(
    student: keras.Model,
    name: str,
    frames: np.ndarray,
    teacher_out: np.ndarray,
    *,
    steps: int,
    lr: float,
    batch: int,
    seed: int = 0,
) -> tuple[Factors, list[float]]:
    """Adam on the pair replacing ``name`` only: student steering vs teacher steering (MSE).

    ``student`` must be built with ``drop_dropout=True``; it is trained in place.
    """
    keras.utils.set_random_seed(seed)
    trainable = {f"{name}_dw", f"{name}_pw"}
    for layer in student.layers:
        layer.trainable = layer.name in trainable
    student.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", jit_compile=False)
    targets = np.asarray(teacher_out, np.float32).reshape(-1, 1)

    def inputs(idx):
        return frames[idx].astype(np.float32), targets[idx]

    start_s = time.perf_counter()
    losses = _steps(student, inputs, len(frames), steps, batch, seed)
    logger.info(
        "  %s end-to-end distillation: %d steps in %.1f s, loss %.4g -> %.4g",
        name,
        steps,
        time.perf_counter() - start_s,
        losses[0] if losses else float("nan"),
        np.mean(losses[-10:]) if losses else float("nan"),
    )
    return get_pair_factors(student, name), losses
