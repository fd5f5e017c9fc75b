"""The maths of replacing a KxK convolution by a depthwise KxK + pointwise 1x1 pair (numpy).

A conv kernel ``W`` of shape ``(kh, kw, C, O)`` maps input channel ``c`` to the
outputs through the slice ``W[:, :, c, :]``, a ``(kh*kw) x O`` matrix ``M_c``. A
depthwise-separable pair (depthwise ``d`` of shape ``(kh, kw, C, 1)``, pointwise
``p`` of shape ``(1, 1, C, O)``) computes the same convolution as the kernel
``W'[:, :, c, o] = d[:, :, c] * p[c, o]``: every slice is the rank-1 matrix
``vec(d_c) p_c^T``. The squared kernel error ``sum_c ||M_c - vec(d_c) p_c^T||^2``
separates over the channels, so by Eckart-Young its minimum is the rank-1 truncated
SVD of each slice, ``d_c = sqrt(s1) u1``, ``p_c = sqrt(s1) v1``, and the minimum
equals the sum of the squared dropped singular values (:func:`svd_factors`).

That fit ignores what the layer is fed. :class:`PointwiseLeastSquares` keeps the
depthwise part and refits the pointwise weights and the bias to the original
layer's pre-activation outputs on real input activations: a linear least-squares
problem in ``(C + 1) x O`` unknowns, solved exactly from its normal equations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Factors:
    """Weights of a depthwise + pointwise pair, in Keras' layouts (float32).

    ``depthwise``: ``(kh, kw, C, 1)`` (``DepthwiseConv2D``, no bias);
    ``pointwise``: ``(1, 1, C, O)`` (``Conv2D`` 1x1); ``bias``: ``(O,)`` or None.
    """

    depthwise: np.ndarray
    pointwise: np.ndarray
    bias: np.ndarray | None

    def kernel(self) -> np.ndarray:
        """The equivalent full ``(kh, kw, C, O)`` kernel."""
        return self.depthwise[..., 0][..., None] * self.pointwise[0, 0][None, None]

    @property
    def params(self) -> int:
        return int(
            self.depthwise.size + self.pointwise.size + (0 if self.bias is None else self.bias.size)
        )


def conv_params(kernel_shape: tuple[int, ...], use_bias: bool) -> int:
    """Parameters of a Conv2D with kernel ``(kh, kw, C, O)``."""
    kh, kw, c, o = kernel_shape
    return kh * kw * c * o + (o if use_bias else 0)


def pair_params(kernel_shape: tuple[int, ...], use_bias: bool) -> int:
    """Parameters of its replacement: depthwise kh*kw*C (no bias) + pointwise C*O (+ O)."""
    kh, kw, c, o = kernel_shape
    return kh * kw * c + c * o + (o if use_bias else 0)


def _check_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"expected a (kh, kw, C, O) kernel, got shape {kernel.shape}")
    return kernel


def channel_singular_values(kernel: np.ndarray) -> np.ndarray:
    """Singular values of every input channel's ``(kh*kw) x O`` slice: ``(C, min(kh*kw, O))``."""
    kernel = _check_kernel(kernel).astype(np.float64)
    kh, kw, c, o = kernel.shape
    slices = np.moveaxis(kernel, 2, 0).reshape(c, kh * kw, o)
    return np.linalg.svd(slices, compute_uv=False)


def svd_factors(kernel: np.ndarray, bias: np.ndarray | None = None) -> Factors:
    """The least-squares depthwise-separable fit of ``kernel`` (rank-1 SVD per input channel).

    The pointwise bias is the original bias: the pair's output is the original
    layer's pre-activation output plus the error of the kernel alone.
    """
    kernel = _check_kernel(kernel).astype(np.float64)
    kh, kw, c, o = kernel.shape
    slices = np.moveaxis(kernel, 2, 0).reshape(c, kh * kw, o)  # (C, kh*kw, O)
    u, s, vt = np.linalg.svd(slices, full_matrices=False)
    root = np.sqrt(s[:, 0])  # (C,)
    d = u[:, :, 0] * root[:, None]  # (C, kh*kw)
    p = vt[:, 0, :] * root[:, None]  # (C, O)
    # A sign convention so that results are reproducible across LAPACK builds: the
    # depthwise tap of largest magnitude is positive (the product d p^T is unchanged).
    flip = np.sign(d[np.arange(c), np.abs(d).argmax(axis=1)])
    flip[flip == 0] = 1.0
    d, p = d * flip[:, None], p * flip[:, None]
    depthwise = np.moveaxis(d.reshape(c, kh, kw), 0, 2)[..., None]
    pointwise = p[None, None]
    return Factors(
        depthwise=depthwise.astype(np.float32),
        pointwise=pointwise.astype(np.float32),
        bias=None if bias is None else np.asarray(bias, np.float32).copy(),
    )


