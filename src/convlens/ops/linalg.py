"""Matrix products shaped for convolution gradients.

``a.T @ b`` with a very tall ``a`` (rows = N*OH*OW, often 100,000+) and narrow ``a``/``b`` (a few to a few
hundred columns) is the kernel gradient of every convolution. OpenBLAS runs that shape poorly (a long
reduction, little parallelism): splitting the rows into chunks and summing per-chunk products, as one
batched ``matmul``, is several times faster here and keeps float32 sums short (more accurate too). The chunks'
products run on the threads (:func:`convlens.ops.parallel.over_blocks`, one BLAS thread each) and are added in
chunk order: (128, 13x13, 32->64) pointwise kernel gradient 0.85-0.99 -> 0.73-0.76 ms, the course layer's
(100352, 10) x (100352, 32) 1.88-1.97 -> 1.37 ms (AMD EPYC, 2 threads; OpenBLAS's own threads split the narrow
product poorly).

>>> import numpy as np
>>> a = np.arange(12.0).reshape(6, 2); b = np.ones((6, 3))
>>> bool(np.allclose(matmul_tn(a, b, chunk_rows=4), a.T @ b))
True
"""

from __future__ import annotations

import numpy as np

from convlens.ops.parallel import over_blocks, parallel_ranges

__all__ = ["GRADS_CHUNK_ROWS", "add_row", "gemm_grads", "matmul_nn_long", "matmul_tn"]

_CHUNK_ROWS = 1024
#: :func:`gemm_grads`'s chunks: (21632, 32) x (21632, 64), the three gradients, ms, 1 / 2 threads, chunks of 1024
#: -> 256 rows: 2.29 -> 1.95 / 1.23 -> 1.03; (100352, 32) x (100352, 64) 13.7 -> 11.0 / 7.0 -> 5.9; (21632, 16) x
#: (21632, 32) level (AMD EPYC, interleaved medians).
GRADS_CHUNK_ROWS = 256


def _chunks(rows: int, k: int, n: int, chunk_rows: int) -> int:
    """How many chunks of ``chunk_rows`` rows a (rows, k) x (rows, n) reduction runs in; 0: one plain product (fewer
    than 8 chunks, or a product wider than 64 x 64, where the chunks' partial sums cost more than they save)."""
    chunks = rows // chunk_rows
    return 0 if chunks < 8 or k * n > 64 * 64 else chunks


def matmul_tn(a: np.ndarray, b: np.ndarray, *, chunk_rows: int = _CHUNK_ROWS) -> np.ndarray:
    """``a.T @ b`` for C-contiguous ``a`` (M, K) and ``b`` (M, N), chunked over M.

    Shapes:
        a: (M, K); b: (M, N); returns (K, N).
    """
    rows = a.shape[0]
    chunks = _chunks(rows, a.shape[1], b.shape[1], chunk_rows)
    if not chunks:
        return a.T @ b
    head = chunks * chunk_rows
    a3 = a[:head].reshape(chunks, chunk_rows, a.shape[1])
    b3 = b[:head].reshape(chunks, chunk_rows, b.shape[1])
    out = _chunk_products(a3.transpose(0, 2, 1), b3).sum(axis=0)
    if head < rows:
        out += a[head:].T @ b[head:]
    return out


def matmul_nn_long(a: np.ndarray, b: np.ndarray, *, chunk_rows: int = _CHUNK_ROWS) -> np.ndarray:
    """``a @ b`` for a long reduction: C-contiguous ``a`` (K, M) and ``b`` (M, N), chunked over M as
    :func:`matmul_tn` (the kernel gradient from a transposed im2col matrix).

    Shapes:
        a: (K, M); b: (M, N); returns (K, N).

    >>> a = np.arange(12.0).reshape(2, 6); b = np.ones((6, 3))
    >>> bool(np.allclose(matmul_nn_long(a, b, chunk_rows=1), a @ b))
    True
    """
    rows = a.shape[1]
    chunks = _chunks(rows, a.shape[0], b.shape[1], chunk_rows)
    if not chunks:
        return a @ b
    head = chunks * chunk_rows
    a3 = a[:, :head].reshape(a.shape[0], chunks, chunk_rows).transpose(1, 0, 2)
    b3 = b[:head].reshape(chunks, chunk_rows, b.shape[1])
    out = _chunk_products(a3, b3).sum(axis=0)
    if head < rows:
        out += a[:, head:] @ b[head:]
    return out


