"""Compiled (Numba) batch normalisation over (M, C) rows, optionally followed by ReLU, in few passes.

The NumPy batch norm (:mod:`convlens.ops.normalization`) makes about ten passes over the activations per
training step (mean, centring, squares, variance, x_hat, y, then as many backwards) and allocates a fresh
array for most of them. These kernels make two passes forward (statistics; normalise) and two backward
(two channel sums; the input gradient), keep nothing but the forward's input and output, and fold the ReLU
that usually follows into the same passes:

- statistics: per channel, sums of ``x - shift`` and of its square in float64 (``shift`` is the first row, so
  the variance ``(S2 - S1^2 / M) / M`` does not cancel); with a multiple of :data:`STATISTICS_BLOCK` channels
  the sums of 16 channels at a time stay in registers down the rows (a generated kernel, see
  :func:`statistics_source`; LLVM's SLP vectoriser packs them): (21632, 64) 0.38 -> 0.26 ms, (131072, 32) 1.43
  -> 0.95 (AMD EPYC, 1 thread), the same bits;
- normalise: ``y = ((x - mean) * inv_std) * gamma + beta`` element by element in the NumPy code's order
  (so inference, where mean and inv_std come from the moving statistics, gives the NumPy code's bits),
  then ``y`` below zero becomes zero when ``relu`` (NaN stays NaN, as ``np.maximum``);
- backward sums: ``sum(g)`` and ``sum(g * x_hat)`` per channel in float64, with ``g = grad_out * (y > 0)``
  when ``relu`` and ``x_hat`` recomputed from ``x``;
- input gradient: ``((g - sum_g / M) - x_hat * (sum_gx / M)) * inv_std * gamma``, the NumPy code's formula.

Channel sums run over a fixed partition of the rows (:data:`CHUNKS` pieces, added in order), so results do
not depend on the thread count. Kernels are serial (cheap to compile) and release the
GIL; :func:`convlens.ops.parallel.parallel_ranges` splits the rows over threads.

Shapes:
    x, y, grad_out, grad_x: (M, C) C-contiguous; mean, inv_std, gamma, beta: (C,) of x's dtype
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.ops import _batch_norm_statistics_kernel
from convlens.ops.jit import compiled_kernels
from convlens.ops.normalization import inverse_std
from convlens.ops.parallel import chunk_bounds, parallel_ranges

__all__ = [
    "CHUNKS",
    "STATISTICS_BLOCK",
    "bn_backward_jit",
    "bn_grad_input",
    "bn_grad_sums",
    "bn_moments",
    "bn_normalize_jit",
    "bn_normalize_with",
    "bn_statistics_jit",
    "bn_statistics_sums",
    "statistics_source",
]

#: Row pieces of the channel sums (a constant, so the sums' order is the same on every machine).
CHUNKS = 16


#: Channels per register block of the statistics kernel (four 4-wide float64 AVX registers a sum).
STATISTICS_BLOCK = 16

_STATISTICS_HEADER = '''"""The statistics kernel of :mod:`convlens.ops.batch_norm_jit`, by ``statistics_source()``.

