"""The blocked im2col algorithm, ``im2col_blocked``: :class:`convlens.ops.conv_algorithms.Im2col` a cache-sized
block of images at a time (its own module: ``conv_algorithms.py`` holds the whole-batch algorithms).

Shapes (channels_last):
    x: (N, H, W, C); kernel: (KH, KW, C, F); bias: (F,); out, grad_out: (N, OH, OW, F)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.ops.conv_algorithms import ConvProblem, ConvStrategy, Grads, kernel_with_bias_row, needs_one_group
from convlens.ops.windows import im2col
from convlens.ops.windows_jit import im2col_rows_jit

__all__ = ["BLOCKED_COLS_BYTES", "BLOCKED_STRATEGIES", "Im2colBlocked"]

#: The im2col rows :class:`Im2colBlocked` builds at once (LeNet-5's 6 -> 16 layer, 1000 images, 1 thread:
#: 0.6-4.8 MB blocks all ran 16-18 ms; the whole batch's 60 MB 28-33 ms).
BLOCKED_COLS_BYTES = 2 << 20


class Im2colBlocked(ConvStrategy):
    """:class:`Im2col` a block of images at a time: the im2col rows of about :data:`BLOCKED_COLS_BYTES` at once,
    each block's GEMM run while its rows are still in cache; nothing kept between forward and backward.

    The whole-batch matrix is 25 times the input for a 5x5 kernel (LeNet-5's 6 -> 16 layer: 60 MB for 1000
    images), so its copy and its thin GEMM (16 filters: OpenBLAS 31 GFLOP/s on 100,000 rows, 60 on 2,048)
    stream it through memory. The kernel gradient builds each block again (a copy in cache is cheaper than
    keeping 60 MB) and adds the blocks' ``cols^T g`` in block order (blocks fixed by the problem: the bits do
    not depend on the thread count). With dilation 1 along the width the rows come from
    :func:`convlens.ops.windows_jit.im2col_rows_jit` (one slice per kernel row).
    """

    name = "im2col_blocked"
    roles = ("forward", "kernel_grad")
    summary = "im2col + GEMM per block of images whose rows stay in cache; the kernel gradient rebuilds each block"
    measured = (
        "LeNet-5's 6 -> 16 5x5 layer, inference on 1000 images: 26.6 ms whole-batch im2col -> 15.4 ms "
        "(AMD EPYC, 1 thread, interleaved medians; more in conv_selection.IM2COL_BLOCKED_MEASURED)"
    )

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_one_group(problem)

    def _depth(self) -> int:
        kh, kw, cg, _ = self.problem.kernel_shape
        return kh * kw * cg

    def _blocks(self, x: np.ndarray) -> Any:
        """``(first row, last row, cols)`` per block of images: cols (rows, KH*KW*C + 1), ones in the last column."""
        batch, oh, ow = self.problem.output_shape[:3]
        kh, kw, cg, _ = self.problem.kernel_shape
        depth, pixels = self._depth(), oh * ow
        per = max(1, min(batch, BLOCKED_COLS_BYTES // (pixels * (depth + 1) * self.dtype.itemsize)))

        def ones(buffer: np.ndarray) -> None:
            buffer[:, depth] = 1

        shape = (per * pixels, depth + 1)
        if self.workspace is not None:
            buffer = self.workspace.get("cols_block", shape, self.dtype, init=ones)
        else:
            buffer = np.empty(shape, self.dtype)
            ones(buffer)
        x = np.ascontiguousarray(x, self.dtype)
        for lo in range(0, batch, per):
            hi = min(batch, lo + per)
            cols = buffer[: (hi - lo) * pixels]
            if not im2col_rows_jit(x[lo:hi], cols, self.problem.geometry):
                view = cols[:, :depth].reshape(hi - lo, oh, ow, kh, kw, cg)
                im2col(x[lo:hi], self.problem.geometry, workspace=self.workspace, out=view)
            yield lo * pixels, hi * pixels, cols

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        kernel_ones = kernel_with_bias_row(kernel, bias, self.dtype)
        out = np.empty((self.problem.rows, self.problem.filters), self.dtype)
        for lo, hi, cols in self._blocks(x):
            np.matmul(cols, kernel_ones, out=out[lo:hi])
        return out.reshape(self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        depth, filters = self._depth(), self.problem.filters
        g2d = self._g2d(grad_out)
        total = np.zeros((depth + 1, filters), self.dtype)
        part = np.empty_like(total)
        for lo, hi, cols in self._blocks(x):
            np.matmul(cols.T, g2d[lo:hi], out=part)
            total += part
        grad_kernel = np.ascontiguousarray(total[:depth]).reshape(self.problem.kernel_shape)
        return grad_kernel, total[depth].copy()


BLOCKED_STRATEGIES: tuple[type[ConvStrategy], ...] = (Im2colBlocked,)
