"""Slow, obviously-correct loop references for the convolution ops (tests only).

Everything here works from *explicit* per-side pads and plain Python loops, so it shares
no arithmetic with :mod:`convlens.geometry` or :mod:`convlens.ops`. Keep sizes tiny.

Layouts follow Keras: x (N, H, W, C), kernel (KH, KW, C / G, F), output (N, OH, OW, F);
1-D: x (N, L, C), kernel (K, C / G, F), output (N, OL, F).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Pads2D = tuple[tuple[int, int], tuple[int, int]]


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's documented 'same' rule, written out independently of convlens.

    out = ceil(in / stride); pad_total = max((out - 1) * stride + (k - 1) * d + 1 - in, 0);
    pad_total // 2 before, the rest (the odd pixel) after.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def explicit_pads(
    padding: Any,
    sizes: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[tuple[int, int], ...]:
    """Turn any padding form accepted by the ops into explicit (before, after) pairs per axis."""
    rank = len(sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * rank
        if padding == "same":
            return tuple(tf_same_pads(i, k, s, d) for i, k, s, d in zip(sizes, kernel, strides, dilation, strict=True))
        if padding == "causal":
            return (((kernel[0] - 1) * dilation[0], 0),)
        raise AssertionError(padding)
    if isinstance(padding, int):
        return ((padding, padding),) * rank
    if rank == 1 and len(padding) == 2 and all(isinstance(p, int) for p in padding):
        return ((padding[0], padding[1]),)
    if all(isinstance(p, int) for p in padding):
        return tuple((p, p) for p in padding)
    return tuple((int(a), int(b)) for a, b in padding)


def _count_positions(size: int, before: int, after: int, kernel: int, stride: int, dilation: int) -> int:
    """Number of window starts whose last tap still lies inside the padded input (by counting)."""
    padded = size + before + after
    last_tap = (kernel - 1) * dilation
    count = 0
    start = 0
    while start + last_tap < padded:
        count += 1
        start += stride
    return count


def _padded(x: np.ndarray, pads: Pads2D) -> np.ndarray:
    (pt, pb), (pl, pr) = pads
    n, h, w, c = x.shape
    out = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=np.float64)
    out[:, pt : pt + h, pl : pl + w, :] = x
    return out


def conv2d_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None = None,
    strides: tuple[int, int] = (1, 1),
    pads: Pads2D = ((0, 0), (0, 0)),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """Cross-correlation by seven nested loops (n, oh, ow, f, kh, kw, channel-in-group)."""
    n_batch, height, width, channels = x.shape
    kh_size, kw_size, cg, filters = kernel.shape
    assert cg * groups == channels
    assert filters % groups == 0
    fg = filters // groups
    (pt, pb), (pl, pr) = pads
    oh_size = _count_positions(height, pt, pb, kh_size, strides[0], dilation[0])
    ow_size = _count_positions(width, pl, pr, kw_size, strides[1], dilation[1])
    xp = _padded(x, pads)
    out = np.zeros((n_batch, oh_size, ow_size, filters), dtype=np.float64)
    for n in range(n_batch):
        for oh in range(oh_size):
            for ow in range(ow_size):
                for f in range(filters):
                    group = f // fg
                    total = 0.0 if bias is None else float(bias[f])
                    for kh in range(kh_size):
                        for kw in range(kw_size):
                            row = oh * strides[0] + kh * dilation[0]
                            col = ow * strides[1] + kw * dilation[1]
                            for c in range(cg):
                                total += float(xp[n, row, col, group * cg + c]) * float(kernel[kh, kw, c, f])
                    out[n, oh, ow, f] = total
    return out


def conv2d_backward_reference(
    grad_out: np.ndarray,
    x: np.ndarray,
    kernel: np.ndarray,
    strides: tuple[int, int] = (1, 1),
    pads: Pads2D = ((0, 0), (0, 0)),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grad_x, grad_kernel, grad_bias) by accumulating every product's contribution in loops."""
    n_batch, height, width, _ = x.shape
    kh_size, kw_size, cg, filters = kernel.shape
    fg = filters // groups
    (pt, _), (pl, _) = pads
    oh_size, ow_size = grad_out.shape[1:3]
    xp = _padded(x, pads)
    grad_xp = np.zeros(xp.shape, dtype=np.float64)
    grad_kernel = np.zeros(kernel.shape, dtype=np.float64)
    grad_bias = np.zeros((filters,), dtype=np.float64)
    for n in range(n_batch):
        for oh in range(oh_size):
            for ow in range(ow_size):
                for f in range(filters):
                    g = float(grad_out[n, oh, ow, f])
                    grad_bias[f] += g
                    group = f // fg
                    for kh in range(kh_size):
                        for kw in range(kw_size):
                            row = oh * strides[0] + kh * dilation[0]
                            col = ow * strides[1] + kw * dilation[1]
                            for c in range(cg):
                                ch = group * cg + c
                                grad_kernel[kh, kw, c, f] += g * float(xp[n, row, col, ch])
                                grad_xp[n, row, col, ch] += g * float(kernel[kh, kw, c, f])
    grad_x = grad_xp[:, pt : pt + height, pl : pl + width, :]
    return np.ascontiguousarray(grad_x), grad_kernel, grad_bias


