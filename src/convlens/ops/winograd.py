"""Winograd F(2x2, 3x3): a 3x3, stride-1 convolution with 16 multiplications per 2x2 output tile instead of 36.

The direct (im2col + GEMM) convolution spends almost all of its time in one GEMM with few output
columns (F = 32..128), a shape OpenBLAS runs at ~70% of its square-matrix rate. Winograd's minimal
filtering algorithm (Lavin & Gray, 2016) computes each 2x2 output tile from a 4x4 input tile as

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* element-wise over the 4x4 tile)

so the channel reduction becomes 16 independent GEMMs of (tiles, C) @ (C, F): 2.25x fewer
multiply-adds, paid for with cheap add/subtract transforms (only 0, +-1 and +-1/2 appear, so the
transforms of the input and of the gradient are exact; the kernel transform rounds once). The
kernel gradient is the same algorithm run backwards: dU = sum over tiles V^T dM, dM = A dY A^T,
dg = G^T dU G. The input gradient is the exact adjoint of the forward chain, from the same dM:
dV = dM U^T (16 GEMMs), then B dV B^T added back onto the overlapping 4x4 input tiles.

Results equal the direct convolution up to float rounding (float32: a few ulps more than im2col;
float64: ~1e-15); the tests compare both paths and PyTorch.

Shapes (channels_last):
    x: (N, H, W, C); kernel: (3, 3, C, F); out: (N, OH, OW, F) with OH = H + PT + PB - 2
    tiles: T = N * ceil(OH / 2) * ceil(OW / 2); V: (16, T, C); U: (16, C, F); M: (16, T, F)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops import winograd_jit
from convlens.ops.parallel import parallel_over_batch
from convlens.ops.windows import TRANSIENT, Workspace, crop, pad

__all__ = ["WinogradConv", "kernel_transform"]

# Transform matrices of F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks").
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
BT = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])
AT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])

# Work on batch chunks of about this many input bytes, so the transform's intermediates stay in cache.
_CHUNK_BYTES = 512 << 10


def kernel_transform(kernel: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (input channel, filter) pair.

    Shapes:
        kernel: (3, 3, C, F); returns (16, C, F) (tile position a * 4 + b first).
    """
    g = G.astype(kernel.dtype)
    channels, filters = kernel.shape[2:]
    rows = (g @ kernel.reshape(3, -1)).reshape(4, 3, channels * filters)  # G g: (a, j, cf)
    return np.matmul(g, rows).reshape(16, channels, filters)  # (G g) G^T: (a, b, cf) (no einsum path search)


def _kernel_gradient(grad_u: np.ndarray) -> np.ndarray:
    """dg = G^T dU G: (16, C, F) -> (3, 3, C, F)."""
    g = G.astype(grad_u.dtype)
    du = grad_u.reshape(4, 4, *grad_u.shape[1:])
    return np.ascontiguousarray(np.einsum("ai,abcf,bj->ijcf", g, du, g, optimize=True))


