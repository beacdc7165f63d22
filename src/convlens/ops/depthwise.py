"""Depthwise convolution (one input channel per group): k*k broadcast multiply-adds.

Per-group GEMMs with a single input channel are mostly overhead; summing ``x_tap[..., c] * w[i, j, c, m]``
over the k*k taps is several times faster: the ``depthwise`` algorithm of :mod:`convlens.ops.conv_algorithms`.
Kernel layout as a grouped convolution: (KH, KW, 1, C * M), output channel ``c * M + m``.

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, 1, C * M); out: (N, OH, OW, C * M)
"""

from __future__ import annotations

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.windows import crop, pad, tap_slices

__all__ = ["depthwise_forward", "depthwise_input_grad", "depthwise_kernel_grad"]


def _taps(geometry: WindowGeometry, padded: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    kh, kw = geometry.kernel_size
    return [
        (i, j, padded[:, rows, cols, :])
        for i in range(kh)
        for j in range(kw)
        for rows, cols in [tap_slices(geometry, i, j)]
    ]


def depthwise_forward(
    geometry: WindowGeometry,
    output_shape: tuple[int, int, int, int],
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
) -> np.ndarray:
    """out[..., c * M + m] = sum over taps of x_tap[..., c] * kernel[i, j, 0, c * M + m] (+ bias)."""
    batch, oh, ow, filters = output_shape
    channels = x.shape[3]
    multiplier = filters // channels
    padded = pad(x, geometry)
    out = np.zeros((batch, oh, ow, channels, multiplier), x.dtype)
    tmp = np.empty_like(out)
    for i, j, tap in _taps(geometry, padded):
        np.multiply(tap[..., None], kernel[i, j, 0].reshape(channels, multiplier), out=tmp)
        out += tmp
    out = out.reshape(batch, oh, ow, filters)
    if bias is not None:
        out += bias.astype(x.dtype, copy=False)
    return out


def depthwise_kernel_grad(
    geometry: WindowGeometry, grad_out: np.ndarray, x: np.ndarray, kernel_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (kernel (KH, KW, 1, C * M), bias (C * M,)) of :func:`depthwise_forward`."""
    batch, oh, ow, filters = grad_out.shape
    channels = x.shape[3]
    multiplier = filters // channels
    padded = pad(x, geometry)
    g5 = grad_out.reshape(batch, oh, ow, channels, multiplier)
    rows = batch * oh * ow
    ones = np.ones(rows, grad_out.dtype)
    grad_bias = ones @ np.ascontiguousarray(grad_out).reshape(rows, filters)
    grad_kernel = np.empty(kernel_shape, grad_out.dtype)
    tmp = np.empty_like(g5)
    for i, j, tap in _taps(geometry, padded):
        np.multiply(tap[..., None], g5, out=tmp)
        grad_kernel[i, j, 0] = ones @ tmp.reshape(rows, filters)
    return grad_kernel, grad_bias


def depthwise_input_grad(
    geometry: WindowGeometry, grad_out: np.ndarray, kernel: np.ndarray, x_shape: tuple[int, ...]
) -> np.ndarray:
    """Gradient (N, H, W, C) of :func:`depthwise_forward` with respect to its input ``x`` of ``x_shape``."""
    batch, oh, ow, filters = grad_out.shape
    channels = x_shape[3]
    multiplier = filters // channels
    g5 = grad_out.reshape(batch, oh, ow, channels, multiplier)
    grad_padded = np.zeros((batch, *geometry.padded_size, channels), grad_out.dtype)
    kh, kw = geometry.kernel_size
    for i in range(kh):
        for j in range(kw):
            rows, cols = tap_slices(geometry, i, j)
            w = kernel[i, j, 0].reshape(channels, multiplier)
            if multiplier == 1:
                grad_padded[:, rows, cols, :] += g5[..., 0] * w[:, 0]
            else:
                grad_padded[:, rows, cols, :] += np.einsum("nhwcm,cm->nhwc", g5, w, optimize=True)
    return np.ascontiguousarray(crop(grad_padded, geometry))