def gemm_grads(
    a: np.ndarray, g: np.ndarray, w: np.ndarray, *, chunk_rows: int = GRADS_CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three gradients of ``y = a @ w + bias`` from ``g = dL/dy``: ``(a.T @ g, g's column sums, g @ w.T)``.

    In one pass over the rows where :func:`matmul_tn` would chunk them: each thread takes a range of chunks (one
    BLAS thread each) and computes their ``a.T @ g`` products, their column sums (a ones-row GEMV) and their rows
    of ``g @ w.T`` while the chunk of ``g`` is in cache; the partial products and sums are added in chunk order
    (the first is :func:`matmul_tn`'s bits for the same ``chunk_rows``, by default :data:`GRADS_CHUNK_ROWS`).
    Pointwise convolution (128, 13x13, 32 -> 64), the three gradients: 1.41 -> 1.26 ms with chunks of 1024 rows
    (AMD EPYC, 2 threads, interleaved; one pass instead of three, no OpenBLAS-threaded GEMM), 1.03 with 256.

    Shapes:
        a: (M, K); g: (M, N); w: (K, N), all C-contiguous; returns (K, N), (N,), (M, K).

    >>> a = np.arange(12.0).reshape(6, 2); g = np.ones((6, 3)); w = np.ones((2, 3))
    >>> gk, gb, gx = gemm_grads(a, g, w, chunk_rows=1)
    >>> bool(np.allclose(gk, a.T @ g)), gb.tolist(), gx[0].tolist()
    (True, [6.0, 6.0, 6.0], [3.0, 3.0])
    """
    rows, k, n = a.shape[0], a.shape[1], g.shape[1]
    chunks = _chunks(rows, k, n, chunk_rows)
    if not chunks:
        return matmul_tn(a, g, chunk_rows=chunk_rows), np.ones(rows, g.dtype) @ g, g @ w.T
    head = chunks * chunk_rows
    a3 = a[:head].reshape(chunks, chunk_rows, k).transpose(0, 2, 1)
    g3 = g[:head].reshape(chunks, chunk_rows, n)
    dtype = np.result_type(a, g, w)
    products = np.empty((chunks, k, n), dtype)
    sums = np.empty((chunks, 1, n), dtype)
    grad_a = np.empty((rows, k), dtype)
    ones, wt = np.ones((1, chunk_rows), g.dtype), w.T

    def work(lo: int, hi: int) -> None:
        np.matmul(a3[lo:hi], g3[lo:hi], out=products[lo:hi])
        np.matmul(ones, g3[lo:hi], out=sums[lo:hi])
        np.matmul(g[lo * chunk_rows : hi * chunk_rows], wt, out=grad_a[lo * chunk_rows : hi * chunk_rows])

    over_blocks(work, chunks, a.nbytes + g.nbytes)
    grad_w, grad_bias = products.sum(axis=0), sums[:, 0].sum(axis=0)
    if head < rows:
        grad_w += a[head:].T @ g[head:]
        grad_bias += g[head:].sum(axis=0)
        np.matmul(g[head:], wt, out=grad_a[head:])
    return grad_w, grad_bias, grad_a


def add_row(out: np.ndarray, row: np.ndarray) -> None:
    """``out += row`` (broadcast down the rows) in place, the rows split over the threads when large (NumPy adds
    on one core): a pointwise convolution's (21632, 64) float32 output 0.30 -> 0.15 ms (AMD EPYC, 2 threads).

    Shapes:
        out: (M, N) C-contiguous; row: (N,).
    """
    parallel_ranges(lambda lo, hi: np.add(out[lo:hi], row, out=out[lo:hi]), out.shape[0], out.nbytes)


def _chunk_products(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left[t] @ right[t]`` for every chunk ``t``, ranges of chunks on the threads (one BLAS thread each).

    Shapes:
        left: (T, K, R); right: (T, R, N); returns (T, K, N).
    """
    out = np.empty((left.shape[0], left.shape[1], right.shape[2]), np.result_type(left, right))

    def work(lo: int, hi: int) -> None:
        np.matmul(left[lo:hi], right[lo:hi], out=out[lo:hi])

    over_blocks(work, out.shape[0], left.nbytes + right.nbytes)
    return out