def conv1d_reference(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int = 1,
    pads: tuple[int, int] = (0, 0),
    dilation: int = 1,
    groups: int = 1,
) -> np.ndarray:
    """1-D cross-correlation by loops (n, ol, f, k, channel-in-group); x (N, L, C), kernel (K, C / G, F)."""
    n_batch, length, channels = x.shape
    k_size, cg, filters = kernel.shape
    assert cg * groups == channels
    assert filters % groups == 0
    fg = filters // groups
    before, after = pads
    ol_size = _count_positions(length, before, after, k_size, stride, dilation)
    xp = np.zeros((n_batch, length + before + after, channels), dtype=np.float64)
    xp[:, before : before + length] = x
    out = np.zeros((n_batch, ol_size, filters), dtype=np.float64)
    for n in range(n_batch):
        for ol in range(ol_size):
            for f in range(filters):
                group = f // fg
                total = 0.0 if bias is None else float(bias[f])
                for k in range(k_size):
                    pos = ol * stride + k * dilation
                    for c in range(cg):
                        total += float(xp[n, pos, group * cg + c]) * float(kernel[k, c, f])
                out[n, ol, f] = total
    return out


def conv1d_backward_reference(
    grad_out: np.ndarray,
    x: np.ndarray,
    kernel: np.ndarray,
    stride: int = 1,
    pads: tuple[int, int] = (0, 0),
    dilation: int = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grad_x, grad_kernel, grad_bias) of :func:`conv1d_reference` by accumulation loops."""
    n_batch, length, channels = x.shape
    k_size, cg, filters = kernel.shape
    fg = filters // groups
    before, after = pads
    xp = np.zeros((n_batch, length + before + after, channels), dtype=np.float64)
    xp[:, before : before + length] = x
    grad_xp = np.zeros_like(xp)
    grad_kernel = np.zeros(kernel.shape, dtype=np.float64)
    grad_bias = np.zeros((filters,), dtype=np.float64)
    for n in range(n_batch):
        for ol in range(grad_out.shape[1]):
            for f in range(filters):
                g = float(grad_out[n, ol, f])
                grad_bias[f] += g
                group = f // fg
                for k in range(k_size):
                    pos = ol * stride + k * dilation
                    for c in range(cg):
                        ch = group * cg + c
                        grad_kernel[k, c, f] += g * float(xp[n, pos, ch])
                        grad_xp[n, pos, ch] += g * float(kernel[k, c, f])
    return np.ascontiguousarray(grad_xp[:, before : before + length]), grad_kernel, grad_bias