Do not edit: regenerate with ``python -c "from convlens.ops.batch_norm_jit import statistics_source;
print(statistics_source(), end='')" > src/convlens/ops/_batch_norm_statistics_kernel.py`` (a test checks it is
current).
"""

from __future__ import annotations

from typing import Any

import numpy as np
'''


def statistics_source(block: int = STATISTICS_BLOCK) -> str:
    """The text of ``_batch_norm_statistics_kernel.py``: ``_statistics``, the per-piece float64 sums of ``x -
    shift`` and of its square. With a multiple of ``block`` channels, ``block`` channels at a time with their
    ``2 * block`` sums in local variables (registers) down the piece's rows; otherwise row by row with the sums
    in memory. Both add each channel's rows in row order: the same bits.

    >>> [line.strip() for line in statistics_source(2).splitlines() if "+= d1" in line]
    ['a1 += d1', 'b1 += d1 * d1']
    """
    lanes = range(block)
    body = " " * 16
    lines = [
        _STATISTICS_HEADER,
        "",
        "def _statistics(",
        "    x: Any, shift: Any, bounds: Any, t0: int, t1: int, s1: Any, s2: Any",
        ") -> None:  # pragma: no cover - compiled by Numba",
        "    # x: (M, C); shift: (C,) float64; bounds: (K + 1,) row bounds of the pieces; s1, s2: (K, C) float64",
        "    channels = x.shape[1]",
        "    for t in range(t0, t1):",
        "        lo = bounds[t]",
        "        hi = bounds[t + 1]",
        f"        if channels % {block} == 0:",
        f"            for c0 in range(0, channels, {block}):",
        f"                h = shift[c0 : c0 + {block}]",
        *[f"{body}h{c} = h[{c}]" for c in lanes],
        *[f"{body}a{c} = 0.0" for c in lanes],
        *[f"{body}b{c} = 0.0" for c in lanes],
        body + "for r in range(lo, hi):",
        body + f"    row = x[r, c0 : c0 + {block}]",
        *[f"{body}    d{c} = np.float64(row[{c}]) - h{c}" for c in lanes],
        *[f"{body}    a{c} += d{c}" for c in lanes],
        *[f"{body}    b{c} += d{c} * d{c}" for c in lanes],
        body + f"a = s1[t, c0 : c0 + {block}]",
        body + f"b = s2[t, c0 : c0 + {block}]",
        *[f"{body}a[{c}] = a{c}" for c in lanes],
        *[f"{body}b[{c}] = b{c}" for c in lanes],
        "        else:",
        "            a = s1[t]",
        "            b = s2[t]",
        "            a[:] = 0.0",
        "            b[:] = 0.0",
        "            for r in range(lo, hi):",
        "                for c in range(channels):",
        "                    d = np.float64(x[r, c]) - shift[c]",
        "                    a[c] += d",
        "                    b[c] += d * d",
    ]
    return "\n".join(lines) + "\n"


def _normalize_kernel(
    x: Any, y: Any, lo: int, hi: int, mean: Any, inv_std: Any, gamma: Any, beta: Any, relu: bool
) -> None:  # pragma: no cover - compiled by Numba
    channels = x.shape[1]
    zero = y.dtype.type(0)
    for r in range(lo, hi):
        for c in range(channels):
            v = ((x[r, c] - mean[c]) * inv_std[c]) * gamma[c] + beta[c]
            if relu and v < zero:
                v = zero
            y[r, c] = v


def _grad_sums_kernel(
    g: Any, x: Any, y: Any, mean: Any, inv_std: Any, relu: bool, bounds: Any, t0: int, t1: int, sg: Any, sgx: Any
) -> None:  # pragma: no cover - compiled by Numba
    channels = x.shape[1]
    zero = g.dtype.type(0)
    for t in range(t0, t1):
        a = sg[t]
        b = sgx[t]
        a[:] = 0.0
        b[:] = 0.0
        for r in range(bounds[t], bounds[t + 1]):
            for c in range(channels):
                gv = g[r, c]
                if relu and not y[r, c] > zero:
                    gv = gv * zero  # as grad_out * (y > 0): -0.0 and NaN as NumPy
                a[c] += gv
                b[c] += np.float64(gv * ((x[r, c] - mean[c]) * inv_std[c]))


def _grad_x_kernel(
    g: Any,
    x: Any,
    y: Any,
    out: Any,
    lo: int,
    hi: int,
    mean: Any,
    inv_std: Any,
    scale: Any,
    mg: Any,
    mgx: Any,
    relu: bool,
) -> None:  # pragma: no cover - compiled by Numba
    channels = x.shape[1]
    zero = g.dtype.type(0)
    for r in range(lo, hi):
        for c in range(channels):
            gv = g[r, c]
            if relu and not y[r, c] > zero:
                gv = gv * zero
            x_hat = (x[r, c] - mean[c]) * inv_std[c]
            out[r, c] = ((gv - mg[c]) - x_hat * mgx[c]) * scale[c]


def _kernels() -> tuple[Any, ...]:
    """The compiled kernels; imports Numba on the first call. No fastmath: the NumPy code's rounding."""
    statistics = (_batch_norm_statistics_kernel._statistics, {"slp": True})
    return compiled_kernels(globals(), (statistics, _normalize_kernel, _grad_sums_kernel, _grad_x_kernel))


