"""Compiled (Numba) depthwise convolution: the ``depthwise_compiled`` algorithm of the convolution registry.

NumPy's depthwise code (:mod:`convlens.ops.depthwise`) makes one pass over a full-size temporary per window
tap (nine for 3x3) and sums the kernel gradient with one GEMV per tap. These kernels walk each image once per
role, with the channels innermost (contiguous, so LLVM vectorises them), and never pad or copy the input:

- forward: ``out[n, oh, ow, c * M + m] = sum over taps (i, j) of x[...] * kernel[i, j, c * M + m]``, taps
  added in row-major order to a zeroed row (as the NumPy code's ``out += tap * w``), then the bias; padded
  cells are skipped (NumPy adds ``0 * w``: the same values, signed zeros aside);
- input gradient: each tap's ``grad_out * kernel`` added into the input cells it came from, tap by tap in
  row-major order (the NumPy code's order: the same bits for a depth multiplier of 1);
- kernel and bias gradients: one partial sum per fixed batch chunk (:data:`CHUNKS`), added in order, so the
  result does not depend on the thread count (BLAS sums the NumPy code's, so they agree to rounding).

Most depthwise layers have stride 1 along the width and one filter per channel (MobileNet's blocks, the
zoo's depthwise-separable model). Then one window tap's contributions to an output row are one contiguous
span of the flattened (OW * C) row, and of the input row it reads: the ``*_rows`` kernels run each tap as one
long loop over that span (hundreds of elements; the kernel row tiled OW times beside it) instead of OW loops
of C elements each (32: one vector iteration plus its set-up), in the same order of additions, so the
forward and input gradient keep the same bits. Their kernel gradient keeps one partial sum per output column
(a (KH, KW, OW * C) tile per batch chunk) and adds the columns in order at the chunk's end: a fixed order,
not the per-column kernels' one (the two agree to rounding; neither depends on the thread count).
(128, 15x15, 32), 3x3 'same', 1 thread, AMD EPYC: forward 1.32 -> 1.04 ms, kernel gradient 1.59 -> 1.02,
input gradient 1.46 -> 1.22.
A 3x3 kernel runs its forward and kernel gradient, and at stride 1 its input gradient, with the nine taps in one
loop over the row, four output rows at a time where it can (:mod:`convlens.ops.depthwise_taps_jit`); at a width
stride above 1, its forward and kernel gradient pixel by pixel with the nine taps in one loop over the channels
(:mod:`convlens.ops.depthwise_pixels_jit`).

Kernels are serial (cheap to compile) and release the GIL; :func:`convlens.ops.parallel.parallel_ranges`
splits the batch over threads. No fastmath (no fused multiply-adds: the NumPy code's rounding).

Shapes:
    x, grad_x: (N, H, W, C); kernel: (KH, KW, C * M) (the layer's (KH, KW, 1, C * M) flattened);
    out, grad_out: (N, OH, OW, C * M); OH from :class:`convlens.geometry.WindowGeometry`
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.depthwise_pixels_jit import pixels3x3_forward, pixels3x3_kernel_grad
from convlens.ops.depthwise_taps_jit import taps3x3_kernel, taps3x3_kernel_grad, taps3x3_layout
from convlens.ops.jit import compiled_kernels
from convlens.ops.parallel import forward_over_batch, kernel_grad_over_chunks, parallel_ranges

__all__ = ["CHUNKS", "by_rows", "depthwise_forward_jit", "depthwise_input_grad_jit", "depthwise_kernel_grad_jit"]

#: Batch pieces of the kernel-gradient sums (a constant: the same order on every machine).
CHUNKS = 8


def _forward_kernel(
    x: Any, kernel: Any, bias: Any, out: Any, lo: int, hi: int, sh: int, sw: int, dh: int, dw: int, pt: int, pl: int
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = x.shape
    _, out_h, out_w, filters = out.shape
    kh, kw, _ = kernel.shape
    mult = filters // channels
    zero = out.dtype.type(0)
    for n in range(lo, hi):
        for oh in range(out_h):
            for ow in range(out_w):
                for f in range(filters):
                    out[n, oh, ow, f] = zero
            for i in range(kh):
                r = oh * sh - pt + i * dh
                if r < 0 or r >= height:
                    continue
                for j in range(kw):
                    for ow in range(out_w):
                        col = ow * sw - pl + j * dw
                        if col < 0 or col >= width:
                            continue
                        if mult == 1:
                            for c in range(channels):
                                out[n, oh, ow, c] += x[n, r, col, c] * kernel[i, j, c]
                        else:
                            for c in range(channels):
                                v = x[n, r, col, c]
                                for m in range(mult):
                                    out[n, oh, ow, c * mult + m] += v * kernel[i, j, c * mult + m]
            for ow in range(out_w):
                for f in range(filters):
                    out[n, oh, ow, f] += bias[f]


def _kernel_grad_kernel(
    x: Any,
    g: Any,
    parts: Any,
    bias_parts: Any,
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
    _, height, width, channels = x.shape
    _, out_h, out_w, filters = g.shape
    _, kh, kw, _ = parts.shape
    mult = filters // channels
    for t in range(t0, t1):
        part = parts[t]
        bias_part = bias_parts[t]
        part[:] = 0
        bias_part[:] = 0
        for n in range(bounds[t], bounds[t + 1]):
            for oh in range(out_h):
                for ow in range(out_w):
                    for f in range(filters):
                        bias_part[f] += g[n, oh, ow, f]
                for i in range(kh):
                    r = oh * sh - pt + i * dh
                    if r < 0 or r >= height:
                        continue
                    for j in range(kw):
                        for ow in range(out_w):
                            col = ow * sw - pl + j * dw
                            if col < 0 or col >= width:
                                continue
                            if mult == 1:
                                for c in range(channels):
                                    part[i, j, c] += x[n, r, col, c] * g[n, oh, ow, c]
                            else:
                                for c in range(channels):
                                    v = x[n, r, col, c]
                                    for m in range(mult):
                                        part[i, j, c * mult + m] += v * g[n, oh, ow, c * mult + m]


def _input_grad_kernel(
    g: Any, kernel: Any, grad_x: Any, lo: int, hi: int, sh: int, sw: int, dh: int, dw: int, pt: int, pl: int
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = grad_x.shape
    _, out_h, out_w, filters = g.shape
    kh, kw, _ = kernel.shape
    mult = filters // channels
    zero = grad_x.dtype.type(0)
    for n in range(lo, hi):
        grad_x[n] = zero
        for i in range(kh):
            for j in range(kw):
                for oh in range(out_h):
                    r = oh * sh - pt + i * dh
                    if r < 0 or r >= height:
                        continue
                    for ow in range(out_w):
                        col = ow * sw - pl + j * dw
                        if col < 0 or col >= width:
                            continue
                        if mult == 1:
                            for c in range(channels):
                                grad_x[n, r, col, c] += g[n, oh, ow, c] * kernel[i, j, c]
                        else:
                            for c in range(channels):
                                total = zero
                                for m in range(mult):
                                    total += g[n, oh, ow, c * mult + m] * kernel[i, j, c * mult + m]
                                grad_x[n, r, col, c] += total


def _forward_rows_kernel(
    x: Any, ktile: Any, btile: Any, out: Any, lo: int, hi: int, sh: int, dh: int, dw: int, pt: int, pl: int
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = x.shape
    _, out_h, out_w, _ = out.shape
    kh, kw, row = ktile.shape  # row = OW * C: the kernel tap's (C,) weights repeated OW times
    xf = x.reshape(-1)
    of = out.reshape(-1)
    zero = out.dtype.type(0)
    for n in range(lo, hi):
        for oh in range(out_h):
            o0 = (n * out_h + oh) * row
            orow = of[o0 : o0 + row]
            for e in range(row):
                orow[e] = zero
            for i in range(kh):
                r = oh * sh - pt + i * dh
                if r < 0 or r >= height:
                    continue
                x0 = (n * height + r) * width * channels
                for j in range(kw):
                    shift = j * dw - pl  # output column ow reads input column ow + shift
                    a, b = max(0, -shift), min(out_w, width - shift)
                    if a >= b:
                        continue
                    o = orow[a * channels : b * channels]  # (slices, not offsets: no wrap-around checks,
                    xv = xf[x0 + (a + shift) * channels : x0 + (b + shift) * channels]  # so LLVM vectorises)
                    kv = ktile[i, j, a * channels : b * channels]
                    for e in range(o.shape[0]):
                        o[e] += xv[e] * kv[e]
            for e in range(row):
                orow[e] += btile[e]


def _kernel_grad_rows_kernel(
    x: Any,
    g: Any,
    parts: Any,
    bias_parts: Any,
    bounds: Any,
    t0: int,
    t1: int,
    sh: int,
    dh: int,
    dw: int,
    pt: int,
    pl: int,
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = x.shape
    _, out_h, out_w, _ = g.shape
    _, kh, kw, _ = parts.shape
    row = out_w * channels
    xf = x.reshape(-1)
    gf = g.reshape(-1)
    for t in range(t0, t1):
        tile = np.zeros((kh, kw, row), x.dtype)  # one partial sum per (tap, output column, channel)
        bias_tile = np.zeros(row, x.dtype)
        for n in range(bounds[t], bounds[t + 1]):
            for oh in range(out_h):
                g0 = (n * out_h + oh) * row
                grow = gf[g0 : g0 + row]
                for e in range(row):
                    bias_tile[e] += grow[e]
                for i in range(kh):
                    r = oh * sh - pt + i * dh
                    if r < 0 or r >= height:
                        continue
                    x0 = (n * height + r) * width * channels
                    for j in range(kw):
                        shift = j * dw - pl
                        a, b = max(0, -shift), min(out_w, width - shift)
                        if a >= b:
                            continue
                        tv = tile[i, j, a * channels : b * channels]
                        xv = xf[x0 + (a + shift) * channels : x0 + (b + shift) * channels]
                        gv = grow[a * channels : b * channels]
                        for e in range(tv.shape[0]):
                            tv[e] += xv[e] * gv[e]
        part = parts[t]
        bias_part = bias_parts[t]
        part[:] = 0
        bias_part[:] = 0
        for ow in range(out_w):  # the columns' partial sums, added in column order
            for i in range(kh):
                for j in range(kw):
                    for c in range(channels):
                        part[i, j, c] += tile[i, j, ow * channels + c]
            for c in range(channels):
                bias_part[c] += bias_tile[ow * channels + c]


def _input_grad_rows_kernel(
    g: Any, ktile: Any, grad_x: Any, lo: int, hi: int, sh: int, dh: int, dw: int, pt: int, pl: int
) -> None:  # pragma: no cover - compiled by Numba
    _, height, width, channels = grad_x.shape
    _, out_h, out_w, _ = g.shape
    kh, kw, row = ktile.shape
    gf = g.reshape(-1)
    xf = grad_x.reshape(-1)
    zero = grad_x.dtype.type(0)
    for n in range(lo, hi):
        grad_x[n] = zero
        for i in range(kh):
            for j in range(kw):
                shift = j * dw - pl
                a, b = max(0, -shift), min(out_w, width - shift)
                if a >= b:
                    continue
                kv = ktile[i, j, a * channels : b * channels]
                for oh in range(out_h):
                    r = oh * sh - pt + i * dh
                    if r < 0 or r >= height:
                        continue
                    x0 = (n * height + r) * width * channels
                    g0 = (n * out_h + oh) * row
                    xv = xf[x0 + (a + shift) * channels : x0 + (b + shift) * channels]
                    gv = gf[g0 + a * channels : g0 + b * channels]
                    for e in range(xv.shape[0]):
                        xv[e] += gv[e] * kv[e]


def _kernels() -> tuple[Any, ...]:
    """The compiled (forward, kernel gradient, input gradient) kernels, per column then per row span;
    imports Numba on the first call."""
    kernels = (
        _forward_kernel,
        _kernel_grad_kernel,
        _input_grad_kernel,
        _forward_rows_kernel,
        _kernel_grad_rows_kernel,
        _input_grad_rows_kernel,
    )
    return compiled_kernels(globals(), kernels)


def _layout(geometry: WindowGeometry) -> tuple[int, int, int, int, int, int]:
    (sh, sw), (dh, dw) = geometry.strides, geometry.dilation_rate
    (pt, _), (pl, _) = geometry.pads
    return sh, sw, dh, dw, pt, pl


def by_rows(geometry: WindowGeometry, channels: int, filters: int) -> bool:
    """Whether the row-span kernels run: stride 1 along the width and one filter per channel."""
    return geometry.strides[1] == 1 and filters == channels


def _rows_layout(geometry: WindowGeometry) -> tuple[int, int, int, int, int]:
    sh, _, dh, dw, pt, pl = _layout(geometry)
    return sh, dh, dw, pt, pl


def _tiled(values: np.ndarray, out_w: int) -> np.ndarray:
    """(..., C) -> (..., OW * C): the last axis repeated ``out_w`` times, contiguous."""
    return np.ascontiguousarray(np.tile(values, (1,) * (values.ndim - 1) + (out_w,)))


#: The input gradient of a 3x3 kernel runs as :mod:`convlens.ops.depthwise_taps_jit`'s kernel over grad_out in a
#: zero-bordered copy, computing every input cell from nine taps, when the input has at most this many times the
#: output's cells (more for small 'valid' images: 7x7 -> 5x5 has 1.96x, where the tap-by-tap passes are faster).
TAPS3X3_INPUT_GRAD_MAX_CELLS = 1.5


def nine_taps_by_rows(geometry: WindowGeometry, channels: int, filters: int) -> bool:
    """Whether the forward and kernel gradient run with the nine taps in one loop over the row
    (:mod:`convlens.ops.depthwise_taps_jit`): a 3x3 kernel with the row-span layout."""
    return by_rows(geometry, channels, filters) and geometry.kernel_size == (3, 3)


def nine_taps_by_pixel(geometry: WindowGeometry, channels: int, filters: int) -> bool:
    """Whether the forward and kernel gradient run output pixel by pixel with the nine taps in one loop
    (:mod:`convlens.ops.depthwise_pixels_jit`): a 3x3 kernel, one filter per channel, a width stride above 1."""
    return filters == channels and geometry.kernel_size == (3, 3) and geometry.strides[1] > 1


def nine_taps_input_grad(geometry: WindowGeometry, x_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> bool:
    """Whether the input gradient runs its nine taps in one loop: a 3x3 kernel, stride 1, pads within the
    dilated kernel's reach (the full convolution's), and the input at most
    :data:`TAPS3X3_INPUT_GRAD_MAX_CELLS` times the output's cells."""
    (dh, dw), pads = geometry.dilation_rate, geometry.pads
    return (
        by_rows(geometry, x_shape[3], out_shape[3])
        and geometry.kernel_size == (3, 3)
        and geometry.strides == (1, 1)
        and all(p <= 2 * d for pair, d in zip(pads, (dh, dw), strict=True) for p in pair)
        and x_shape[1] * x_shape[2] <= TAPS3X3_INPUT_GRAD_MAX_CELLS * out_shape[1] * out_shape[2]
    )


