"""The depthwise 3x3 kernels for a width stride above 1, output pixel by output pixel with the nine taps in one
loop over the channels (compiled, Numba), for :mod:`convlens.ops.depthwise_jit`, which decides when they run.

At a width stride of 2 (MobileNet's downsampling blocks) a tap's contributions to an output row are no longer one
contiguous span (the row-span kernels of :mod:`convlens.ops.depthwise_taps_jit` need stride 1 along the width).
The per-column kernels then run each tap as its own loop over the C channels of each output pixel: nine loops
of a few vectors (64 channels: four AVX-512 vectors) per pixel, each reloading and storing the output. These
kernels instead take each output pixel once:

- forward (:func:`_pixel_kernel`): ``out[n, oh, ow, :]`` is the nine taps' products added in tap order to a
  zero, then the bias, in one loop over the channels (the per-column kernel's order: the same bits);
- kernel gradient (:func:`_pixel_kernel_grad_kernel`): each tap's products ``x * grad_out`` added to its own
  (C,) row of partial sums per batch chunk (ten rows with the bias's, passed as ten arrays so that LLVM knows they
  do not overlap and vectorises the loop), the pixels in the per-column kernel's order (the same bits).

A pixel whose window reaches into the padding takes its taps one at a time, skipping those outside the image
(as the per-column kernels). The input gradient keeps the per-column kernel.

Shapes:
    x: (N, H, W, C); kernel: (3, 3, C); bias: (C,); out, grad_out: (N, OH, OW, C); partial sums: (chunks, C)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.jit import compiled_kernels
from convlens.ops.parallel import chunk_bounds, forward_over_batch, parallel_ranges

__all__ = ["pixels3x3_forward", "pixels3x3_kernel_grad"]


def _pixel_kernel(
    x: Any, kernel: Any, bias: Any, out: Any, lo: int, hi: int, sh: int, sw: int, dh: int, dw: int, pt: int, pl: int
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = x.shape
    _, out_h, out_w, _ = out.shape
    zero = out.dtype.type(0)
    xf = x.reshape(-1)
    of = out.reshape(-1)
    k0, k1, k2 = kernel[0, 0], kernel[0, 1], kernel[0, 2]
    k3, k4, k5 = kernel[1, 0], kernel[1, 1], kernel[1, 2]
    k6, k7, k8 = kernel[2, 0], kernel[2, 1], kernel[2, 2]
    right, down = dw * channels, dh * width * channels  # (one column tap, one row tap further in x)
    for n in range(lo, hi):
        for oh in range(out_h):
            r = oh * sh - pt
            rows_inside = r >= 0 and r + 2 * dh < height
            for ow in range(out_w):
                col = ow * sw - pl
                o0 = ((n * out_h + oh) * out_w + ow) * channels
                o = of[o0 : o0 + channels]
                if rows_inside and col >= 0 and col + 2 * dw < width:
                    b = ((n * height + r) * width + col) * channels
                    v0 = xf[b : b + channels]
                    v1 = xf[b + right : b + right + channels]
                    v2 = xf[b + 2 * right : b + 2 * right + channels]
                    b += down
                    v3 = xf[b : b + channels]
                    v4 = xf[b + right : b + right + channels]
                    v5 = xf[b + 2 * right : b + 2 * right + channels]
                    b += down
                    v6 = xf[b : b + channels]
                    v7 = xf[b + right : b + right + channels]
                    v8 = xf[b + 2 * right : b + 2 * right + channels]
                    for c in range(channels):
                        o[c] = (zero + v0[c] * k0[c] + v1[c] * k1[c] + v2[c] * k2[c] + v3[c] * k3[c]
                                + v4[c] * k4[c] + v5[c] * k5[c] + v6[c] * k6[c] + v7[c] * k7[c] + v8[c] * k8[c]
                                + bias[c])  # fmt: skip
                    continue
                for c in range(channels):  # (a window reaching into the padding: its taps one at a time)
                    o[c] = zero
                for i in range(3):
                    rr = r + i * dh
                    if rr < 0 or rr >= height:
                        continue
                    for j in range(3):
                        cc = col + j * dw
                        if cc < 0 or cc >= width:
                            continue
                        b = ((n * height + rr) * width + cc) * channels
                        v, k = xf[b : b + channels], kernel[i, j]
                        for c in range(channels):
                            o[c] += v[c] * k[c]
                for c in range(channels):
                    o[c] += bias[c]


def _pixel_kernel_grad_kernel(
    x: Any,
    g: Any,
    s0: Any,
    s1: Any,
    s2: Any,
    s3: Any,
    s4: Any,
    s5: Any,
    s6: Any,
    s7: Any,
    s8: Any,
    sb: Any,
    bounds: Any,
    t0: int,
    t1: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pt: int,
    pl: int,
) -> None:  # pragma: no cover - compiled by Numba
    # For the batch chunks t0 <= t < t1: s{3 i + j}[t, c] = sum over the chunk's pixels (n, oh, ow, in order) of
    # x[n, oh * sh - pt + i * dh, ow * sw - pl + j * dw, c] * g[n, oh, ow, c] (taps inside the image);
    # sb[t, c] = the sum of g[n, oh, ow, c].
    _, height, width, channels = x.shape
    _, out_h, out_w, _ = g.shape
    xf = x.reshape(-1)
    gf = g.reshape(-1)
    right, down = dw * channels, dh * width * channels
    for t in range(t0, t1):
        a0, a1, a2, a3, a4, a5, a6, a7, a8, ab = s0[t], s1[t], s2[t], s3[t], s4[t], s5[t], s6[t], s7[t], s8[t], sb[t]
        sums = (a0, a1, a2, a3, a4, a5, a6, a7, a8)
        for c in range(channels):
            a0[c] = a1[c] = a2[c] = a3[c] = a4[c] = a5[c] = a6[c] = a7[c] = a8[c] = ab[c] = 0
        for n in range(bounds[t], bounds[t + 1]):
            for oh in range(out_h):
                r = oh * sh - pt
                rows_inside = r >= 0 and r + 2 * dh < height
                for ow in range(out_w):
                    col = ow * sw - pl
                    g0 = ((n * out_h + oh) * out_w + ow) * channels
                    gv = gf[g0 : g0 + channels]
                    if rows_inside and col >= 0 and col + 2 * dw < width:
                        b = ((n * height + r) * width + col) * channels
                        v0 = xf[b : b + channels]
                        v1 = xf[b + right : b + right + channels]
                        v2 = xf[b + 2 * right : b + 2 * right + channels]
                        b += down
                        v3 = xf[b : b + channels]
                        v4 = xf[b + right : b + right + channels]
                        v5 = xf[b + 2 * right : b + 2 * right + channels]
                        b += down
                        v6 = xf[b : b + channels]
                        v7 = xf[b + right : b + right + channels]
                        v8 = xf[b + 2 * right : b + 2 * right + channels]
                        for c in range(channels):
                            u = gv[c]
                            ab[c] += u
                            a0[c] += v0[c] * u
                            a1[c] += v1[c] * u
                            a2[c] += v2[c] * u
                            a3[c] += v3[c] * u
                            a4[c] += v4[c] * u
                            a5[c] += v5[c] * u
                            a6[c] += v6[c] * u
                            a7[c] += v7[c] * u
                            a8[c] += v8[c] * u
                        continue
                    for c in range(channels):  # (a window reaching into the padding: its taps one at a time)
                        ab[c] += gv[c]
                    for i in range(3):
                        rr = r + i * dh
                        if rr < 0 or rr >= height:
                            continue
                        for j in range(3):
                            cc = col + j * dw
                            if cc < 0 or cc >= width:
                                continue
                            b = ((n * height + rr) * width + cc) * channels
                            v, a = xf[b : b + channels], sums[3 * i + j]
                            for c in range(channels):
                                a[c] += v[c] * gv[c]


def _kernels() -> tuple[Any, ...]:
    noalias = {"noalias": True}  # (the callers pass fresh outputs: see each function)
    return compiled_kernels(globals(), ((_pixel_kernel, noalias), (_pixel_kernel_grad_kernel, noalias)))


def _layout(geometry: WindowGeometry) -> tuple[int, int, int, int, int, int]:
    (sh, sw), (dh, dw) = geometry.strides, geometry.dilation_rate
    (pt, _), (pl, _) = geometry.pads
    return sh, sw, dh, dw, pt, pl


def pixels3x3_forward(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, geometry: WindowGeometry, out_shape: tuple[int, ...]
) -> np.ndarray:
    """A fresh (N, OH, OW, C) output: the depthwise 3x3 convolution of ``x`` with ``kernel``, plus ``bias``
    (:func:`convlens.ops.parallel.forward_over_batch` passes a fresh output: the kernel's noalias).

    Shapes:
        x: (N, H, W, C) C-contiguous; kernel: (3, 3, C) C-contiguous of x's dtype; bias: (C,) or None
    """
    return forward_over_batch(_kernels()[0], x, kernel, bias, out_shape, _layout(geometry))  # type: ignore[no-any-return]


def pixels3x3_kernel_grad(
    x: np.ndarray, grad_out: np.ndarray, geometry: WindowGeometry, chunks: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_kernel (3, 3, C), grad_bias (C,))``: partial sums per batch chunk (``chunks`` fixed pieces
    whatever the threads), added in chunk order (the bits do not depend on the number of threads).

    Shapes:
        x: (N, H, W, C) and grad_out (N, OH, OW, C) C-contiguous of one dtype.
    """
    batch, channels = grad_out.shape[0], grad_out.shape[3]
    pieces = max(1, min(chunks, batch))
    sums = [np.empty((pieces, channels), x.dtype) for _ in range(10)]  # (fresh: the kernel's noalias)
    bounds = chunk_bounds(batch, pieces)
    kernel, layout = _kernels()[1], _layout(geometry)
    parallel_ranges(
        lambda t0, t1: kernel(x, grad_out, *sums, bounds, t0, t1, *layout), pieces, x.nbytes + grad_out.nbytes
    )
    totals = np.stack(sums).sum(axis=1)  # (10, C): the chunks added in order
    return totals[:9].reshape(3, 3, channels), totals[9]
