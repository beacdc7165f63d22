"""Compiled (Numba) element-wise passes of the fused conv + max-pool stage's GEMM path.

After one GEMM per pooling offset (slab), the NumPy code of :class:`convlens.ops.fused.ConvMaxPoolPlan`
makes about a dozen passes over (rows, F) arrays: per slab a comparison, a mask multiply and two
maxima, then the bias and the ReLU; and in the backward pass a ReLU mask and one compare + multiply
per slab. These kernels do each direction in one pass. They repeat the NumPy operations element by
element, so the results are identical bit for bit:

- ``np.maximum(a, b)`` is ``a`` when ``a > b`` or ``a`` is NaN, otherwise ``b`` (NaN propagates; of
  two equal values, including 0.0 and -0.0, the second is returned);
- the winner is the last slab that was strictly greater than the running max (the first maximum
  in row-major window order);
- gradients are multiplied by 1.0 or 0.0 masks, as NumPy multiplies by boolean arrays.

Both are serial kernels over blocks of rows that :func:`convlens.ops.jit.run_noalias` splits over
the threads, with their arrays marked noalias (see :func:`convlens.ops.jit._noalias_compiler`).

Shapes:
    slabs: (S, R, F) conv outputs before the bias, S = PH * PW pooling offsets, R = N * QH * QW
    pooled, winner, g, routed[s]: (R, F); bias: (F,)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.ops.jit import compiled_for, compiled_kernels, jit_enabled, run_noalias

__all__ = ["kernels", "pool_slabs_jit", "route_gradient_jit"]

_BLOCK = 256  # rows per block (the threads get ranges of blocks)


def _pool_slabs(
    slabs: Any, bias: Any, has_bias: bool, relu: bool, pooled: Any, winner: Any, training: bool, lo: int, hi: int
) -> None:  # pragma: no cover - compiled by Numba
    n_slabs, rows, filters = slabs.shape
    zero = pooled.dtype.type(0)
    for block in range(lo, hi):  # (blocks of _BLOCK rows)
        # The running winners are int32, the width of a float32 lane: selecting into uint8 lanes kept LLVM from
        # vectorising the loop ((4, 6272, 32) slabs, AMD EPYC, 1 thread: 3.3 -> 0.23 ms). Inference computes
        # them too: its loop without them vectorised worse (0.44 ms).
        w = np.zeros(filters, np.int32)
        for r in range(block * _BLOCK, min(rows, (block + 1) * _BLOCK)):
            # Filters innermost everywhere, so each step is a vector operation over the row.
            for f in range(filters):
                pooled[r, f] = slabs[0, r, f]
            for f in range(filters):
                w[f] = 0
            for s in range(1, n_slabs):
                s32 = np.int32(s)
                for f in range(filters):
                    v = slabs[s, r, f]
                    m = pooled[r, f]
                    w[f] = s32 if v > m else w[f]
                    pooled[r, f] = m if (m > v or m != m) else v  # np.maximum(m, v)
            for f in range(filters):
                m = pooled[r, f]
                if has_bias:
                    m = m + bias[f]
                if relu:
                    m = m if (m > zero or m != m) else zero  # np.maximum(m, 0)
                pooled[r, f] = m
            if training:
                for f in range(filters):
                    winner[r, f] = np.uint8(w[f])


def _route_gradient(
    grad: Any, out: Any, winner: Any, relu: bool, masked: Any, routed: Any, lo: int, hi: int
) -> None:  # pragma: no cover - compiled by Numba
    n_slabs = routed.shape[0]
    rows, filters = grad.shape
    one = grad.dtype.type(1)
    zero = grad.dtype.type(0)
    for block in range(lo, hi):  # (blocks of _BLOCK rows)
        w = np.empty(filters, np.int32)  # (int32 lanes, as in _pool_slabs: (4, 25088, 32) 0.84 -> 0.68 ms)
        for r in range(block * _BLOCK, min(rows, (block + 1) * _BLOCK)):
            for f in range(filters):
                w[f] = np.int32(winner[r, f])
            if relu:
                for f in range(filters):
                    masked[r, f] = grad[r, f] * (one if out[r, f] > zero else zero)
                source = masked
            else:
                source = grad
            for s in range(n_slabs):
                s32 = np.int32(s)
                for f in range(filters):
                    routed[s, r, f] = source[r, f] * (one if w[f] == s32 else zero)


_KERNELS: tuple[Any, ...] | None = None


def kernels() -> tuple[Any, ...] | None:
    """The compiled (pool_slabs, route_gradient) kernels, or None when the JIT is off or Numba is missing."""
    if not jit_enabled():
        return None
    serial = {"noalias": True}  # (see convlens.ops.jit._noalias_compiler)
    return compiled_kernels(globals(), ((_pool_slabs, serial), (_route_gradient, serial)))


def _blocks(rows: int) -> int:
    return (rows + _BLOCK - 1) // _BLOCK


def pool_slabs_jit(
    slabs: np.ndarray, bias: np.ndarray | None, relu: bool, pooled: np.ndarray, winner: np.ndarray | None
) -> bool:
    """Fill ``pooled`` = act(max over slabs + bias) (act = ReLU or identity) and ``winner``; False if no JIT."""
    if pooled.dtype != slabs.dtype or not compiled_for(slabs.dtype):
        return False
    compiled = kernels()
    if compiled is None:
        return False
    has_bias = bias is not None
    bias_arr = np.zeros(slabs.shape[2], slabs.dtype) if bias is None else bias.astype(slabs.dtype, copy=False)
    training = winner is not None
    winner_arr = winner if winner is not None else np.zeros((1, 1), np.uint8)
    args = (slabs, bias_arr, has_bias, relu, pooled, winner_arr, training)
    run_noalias(compiled[0], _blocks(slabs.shape[1]), [pooled, winner_arr], *args)
    return True


def route_gradient_jit(
    grad: np.ndarray, out: np.ndarray, winner: np.ndarray, relu: bool, masked: np.ndarray, routed: np.ndarray
) -> bool:
    """``masked`` = grad * (out > 0) (ReLU only) and ``routed[s]`` = masked * (winner == s); False if no JIT."""
    if routed.dtype != grad.dtype or out.dtype != grad.dtype or not compiled_for(grad.dtype):
        return False
    compiled = kernels()
    if compiled is None:
        return False
    run_noalias(compiled[1], _blocks(grad.shape[0]), [masked, routed], grad, out, winner, relu, masked, routed)
    return True
