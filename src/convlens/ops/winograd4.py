"""Winograd F(4x4, 3x3) forward: 36 multiplications per 4x4 output tile instead of 144 (F(2x2, 3x3): 64).

:mod:`convlens.ops.winograd` computes 2x2 output tiles from 4x4 input tiles: 16 GEMMs over every tile, 2.25x
fewer multiply-adds than the direct convolution. With 4x4 output tiles from 6x6 input tiles (Lavin & Gray,
2016) the same identity

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* element-wise over the 6x6 tile)

takes 36 GEMMs of (tiles, C) @ (C, F) over a quarter of the tiles: 4x fewer multiply-adds than the direct
convolution, 0.56x those of F(2x2). Where a layer's time is its GEMMs (C and F of 32 and more, whose
GEMMs OpenBLAS runs at 30-60 GFLOP/s on one core here) that is the lever left; the transforms read and
write less than F(2x2)'s (36 values per 16 outputs against 16 per 4).

The price is rounding: B^T and A^T hold 2, 4, 5 and 8, G holds 1/6 and 1/24, so float32 results differ from
the exact convolution by a few 1e-6 of the output's largest magnitude (F(2x2): ~2e-7, im2col ~5e-7); float64
by ~1e-15. Only the forward pass uses it: the gradients come from F(2x2) (``winograd_blocked``, which
recomputes its transformed input from ``x`` and so never needs this forward's).

The batch runs in blocks of images whose transformed tiles stay in cache (as in
:mod:`convlens.ops.winograd_blocked`): input transform, 36 GEMMs, output transform (bias added there). The
transforms are compiled kernels (this module); :func:`input_transform_reference` and
:func:`output_transform_reference` are the NumPy statements of the same arithmetic that the tests hold them
to.

Shapes (channels_last):
    x: (N, H, W, C); kernel: (3, 3, C, F); out: (N, OH, OW, F); tiles TH = ceil(OH / 4), TW = ceil(OW / 4);
    padded: (N, 4 TH + 2, 4 TW + 2, C); V: (36, N, TH, TW, C); U: (36, C, F); M: (36, N, TH, TW, F)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.ops.jit import compiled_for, compiled_kernels, jit_enabled, run_noalias
from convlens.ops.parallel import over_blocks
from convlens.ops.windows import TRANSIENT, pad
from convlens.ops.winograd_blocked import BLOCK_BYTES, TiledBlocks

__all__ = [
    "AT",
    "BLOCK_BYTES_F4",
    "BT",
    "G",
    "Winograd4Conv",
    "input_transform_reference",
    "kernel_transform",
    "kernels",
    "output_transform_reference",
]

# Transform matrices of F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"; the
# interpolation points 0, 1, -1, 2, -2 and infinity).
BT = np.array(
    [
        [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ]
)
G = np.array(
    [
        [1 / 4, 0.0, 0.0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0.0, 0.0, 1.0],
    ]
)
AT = np.array(
    [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ]
)


#: V and M of one block aim at this many bytes: half F(2x2)'s on the AMD EPYC, where larger blocks measured
#: slower (forward, 1 thread, interleaved medians, F(4x4) / F(2x2) with its 8 MB blocks, by F(4x4)'s block
#: size 1 / 2 / 4 / 8 MB: (128, 32x32, 32->32) 0.88 / 0.79 / 0.77 / 0.98; (128, 16x16, 64->64) 0.75 / 0.65 /
#: 0.63 / 0.71; (16, 32x32, 32->32) 0.95 / 0.78 / 0.83 / 0.84).
BLOCK_BYTES_F4 = min(BLOCK_BYTES, 4 << 20)


def kernel_transform(kernel: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (input channel, filter) pair, formed in float64 and rounded once to the kernel's
    dtype (G's sixths and twenty-fourths would otherwise round at every step).

    Shapes:
        kernel: (3, 3, C, F); returns (36, C, F) (tile position a * 6 + b first).
    """
    channels, filters = kernel.shape[2:]
    rows = (G @ kernel.reshape(3, -1).astype(np.float64)).reshape(6, 3, channels * filters)  # G g: (a, j, cf)
    return np.matmul(G, rows).reshape(36, channels, filters).astype(kernel.dtype)  # (G g) G^T: (a, b, cf)