def _chunks(part: slice, per_item_bytes: int) -> list[slice]:
    step = max(1, _CHUNK_BYTES // max(1, per_item_bytes))
    return [slice(b, min(b + step, part.stop)) for b in range(part.start, part.stop, step)]


class WinogradConv:
    """F(2x2, 3x3) convolution for one input shape and geometry; buffers reused across calls.

    ``forward`` keeps the transformed input V, which :meth:`backward` needs.

    Shapes:
        x: (N, H, W, C); kernel: (3, 3, C, F); bias: (F,); out: (N, OH, OW, F)
    """

    def __init__(self, x_shape: tuple[int, ...], filters: int, geometry: WindowGeometry, workspace: Workspace) -> None:
        self.x_shape = x_shape
        self.filters = filters
        self.geometry = geometry
        self.workspace = workspace
        self.out_size = geometry.output_size
        # The 4x4 input tiles (stride 2: the convolution's pads plus zeros after an odd output size) and the
        # output gradient's 2x2 blocks (zeros after an odd last row/column); padding and cropping go through them.
        self.tile_geometry, self.grad_geometry = geometry.winograd_tiles(2)
        self.tiles = self.tile_geometry.output_size
        self._v: np.ndarray | None = None
        self._v_source: np.ndarray | None = None
        self._dm: np.ndarray | None = None
        self._dm_source: np.ndarray | None = None
        self._dm_generation = -1

    @property
    def tile_count(self) -> int:
        """T = N * ceil(OH / 2) * ceil(OW / 2)."""
        return self.x_shape[0] * self.tiles[0] * self.tiles[1]

    def transform_input(self, x: np.ndarray) -> np.ndarray:
        """V = B^T d B for every 4x4 input tile (stride 2) and channel: (16, T, C)."""
        padded = pad(x, self.tile_geometry, workspace=TRANSIENT, name="wino_padded")
        batch, hq, wq, channels = padded.shape
        th, tw = self.tiles
        v = self.workspace.get("wino_v", (4, 4, batch, th, tw, channels), x.dtype)
        if winograd_jit.input_transform(padded, v.reshape(16, batch, th, tw, channels)):
            return v.reshape(16, batch * th * tw, channels)

        def work(part: slice) -> None:
            for chunk in _chunks(part, hq * wq * channels * x.itemsize):
                p = padded[chunk]
                r = [p[:, i : i + 2 * th : 2] for i in range(4)]  # input rows of each tile, (n, TH, Wq, C)
                t = np.empty((4, *r[0].shape), x.dtype)  # B^T d: combine rows
                np.subtract(r[0], r[2], out=t[0])
                np.add(r[1], r[2], out=t[1])
                np.subtract(r[2], r[1], out=t[2])
                np.subtract(r[1], r[3], out=t[3])
                c = [t[:, :, :, j : j + 2 * tw : 2] for j in range(4)]  # (4, n, TH, TW, C)
                vc = v[:, :, chunk]
                np.subtract(c[0], c[2], out=vc[:, 0])  # (B^T d) B: combine columns
                np.add(c[1], c[2], out=vc[:, 1])
                np.subtract(c[2], c[1], out=vc[:, 2])
                np.subtract(c[1], c[3], out=vc[:, 3])

        parallel_over_batch(work, batch, 4 * padded.nbytes)
        return v.reshape(16, batch * th * tw, channels)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, source: Any = None) -> np.ndarray:
        """The convolution of ``x`` (N, H, W, C) with ``kernel`` (3, 3, C, F); returns a fresh (N, OH, OW, F).

        Keeps V for :meth:`kernel_gradient` of ``source`` (the caller's array ``x`` came from; ``x`` itself
        by default).
        """
        v = self.transform_input(x)
        self._v, self._v_source = v, x if source is None else source
        u = kernel_transform(kernel)
        m = TRANSIENT.get("wino_m", (16, self.tile_count, self.filters), x.dtype)
        np.matmul(v, u, out=m)
        return self._transform_output(m, bias)

    def _transform_output(self, m: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """Y = A^T M A per tile, written into a fresh (N, OH, OW, F).

        The bias is added to M[1, 1]: A^T[:, 1] = (1, 1), so that element reaches each of its tile's four
        outputs exactly once.
        """
        batch, filters = self.x_shape[0], self.filters
        th, tw = self.tiles
        oh, ow = self.out_size
        if bias is None:
            bias = np.zeros(filters, m.dtype)
        result = np.empty((batch, oh, ow, filters), m.dtype)
        if winograd_jit.output_transform(m.reshape(16, batch, th, tw, filters), bias, result):
            return result
        m[5] += bias
        m6 = m.reshape(4, 4, batch, th, tw, filters)
        exact = (2 * th, 2 * tw) == (oh, ow)
        full = result.reshape(batch, th, 2, tw, 2, filters) if exact else None
        if full is None:
            full = self.workspace.get("wino_full", (batch, th, 2, tw, 2, filters), m.dtype)
        dtype = m.dtype

        def work(part: slice) -> None:
            for chunk in _chunks(part, 4 * th * tw * filters * m.itemsize):
                mc = m6[:, :, chunk]
                s = np.empty((2, 4, *mc.shape[2:]), dtype)  # A^T M: combine rows
                np.add(mc[0], mc[1], out=s[0])
                s[0] += mc[2]
                np.subtract(mc[1], mc[2], out=s[1])
                s[1] -= mc[3]
                y = full[chunk].transpose(4, 2, 0, 1, 3, 5)  # (2 cols, 2 rows, n, TH, TW, F)
                np.add(s[:, 0], s[:, 1], out=y[0])  # (A^T M) A: combine columns
                y[0] += s[:, 2]
                np.subtract(s[:, 1], s[:, 2], out=y[1])
                y[1] -= s[:, 3]

        parallel_over_batch(work, batch, m.nbytes)
        if not exact:
            np.copyto(result, full.reshape(batch, 2 * th, 2 * tw, filters)[:, :oh, :ow])
        return result

    def kernel_gradient(self, grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
        """dL/dkernel (3, 3, C, F) for ``grad_out`` (N, OH, OW, F), C-contiguous of the working dtype.

        Reuses V of the last forward of ``x``; both gradients start from dM = A dY A^T, kept here for
        :meth:`input_gradient` of the same ``grad_out``. dU = V^T dM per tile position, dg = G^T dU G.
        """
        v = self._v
        if v is None or v.dtype != grad_out.dtype or x is not self._v_source:
            v = self.transform_input(x.astype(grad_out.dtype, copy=False))
        self._v = self._v_source = None
        dm = self._transform_grad(grad_out)
        self._dm, self._dm_source, self._dm_generation = dm, grad_out, TRANSIENT.generation
        channels = v.shape[2]
        grad_u = np.empty((16, channels, self.filters), grad_out.dtype)
        for k in range(16):
            np.matmul(v[k].T, dm[k], out=grad_u[k])
        return _kernel_gradient(grad_u)

    def input_gradient(self, grad_out: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """dL/dx (N, H, W, C): the exact adjoint of the forward chain, dV = dM U^T, then B dV B^T added back
        onto the overlapping 4x4 input tiles. Reuses dM of :meth:`kernel_gradient` for this ``grad_out``.
        """
        dm = self._dm
        if dm is None or self._dm_source is not grad_out or self._dm_generation != TRANSIENT.generation:
            dm = self._transform_grad(grad_out)  # (the kept dM's buffer has been lent again since)
        self._dm = self._dm_source = None
        u = kernel_transform(kernel.astype(grad_out.dtype, copy=False))
        batch, th, tw = self.x_shape[0], *self.tiles
        channels = self.x_shape[3]
        # V is no longer needed: its buffer takes dV.
        dv = self.workspace.get("wino_v", (4, 4, batch, th, tw, channels), grad_out.dtype)
        dv = dv.reshape(16, batch * th * tw, channels)
        np.matmul(dm, np.ascontiguousarray(u.transpose(0, 2, 1)), out=dv)
        return self._transform_input_adjoint(dv)

    def _transform_input_adjoint(self, dv: np.ndarray) -> np.ndarray:
        """dL/dx (N, H, W, C) from dV (16, T, C): B dV B^T per tile, summed where the tiles overlap, cropped."""
        batch, _, _, channels = self.x_shape
        th, tw = self.tiles
        (pt, _), (pl, _) = self.tile_geometry.pads
        grad_x = np.empty(self.x_shape, dv.dtype)
        dv6 = dv.reshape(4, 4, batch, th, tw, channels)
        if winograd_jit.input_adjoint(dv6.reshape(16, batch, th, tw, channels), grad_x, (pt, pl)):
            return grad_x
        grad_padded = self.workspace.get(
            "wino_grad_x", (batch, *self.tile_geometry.padded_size, channels), dv.dtype, zero=True
        )
        dtype = dv.dtype

        def work(part: slice) -> None:
            for chunk in _chunks(part, 16 * th * tw * channels * dv.itemsize):
                d = dv6[:, :, chunk]
                e = np.empty((4, *d.shape[1:]), dtype)  # B dV: rows (i, b, n, TH, TW, C)
                np.copyto(e[0], d[0])
                np.subtract(d[1], d[2], out=e[1])
                e[1] += d[3]
                np.add(d[1], d[2], out=e[2])
                e[2] -= d[0]
                np.negative(d[3], out=e[3])
                tile = np.empty((4, 4, *d.shape[2:]), dtype)  # (B dV) B^T: columns (i, j, n, TH, TW, C)
                np.copyto(tile[:, 0], e[:, 0])
                np.subtract(e[:, 1], e[:, 2], out=tile[:, 1])
                tile[:, 1] += e[:, 3]
                np.add(e[:, 1], e[:, 2], out=tile[:, 2])
                tile[:, 2] -= e[:, 0]
                np.negative(e[:, 3], out=tile[:, 3])
                target = grad_padded[chunk]
                for i in range(4):
                    for j in range(4):
                        target[:, i : i + 2 * th : 2, j : j + 2 * tw : 2] += tile[i, j]

        parallel_over_batch(work, batch, dv.nbytes)
        np.copyto(grad_x, crop(grad_padded, self.tile_geometry))
        return grad_x

    def _transform_grad(self, grad_out: np.ndarray) -> np.ndarray:
        """dM = A dY A^T per 2x2 output-gradient tile: (16, T, F) (zeros stand in past an odd edge)."""
        batch, filters = self.x_shape[0], self.filters
        th, tw = self.tiles
        # M lives only inside forward, dM from the kernel gradient to the input gradient: transient buffers.
        dm = TRANSIENT.get("wino_m", (4, 4, batch, th, tw, filters), grad_out.dtype)
        if winograd_jit.grad_transform(np.ascontiguousarray(grad_out), dm.reshape(16, batch, th, tw, filters)):
            return dm.reshape(16, batch * th * tw, filters)
        grad_out = pad(grad_out, self.grad_geometry, workspace=self.workspace, name="wino_grad_padded")
        g6 = grad_out.reshape(batch, th, 2, tw, 2, filters)
        dtype = grad_out.dtype

        def work(part: slice) -> None:
            for chunk in _chunks(part, 4 * th * tw * filters * grad_out.itemsize):
                q = g6[chunk]
                e = np.empty((4, *q[:, :, 0].shape), dtype)  # A dY: rows (n, TH, TW, 2, F)
                np.copyto(e[0], q[:, :, 0])
                np.add(q[:, :, 0], q[:, :, 1], out=e[1])
                np.subtract(q[:, :, 0], q[:, :, 1], out=e[2])
                np.negative(q[:, :, 1], out=e[3])
                d = dm[:, :, chunk]
                np.copyto(d[:, 0], e[..., 0, :])  # (A dY) A^T: columns
                np.add(e[..., 0, :], e[..., 1, :], out=d[:, 1])
                np.subtract(e[..., 0, :], e[..., 1, :], out=d[:, 2])
                np.negative(e[..., 1, :], out=d[:, 3])

        parallel_over_batch(work, batch, 4 * grad_out.nbytes)
        return dm.reshape(16, batch * th * tw, filters)
