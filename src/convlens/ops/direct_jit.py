"""Compiled (Numba) direct convolution for few channels and few filters: the ``direct_compiled`` forward and
kernel gradient.

With few input channels and few filters the im2col GEMM is thin (LeNet-5's first layer multiplies a
(N*28*28, 26) matrix by a (26, 6) one) and OpenBLAS runs it at a small fraction of its rate, after an im2col
copy 25 times the input. This kernel computes the convolution (stride 1, any padding and dilation) from the
input itself, one image at a time:

- the image is copied once, channel-first and zero-padded, into a flat scratch plane per channel;
- each output plane is then a sum of shifted copies of those planes: for every tap (i, j) and channel c,
  ``out[f, q] += kernel[i, j, c, f] * plane[c, q + i * dh * Wp + j * dw]`` over the flat output positions q
  (a long contiguous run: the rows are computed Wp wide, the last KW - 1 columns of each thrown away), a
  row's taps taken five (else three, two, one) at a time to save passes over ``out``: five against three
  took LeNet-5's first layer (77 images, 1 thread) from 0.74 to 0.66 ms;
- the planes are written back channels_last, the bias added first.

The kernel gradient is the same picture read the other way: grad_out is copied filter-first into planes Wp wide
(the extra columns zero), and ``grad_kernel[i, j, c, f]`` is the dot product of the grad_out plane of ``f``
with the image plane of ``c`` shifted by ``i * dh * Wp + j * dw``: five taps and two filters at a time (ten
running sums, vectorised by letting the sums reassociate), the bias gradient the sum of each grad_out plane.
LeNet-5's first layer (N=128, 1 thread): 0.68 ms against 1.17 ms for the transposed im2col and its thin GEMM.

The kernels are serial and release the GIL; :func:`convlens.ops.parallel.parallel_ranges` splits the batch (the
kernel gradient: fixed batch chunks) over threads. Multiply-adds may fuse (``fastmath`` contract) and the kernel
gradient's sums reassociate: results agree with the im2col GEMM to rounding.

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, C, F); bias: (F,); out: (N, OH, OW, F); Wp = W + pad left + pad right
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.jit import compiled_kernels
from convlens.ops.parallel import forward_over_batch, kernel_grad_over_chunks

__all__ = ["CHUNKS", "direct_forward_jit", "direct_kernel_grad_jit"]

#: Fixed batch chunks of the kernel gradient, one partial sum each (summed in order, whatever the threads).
CHUNKS = 8


def _forward_kernel(
    x: Any, kernel: Any, bias: Any, out: Any, lo: int, hi: int, dh: int, dw: int, pt: int, pl: int, pr: int
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = x.shape
    _, out_h, out_w, filters = out.shape
    kh, kw = kernel.shape[0], kernel.shape[1]
    wide = pl + width + pr
    span = out_h * wide
    image = np.zeros((channels, (out_h + (kh - 1) * dh) * wide + (kw - 1) * dw), x.dtype)
    acc = np.empty((filters, span), x.dtype)
    for n in range(lo, hi):
        x_n = x[n]
        for c in range(channels):  # channel-outer (C = 1: one contiguous run per row, 5x channel-inner's speed)
            plane = image[c]
            for r in range(height):  # (the padding cells of ``image`` stay zero)
                base = (r + pt) * wide + pl
                for col in range(width):
                    plane[base + col] = x_n[r, col, c]
        for f in range(filters):
            b = bias[f]
            dst = acc[f]
            for q in range(span):
                dst[q] = b
        for i in range(kh):
            for c in range(channels):
                j = 0
                while j < kw:  # taps in groups of up to five: one pass over acc per group
                    m = min(5, kw - j)
                    if m == 4:  # (4 = 3 + 1 would leave a lone tap: 2 + 2)
                        m = 2
                    o = i * dh * wide + j * dw
                    s0 = image[c, o : o + span]
                    s1 = image[c, o + dw : o + dw + span] if m > 1 else s0
                    s2 = image[c, o + 2 * dw : o + 2 * dw + span] if m > 2 else s0
                    s3 = image[c, o + 3 * dw : o + 3 * dw + span] if m > 4 else s0
                    s4 = image[c, o + 4 * dw : o + 4 * dw + span] if m > 4 else s0
                    for f in range(filters):
                        dst = acc[f]
                        w0 = kernel[i, j, c, f]
                        if m == 5:
                            w1, w2 = kernel[i, j + 1, c, f], kernel[i, j + 2, c, f]
                            w3, w4 = kernel[i, j + 3, c, f], kernel[i, j + 4, c, f]
                            for q in range(span):
                                dst[q] += w0 * s0[q] + w1 * s1[q] + w2 * s2[q] + w3 * s3[q] + w4 * s4[q]
                        elif m == 3:
                            w1, w2 = kernel[i, j + 1, c, f], kernel[i, j + 2, c, f]
                            for q in range(span):
                                dst[q] += w0 * s0[q] + w1 * s1[q] + w2 * s2[q]
                        elif m == 2:
                            w1 = kernel[i, j + 1, c, f]
                            for q in range(span):
                                dst[q] += w0 * s0[q] + w1 * s1[q]
                        else:
                            for q in range(span):
                                dst[q] += w0 * s0[q]
                    j += m
        out_n = out[n]
        for f in range(filters):  # (planes back to channels_last: contiguous reads, one plane at a time)
            src = acc[f]
            for oh in range(out_h):
                base = oh * wide
                for ow in range(out_w):
                    out_n[oh, ow, f] = src[base + ow]


def _kernel_grad_kernel(
    x: Any,
    g: Any,
    parts: Any,
    bias_parts: Any,
    bounds: Any,
    t0: int,
    t1: int,
    dh: int,
    dw: int,
    pt: int,
    pl: int,
    pr: int,
    zero: Any,
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = x.shape
    _, out_h, out_w, filters = g.shape
    _, kh, kw, _, _ = parts.shape
    wide = pl + width + pr
    span = out_h * wide
    image = np.zeros((channels, (out_h + (kh - 1) * dh) * wide + (kw - 1) * dw), x.dtype)
    planes = np.zeros((filters, span), x.dtype)  # grad_out, filter-first, rows Wp wide (the extra columns 0)
    for t in range(t0, t1):
        part = parts[t]
        bias_part = bias_parts[t]
        part[:] = 0
        bias_part[:] = 0
        for n in range(bounds[t], bounds[t + 1]):
            x_n = x[n]
            for c in range(channels):
                plane = image[c]
                for r in range(height):
                    base = (r + pt) * wide + pl
                    for col in range(width):
                        plane[base + col] = x_n[r, col, c]
            g_n = g[n]
            for f in range(filters):
                dst = planes[f]
                for oh in range(out_h):
                    base = oh * wide
                    for ow in range(out_w):
                        dst[base + ow] = g_n[oh, ow, f]
                s = zero
                for q in range(span):
                    s += dst[q]
                bias_part[f] += s
            for i in range(kh):
                for c in range(channels):
                    j = 0
                    while j < kw:  # taps five (else three) at a time, filters two at a time: 10 or 6 sums
                        m = 5 if kw - j >= 5 else (3 if kw - j >= 3 else 1)
                        o = i * dh * wide + j * dw
                        s0 = image[c, o : o + span]
                        s1 = image[c, o + dw : o + dw + span] if m > 1 else s0
                        s2 = image[c, o + 2 * dw : o + 2 * dw + span] if m > 1 else s0
                        s3 = image[c, o + 3 * dw : o + 3 * dw + span] if m > 3 else s0
                        s4 = image[c, o + 4 * dw : o + 4 * dw + span] if m > 3 else s0
                        f = 0
                        while f < filters:
                            u = planes[f]
                            v = planes[f + 1] if f + 1 < filters else u
                            if m == 5:
                                a0 = a1 = a2 = a3 = a4 = b0 = b1 = b2 = b3 = b4 = zero
                                for q in range(span):
                                    p, w = u[q], v[q]
                                    a0 += s0[q] * p
                                    a1 += s1[q] * p
                                    a2 += s2[q] * p
                                    a3 += s3[q] * p
                                    a4 += s4[q] * p
                                    b0 += s0[q] * w
                                    b1 += s1[q] * w
                                    b2 += s2[q] * w
                                    b3 += s3[q] * w
                                    b4 += s4[q] * w
                            elif m == 3:
                                a0 = a1 = a2 = b0 = b1 = b2 = zero
                                for q in range(span):
                                    p, w = u[q], v[q]
                                    a0 += s0[q] * p
                                    a1 += s1[q] * p
                                    a2 += s2[q] * p
                                    b0 += s0[q] * w
                                    b1 += s1[q] * w
                                    b2 += s2[q] * w
                                a3 = a4 = b3 = b4 = zero
                            else:
                                a0 = b0 = zero
                                for q in range(span):
                                    a0 += s0[q] * u[q]
                                    b0 += s0[q] * v[q]
                                a1 = a2 = a3 = a4 = b1 = b2 = b3 = b4 = zero
                            sums = (a0, a1, a2, a3, a4)
                            for tap in range(m):
                                part[i, j + tap, c, f] += sums[tap]
                            if f + 1 < filters:
                                sums = (b0, b1, b2, b3, b4)
                                for tap in range(m):
                                    part[i, j + tap, c, f + 1] += sums[tap]
                            f += 2
                        j += m


def _kernels() -> tuple[Any, ...]:
    """The compiled (forward, kernel gradient) kernels; imports Numba on the first call."""
    return compiled_kernels(
        globals(),
        [
            (_forward_kernel, {"fastmath": {"contract"}}),
            (_kernel_grad_kernel, {"fastmath": {"contract", "reassoc"}}),
        ],
    )


def _layout(geometry: WindowGeometry) -> tuple[int, int, int, int, int]:
    """(dh, dw, pad top, pad left, pad right) for the kernels (stride 1 only)."""
    (dh, dw) = geometry.dilation_rate
    (pt, _), (pl, pr) = geometry.pads
    return dh, dw, pt, pl, pr


def direct_forward_jit(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, geometry: WindowGeometry, out_shape: tuple[int, ...]
) -> np.ndarray:
    """A fresh (N, OH, OW, F) output: the convolution of ``x`` with ``kernel``, plus ``bias``.

    Shapes:
        x: (N, H, W, C) C-contiguous; kernel: (KH, KW, C, F) C-contiguous of x's dtype; bias: (F,) or None
    """
    return forward_over_batch(_kernels()[0], x, kernel, bias, out_shape, _layout(geometry))  # type: ignore[no-any-return]


def direct_kernel_grad_jit(
    x: np.ndarray, grad_out: np.ndarray, geometry: WindowGeometry, kernel_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_kernel (KH, KW, C, F), grad_bias (F,))`` of the direct convolution from ``grad_out``.

    One partial sum per fixed batch chunk (:data:`CHUNKS`), added in order: the bits do not depend on the
    number of threads.

    Shapes:
        x: (N, H, W, C) and grad_out: (N, OH, OW, F), C-contiguous of one dtype.
    """
    tail = (*_layout(geometry), x.dtype.type(0))
    return kernel_grad_over_chunks(_kernels()[1], x, grad_out, tuple(kernel_shape), CHUNKS, tail)
