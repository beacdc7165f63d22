"""The convolution algorithms that only compute the input gradient: ``transposed``, ``col2im``,
``col2im_channels_first``, ``col2im_blocked`` (the others, which compute the forward pass too, are in
:mod:`convlens.ops.conv_algorithms`; which one runs is decided by :mod:`convlens.ops.conv_selection`).

Shapes (channels_last):
    x, grad_x: (N, H, W, C); kernel: (KH, KW, C / G, F); grad_out: (N, OH, OW, F)
"""

from __future__ import annotations

import threading

import numpy as np

from convlens.ops.conv_algorithms import ConvProblem, ConvStrategy, Im2col, needs_compiled, needs_one_group
from convlens.ops.parallel import image_blocks, over_blocks_one_blas_thread, thread_buffer
from convlens.ops.windows import Workspace, col2im, col2im_channels_first
from convlens.ops.windows_jit import col2im_jit

__all__ = [
    "COL2IM_BLOCK_BYTES",
    "INPUT_GRAD_STRATEGIES",
    "Col2im",
    "Col2imBlocked",
    "Col2imChannelsFirst",
    "Transposed",
]

#: The window gradients :class:`Col2imBlocked` computes at once.
COL2IM_BLOCK_BYTES = 2 << 20


class Transposed(ConvStrategy):
    """The stride-1 input gradient as a convolution: the padded grad_out with the flipped, transposed kernel.

    One im2col + GEMM (an :class:`Im2col` over the full-convolution geometry, its own buffers) and no
    col2im adds. The pads come from :meth:`WindowGeometry.full_convolution`.
    """

    name = "transposed"
    roles = ("input_grad",)
    summary = "full convolution of grad_out with the flipped, transposed kernel (im2col + GEMM, no col2im adds)"
    measured = "col2im's adds grow with C, this path's im2col with F (see the selection table)"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        g = problem.geometry
        if g.strides != (1, 1):
            return f"needs stride 1 (strided gradients need zero insertion), got strides {g.strides}"
        if any(p < 0 for pair in g.full_convolution_pads() for p in pair):
            return f"needs forward pads at most the dilated extent - 1, got pads {g.pads} for extent {g.extent}"
        return needs_one_group(problem)

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        kh, kw, channels, filters = problem.kernel_shape
        inner = ConvProblem(
            problem.output_shape, (kh, kw, filters, channels), problem.geometry.full_convolution(), 1, problem.dtype
        )
        self._inner = self._full_convolution(inner, workspace)

    def _full_convolution(self, inner: ConvProblem, workspace: Workspace | None) -> ConvStrategy:
        """The forward strategy that computes the full convolution ``inner`` (grad_out in, the input gradient
        out)."""
        return Im2col(inner, Workspace() if workspace is not None else None)

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        g = self._g2d(grad_out).reshape(self.problem.output_shape)
        flipped = kernel.astype(self.dtype, copy=False)[::-1, ::-1].transpose(0, 1, 3, 2)
        return self._inner.forward(g, flipped, None)


class Col2im(ConvStrategy):
    """Window gradients grad_out @ kernel^T (one GEMM), summed back onto the input by col2im (compiled if on)."""

    name = "col2im"
    roles = ("input_grad",)
    summary = "window gradients by one GEMM, added back onto the input by col2im (Numba kernel when available)"
    measured = "the default input gradient (with compiled col2im also for few channels: commit ad4b7d5)"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_one_group(problem)

    def _kernel_rows(self, kernel: np.ndarray) -> np.ndarray:
        """The kernel as (KH*KW*C, F), in the plan's dtype."""
        return kernel.astype(self.dtype, copy=False).reshape(-1, self.problem.kernel_shape[3])

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        kh, kw, cg, _ = self.problem.kernel_shape
        batch, oh, ow = self.problem.output_shape[:3]
        grad_cols = self._g2d(grad_out) @ self._kernel_rows(kernel).T
        return col2im(
            np.ascontiguousarray(grad_cols).reshape(batch, oh, ow, kh, kw, cg),
            self.problem.geometry,
            workspace=self.workspace,
        )


class Col2imChannelsFirst(Col2im):
    """:class:`Col2im` with the window gradients laid out tap-major and channel-first, (KH*KW*C, rows).

    With few channels the NumPy col2im adds runs of only C floats; this layout adds whole output rows.
    """

    name = "col2im_channels_first"
    roles = ("input_grad",)
    summary = "window gradients kernel @ grad_out^T, tap-major and channel-first: col2im adds whole output rows"
    measured = "few channels without the compiled col2im (see the selection table)"

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        kh, kw, cg, _ = self.problem.kernel_shape
        batch, oh, ow = self.problem.output_shape[:3]
        grad_taps = self._kernel_rows(kernel) @ self._g2d(grad_out).T
        return col2im_channels_first(
            grad_taps.reshape(kh, kw, cg, batch, oh, ow), self.problem.geometry, workspace=self.workspace
        )


class Col2imBlocked(Col2im):
    """:class:`Col2im` a block of images at a time: the window gradients of about :data:`COL2IM_BLOCK_BYTES`
    by one GEMM into a buffer kept between calls, added back onto the input by the compiled col2im while they
    are in cache.

    The whole-batch window gradients are KH*KW times grad_out's size over C / F (LeNet-5's 6 -> 16 5x5 layer: 7.7
    MB for 128 images): a fresh array every step, written by the GEMM and read back by col2im from memory.
    The threads take whole blocks, each with its own buffer (kept between calls) and one BLAS thread
    (:func:`convlens.ops.parallel.over_blocks_one_blas_thread`): (128, 14x14, 6 -> 16) 5x5 'valid', 2 threads,
    1.55 -> 1.45 ms, 1000 images 12.5 -> 10.3 ms; (32, 28x28, 64 -> 128) 3x3 stride 2 7.1 -> 6.5 ms (AMD EPYC,
    interleaved medians).
    """

    name = "col2im_blocked"
    roles = ("input_grad",)
    summary = "col2im a block of images at a time: window gradients of ~2 MB into a reused buffer, added back in cache"
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_compiled(problem) or needs_one_group(problem)

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self._local = threading.local()

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        kh, kw, cg, _ = self.problem.kernel_shape
        batch, oh, ow = self.problem.output_shape[:3]
        pixels, depth = oh * ow, kh * kw * cg
        blocks = image_blocks(batch, pixels * depth * self.dtype.itemsize, COL2IM_BLOCK_BYTES)
        g2d = self._g2d(grad_out)
        kernel_t = self._kernel_rows(kernel).T
        grad_x = np.empty(self.problem.x_shape, self.dtype)

        def run(b0: int, b1: int) -> None:
            for block in blocks[b0:b1]:
                lo, hi = block.start, block.stop
                cols = thread_buffer(self._local, "grad_cols", ((hi - lo) * pixels, depth), self.dtype)
                np.matmul(g2d[lo * pixels : hi * pixels], kernel_t, out=cols)
                if not col2im_jit(cols.reshape(hi - lo, oh, ow, kh, kw, cg), grad_x[lo:hi], self.problem.geometry):
                    raise RuntimeError(f"col2im_blocked: no compiled col2im for {self.dtype.name}")  # (applies checked)

        over_blocks_one_blas_thread(run, len(blocks), g2d.nbytes + grad_x.nbytes)
        return grad_x


#: The input-gradient-only strategies, in the registry's order.
INPUT_GRAD_STRATEGIES: tuple[type[ConvStrategy], ...] = (Transposed, Col2im, Col2imChannelsFirst, Col2imBlocked)