def depthwise_forward_jit(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, geometry: WindowGeometry, out_shape: tuple[int, ...]
) -> np.ndarray:
    """A fresh (N, OH, OW, C * M) output: the depthwise convolution of ``x`` with ``kernel``, plus ``bias``.

    Shapes:
        x: (N, H, W, C) C-contiguous; kernel: (KH, KW, C * M) C-contiguous of x's dtype; bias: (C * M,) or None
    """
    if nine_taps_by_pixel(geometry, x.shape[3], out_shape[3]):
        return pixels3x3_forward(x, kernel, bias, geometry, out_shape)
    if not by_rows(geometry, x.shape[3], out_shape[3]):
        return forward_over_batch(_kernels()[0], x, kernel, bias, out_shape, _layout(geometry))  # type: ignore[no-any-return]
    out_w = out_shape[2]
    b = np.zeros(out_shape[3], x.dtype) if bias is None else np.asarray(bias, x.dtype)
    if nine_taps_by_rows(geometry, x.shape[3], out_shape[3]):
        (pt, _), (pl, _) = geometry.pads
        taps = (*taps3x3_layout(geometry, x.shape[3], flipped=False), pt, pl, geometry.is_padded)
        tiled = _tiled(kernel, out_w).reshape(9, -1)
        return forward_over_batch(taps3x3_kernel(), x, tiled, _tiled(b, out_w), out_shape, taps)  # type: ignore[no-any-return]
    return forward_over_batch(  # type: ignore[no-any-return]
        _kernels()[3], x, _tiled(kernel, out_w), _tiled(b, out_w), out_shape, _rows_layout(geometry)
    )