def dropped_energy(kernel: np.ndarray) -> float:
    """Sum of the squared singular values beyond the first, over all channels.

    This is the squared kernel error ``||W - W'||^2`` of :func:`svd_factors`, and the
    least any depthwise-separable pair can reach.
    """
    s = channel_singular_values(kernel)
    return float(np.sum(s[:, 1:] ** 2))


def kernel_error(kernel: np.ndarray, factors: Factors) -> float:
    """Squared Frobenius error ``||W - W'||^2`` of a pair's equivalent kernel (float64)."""
    diff = np.asarray(kernel, np.float64) - factors.kernel().astype(np.float64)
    return float(np.sum(diff**2))


class PointwiseLeastSquares:
    """Accumulates the normal equations of ``[z, 1] @ [P; b] ~ y`` over batches.

    ``z``: depthwise outputs ``(..., C)``; ``y``: the original layer's pre-activation
    outputs ``(..., O)``; sums in float64. :meth:`solve` minimises
    ``||[z, 1] theta - y||^2 + lam ||theta - theta0||^2`` with ``theta0`` the starting
    pointwise weights (the SVD fit) and ``lam`` a tiny multiple (``ridge``) of the mean
    diagonal of ``z^T z``. The pull towards ``theta0`` only matters for directions the
    data never excites (a channel that is always zero keeps its SVD weights), and it
    guarantees the result is never worse than ``theta0`` on the accumulated data: the
    regularised objective at the minimum is at most its value at ``theta0``.
    """

    def __init__(self, channels: int, outputs: int, *, bias: bool = True, ridge: float = 1e-9):
        self.channels, self.outputs, self.bias = channels, outputs, bias
        n = channels + (1 if bias else 0)
        self.gram = np.zeros((n, n))
        self.cross = np.zeros((n, outputs))
        self.rows = 0
        self.ridge = ridge

    def add(self, z: np.ndarray, y: np.ndarray) -> None:
        z = np.asarray(z, np.float64).reshape(-1, self.channels)
        y = np.asarray(y, np.float64).reshape(-1, self.outputs)
        if len(z) != len(y):
            raise ValueError(f"z and y hold different positions: {len(z)} vs {len(y)}")
        if self.bias:
            z = np.concatenate([z, np.ones((len(z), 1))], axis=1)
        self.gram += z.T @ z
        self.cross += z.T @ y
        self.rows += len(z)

    def solve(self, start: Factors) -> Factors:
        """Pointwise weights and bias refitted; the depthwise part of ``start`` is kept."""
        if self.rows == 0:
            raise ValueError("no activations were added")
        theta0 = start.pointwise[0, 0].astype(np.float64)
        if self.bias:
            b0 = np.zeros(self.outputs) if start.bias is None else start.bias.astype(np.float64)
            theta0 = np.concatenate([theta0, b0[None]], axis=0)
        scale = float(np.mean(np.diag(self.gram))) or 1.0
        lam = self.ridge * scale
        a = self.gram + lam * np.eye(len(self.gram))
        theta = np.linalg.solve(a, self.cross + lam * theta0)
        pointwise = theta[: self.channels][None, None].astype(np.float32)
        bias = theta[self.channels].astype(np.float32) if self.bias else None
        return Factors(depthwise=start.depthwise.copy(), pointwise=pointwise, bias=bias)


class RelativeError:
    """Error energy over the target's variance, accumulated over batches (float64).

    ``sum (pred - target)^2 / sum (target - mean_o)^2`` with ``mean_o`` the mean of
    output channel ``o`` over all positions: the fraction of the original output's
    variance the replacement gets wrong (``1 - R^2``). Normalising by the variance
    rather than the raw energy matters: a conv's pre-activation output is dominated by
    its bias, and a bias-only imitation scores 1.0 here, not a flattering 0.1.
    """

    def __init__(self) -> None:
        self.sse = 0.0
        self.n = 0
        self.sum: np.ndarray | float = 0.0
        self.sumsq: np.ndarray | float = 0.0

    def add(self, pred: np.ndarray, target: np.ndarray) -> None:
        pred = np.asarray(pred, np.float64)
        target = np.asarray(target, np.float64)
        channels = target.shape[-1] if target.ndim else 1
        t = target.reshape(-1, channels)
        self.sse += float(np.sum((pred - target) ** 2))
        self.n += len(t)
        self.sum = self.sum + t.sum(axis=0)
        self.sumsq = self.sumsq + (t**2).sum(axis=0)

    @property
    def variance_energy(self) -> float:
        if not self.n:
            return 0.0
        return float(np.sum(self.sumsq - np.asarray(self.sum) ** 2 / self.n))

    @property
    def value(self) -> float:
        energy = self.variance_energy
        return self.sse / energy if energy > 0 else float("nan")
