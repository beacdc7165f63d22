"""The depthwise 3x3 kernel with its nine taps in one loop over the row (compiled, Numba), for
:mod:`convlens.ops.depthwise_jit`, which decides when it runs.

A 3x3 kernel (the common case) runs its forward, and at stride 1 its input gradient, with the nine taps in one loop
over the row (:func:`_taps3x3_kernel`): nine products added in tap order to a zero, then the bias, the row-span
passes' order (the same bits). Each image is first copied into a zero-bordered plane when the layer pads (the input
gradient always: grad_out padded for the full convolution), so every tap spans the whole row; a kernel holding inf
or NaN then also gives NaN where a tap meets the border (0 * inf), as NumPy's padded forward does. The input
gradient computes every input cell from nine taps, so it runs this way only where the input has at most
:data:`convlens.ops.depthwise_jit.TAPS3X3_INPUT_GRAD_MAX_CELLS` times the output's cells. Interleaved, AMD EPYC, 1
thread / 2 threads, ms, row-span passes -> nine taps: forward (128, 15x15, 32) 'valid' 0.98 -> 0.73 / 0.69 -> 0.55,
'same' 1.15 -> 0.88 / 0.83 -> 0.74, (64, 56x56, 32) 'same' 10.9 -> 7.6 / 5.8 -> 5.2; input gradient (128, 15x15,
32) 'valid' 1.27 -> 0.98 / 0.78 -> 0.72, 'same' 1.19 -> 0.87 / 0.94 -> 0.71, (64, 56x56, 32) 'same' 12.5 -> 7.4 /
7.5 -> 5.2; (128, 7x7, 64) 'valid' input gradient level (1.96x the output's cells: it keeps the passes).

Shapes:
    src: (N, H, W, C); ktile: (9, OW' * C), each tap's (C,) weights repeated over the destination's width;
    btile: (OW' * C,); dst: (N, OH', OW', C)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.jit import compiled_kernels

__all__ = ["nine_taps", "taps3x3_kernel"]


def _taps3x3_kernel(
    src: Any,
    ktile: Any,
    btile: Any,
    dst: Any,
    lo: int,
    hi: int,
    offsets: Any,
    sh: int,
    top: int,
    left: int,
    padded: bool,
) -> None:  # pragma: no cover - compiled by Numba
    # dst[n, oh, :] (OW' * C, flattened) = sum over the nine taps t, in order, of plane[oh * sh + rows_t,
    # cols_t + e] * ktile[t, e], then + btile[e]; plane is src[n] itself (unpadded) or src[n] placed at (top,
    # left) in a zero-bordered copy. offsets: (9, 2) int64, each tap's (row, flat column) offset in the plane.
    _, height, width, channels = src.shape
    _, out_h, out_w, _ = dst.shape
    row = out_w * channels
    zero = dst.dtype.type(0)
    r0, r1, r2, r3, r4, r5, r6, r7, r8 = offsets[:, 0]
    c0, c1, c2, c3, c4, c5, c6, c7, c8 = offsets[:, 1]
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
    stride = width * channels
    buffer = np.zeros((1, 1), src.dtype)
    if padded:  # (zeroed once: every image overwrites the same cells)
        stride = max(row + offsets[:, 1].max(), (left + width) * channels)
        buffer = np.zeros((max((out_h - 1) * sh + offsets[:, 0].max() + 1, top + height), stride), src.dtype)
    sf = src.reshape(-1)
    df = dst.reshape(-1)
    for n in range(lo, hi):
        plane = sf[n * height * width * channels : (n + 1) * height * width * channels]
        if padded:
            for r in range(height):
                s = sf[(n * height + r) * width * channels : (n * height + r + 1) * width * channels]
                d = buffer[top + r, left * channels : (left + width) * channels]
                for e in range(width * channels):
                    d[e] = s[e]
            plane = buffer.reshape(-1)
        for oh in range(out_h):
            base = oh * sh
            v0 = plane[(base + r0) * stride + c0 : (base + r0) * stride + c0 + row]
            v1 = plane[(base + r1) * stride + c1 : (base + r1) * stride + c1 + row]
            v2 = plane[(base + r2) * stride + c2 : (base + r2) * stride + c2 + row]
            v3 = plane[(base + r3) * stride + c3 : (base + r3) * stride + c3 + row]
            v4 = plane[(base + r4) * stride + c4 : (base + r4) * stride + c4 + row]
            v5 = plane[(base + r5) * stride + c5 : (base + r5) * stride + c5 + row]
            v6 = plane[(base + r6) * stride + c6 : (base + r6) * stride + c6 + row]
            v7 = plane[(base + r7) * stride + c7 : (base + r7) * stride + c7 + row]
            v8 = plane[(base + r8) * stride + c8 : (base + r8) * stride + c8 + row]
            o = df[(n * out_h + oh) * row : (n * out_h + oh + 1) * row]
            for e in range(row):
                acc = zero
                acc += v0[e] * k0[e]
                acc += v1[e] * k1[e]
                acc += v2[e] * k2[e]
                acc += v3[e] * k3[e]
                acc += v4[e] * k4[e]
                acc += v5[e] * k5[e]
                acc += v6[e] * k6[e]
                acc += v7[e] * k7[e]
                acc += v8[e] * k8[e]
                acc += btile[e]
                o[e] = acc


def taps3x3_kernel() -> Any:
    """The compiled kernel ``(src, ktile, btile, dst, lo, hi, offsets, sh, top, left, padded)`` (the argument
    order of :func:`convlens.ops.parallel.forward_over_batch`); imports Numba on the first call."""
    return _kernels()[0]


def _kernels() -> tuple[Any, ...]:
    return compiled_kernels(globals(), (_taps3x3_kernel,))


def nine_taps(geometry: WindowGeometry, channels: int, flipped: bool) -> np.ndarray:
    """(9, 2) int64: each 3x3 tap's (row, flat column) offset in the plane, in the order the taps are added
    (row-major); ``flipped`` for the input gradient, whose tap (i, j) reads grad_out at (2 - i, 2 - j)."""
    dh, dw = geometry.dilation_rate
    taps = [(2 - i if flipped else i, 2 - j if flipped else j) for i in range(3) for j in range(3)]
    return np.array([(i * dh, j * dw * channels) for i, j in taps], np.int64)
