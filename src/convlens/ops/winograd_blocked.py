"""Winograd F(2x2, 3x3) run a few images at a time, so the transformed tiles never leave the cache.

:class:`convlens.ops.winograd.WinogradConv` transforms the whole batch at once: V (16, T, C) and M (16, T, F)
are 16/4 = 4 times the size of the input and output (67 MB each for (128, 32x32, 32)), so every transform
and every GEMM streams them through memory, and the transforms and thin GEMMs run at memory speed. Here the
batch goes through in blocks of a few images whose V and M fit in the cache (``block_bytes``: L2 where it
is large, a share of L3 where L2 is small, see :func:`block_bytes_for`): transform,
16 GEMMs, inverse transform, block after block. The backward recomputes each block's V from ``x`` (cheap in
cache) instead of keeping the whole batch's; both gradients come from one pass over the blocks: the kernel
gradient sums V^T dM over them, the input gradient takes each block's dV = dM U^T -> B dV B^T.

The arithmetic per tile is that of ``WinogradConv`` (the same compiled transforms, the same U), so results
agree with it to rounding (the kernel gradient sums the tiles block by block). Needs the compiled transforms
(:mod:`convlens.ops.winograd_jit`).

Shapes (channels_last):
    x: (N, H, W, C); kernel: (3, 3, C, F); out: (N, OH, OW, F); per block of B images:
    V: (16, B, TH, TW, C); M, dM: (16, B, TH, TW, F); U: (16, C, F)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops import winograd_jit
from convlens.ops.parallel import image_blocks, over_blocks
from convlens.ops.windows import TRANSIENT, Workspace, pad
from convlens.ops.winograd import _kernel_gradient, kernel_transform

__all__ = [
    "BLOCK_BYTES",
    "GROUPS",
    "TiledBlocks",
    "WinogradBlockedConv",
    "block_bytes_for",
    "cache_sizes",
]

_MB = 1 << 20
BLOCK_BYTES_MEASURED = (
    "fwd+bwd ms, N=128, 1 thread, 2 MB vs 8 MB blocks: AMD EPYC (L2 512 KB, L3 32 MB): (13x13, 32->64 valid) "
    "15.9 vs 14.2, (32x32, 32->32) 104.0 vs 82.4, (16x16, 64->64) 61.1 vs 47.3 (2 threads: within the noise, "
    "50.6 vs 48.0 on 32x32); 256 KB - 1 MB blocks slower still, 16 MB no better. The Intel Xeon's 2 MB blocks "
    "(its L2) were measured against the whole batch only (WINOGRAD_BLOCKED_MEASURED in conv_selection.py)"
)


def cache_sizes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[int, int]:
    """``{level: bytes}`` of CPU 0's data and unified caches, read from Linux's sysfs ({} where unknown)."""
    sizes: dict[int, int] = {}
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return sizes
    for entry in entries:
        if not entry.startswith("index"):
            continue
        try:
            with open(os.path.join(root, entry, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(root, entry, "level")) as f:
                level = int(f.read())
            with open(os.path.join(root, entry, "size")) as f:
                text = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": _MB, "G": 1 << 30}.get(text[-1:], 1)
            size = int(text.rstrip("KMG")) * scale
        except (OSError, ValueError):
            continue
        if kind != "Instruction":
            sizes[level] = max(size, sizes.get(level, 0))
    return sizes


def block_bytes_for(caches: Mapping[int, int]) -> int:
    """The bytes a block's V and M aim at, from the cache sizes (``{level: bytes}``; see BLOCK_BYTES_MEASURED).

    An L2 of at least 1 MB holds the block (the Intel Xeon: 2 MB). A smaller L2 cannot hold blocks large
    enough for OpenBLAS's thin GEMMs, so the block aims at a quarter of L3, between 2 and 8 MB (the AMD EPYC:
    512 KB L2, 32 MB L3 -> 8 MB). Unknown caches: 2 MB.

    >>> block_bytes_for({2: 2 << 20, 3: 32 << 20}) >> 20, block_bytes_for({2: 512 << 10, 3: 32 << 20}) >> 20
    (2, 8)
    """
    l2, l3 = caches.get(2, 0), caches.get(3, 0)
    if l2 >= _MB:
        return l2
    if l3:
        return max(2 * _MB, min(8 * _MB, l3 // 4))
    return 2 * _MB


#: V and M of one block together aim at this many bytes (:func:`block_bytes_for` this machine's caches).
BLOCK_BYTES = block_bytes_for(cache_sizes())
#: The kernel gradient's partial sums: one per group of blocks (a constant: the same sums on every machine).
GROUPS = 8


class TiledBlocks:
    """What the blocked Winograd convolutions share: the tile grid of F(m x m, 3x3) over the input (m =
    ``output_tile``) and the blocks of images whose transformed tiles ((m + 2)^2 planes of C and of F values a
    tile) fit in ``block_bytes`` (default: ``default_block_bytes``), of nearly one size with ``even_blocks``.

    Shapes:
        x: (N, H, W, C); out: (N, OH, OW, F); tiles (TH, TW) = (ceil(OH / m), ceil(OW / m))
    """

    output_tile: ClassVar[int] = 2
    even_blocks: ClassVar[bool] = False
    default_block_bytes: ClassVar[int] = BLOCK_BYTES

    def __init__(
        self,
        x_shape: tuple[int, ...],
        filters: int,
        geometry: WindowGeometry,
        workspace: Workspace,
        block_bytes: int | None = None,
    ) -> None:
        self.x_shape = x_shape
        self.filters = filters
        self.geometry = geometry
        self.workspace = workspace
        self.out_size = geometry.output_size
        m = self.output_tile
        self.tile_geometry, _ = geometry.winograd_tiles(m)
        self.tiles = self.tile_geometry.output_size
        per_image = (m + 2) ** 2 * self.tiles[0] * self.tiles[1] * (x_shape[3] + filters) * 4
        budget = self.default_block_bytes if block_bytes is None else block_bytes
        self.blocks = image_blocks(x_shape[0], per_image, budget, even=self.even_blocks)
        self.block = self.blocks[0].stop


class WinogradBlockedConv(TiledBlocks):
    """F(2x2, 3x3) over blocks of images for one input shape and geometry; buffers reused across calls.

    Shapes:
        x: (N, H, W, C); kernel: (3, 3, C, F); bias: (F,); out: (N, OH, OW, F)
    """

    def _buffers(self, images: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
        """V and M (or dM) for a block of ``images`` (transient: they live inside one call)."""
        th, tw = self.tiles
        v = TRANSIENT.get("wb_v", (16, images, th, tw, self.x_shape[3]), dtype)
        m = TRANSIENT.get("wb_m", (16, images, th, tw, self.filters), dtype)
        return v, m

    def _transform_input(self, x: np.ndarray, part: slice, v: np.ndarray) -> None:
        padded = pad(x[part], self.tile_geometry, workspace=TRANSIENT, name="wb_padded")
        winograd_jit.input_transform(padded, v)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """The convolution of ``x`` (N, H, W, C) with ``kernel`` (3, 3, C, F); a fresh (N, OH, OW, F)."""
        dtype = x.dtype
        u = kernel_transform(kernel)
        b = np.zeros(self.filters, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
        out = np.empty((self.x_shape[0], *self.out_size, self.filters), dtype)
        channels = self.x_shape[3]

        def blocks(lo: int, hi: int) -> None:
            for part in self.blocks[lo:hi]:
                v, m = self._buffers(part.stop - part.start, dtype)
                self._transform_input(x, part, v)
                np.matmul(v.reshape(16, -1, channels), u, out=m.reshape(16, -1, self.filters))
                winograd_jit.output_transform(m, b, out[part])

        over_blocks(blocks, len(self.blocks), x.nbytes + out.nbytes)
        return out

    def backward(
        self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray, want_x: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(dL/dkernel (3, 3, C, F), dL/dx (N, H, W, C) or None) in one pass over the blocks.

        Per block: V from ``x``, dM from ``grad_out``; dU += V^T dM (then dg = G^T dU G); when ``want_x``,
        dV = dM U^T (into V's buffer) and B dV B^T added back onto the tiles. dU is summed block by block
        within :data:`GROUPS` fixed groups of blocks, then group by group: the same sum on any thread count.
        """
        dtype = grad_out.dtype
        channels = self.x_shape[3]
        groups = min(GROUPS, len(self.blocks))
        bounds = [len(self.blocks) * i // groups for i in range(groups + 1)]
        grad_us = np.zeros((groups, 16, channels, self.filters), dtype)
        grad_x = np.empty(self.x_shape, dtype) if want_x else None
        u_t = np.ascontiguousarray(kernel_transform(kernel.astype(dtype, copy=False)).transpose(0, 2, 1))
        (pt, _), (pl, _) = self.tile_geometry.pads

        def blocks(g0: int, g1: int) -> None:
            block_u = np.empty((16, channels, self.filters), dtype)
            for group in range(g0, g1):
                for part in self.blocks[bounds[group] : bounds[group + 1]]:
                    v, dm = self._buffers(part.stop - part.start, dtype)
                    self._transform_input(x, part, v)
                    winograd_jit.grad_transform(grad_out[part], dm)
                    v2, dm2 = v.reshape(16, -1, channels), dm.reshape(16, -1, self.filters)
                    np.matmul(v2.transpose(0, 2, 1), dm2, out=block_u)
                    grad_us[group] += block_u
                    if grad_x is not None:
                        np.matmul(dm2, u_t, out=v2)  # V is used: its buffer takes dV
                        winograd_jit.input_adjoint(v, grad_x[part], (pt, pl))

        over_blocks(blocks, groups, x.nbytes + grad_out.nbytes)
        grad_u = grad_us[0]
        for group in range(1, groups):
            grad_u += grad_us[group]
        return _kernel_gradient(grad_u), grad_x
