"""The depthwise 3x3 kernels with their nine taps in one loop over the row (compiled, Numba), for
:mod:`convlens.ops.depthwise_jit`, which decides when they run.

A 3x3 kernel (the common case) runs its forward, its kernel gradient and, at stride 1, its input gradient with the
nine taps in one loop over the flattened (OW * C) row:

- forward (:func:`_taps3x3_kernel`): nine products added in tap order to a zero, then the bias, the row-span
  passes' order (the same bits). The input gradient is this kernel over grad_out (padded for the full
  convolution) with the taps flipped: every input cell computed from nine taps, so it runs this way only where the
  input has at most :data:`convlens.ops.depthwise_jit.TAPS3X3_INPUT_GRAD_MAX_CELLS` times the output's cells;
- kernel gradient (:func:`_taps3x3_kernel_grad_kernel`): each tap's products ``x * grad_out`` added to its own
  (OW * C) row of partial sums per batch chunk (ten rows with the bias's, passed as ten arrays so that LLVM knows
  they do not overlap and vectorises the loop), then summed over the columns and chunks in a fixed order.

Where the row stride equals the row dilation (stride 1, the common case), four output rows run in one loop: they
read six input rows, not twelve, and each of the nine weights (forward) or partial sums (kernel gradient) is
loaded once for the four (8 memory accesses per forward output vector instead of 20 one row at a time, 10.5
per kernel-gradient output vector instead of 30), with each output's additions in the same order (the same bits
as row by row). Each image is first copied into a zero-bordered plane when the layer pads (the input gradient
always), so every tap spans the whole row; a kernel holding inf or NaN then also gives NaN where a tap meets the
border (0 * inf), as NumPy's padded forward does.

Interleaved, AMD EPYC (Zen 4, AVX-512), 1 thread, min ms, kernel gradient of (128, 15x15, 32) 'valid': per-tap
row-span passes 0.74 -> nine taps one row at a time 0.57 -> two rows 0.39 -> four rows 0.31 (PyTorch 0.37).

Shapes:
    src: (N, H, W, C); ktile: (9, OW' * C), each tap's (C,) weights repeated over the destination's width;
    btile: (OW' * C,); dst: (N, OH', OW', C); kernel-gradient partial sums: (chunks, OW * C) each
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.jit import compiled_kernels
from convlens.ops.parallel import chunk_bounds, parallel_ranges

__all__ = ["taps3x3_kernel", "taps3x3_kernel_grad", "taps3x3_layout"]

#: Output rows computed together where the row stride equals the row dilation.
ROWS = 4


def _taps3x3_kernel(
    src: Any,
    ktile: Any,
    btile: Any,
    dst: Any,
    lo: int,
    hi: int,
    sh: int,
    dh: int,
    cstep: int,
    flipped: bool,
    top: int,
    left: int,
    padded: bool,
) -> None:  # pragma: no cover - compiled by Numba
    # dst[n, oh, :] (OW' * C, flattened) = sum over the taps t = 3 i + j, in order, of
    # plane[oh * sh + a * dh, b * cstep + e] * ktile[t, e], then + btile[e], where (a, b) = (i, j), or (2 - i,
    # 2 - j) when ``flipped`` (the input gradient: weight (i, j) meets grad_out at the mirrored position).
    # p{a}{b}: the span tap (a, b) reads, a counted from the block's first output row.
    _, out_h, out_w, _ = dst.shape
    row = out_w * src.shape[3]
    zero = dst.dtype.type(0)
    k0, k1, k2, k3, k4, k5, k6, k7, k8 = (
        ktile[0],
        ktile[1],
        ktile[2],
        ktile[3],
        ktile[4],
        ktile[5],
        ktile[6],
        ktile[7],
        ktile[8],
    )
    _, height, width, channels = src.shape
    buffer = np.zeros((1, 1), src.dtype)
    if padded:  # a zero-bordered plane every tap of every output row fits in (zeroed once: each image overwrites
        rows = max((out_h - 1) * sh + 2 * dh + 1, top + height)  # the same cells)
        buffer = np.zeros((rows, max(row + 2 * cstep, (left + width) * channels)), src.dtype)
    stride = buffer.shape[1] if padded else width * channels  # (of the plane's rows)
    down = dh * stride
    blocks = out_h // ROWS if sh == dh else 0
    dst2 = dst.reshape(-1, row)
    b0, b1, b2 = 0, cstep, 2 * cstep
    for n in range(lo, hi):
        plane = src[n].reshape(-1)
        if padded:
            for r in range(height):
                d = buffer[top + r, left * channels : (left + width) * channels]
                v = plane[r * width * channels : (r + 1) * width * channels]
                for e in range(width * channels):
                    d[e] = v[e]
            plane = buffer.reshape(-1)
        for q in range(blocks):
            oh = q * ROWS
            r = oh * sh * stride
            p00, p01, p02 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            r += down
            p10, p11, p12 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            r += down
            p20, p21, p22 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            r += down
            p30, p31, p32 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            r += down
            p40, p41, p42 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            r += down
            p50, p51, p52 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            o0, o1, o2, o3 = (
                dst2[n * out_h + oh],
                dst2[n * out_h + oh + 1],
                dst2[n * out_h + oh + 2],
                dst2[n * out_h + oh + 3],
            )
            if flipped:
                for e in range(row):
                    w0, w1, w2, w3, w4, w5, w6, w7, w8 = k0[e], k1[e], k2[e], k3[e], k4[e], k5[e], k6[e], k7[e], k8[e]
                    o0[e] = (zero + p22[e] * w0 + p21[e] * w1 + p20[e] * w2 + p12[e] * w3 + p11[e] * w4
                             + p10[e] * w5 + p02[e] * w6 + p01[e] * w7 + p00[e] * w8 + btile[e])  # fmt: skip
                    o1[e] = (zero + p32[e] * w0 + p31[e] * w1 + p30[e] * w2 + p22[e] * w3 + p21[e] * w4
                             + p20[e] * w5 + p12[e] * w6 + p11[e] * w7 + p10[e] * w8 + btile[e])  # fmt: skip
                    o2[e] = (zero + p42[e] * w0 + p41[e] * w1 + p40[e] * w2 + p32[e] * w3 + p31[e] * w4
                             + p30[e] * w5 + p22[e] * w6 + p21[e] * w7 + p20[e] * w8 + btile[e])  # fmt: skip
                    o3[e] = (zero + p52[e] * w0 + p51[e] * w1 + p50[e] * w2 + p42[e] * w3 + p41[e] * w4
                             + p40[e] * w5 + p32[e] * w6 + p31[e] * w7 + p30[e] * w8 + btile[e])  # fmt: skip
            else:
                for e in range(row):
                    w0, w1, w2, w3, w4, w5, w6, w7, w8 = k0[e], k1[e], k2[e], k3[e], k4[e], k5[e], k6[e], k7[e], k8[e]
                    o0[e] = (zero + p00[e] * w0 + p01[e] * w1 + p02[e] * w2 + p10[e] * w3 + p11[e] * w4
                             + p12[e] * w5 + p20[e] * w6 + p21[e] * w7 + p22[e] * w8 + btile[e])  # fmt: skip
                    o1[e] = (zero + p10[e] * w0 + p11[e] * w1 + p12[e] * w2 + p20[e] * w3 + p21[e] * w4
                             + p22[e] * w5 + p30[e] * w6 + p31[e] * w7 + p32[e] * w8 + btile[e])  # fmt: skip
                    o2[e] = (zero + p20[e] * w0 + p21[e] * w1 + p22[e] * w2 + p30[e] * w3 + p31[e] * w4
                             + p32[e] * w5 + p40[e] * w6 + p41[e] * w7 + p42[e] * w8 + btile[e])  # fmt: skip
                    o3[e] = (zero + p30[e] * w0 + p31[e] * w1 + p32[e] * w2 + p40[e] * w3 + p41[e] * w4
                             + p42[e] * w5 + p50[e] * w6 + p51[e] * w7 + p52[e] * w8 + btile[e])  # fmt: skip
        for oh in range(blocks * ROWS, out_h):  # (the rows left over, one at a time)
            r = oh * sh * stride
            p00, p01, p02 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            r += down
            p10, p11, p12 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            r += down
            p20, p21, p22 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
            o0 = dst2[n * out_h + oh]
            if flipped:
                for e in range(row):
                    o0[e] = (zero + p22[e] * k0[e] + p21[e] * k1[e] + p20[e] * k2[e] + p12[e] * k3[e]
                             + p11[e] * k4[e] + p10[e] * k5[e] + p02[e] * k6[e] + p01[e] * k7[e] + p00[e] * k8[e]
                             + btile[e])  # fmt: skip
            else:
                for e in range(row):
                    o0[e] = (zero + p00[e] * k0[e] + p01[e] * k1[e] + p02[e] * k2[e] + p10[e] * k3[e]
                             + p11[e] * k4[e] + p12[e] * k5[e] + p20[e] * k6[e] + p21[e] * k7[e] + p22[e] * k8[e]
                             + btile[e])  # fmt: skip


def _taps3x3_kernel_grad_kernel(
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
    dh: int,
    cstep: int,
    top: int,
    left: int,
    padded: bool,
) -> None:  # pragma: no cover - compiled by Numba
    # For the batch chunks t0 <= t < t1: s{3 i + j}[t, e] = sum over the chunk's images and output rows oh (in
    # order) of plane[oh * sh + i * dh, j * cstep + e] * g[n, oh, :][e]; sb[t, e] = sum of g[n, oh, :][e].
    _, out_h, out_w, _ = g.shape
    row = out_w * x.shape[3]
    _, height, width, channels = x.shape
    buffer = np.zeros((1, 1), x.dtype)
    if padded:  # a zero-bordered plane every tap of every output row fits in (zeroed once: each image overwrites
        rows = max((out_h - 1) * sh + 2 * dh + 1, top + height)  # the same cells)
        buffer = np.zeros((rows, max(row + 2 * cstep, (left + width) * channels)), x.dtype)
    stride = buffer.shape[1] if padded else width * channels  # (of the plane's rows)
    down = dh * stride
    blocks = out_h // ROWS if sh == dh else 0
    g2 = g.reshape(-1, row)
    b0, b1, b2 = 0, cstep, 2 * cstep
    for t in range(t0, t1):
        a0, a1, a2, a3, a4, a5, a6, a7, a8, ab = s0[t], s1[t], s2[t], s3[t], s4[t], s5[t], s6[t], s7[t], s8[t], sb[t]
        for e in range(row):
            a0[e] = a1[e] = a2[e] = a3[e] = a4[e] = a5[e] = a6[e] = a7[e] = a8[e] = ab[e] = 0
        for n in range(bounds[t], bounds[t + 1]):
            plane = x[n].reshape(-1)
            if padded:
                for r in range(height):
                    d = buffer[top + r, left * channels : (left + width) * channels]
                    v = plane[r * width * channels : (r + 1) * width * channels]
                    for e in range(width * channels):
                        d[e] = v[e]
                plane = buffer.reshape(-1)
            for q in range(blocks):
                oh = q * ROWS
                r = oh * sh * stride
                p00, p01, p02 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                r += down
                p10, p11, p12 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                r += down
                p20, p21, p22 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                r += down
                p30, p31, p32 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                r += down
                p40, p41, p42 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                r += down
                p50, p51, p52 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                g0, g1, g2_, g3 = (
                    g2[n * out_h + oh],
                    g2[n * out_h + oh + 1],
                    g2[n * out_h + oh + 2],
                    g2[n * out_h + oh + 3],
                )
                for e in range(row):
                    u0, u1, u2, u3 = g0[e], g1[e], g2_[e], g3[e]
                    ab[e] = ab[e] + u0 + u1 + u2 + u3
                    a0[e] = a0[e] + p00[e] * u0 + p10[e] * u1 + p20[e] * u2 + p30[e] * u3
                    a1[e] = a1[e] + p01[e] * u0 + p11[e] * u1 + p21[e] * u2 + p31[e] * u3
                    a2[e] = a2[e] + p02[e] * u0 + p12[e] * u1 + p22[e] * u2 + p32[e] * u3
                    a3[e] = a3[e] + p10[e] * u0 + p20[e] * u1 + p30[e] * u2 + p40[e] * u3
                    a4[e] = a4[e] + p11[e] * u0 + p21[e] * u1 + p31[e] * u2 + p41[e] * u3
                    a5[e] = a5[e] + p12[e] * u0 + p22[e] * u1 + p32[e] * u2 + p42[e] * u3
                    a6[e] = a6[e] + p20[e] * u0 + p30[e] * u1 + p40[e] * u2 + p50[e] * u3
                    a7[e] = a7[e] + p21[e] * u0 + p31[e] * u1 + p41[e] * u2 + p51[e] * u3
                    a8[e] = a8[e] + p22[e] * u0 + p32[e] * u1 + p42[e] * u2 + p52[e] * u3
            for oh in range(blocks * ROWS, out_h):  # (the rows left over, one at a time)
                r = oh * sh * stride
                p00, p01, p02 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                r += down
                p10, p11, p12 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                r += down
                p20, p21, p22 = plane[r + b0 : r + b0 + row], plane[r + b1 : r + b1 + row], plane[r + b2 : r + b2 + row]
                g0 = g2[n * out_h + oh]
                for e in range(row):
                    u0 = g0[e]
                    ab[e] += u0
                    a0[e] += p00[e] * u0
                    a1[e] += p01[e] * u0
                    a2[e] += p02[e] * u0
                    a3[e] += p10[e] * u0
                    a4[e] += p11[e] * u0
                    a5[e] += p12[e] * u0
                    a6[e] += p20[e] * u0
                    a7[e] += p21[e] * u0
                    a8[e] += p22[e] * u0


def _kernels() -> tuple[Any, ...]:
    noalias = {"noalias": True}  # (the callers pass fresh outputs: see each function)
    return compiled_kernels(globals(), ((_taps3x3_kernel, noalias), (_taps3x3_kernel_grad_kernel, noalias)))


def taps3x3_kernel() -> Any:
    """The compiled forward ``(src, ktile, btile, dst, lo, hi, sh, dh, cstep, flipped, top, left, padded)`` (the
    argument order of :func:`convlens.ops.parallel.forward_over_batch`, which passes a fresh ``dst``: compiled
    ``noalias``); imports Numba on the first call."""
    return _kernels()[0]


def taps3x3_layout(geometry: WindowGeometry, channels: int, *, flipped: bool) -> tuple[int, int, int, bool]:
    """``(sh, dh, cstep, flipped)``: the row stride, the row dilation, a column tap's step in the flattened row
    (``dw * C``) and whether the taps are mirrored (the input gradient's full convolution, stride 1)."""
    (dh, dw), sh = geometry.dilation_rate, 1 if flipped else geometry.strides[0]
    return sh, dh, dw * channels, flipped


def taps3x3_kernel_grad(
    x: np.ndarray, grad_out: np.ndarray, geometry: WindowGeometry, chunks: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_kernel (3, 3, C), grad_bias (C,))`` of a stride-1-along-the-width depthwise 3x3 convolution, one
    filter per channel: partial sums per batch chunk (``chunks`` fixed pieces whatever the threads), summed over
    the columns and then the chunks in order (the bits do not depend on the number of threads).

    Shapes:
        x: (N, H, W, C) and grad_out (N, OH, OW, C) C-contiguous of one dtype.
    """
    batch, _, out_w, channels = grad_out.shape
    pieces = max(1, min(chunks, batch))
    sums = [np.empty((pieces, out_w * channels), x.dtype) for _ in range(10)]  # (fresh: the kernel's noalias)
    bounds = chunk_bounds(batch, pieces)
    (pt, _), (pl, _) = geometry.pads
    sh, dh, cstep, _ = taps3x3_layout(geometry, channels, flipped=False)
    kernel, padded = _kernels()[1], geometry.is_padded
    parallel_ranges(
        lambda t0, t1: kernel(x, grad_out, *sums, bounds, t0, t1, sh, dh, cstep, pt, pl, padded),
        pieces,
        x.nbytes + grad_out.nbytes,
    )
    per_chunk = np.stack(sums).reshape(10, pieces, out_w, channels).sum(axis=2)  # (10, pieces, C)
    totals = per_chunk.sum(axis=1)
    return totals[:9].reshape(3, 3, channels), totals[9]