def depthwise_kernel_grad_jit(
    x: np.ndarray, grad_out: np.ndarray, geometry: WindowGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_kernel (KH, KW, C * M), grad_bias (C * M,))`` from ``grad_out`` (N, OH, OW, C * M).

    Shapes:
        x: (N, H, W, C) and grad_out C-contiguous of one dtype.
    """
    (kh, kw), filters = geometry.kernel_size, grad_out.shape[3]
    if nine_taps_by_rows(geometry, x.shape[3], filters):
        return taps3x3_kernel_grad(x, grad_out, geometry, CHUNKS)
    if nine_taps_by_pixel(geometry, x.shape[3], filters):
        return pixels3x3_kernel_grad(x, grad_out, geometry, CHUNKS)
    tail: tuple[int, ...]
    if by_rows(geometry, x.shape[3], filters):
        kernel, tail = _kernels()[4], _rows_layout(geometry)
    else:
        kernel, tail = _kernels()[1], _layout(geometry)
    return kernel_grad_over_chunks(kernel, x, grad_out, (kh, kw, filters), CHUNKS, tail)


def depthwise_input_grad_jit(
    grad_out: np.ndarray, kernel: np.ndarray, geometry: WindowGeometry, x_shape: tuple[int, ...]
) -> np.ndarray:
    """A fresh gradient (N, H, W, C) of the depthwise convolution's input.

    Shapes:
        grad_out: (N, OH, OW, C * M) and kernel (KH, KW, C * M) C-contiguous of one dtype.
    """
    if nine_taps_input_grad(geometry, x_shape, grad_out.shape):  # (grad_out padded for the full convolution)
        (dh, dw), ((pt, _), (pl, _)) = geometry.dilation_rate, geometry.pads
        taps = (*taps3x3_layout(geometry, x_shape[3], flipped=True), 2 * dh - pt, 2 * dw - pl, True)
        tiled = _tiled(kernel, x_shape[2]).reshape(9, -1)
        zeros = np.zeros(x_shape[2] * x_shape[3], grad_out.dtype)
        return forward_over_batch(taps3x3_kernel(), grad_out, tiled, zeros, x_shape, taps)  # type: ignore[no-any-return]
    grad_x = np.empty(x_shape, grad_out.dtype)
    layout: tuple[int, ...]
    if by_rows(geometry, x_shape[3], grad_out.shape[3]):
        input_grad, weights, layout = _kernels()[5], _tiled(kernel, grad_out.shape[2]), _rows_layout(geometry)
    else:
        input_grad, weights, layout = _kernels()[2], kernel, _layout(geometry)
    parallel_ranges(
        lambda lo, hi: input_grad(grad_out, weights, grad_x, lo, hi, *layout),
        x_shape[0],
        grad_out.nbytes + grad_x.nbytes,
    )
    return grad_x
