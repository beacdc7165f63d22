"""The blocked im2col algorithm, ``im2col_blocked``: :class:`convlens.ops.conv_algorithms.Im2col` a cache-sized
block of images at a time (its own module: ``conv_algorithms.py`` holds the whole-batch algorithms).

Shapes (channels_last):
    x: (N, H, W, C); kernel: (KH, KW, C, F); bias: (F,); out, grad_out: (N, OH, OW, F)
"""

from __future__ import annotations

import threading

import numpy as np

from convlens.ops.conv_algorithms import ConvProblem, ConvStrategy, Grads, kernel_with_bias_row, needs_one_group
from convlens.ops.linalg import GRADS_CHUNK_ROWS as CHUNK
from convlens.ops.linalg import matmul_tn
from convlens.ops.parallel import image_blocks, over_blocks_one_blas_thread, thread_buffer
from convlens.ops.windows import Workspace, im2col
from convlens.ops.windows_jit import im2col_rows_jit

__all__ = ["BLOCKED_COLS_BYTES", "BLOCKED_STRATEGIES", "KERNEL_GRAD_GROUPS", "Im2colBlocked"]

#: The im2col rows :class:`Im2colBlocked` builds at once (LeNet-5's 6 -> 16 layer, 1000 images, 1 thread:
#: 0.6-4.8 MB blocks all ran 16-18 ms; the whole batch's 60 MB 28-33 ms).
BLOCKED_COLS_BYTES = 2 << 20
#: Fixed groups of blocks whose kernel-gradient products are summed apart, then in group order (threads take
#: whole groups: the same sums on any thread count). Each block's product runs in chunks of rows
#: (:func:`convlens.ops.linalg.matmul_tn`, 256 rows): LeNet-5's 6 -> 16 layer fwd+bwd 0.97x the time of one
#: product a block at batch 128 (1 and 2 threads), 0.94x at batch 1000 with 1 thread (AMD EPYC, interleaved).
KERNEL_GRAD_GROUPS = 8


class Im2colBlocked(ConvStrategy):
    """:class:`Im2col` a block of images at a time: the im2col rows of about :data:`BLOCKED_COLS_BYTES` at once,
    each block's GEMM run while its rows are still in cache; nothing kept between forward and backward.

    The whole-batch matrix is 25 times the input for a 5x5 kernel (LeNet-5's 6 -> 16 layer: 60 MB for 1000
    images), so its copy and its thin GEMM (16 filters: OpenBLAS 31 GFLOP/s on 100,000 rows, 60 on 2,048)
    stream it through memory. The kernel gradient builds each block again (a copy in cache is cheaper than
    keeping 60 MB) and adds the blocks' ``cols^T g`` within :data:`KERNEL_GRAD_GROUPS` fixed groups of blocks,
    then group by group. With dilation 1 along the width the rows come from
    :func:`convlens.ops.windows_jit.im2col_rows_jit` (one slice per kernel row).

    The threads take whole blocks (or groups), each with its own buffer and one BLAS thread
    (:func:`convlens.ops.parallel.over_blocks_one_blas_thread`: the bits do not depend on the thread count), instead
    of splitting every block's copy and thin GEMM between them: (128, 14x14, 6 -> 16) 5x5 'valid', 2 threads,
    forward 1.22 -> 1.02 ms, kernel gradient 1.26 -> 1.04; 1000 images 9.0 -> 6.6 and 10.3 -> 7.0 (AMD EPYC,
    interleaved medians).
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

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self._local = threading.local()

    def _image_blocks(self) -> list[slice]:
        """The blocks of images: about :data:`BLOCKED_COLS_BYTES` of im2col rows each."""
        batch, oh, ow = self.problem.output_shape[:3]
        return image_blocks(batch, oh * ow * (self._depth() + 1) * self.dtype.itemsize, BLOCKED_COLS_BYTES)

    def _cols(self, x: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The im2col rows of images ``lo:hi`` (rows, KH*KW*C + 1), ones in the last column, in this thread's
        buffer (kept between calls: one per thread that ran this layer's blocks)."""
        _, oh, ow = self.problem.output_shape[:3]
        kh, kw, cg, _ = self.problem.kernel_shape
        depth = self._depth()

        def ones(buffer: np.ndarray) -> None:  # (written once per buffer: the bias row's column)
            buffer[:, depth] = 1

        cols = thread_buffer(self._local, "cols", ((hi - lo) * oh * ow, depth + 1), self.dtype, init=ones)
        if not im2col_rows_jit(x[lo:hi], cols, self.problem.geometry):
            view = cols[:, :depth].reshape(hi - lo, oh, ow, kh, kw, cg)
            im2col(x[lo:hi], self.problem.geometry, out=view)
        return cols

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        kernel_ones = kernel_with_bias_row(kernel, bias, self.dtype)
        out = np.empty((self.problem.rows, self.problem.filters), self.dtype)
        x = np.ascontiguousarray(x, self.dtype)
        pixels = self.problem.rows // self.problem.x_shape[0]
        blocks = self._image_blocks()

        def run(b0: int, b1: int) -> None:
            for block in blocks[b0:b1]:
                rows = slice(block.start * pixels, block.stop * pixels)
                np.matmul(self._cols(x, block.start, block.stop), kernel_ones, out=out[rows])

        over_blocks_one_blas_thread(run, len(blocks), x.nbytes + out.nbytes)
        return out.reshape(self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        depth, filters = self._depth(), self.problem.filters
        g2d = self._g2d(grad_out)
        x = np.ascontiguousarray(x, self.dtype)
        pixels = self.problem.rows // self.problem.x_shape[0]
        blocks = self._image_blocks()
        groups = min(KERNEL_GRAD_GROUPS, len(blocks))
        bounds = [len(blocks) * i // groups for i in range(groups + 1)]
        sums = np.zeros((groups, depth + 1, filters), self.dtype)

        def run(g0: int, g1: int) -> None:
            for group in range(g0, g1):
                for block in blocks[bounds[group] : bounds[group + 1]]:
                    rows = slice(block.start * pixels, block.stop * pixels)
                    # (in chunks of rows: one product over a block's ~3,400 rows ran slower, see GRADS_CHUNK_ROWS)
                    sums[group] += matmul_tn(self._cols(x, block.start, block.stop), g2d[rows], chunk_rows=CHUNK)

        over_blocks_one_blas_thread(run, groups, x.nbytes + g2d.nbytes)
        total = sums[0]
        for group in range(1, groups):
            total += sums[group]
        grad_kernel = np.ascontiguousarray(total[:depth]).reshape(self.problem.kernel_shape)
        return grad_kernel, total[depth].copy()


BLOCKED_STRATEGIES: tuple[type[ConvStrategy], ...] = (Im2colBlocked,)
