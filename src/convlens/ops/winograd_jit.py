"""Compiled (Numba) tile transforms for :mod:`convlens.ops.winograd`.

The NumPy transforms in ``winograd.py`` are the readable reference and the fallback; each makes
several passes over arrays 4x the size of the input (~20 GB/s of traffic here). These kernels do
each transform in one pass: read a tile, write its 16 transformed values (or its four outputs).
The arithmetic is the same additions in the same order, so both paths give identical results, except
the input-gradient adjoint: it adds the overlapping tiles of an image in tile order (NumPy: in tap
order), so there the two agree to rounding.

The kernels are serial (a third of the compile time of ``parallel=True`` ones) over a range of tile rows
or images that :func:`convlens.ops.jit.run_noalias` splits over the threads, and compiled with
their arrays marked noalias: without that LLVM left the 16-plane loops scalar (6x slower; see
:func:`convlens.ops.jit._noalias_compiler`).

Shapes:
    padded: (N, 2 TH + 2, 2 TW + 2, C); v: (16, N, TH, TW, C)
    m: (16, N, TH, TW, F); out: (N, OH, OW, F); grad_out: (N, OH, OW, F); dm: (16, N, TH, TW, F)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.ops.jit import compiled_for, compiled_kernels, jit_enabled, run_noalias

__all__ = ["grad_transform", "input_adjoint", "input_transform", "kernels", "output_transform"]


def _input_transform(padded: Any, v: Any, lo: int, hi: int) -> None:  # pragma: no cover - compiled by Numba
    channels = padded.shape[3]
    th, tw = v.shape[2], v.shape[3]
    for job in range(lo, hi):  # (tile rows: job = n * TH + ty)
        n = job // th
        ty = job % th
        r = 2 * ty
        for tx in range(tw):
            col = 2 * tx
            for c in range(channels):
                d00 = padded[n, r, col, c]
                d01 = padded[n, r, col + 1, c]
                d02 = padded[n, r, col + 2, c]
                d03 = padded[n, r, col + 3, c]
                d10 = padded[n, r + 1, col, c]
                d11 = padded[n, r + 1, col + 1, c]
                d12 = padded[n, r + 1, col + 2, c]
                d13 = padded[n, r + 1, col + 3, c]
                d20 = padded[n, r + 2, col, c]
                d21 = padded[n, r + 2, col + 1, c]
                d22 = padded[n, r + 2, col + 2, c]
                d23 = padded[n, r + 2, col + 3, c]
                d30 = padded[n, r + 3, col, c]
                d31 = padded[n, r + 3, col + 1, c]
                d32 = padded[n, r + 3, col + 2, c]
                d33 = padded[n, r + 3, col + 3, c]
                # B^T d: rows (same order of operations as the NumPy reference)
                t00 = d00 - d20
                t01 = d01 - d21
                t02 = d02 - d22
                t03 = d03 - d23
                t10 = d10 + d20
                t11 = d11 + d21
                t12 = d12 + d22
                t13 = d13 + d23
                t20 = d20 - d10
                t21 = d21 - d11
                t22 = d22 - d12
                t23 = d23 - d13
                t30 = d10 - d30
                t31 = d11 - d31
                t32 = d12 - d32
                t33 = d13 - d33
                # (B^T d) B: columns
                v[0, n, ty, tx, c] = t00 - t02
                v[1, n, ty, tx, c] = t01 + t02
                v[2, n, ty, tx, c] = t02 - t01
                v[3, n, ty, tx, c] = t01 - t03
                v[4, n, ty, tx, c] = t10 - t12
                v[5, n, ty, tx, c] = t11 + t12
                v[6, n, ty, tx, c] = t12 - t11
                v[7, n, ty, tx, c] = t11 - t13
                v[8, n, ty, tx, c] = t20 - t22
                v[9, n, ty, tx, c] = t21 + t22
                v[10, n, ty, tx, c] = t22 - t21
                v[11, n, ty, tx, c] = t21 - t23
                v[12, n, ty, tx, c] = t30 - t32
                v[13, n, ty, tx, c] = t31 + t32
                v[14, n, ty, tx, c] = t32 - t31
                v[15, n, ty, tx, c] = t31 - t33


def _output_transform(m: Any, bias: Any, out: Any, lo: int, hi: int) -> None:  # pragma: no cover - compiled by Numba
    _, _, th, tw, filters = m.shape
    oh, ow = out.shape[1], out.shape[2]
    for job in range(lo, hi):  # (tile rows: job = n * TH + ty)
        n = job // th
        ty = job % th
        r = 2 * ty
        second_row = r + 1 < oh
        for tx in range(tw):
            col = 2 * tx
            second_col = col + 1 < ow
            for f in range(filters):
                # A^T M: rows
                s00 = m[0, n, ty, tx, f] + m[4, n, ty, tx, f] + m[8, n, ty, tx, f]
                m5 = m[5, n, ty, tx, f] + bias[f]  # the bias rides on M[1, 1], as in the NumPy path
                s01 = m[1, n, ty, tx, f] + m5 + m[9, n, ty, tx, f]
                s02 = m[2, n, ty, tx, f] + m[6, n, ty, tx, f] + m[10, n, ty, tx, f]
                s03 = m[3, n, ty, tx, f] + m[7, n, ty, tx, f] + m[11, n, ty, tx, f]
                s10 = m[4, n, ty, tx, f] - m[8, n, ty, tx, f] - m[12, n, ty, tx, f]
                s11 = m5 - m[9, n, ty, tx, f] - m[13, n, ty, tx, f]
                s12 = m[6, n, ty, tx, f] - m[10, n, ty, tx, f] - m[14, n, ty, tx, f]
                s13 = m[7, n, ty, tx, f] - m[11, n, ty, tx, f] - m[15, n, ty, tx, f]
                # (A^T M) A: columns
                out[n, r, col, f] = s00 + s01 + s02
                if second_col:
                    out[n, r, col + 1, f] = s01 - s02 - s03
                if second_row:
                    out[n, r + 1, col, f] = s10 + s11 + s12
                    if second_col:
                        out[n, r + 1, col + 1, f] = s11 - s12 - s13


def _grad_transform(grad_out: Any, dm: Any, lo: int, hi: int) -> None:  # pragma: no cover - compiled by Numba
    _, oh, ow, filters = grad_out.shape
    th, tw = dm.shape[2], dm.shape[3]
    zero = grad_out.dtype.type(0)
    for job in range(lo, hi):  # (tile rows: job = n * TH + ty)
        n = job // th
        ty = job % th
        r = 2 * ty
        second_row = r + 1 < oh
        for tx in range(tw):
            col = 2 * tx
            second_col = col + 1 < ow
            for f in range(filters):
                y00 = grad_out[n, r, col, f]
                y01 = grad_out[n, r, col + 1, f] if second_col else zero
                y10 = grad_out[n, r + 1, col, f] if second_row else zero
                y11 = grad_out[n, r + 1, col + 1, f] if second_row and second_col else zero
                # A dY: rows
                e00 = y00
                e01 = y01
                e10 = y00 + y10
                e11 = y01 + y11
                e20 = y00 - y10
                e21 = y01 - y11
                e30 = -y10
                e31 = -y11
                # (A dY) A^T: columns
                dm[0, n, ty, tx, f] = e00
                dm[1, n, ty, tx, f] = e00 + e01
                dm[2, n, ty, tx, f] = e00 - e01
                dm[3, n, ty, tx, f] = -e01
                dm[4, n, ty, tx, f] = e10
                dm[5, n, ty, tx, f] = e10 + e11
                dm[6, n, ty, tx, f] = e10 - e11
                dm[7, n, ty, tx, f] = -e11
                dm[8, n, ty, tx, f] = e20
                dm[9, n, ty, tx, f] = e20 + e21
                dm[10, n, ty, tx, f] = e20 - e21
                dm[11, n, ty, tx, f] = -e21
                dm[12, n, ty, tx, f] = e30
                dm[13, n, ty, tx, f] = e30 + e31
                dm[14, n, ty, tx, f] = e30 - e31
                dm[15, n, ty, tx, f] = -e31


def _input_adjoint(
    dv: Any, grad_x: Any, pt: int, pl: int, lo: int, hi: int
) -> None:  # pragma: no cover - compiled by Numba
    _, _, th, tw, channels = dv.shape
    height, width = grad_x.shape[1], grad_x.shape[2]
    for n in range(lo, hi):
        acc = np.zeros((2 * th + 2, 2 * tw + 2, channels), dv.dtype)  # this image's padded gradient
        tile = np.empty((16, channels), dv.dtype)  # B dV B^T of one tile
        for ty in range(th):
            r = 2 * ty
            for tx in range(tw):
                col = 2 * tx
                for c in range(channels):
                    # B dV: rows
                    e00 = dv[0, n, ty, tx, c]
                    e01 = dv[1, n, ty, tx, c]
                    e02 = dv[2, n, ty, tx, c]
                    e03 = dv[3, n, ty, tx, c]
                    e10 = dv[4, n, ty, tx, c] - dv[8, n, ty, tx, c] + dv[12, n, ty, tx, c]
                    e11 = dv[5, n, ty, tx, c] - dv[9, n, ty, tx, c] + dv[13, n, ty, tx, c]
                    e12 = dv[6, n, ty, tx, c] - dv[10, n, ty, tx, c] + dv[14, n, ty, tx, c]
                    e13 = dv[7, n, ty, tx, c] - dv[11, n, ty, tx, c] + dv[15, n, ty, tx, c]
                    e20 = dv[4, n, ty, tx, c] + dv[8, n, ty, tx, c] - e00
                    e21 = dv[5, n, ty, tx, c] + dv[9, n, ty, tx, c] - e01
                    e22 = dv[6, n, ty, tx, c] + dv[10, n, ty, tx, c] - e02
                    e23 = dv[7, n, ty, tx, c] + dv[11, n, ty, tx, c] - e03
                    e30 = -dv[12, n, ty, tx, c]
                    e31 = -dv[13, n, ty, tx, c]
                    e32 = -dv[14, n, ty, tx, c]
                    e33 = -dv[15, n, ty, tx, c]
                    # (B dV) B^T: columns
                    tile[0, c] = e00
                    tile[1, c] = e01 - e02 + e03
                    tile[2, c] = e01 + e02 - e00
                    tile[3, c] = -e03
                    tile[4, c] = e10
                    tile[5, c] = e11 - e12 + e13
                    tile[6, c] = e11 + e12 - e10
                    tile[7, c] = -e13
                    tile[8, c] = e20
                    tile[9, c] = e21 - e22 + e23
                    tile[10, c] = e21 + e22 - e20
                    tile[11, c] = -e23
                    tile[12, c] = e30
                    tile[13, c] = e31 - e32 + e33
                    tile[14, c] = e31 + e32 - e30
                    tile[15, c] = -e33
                for k in range(16):  # add the tile onto its 4x4 cells (tiles overlap by two rows/columns)
                    i = r + k // 4
                    j = col + k % 4
                    for c in range(channels):
                        acc[i, j, c] += tile[k, c]
        for y in range(height):
            for x in range(width):
                for c in range(channels):
                    grad_x[n, y, x, c] = acc[y + pt, x + pl, c]


_KERNELS: tuple[Any, ...] | None = None


def kernels() -> tuple[Any, ...] | None:
    """The compiled (input, output, gradient, input-adjoint) transforms; None when the JIT is off or unavailable."""
    if not jit_enabled():
        return None
    serial = {"noalias": True}
    return compiled_kernels(
        globals(), [(k, serial) for k in (_input_transform, _output_transform, _grad_transform, _input_adjoint)]
    )


def _run(index: int, out: np.ndarray, total: int, *args: Any) -> bool:
    """Run kernel ``index`` (which writes ``out``, one of ``args``) over ``range(total)``, split over the threads."""
    compiled = kernels() if compiled_for(out.dtype) else None
    if compiled is None:
        return False
    run_noalias(compiled[index], total, [out], *args)
    return True


def input_transform(padded: np.ndarray, v: np.ndarray) -> bool:
    """Fill ``v`` (16, N, TH, TW, C) from ``padded``; False (nothing done) when the JIT is off."""
    return _run(0, v, v.shape[1] * v.shape[2], padded, v)


def output_transform(m: np.ndarray, bias: np.ndarray, out: np.ndarray) -> bool:
    """Fill ``out`` (N, OH, OW, F) from ``m`` with ``bias`` (F,) added to M[1, 1]; False when the JIT is off."""
    return _run(1, out, m.shape[1] * m.shape[2], m, bias, out)


def grad_transform(grad_out: np.ndarray, dm: np.ndarray) -> bool:
    """Fill ``dm`` (16, N, TH, TW, F) from ``grad_out``; False (nothing done) when the JIT is off."""
    return _run(2, dm, dm.shape[1] * dm.shape[2], grad_out, dm)


def input_adjoint(dv: np.ndarray, grad_x: np.ndarray, pads: tuple[int, int]) -> bool:
    """Fill ``grad_x`` (N, H, W, C) with B dV B^T summed over the overlapping tiles of ``dv`` (16, N, TH, TW, C),
    cropped by ``pads`` = (PT, PL); False (nothing done) when the JIT is off.
    """
    return _run(3, grad_x, dv.shape[1], dv, grad_x, *pads)