def bn_statistics_sums(x: np.ndarray, shift: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
    """Fill ``s1``/``s2`` (K, C) with the float64 sums of ``x - shift`` and of its square over K equal row pieces
    of ``x`` (the pieces of :func:`bn_statistics_jit` when K is :data:`CHUNKS`; a thread with half of an even
    batch fills half of them, see :mod:`convlens.data_parallel`).

    Shapes:
        x: (M, C) C-contiguous; shift: (C,) float64; s1, s2: (K, C) float64 C-contiguous.
    """
    kernel = _kernels()[0]
    pieces = s1.shape[0]
    bounds = chunk_bounds(x.shape[0], pieces)
    parallel_ranges(lambda t0, t1: kernel(x, shift, bounds, t0, t1, s1, s2), pieces, x.nbytes)


def bn_moments(s1: np.ndarray, s2: np.ndarray, shift: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance (float64, (C,)) from the piece sums of :func:`bn_statistics_sums` over ``rows``
    rows in all, the pieces added in order."""
    a, b = s1.sum(axis=0), s2.sum(axis=0)
    mean = shift + a / rows
    var = np.maximum((b - a * a / rows) / rows, 0.0)
    return mean, var


def bn_statistics_jit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel batch mean and biased variance of ``x`` (M, C), computed in float64.

    Shapes:
        x: (M, C) C-contiguous, M >= 1; returns two (C,) float64 arrays.
    """
    channels = x.shape[1]
    shift = x[0].astype(np.float64)
    s1 = np.empty((CHUNKS, channels), np.float64)
    s2 = np.empty((CHUNKS, channels), np.float64)
    bn_statistics_sums(x, shift, s1, s2)
    return bn_moments(s1, s2, shift, x.shape[0])


def bn_normalize_jit(
    x: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    relu: bool,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``((x - mean) * inv_std) * gamma + beta`` (then ReLU when ``relu``) into ``out`` or a fresh array.

    Shapes:
        x, out: (M, C) C-contiguous; mean, inv_std, gamma, beta: (C,) of x's dtype.
    """
    kernel = _kernels()[1]
    y = np.empty_like(x) if out is None else out
    parallel_ranges(lambda lo, hi: kernel(x, y, lo, hi, mean, inv_std, gamma, beta, relu), x.shape[0], 2 * x.nbytes)
    return y


def bn_grad_sums(
    grad_out: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    relu: bool,
    sg: np.ndarray,
    sgx: np.ndarray,
) -> None:
    """Fill ``sg``/``sgx`` (K, C) with the float64 sums of ``g`` and ``g * x_hat`` over K equal row pieces
    (``g = grad_out * (y > 0)`` when ``relu``), as :func:`bn_statistics_sums`.

    Shapes:
        grad_out, x, y: (M, C) C-contiguous; mean, inv_std: (C,) of x's dtype; sg, sgx: (K, C) float64.
    """
    sums = _kernels()[2]
    pieces = sg.shape[0]
    bounds = chunk_bounds(x.shape[0], pieces)
    parallel_ranges(
        lambda t0, t1: sums(grad_out, x, y, mean, inv_std, relu, bounds, t0, t1, sg, sgx), pieces, 3 * x.nbytes
    )


def bn_grad_input(
    grad_out: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    gamma: np.ndarray,
    relu: bool,
    sg: np.ndarray,
    sgx: np.ndarray,
    rows: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(grad_x, grad_gamma, grad_beta)`` from the piece sums of :func:`bn_grad_sums` over ``rows`` rows in all
    (``grad_out``, ``x``, ``y`` may be a part of them: ``grad_x`` is that part's).

    Shapes:
        grad_out, x, y, grad_x: (m, C) C-contiguous; mean, inv_std, gamma: (C,); sg, sgx: (K, C) float64.
    """
    grad_x_kernel = _kernels()[3]
    dtype = x.dtype
    grad_beta = sg.sum(axis=0).astype(dtype)
    grad_gamma = sgx.sum(axis=0).astype(dtype)
    scale = inv_std * gamma
    mg, mgx = grad_beta / rows, grad_gamma / rows
    grad_x = np.empty_like(x)
    parallel_ranges(
        lambda lo, hi: grad_x_kernel(grad_out, x, y, grad_x, lo, hi, mean, inv_std, scale, mg, mgx, relu),
        x.shape[0],
        4 * x.nbytes,
    )
    return grad_x, grad_gamma, grad_beta


def bn_normalize_with(
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    epsilon: float,
    relu: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(y, mean, inv_std, gamma)``: :func:`bn_normalize_jit` with the statistics ``mean``/``var`` (a missing
    gamma is ones, a missing beta zeros), and what the backward needs of them, in x's dtype.

    Shapes:
        x, y: (M, C) C-contiguous; mean, var, gamma, beta, inv_std: (C,).
    """
    dtype, channels = x.dtype, x.shape[1]
    inv_std = inverse_std(var, epsilon, dtype)
    g = np.ones(channels, dtype) if gamma is None else np.ascontiguousarray(gamma, dtype)
    b = np.zeros(channels, dtype) if beta is None else np.ascontiguousarray(beta, dtype)
    mean = np.ascontiguousarray(mean)
    return bn_normalize_jit(x, mean, inv_std, g, b, relu), mean, inv_std, g


def bn_backward_jit(
    grad_out: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    inv_std: np.ndarray,
    gamma: np.ndarray,
    relu: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(grad_x, grad_gamma, grad_beta)`` of a training-mode batch norm (+ ReLU when ``relu``).

    Shapes:
        grad_out, x, y: (M, C) C-contiguous of one dtype; mean, inv_std, gamma: (C,) of that dtype;
        grad_x: (M, C); grad_gamma, grad_beta: (C,).
    """
    channels = x.shape[1]
    sg = np.empty((CHUNKS, channels), np.float64)
    sgx = np.empty((CHUNKS, channels), np.float64)
    bn_grad_sums(grad_out, x, y, mean, inv_std, relu, sg, sgx)
    return bn_grad_input(grad_out, x, y, mean, inv_std, gamma, relu, sg, sgx, x.shape[0])
