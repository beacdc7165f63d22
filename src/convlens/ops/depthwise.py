"""Depthwise convolution (one input channel per group): k*k broadcast multiply-adds.

Per-group GEMMs with a single input channel are mostly overhead; summing ``x_tap[..., c] * w[i, j, c, m]``
over the k*k taps is several times faster. :class:`convlens.ops.conv.Conv2DPlan` takes this path when
``groups == C``. Kernel layout as a grouped convolution: (KH, KW, 1, C * M), output channel ``c * M + m``.

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, 1, C * M); out: (N, OH, OW, C * M)
"""

from __future__ import annotations

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.windows import crop, pad, tap_slices

__all__ = ["depthwise_backward", "depthwise_forward"]


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


def depthwise_backward(
    geometry: WindowGeometry, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray, compute_grad_x: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients (x or None, kernel (KH, KW, 1, C * M), bias (C * M,)) of :func:`depthwise_forward`."""
    batch, oh, ow, filters = grad_out.shape
    channels = x.shape[3]
    multiplier = filters // channels
    padded = pad(x, geometry)
    g5 = grad_out.reshape(batch, oh, ow, channels, multiplier)
    rows = batch * oh * ow
    ones = np.ones(rows, grad_out.dtype)
    grad_bias = ones @ np.ascontiguousarray(grad_out).reshape(rows, filters)
    grad_kernel = np.empty(kernel.shape, grad_out.dtype)
    grad_padded = np.zeros(padded.shape, grad_out.dtype) if compute_grad_x else None
    tmp = np.empty_like(g5)
    for i, j, tap in _taps(geometry, padded):
        np.multiply(tap[..., None], g5, out=tmp)
        grad_kernel[i, j, 0] = ones @ tmp.reshape(rows, filters)
        if grad_padded is not None:
            rows_s, cols_s = tap_slices(geometry, i, j)
            w = kernel[i, j, 0].reshape(channels, multiplier)
            if multiplier == 1:
                grad_padded[:, rows_s, cols_s, :] += g5[..., 0] * w[:, 0]
            else:
                grad_padded[:, rows_s, cols_s, :] += np.einsum("nhwcm,cm->nhwc", g5, w, optimize=True)
    grad_x = None if grad_padded is None else np.ascontiguousarray(crop(grad_padded, geometry))
    return grad_x, grad_kernel, grad_bias
