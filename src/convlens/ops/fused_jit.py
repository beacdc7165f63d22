"""Compiled (Numba) direct convolution for :class:`convlens.ops.fused.ConvMaxPoolPlan`.

With few input channels the fused stage's GEMMs are far too thin for BLAS (the course model's depth
is ``KH * KW * C = 9``) and building the im2col matrix costs more than the arithmetic. These kernels
convolve directly from the padded input, the filters axis innermost (contiguous kernel rows, so LLVM
vectorises it), and never materialise the im2col matrix:

- forward: for each pooled cell, the conv values (before the bias) of every offset ``s = a * PW + b``
  inside its pooling window are summed into a small per-filter buffer and folded into the running
  max, with the NumPy path's rules: the max propagates NaN like ``np.maximum`` and the winner is the
  first maximal offset in row-major order (a later offset takes over only when strictly greater);
- backward: the pooled gradient ``g`` is routed to the winning offset (``g * 0`` elsewhere, as the
  NumPy path multiplies by the mask) and gives the kernel gradient (one partial sum per batch chunk,
  added afterwards, so the result does not depend on thread scheduling) and, when asked, the
  gradient of the padded input (race-free: each batch item belongs to one chunk).

The conv sums run in a different order from BLAS's, so values agree with the NumPy path to rounding
(exactly for integer-valued data, which is how the tests pin the winner maps). The kernels are plain
Python, compiled on first use as serial kernels over a range of pooled rows or batch chunks that
:func:`convlens.ops.jit.run_noalias` splits over the threads, with their arrays marked noalias
(LLVM vectorises them as it did the ``parallel=True`` kernels before, which took 3x longer to compile; see
:func:`convlens.ops.jit._noalias_compiler`), ``cache=True`` and ``nogil=True``.

Shapes:
    padded: (N, H + PT + PB, W + PL + PR, C); kernel, grad_kernel: (KH, KW, C, F)
    window_max, winner, g: (N, QH, QW, F), QH = OH // PH, QW = OW // PW, OH from the conv geometry
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.jit import compiled_kernels, run_noalias

__all__ = ["JIT_DTYPES", "conv_max_pool_backward_jit", "conv_max_pool_forward_jit"]

JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Batch chunks for the kernel-gradient partial sums: a fixed count (not the thread count) keeps the
# summation order, hence the bits, the same on every machine.
_CHUNKS = 8


def _forward_kernel(
    padded: Any,
    kernel: Any,
    window_max: Any,
    winner: Any,
    ph: int,
    pw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    keep: bool,
    lo: int,
    hi: int,
) -> None:  # pragma: no cover - compiled by Numba
    kh, kw, channels, filters = kernel.shape
    _, qh, qw, _ = window_max.shape
    width = qw * pw  # conv columns that some pooling window reads
    # One conv row at a time, tap by tap: each inner loop is one kernel row (all filters) times
    # one input value, added into a row buffer that stays in L1.
    conv = np.empty((width, filters), window_max.dtype)
    # The winners in int32 lanes, selected (a conditional uint8 store stays scalar), stored at the end.
    best = np.empty((qw if keep else 0, filters), np.int32)
    for job in range(lo, hi):  # (pooled rows: job = n * QH + qy)
        n = job // qh
        qy = job - n * qh
        best[:] = 0
        for a in range(ph):
            r0 = (qy * ph + a) * sh
            conv[:] = 0
            for i in range(kh):
                r = r0 + i * dh
                for j in range(kw):
                    for c in range(channels):
                        for ox in range(width):
                            v = padded[n, r, ox * sw + j * dw, c]
                            for f in range(filters):
                                conv[ox, f] += v * kernel[i, j, c, f]
            for qx in range(qw):
                for b in range(pw):
                    s = a * pw + b
                    s32 = np.int32(s)
                    ox = qx * pw + b
                    if s == 0:
                        for f in range(filters):
                            window_max[n, qy, qx, f] = conv[ox, f]
                        continue
                    if keep:
                        for f in range(filters):
                            best[qx, f] = s32 if conv[ox, f] > window_max[n, qy, qx, f] else best[qx, f]
                    for f in range(filters):
                        m = window_max[n, qy, qx, f]
                        value = conv[ox, f]
                        # np.maximum: NaN wins from either side.
                        window_max[n, qy, qx, f] = m if (m > value or m != m) else value
        if keep:
            for qx in range(qw):
                for f in range(filters):
                    winner[n, qy, qx, f] = best[qx, f]


def _backward_kernel(
    padded: Any,
    kernel: Any,
    g: Any,
    winner: Any,
    parts: Any,
    grad_padded: Any,
    ph: int,
    pw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    want_x: bool,
    t0: int,
    t1: int,
) -> None:  # pragma: no cover - compiled by Numba
    kh, kw, channels, filters = kernel.shape
    batch, qh, qw, _ = g.shape
    chunks = parts.shape[0]
    width = qw * pw
    zero = g.dtype.type(0)
    for t in range(t0, t1):  # (batch chunks)
        part = parts[t]
        part[:] = zero
        routed = np.empty((width, filters), g.dtype)
        won = np.empty((qw, filters), np.int32)  # (the winners in int32 lanes: see the forward)
        for n in range(t * batch // chunks, (t + 1) * batch // chunks):
            if want_x:
                grad_padded[n] = zero
            for qy in range(qh):
                for qx in range(qw):
                    for f in range(filters):
                        won[qx, f] = np.int32(winner[n, qy, qx, f])
                for a in range(ph):
                    # The conv row's gradient: g at each window's winner, g * 0 elsewhere.
                    for qx in range(qw):
                        for b in range(pw):
                            s32 = np.int32(a * pw + b)
                            ox = qx * pw + b
                            for f in range(filters):
                                value = g[n, qy, qx, f]
                                routed[ox, f] = value if won[qx, f] == s32 else value * zero
                    r0 = (qy * ph + a) * sh
                    for i in range(kh):
                        r = r0 + i * dh
                        for j in range(kw):
                            for c in range(channels):
                                for ox in range(width):
                                    v = padded[n, r, ox * sw + j * dw, c]
                                    for f in range(filters):
                                        part[i, j, c, f] += v * routed[ox, f]
                                if want_x:
                                    for ox in range(width):
                                        total = zero
                                        for f in range(filters):
                                            total += routed[ox, f] * kernel[i, j, c, f]
                                        grad_padded[n, r, ox * sw + j * dw, c] += total


_KERNELS: tuple[Any, ...] | None = None


def _kernels() -> tuple[Any, ...]:
    """The compiled (forward, backward) kernels; imports Numba on the first call."""
    # 'contract' allows fused multiply-adds (one rounding fewer than BLAS may do: the same tolerance).
    # 'reassoc' lets LLVM vectorise the grad_x dot products over the filters (a reduction);
    # no flag that changes NaN/inf handling.
    serial = {"noalias": True}
    return compiled_kernels(
        globals(),
        (
            (_forward_kernel, {**serial, "fastmath": {"contract"}}),
            (_backward_kernel, {**serial, "fastmath": {"reassoc", "contract"}}),
        ),
    )


def _layout(geometry: WindowGeometry, pool_size: tuple[int, int]) -> tuple[int, int, int, int, int, int]:
    (sh, sw), (dh, dw) = geometry.strides, geometry.dilation_rate
    return pool_size[0], pool_size[1], sh, sw, dh, dw


def conv_max_pool_forward_jit(
    padded: np.ndarray,
    kernel: np.ndarray,
    geometry: WindowGeometry,
    pool_size: tuple[int, int],
    window_max: np.ndarray,
    winner: np.ndarray | None,
) -> None:
    """Write each pooling window's max conv value (no bias) into ``window_max``, its winner into ``winner``.

    ``padded`` and ``kernel`` are float32/float64 of one dtype; ``window_max`` is C-contiguous of that
    dtype; ``winner`` (C-contiguous, unsigned integers) receives the offset ``a * PW + b`` of the first
    maximum, or is None (inference).

    Shapes:
        padded: (N, H + PT + PB, W + PL + PR, C); kernel: (KH, KW, C, F)
        window_max, winner: (N, QH, QW, F), QH = OH // PH, QW = OW // PW
    """
    forward, _ = _kernels()
    padded = np.ascontiguousarray(padded)
    kernel = np.ascontiguousarray(kernel, padded.dtype)
    keep = winner is not None
    index = winner if winner is not None else np.empty((0, 0, 0, 0), np.uint8)
    rows = window_max.shape[0] * window_max.shape[1]
    args = (padded, kernel, window_max, index, *_layout(geometry, pool_size), keep)
    run_noalias(forward, rows, [window_max, index], *args)


def conv_max_pool_backward_jit(
    padded: np.ndarray,
    kernel: np.ndarray,
    g: np.ndarray,
    winner: np.ndarray,
    geometry: WindowGeometry,
    pool_size: tuple[int, int],
    *,
    compute_grad_x: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(grad_kernel, grad_padded)`` from ``g`` = dL/d(pooled pre-activation) and the winner map.

    ``grad_padded`` is the gradient of the padded input (crop it to get ``grad_x``), or None when
    not ``compute_grad_x``. Both are fresh arrays of ``padded``'s dtype.

    Shapes:
        padded, grad_padded: (N, H + PT + PB, W + PL + PR, C); kernel, grad_kernel: (KH, KW, C, F)
        g, winner: (N, QH, QW, F)
    """
    _, backward = _kernels()
    dtype = padded.dtype
    padded = np.ascontiguousarray(padded)
    kernel = np.ascontiguousarray(kernel, dtype)
    g = np.ascontiguousarray(g, dtype)
    winner = np.ascontiguousarray(winner)
    chunks = max(1, min(_CHUNKS, padded.shape[0]))
    parts = np.empty((chunks, *kernel.shape), dtype)
    grad_padded = np.empty(padded.shape if compute_grad_x else (0, 0, 0, 0), dtype)
    args = (padded, kernel, g, winner, parts, grad_padded, *_layout(geometry, pool_size), compute_grad_x)
    run_noalias(backward, chunks, [parts, grad_padded], *args)
    grad_kernel = parts[0].copy() if chunks == 1 else parts.sum(axis=0)
    return grad_kernel, (grad_padded if compute_grad_x else None)