def input_transform_reference(padded: np.ndarray, tiles: tuple[int, int]) -> np.ndarray:
    """V = B^T d B for every 6x6 input tile (stride 4) of ``padded`` and channel: (36, N, TH, TW, C).

    >>> d = np.zeros((1, 6, 6, 1)); d[0, 2, 3, 0] = 1.0
    >>> v = input_transform_reference(d, (1, 1)).reshape(6, 6)
    >>> bool(np.array_equal(v, np.outer(BT[:, 2], BT[:, 3])))
    True
    """
    th, tw = tiles
    windows = np.lib.stride_tricks.sliding_window_view(padded, (6, 6), axis=(1, 2))  # (N, ., ., C, 6, 6)
    d = windows[:, : 4 * th : 4, : 4 * tw : 4]  # (N, TH, TW, C, i, j)
    bt = BT.astype(padded.dtype)
    v = np.einsum("ai,ntwcij,bj->abntwc", bt, d, bt, optimize=True)
    return np.ascontiguousarray(v).reshape(36, *d.shape[:4])


def output_transform_reference(m: np.ndarray, bias: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Y = A^T M A per tile plus ``bias``, cropped to ``out_size``: (N, OH, OW, F) from M (36, N, TH, TW, F)."""
    _, batch, th, tw, filters = m.shape
    at = AT.astype(m.dtype)
    y = np.einsum("ia,abntwf,jb->ntiwjf", at, m.reshape(6, 6, batch, th, tw, filters), at, optimize=True)
    full = y.reshape(batch, 4 * th, 4 * tw, filters)[:, : out_size[0], : out_size[1]]
    return np.ascontiguousarray(full + bias.astype(m.dtype))


def _input_transform(padded: Any, v: Any, lo: int, hi: int) -> None:  # pragma: no cover - compiled by Numba
    channels = padded.shape[3]
    th, tw = v.shape[2], v.shape[3]
    t = np.empty((6, 6, channels), v.dtype)  # B^T d of one tile: (row a, column j, channel)
    for job in range(lo, hi):  # (tile rows: job = n * TH + ty)
        n = job // th
        ty = job % th
        r = 4 * ty
        for tx in range(tw):
            col = 4 * tx
            for j in range(6):  # B^T d: combine the tile's rows, column by column
                for c in range(channels):
                    d0 = padded[n, r, col + j, c]
                    d1 = padded[n, r + 1, col + j, c]
                    d2 = padded[n, r + 2, col + j, c]
                    d3 = padded[n, r + 3, col + j, c]
                    d4 = padded[n, r + 4, col + j, c]
                    d5 = padded[n, r + 5, col + j, c]
                    t[0, j, c] = 4 * d0 - 5 * d2 + d4
                    t[1, j, c] = d3 + d4 - 4 * (d1 + d2)
                    t[2, j, c] = 4 * (d1 - d2) + d4 - d3
                    t[3, j, c] = d4 - d2 + 2 * (d3 - d1)
                    t[4, j, c] = d4 - d2 - 2 * (d3 - d1)
                    t[5, j, c] = 4 * d1 - 5 * d3 + d5
            for a in range(6):  # (B^T d) B: combine its columns
                for c in range(channels):
                    e0 = t[a, 0, c]
                    e1 = t[a, 1, c]
                    e2 = t[a, 2, c]
                    e3 = t[a, 3, c]
                    e4 = t[a, 4, c]
                    e5 = t[a, 5, c]
                    v[6 * a, n, ty, tx, c] = 4 * e0 - 5 * e2 + e4
                    v[6 * a + 1, n, ty, tx, c] = e3 + e4 - 4 * (e1 + e2)
                    v[6 * a + 2, n, ty, tx, c] = 4 * (e1 - e2) + e4 - e3
                    v[6 * a + 3, n, ty, tx, c] = e4 - e2 + 2 * (e3 - e1)
                    v[6 * a + 4, n, ty, tx, c] = e4 - e2 - 2 * (e3 - e1)
                    v[6 * a + 5, n, ty, tx, c] = 4 * e1 - 5 * e3 + e5


def _output_transform(m: Any, bias: Any, out: Any, lo: int, hi: int) -> None:  # pragma: no cover - compiled by Numba
    _, _, th, tw, filters = m.shape
    oh, ow = out.shape[1], out.shape[2]
    s = np.empty((4, 6, filters), m.dtype)  # A^T M of one tile: (output row i, column b, filter)
    for job in range(lo, hi):  # (tile rows: job = n * TH + ty)
        n = job // th
        ty = job % th
        r = 4 * ty
        rows = min(4, oh - r)
        for tx in range(tw):
            col = 4 * tx
            cols = min(4, ow - col)
            for b in range(6):  # A^T M: combine the tile's rows
                for f in range(filters):
                    m1 = m[6 + b, n, ty, tx, f]
                    m2 = m[12 + b, n, ty, tx, f]
                    m3 = m[18 + b, n, ty, tx, f]
                    m4 = m[24 + b, n, ty, tx, f]
                    p = m1 + m2
                    q = m1 - m2
                    u = m3 + m4
                    w = m3 - m4
                    s[0, b, f] = m[b, n, ty, tx, f] + p + u
                    s[1, b, f] = q + 2 * w
                    s[2, b, f] = p + 4 * u
                    s[3, b, f] = q + 8 * w + m[30 + b, n, ty, tx, f]
            for i in range(rows):  # (A^T M) A: combine its columns, the bias added last
                for f in range(filters):
                    p = s[i, 1, f] + s[i, 2, f]
                    q = s[i, 1, f] - s[i, 2, f]
                    u = s[i, 3, f] + s[i, 4, f]
                    w = s[i, 3, f] - s[i, 4, f]
                    out[n, r + i, col, f] = s[i, 0, f] + p + u + bias[f]
                    if cols > 1:
                        out[n, r + i, col + 1, f] = q + 2 * w + bias[f]
                    if cols > 2:
                        out[n, r + i, col + 2, f] = p + 4 * u + bias[f]
                    if cols > 3:
                        out[n, r + i, col + 3, f] = q + 8 * w + s[i, 5, f] + bias[f]


_KERNELS: tuple[Any, ...] | None = None


def kernels() -> tuple[Any, ...] | None:
    """The compiled (input, output) transforms; None when the JIT is off or unavailable."""
    if not jit_enabled():
        return None
    serial = {"noalias": True}  # (see convlens.ops.jit._noalias_compiler: 36 planes per loop)
    return compiled_kernels(globals(), [(k, serial) for k in (_input_transform, _output_transform)])


class Winograd4Conv(TiledBlocks):
    """F(4x4, 3x3) forward over blocks of images for one input shape and geometry (compiled transforms only).

    Shapes:
        x: (N, H, W, C); kernel: (3, 3, C, F); bias: (F,); out: (N, OH, OW, F)
    """

    output_tile = 4
    even_blocks = True  # 44 images: 22 + 22, not 37 + 7
    default_block_bytes = BLOCK_BYTES_F4

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """The convolution of ``x`` (N, H, W, C), C-contiguous, with ``kernel`` (3, 3, C, F); a fresh output.

        Raises:
            RuntimeError: the compiled transforms are not available for ``x``'s dtype (the strategy applies only
                where they are).
        """
        dtype = x.dtype
        compiled = kernels() if compiled_for(dtype) else None
        if compiled is None:
            raise RuntimeError(f"Winograd F(4x4, 3x3) needs the compiled transforms for {dtype.name}")
        u = kernel_transform(kernel.astype(dtype, copy=False))
        b = np.zeros(self.filters, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
        out = np.empty((self.x_shape[0], *self.out_size, self.filters), dtype)
        channels, (th, tw) = self.x_shape[3], self.tiles

        def blocks(lo: int, hi: int) -> None:
            for part in self.blocks[lo:hi]:
                images = part.stop - part.start
                padded = pad(x[part], self.tile_geometry, workspace=TRANSIENT, name="w4_padded")
                v = TRANSIENT.get("w4_v", (36, images, th, tw, channels), dtype)
                m = TRANSIENT.get("w4_m", (36, images, th, tw, self.filters), dtype)
                run_noalias(compiled[0], images * th, [v], padded, v)
                np.matmul(v.reshape(36, -1, channels), u, out=m.reshape(36, -1, self.filters))
                y = out[part]
                run_noalias(compiled[1], images * th, [y], m, b, y)

        over_blocks(blocks, len(self.blocks), x.nbytes + out.nbytes)
        return out
