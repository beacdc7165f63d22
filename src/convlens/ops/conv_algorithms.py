"""The convolution algorithms: one class each, forward and backward side by side.

The algorithms that only compute input gradients (``transposed``, ``col2im``, ``col2im_channels_first``) are
in :mod:`convlens.ops.conv_input_grads`, those that exist only as compiled kernels (``depthwise_compiled``,
``winograd_blocked``) in :mod:`convlens.ops.conv_compiled`, ``im2col_blocked`` (im2col a block of images at a
time) in :mod:`convlens.ops.conv_blocked`. Every class computes the same 2-D convolution (channels-last,
kernels (KH, KW, C / G, F)) exactly; they differ in speed. Each says which roles it plays (``forward``,
``kernel_grad`` with the bias gradient, ``input_grad``) and, in ``applies``, when it cannot compute a problem.
Which one runs is decided by the table in :mod:`convlens.ops.conv_selection`, never here.
``Conv2DPlan(..., algorithm=NAME)`` or ``CONVLENS_CONV_ALGORITHM=NAME`` force one;
``convlens.ops.conv_algorithms()`` lists them.

====================== ========================= =====================================================
name                   roles                     what it does
====================== ========================= =====================================================
im2col                 forward, kernel_grad      one im2col copy + one GEMM, bias in the GEMM
im2col_channels_first  forward, kernel_grad      the same matrix transposed, built by slab copies per tap
pointwise              all three                 1x1 stride 1 unpadded: the input as it lies, one GEMM
grouped_gemm           all three                 im2col + one batched GEMM per group, col2im adds
depthwise              all three                 k*k broadcast multiply-adds (one channel per group)
winograd               all three                 F(2x2, 3x3): 16 GEMMs over 4x4 tiles
transposed             input_grad                full convolution with the flipped kernel
col2im                 input_grad                window gradients by one GEMM, added back by col2im
col2im_channels_first  input_grad                the same, laid out tap-major and channel-first
====================== ========================= =====================================================

Shapes (channels_last):
    x, grad_x: (N, H, W, C); kernel: (KH, KW, C / G, F); bias: (F,); out, grad_out: (N, OH, OW, F)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.depthwise import depthwise_forward, depthwise_input_grad, depthwise_kernel_grad
from convlens.ops.jit import compiled_for
from convlens.ops.linalg import GRADS_CHUNK_ROWS, add_row, gemm_grads, matmul_nn_long, matmul_tn
from convlens.ops.parallel import image_blocks, over_blocks_one_blas_thread
from convlens.ops.strategy import Strategy
from convlens.ops.windows import Workspace, col2im, im2col, im2col_channels_first
from convlens.ops.winograd import WinogradConv

__all__ = [
    "CONV_STRATEGIES",
    "POINTWISE_BLOCKED_MIN_BYTES",
    "POINTWISE_BLOCK_BYTES",
    "ConvProblem",
    "ConvStrategy",
    "Depthwise",
    "GroupedGemm",
    "Im2col",
    "Im2colChannelsFirst",
    "Pointwise",
    "Winograd",
]

Grads = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ConvProblem:
    """What a strategy needs to know: shapes, geometry, groups and the dtype it computes in."""

    x_shape: tuple[int, int, int, int]
    kernel_shape: tuple[int, int, int, int]
    geometry: WindowGeometry
    groups: int
    dtype: np.dtype[Any]

    @property
    def channels(self) -> int:
        """C, input channels."""
        return self.x_shape[3]

    @property
    def filters(self) -> int:
        """F, output channels."""
        return self.kernel_shape[3]

    @property
    def channels_per_group(self) -> int:
        """C / G."""
        return self.kernel_shape[2]

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, OH, OW, F)."""
        oh, ow = self.geometry.output_size
        return (self.x_shape[0], oh, ow, self.filters)

    @property
    def rows(self) -> int:
        """N * OH * OW: rows of the im2col matrix."""
        batch, oh, ow, _ = self.output_shape
        return batch * oh * ow


class ConvStrategy(Strategy):
    """A convolution algorithm bound to one problem; a plan calls the methods of the roles it chose."""

    roles: ClassVar[tuple[str, ...]] = ()

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        self.problem = problem
        self.workspace = workspace
        self.dtype = problem.dtype
        #: Set by the plan before ``kernel_grad`` when this strategy's ``input_grad`` follows for the same
        #: ``grad_out`` (a strategy may then compute both in one pass).
        self.input_grad_follows = False

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """(N, OH, OW, F) from x (N, H, W, C), kernel (KH, KW, C / G, F), optional bias (F,)."""
        raise NotImplementedError

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        """(grad_kernel (KH, KW, C / G, F), grad_bias (F,)) for grad_out (N, OH, OW, F)."""
        raise NotImplementedError

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """grad_x (N, H, W, C) for grad_out (N, OH, OW, F)."""
        raise NotImplementedError

    def _g2d(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out as a C-contiguous (N*OH*OW, F) matrix of the working dtype."""
        return np.ascontiguousarray(grad_out, dtype=self.dtype).reshape(self.problem.rows, self.problem.filters)


def kernel_with_bias_row(kernel: np.ndarray, bias: np.ndarray | None, dtype: Any) -> np.ndarray:
    """The kernel as a (KH*KW*C + 1, F) matrix whose last row is the bias (zeros without one): it meets the ones
    column of an im2col matrix, so one GEMM adds the bias.

    Shapes:
        kernel: (KH, KW, C, F); bias: (F,) or None
    """
    filters = kernel.shape[-1]
    depth = kernel.size // filters
    kernel_ones = np.empty((depth + 1, filters), dtype)
    kernel_ones[:depth] = kernel.reshape(depth, filters)
    kernel_ones[depth] = 0 if bias is None else bias
    return kernel_ones


def needs_compiled(problem: ConvProblem) -> str | None:
    """Why a compiled-only algorithm cannot run for the problem's dtype, or None when it can."""
    if not compiled_for(problem.dtype):
        return (
            f"needs compiled kernels for {problem.dtype.name} (numba installed, CONVLENS_JIT not 0, "
            "the dtype in CONVLENS_JIT_DTYPES)"
        )
    return None


def needs_one_group(problem: ConvProblem) -> str | None:
    if problem.groups != 1:
        return f"computes one group, got groups={problem.groups} (grouped_gemm handles groups)"
    return None


class Im2col(ConvStrategy):
    """im2col + one GEMM; the bias rides in the GEMM: a ones column meets a bias row in the kernel."""

    name = "im2col"
    roles = ("forward", "kernel_grad")
    summary = "one im2col copy and one GEMM, the bias in the GEMM (ones column); kernel + bias gradient in one GEMM"
    measured = (
        "the default; folding the bias into the GEMM saves one pass over the output and gives the bias "
        "gradient as the kernel-gradient GEMM's last row (commit 41e4698)"
    )

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_one_group(problem)

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self._cols: np.ndarray | None = None
        self._cols_source: np.ndarray | None = None

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        cols2d = self._im2col_ones(x.astype(self.dtype, copy=False))
        self._cols, self._cols_source = cols2d, x  # the kernel gradient reuses the matrix
        out = cols2d @ kernel_with_bias_row(kernel, bias, self.dtype)
        return out.reshape(self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        depth = int(np.prod(self.problem.kernel_shape[:3]))
        g2d = self._g2d(grad_out)
        cols = self._cols
        fresh = cols is None or cols.dtype != self.dtype or x is not self._cols_source
        self._cols, self._cols_source = None, None
        cols2d = self._im2col_ones(x.astype(self.dtype, copy=False)) if fresh or cols is None else cols
        grads_ones = matmul_tn(cols2d, g2d)  # (KH*KW*C + 1, F): kernel gradient, then the bias gradient
        grad_kernel = np.ascontiguousarray(grads_ones[:depth]).reshape(self.problem.kernel_shape)
        return grad_kernel, grads_ones[depth].copy()

    def _im2col_ones(self, x: np.ndarray) -> np.ndarray:
        """im2col of ``x`` as a (N*OH*OW, KH*KW*C + 1) matrix whose last column is all ones."""
        kh, kw, cg, _ = self.problem.kernel_shape
        batch, oh, ow = self.problem.output_shape[:3]
        depth = kh * kw * cg
        shape = (batch * oh * ow, depth + 1)

        def ones(buffer: np.ndarray) -> None:
            buffer[:, depth] = 1

        if self.workspace is not None:
            cols = self.workspace.get("cols_ones", shape, x.dtype, init=ones)
        else:
            cols = np.empty(shape, x.dtype)
            ones(cols)
        view = cols[:, :depth].reshape(batch, oh, ow, kh, kw, cg)
        if not np.may_share_memory(view, cols):  # pragma: no cover - NumPy always gives a view here
            raise RuntimeError("im2col: the destination view was copied")
        im2col(x, self.problem.geometry, workspace=self.workspace, out=view)
        return cols


class Im2colChannelsFirst(ConvStrategy):
    """:class:`Im2col` with the matrix transposed, (KH*KW*C + 1, N*OH*OW): built by one slab copy per tap.

    With few input channels im2col's rows are short and its copies move C floats at a time; tap-major and
    channel-first, every copy moves whole output rows. The GEMMs read the matrix transposed (BLAS flags, no
    copy); the bias rides in them as a ones row.
    """

    name = "im2col_channels_first"
    roles = ("forward", "kernel_grad")
    summary = "im2col transposed (tap-major, channel-first): slab copies of whole rows, bias in the GEMM"
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_one_group(problem)

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self._cols: np.ndarray | None = None
        self._cols_source: np.ndarray | None = None

    def _matrix(self, x: np.ndarray) -> np.ndarray:
        """(KH*KW*C + 1, N*OH*OW): the windows of ``x``, then a row of ones."""
        kh, kw, cg, _ = self.problem.kernel_shape
        batch, oh, ow = self.problem.output_shape[:3]
        depth = kh * kw * cg
        shape = (depth + 1, self.problem.rows)

        def ones(buffer: np.ndarray) -> None:
            buffer[depth] = 1

        workspace = self.workspace if self.workspace is not None else Workspace()
        cols = workspace.get("cols_t", shape, x.dtype, init=ones)
        im2col_channels_first(x, self.problem.geometry, cols[:depth].reshape(kh, kw, cg, batch, oh, ow), workspace)
        return cols

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        cols = self._matrix(x.astype(self.dtype, copy=False))
        self._cols, self._cols_source = cols, x
        return (cols.T @ kernel_with_bias_row(kernel, bias, self.dtype)).reshape(self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        depth = int(np.prod(self.problem.kernel_shape[:3]))
        cols = self._cols
        fresh = cols is None or cols.dtype != self.dtype or x is not self._cols_source
        self._cols, self._cols_source = None, None
        if fresh or cols is None:
            cols = self._matrix(x.astype(self.dtype, copy=False))
        grads_ones = matmul_nn_long(cols, self._g2d(grad_out))  # (KH*KW*C + 1, F): kernel, then bias gradient
        grad_kernel = np.ascontiguousarray(grads_ones[:depth]).reshape(self.problem.kernel_shape)
        return grad_kernel, grads_ones[depth].copy()


#: :class:`Pointwise` computes outputs of this many bytes or more in blocks of rows (see there).
POINTWISE_BLOCKED_MIN_BYTES = 16 << 20
#: The output bytes of one such block.
POINTWISE_BLOCK_BYTES = 512 << 10


class Pointwise(ConvStrategy):
    """A 1x1, stride-1, unpadded convolution is one GEMM of the input as it lies: (N*H*W, C) @ (C, F).

    No im2col copy; the gradients are the two transposed GEMMs. An output of :data:`POINTWISE_BLOCKED_MIN_BYTES`
    or more is computed in blocks of rows (:data:`POINTWISE_BLOCK_BYTES` of output), the bias added to each while
    it is in cache, the threads taking whole blocks with one BLAS thread each
    (:func:`convlens.ops.parallel.over_blocks_one_blas_thread`): forward, float32, AMD EPYC, interleaved, ms,
    one GEMM + bias pass -> blocks: (100352, 32) -> 64 9.6 -> 8.0 and 11.0 -> 10.1 (2 threads / 1 thread),
    (100352, 16) -> 128 13.3 -> 8.2 / 19.3 -> 13.7, (21632, 32) -> 256 5.2 -> 4.4 / 9.8 -> 8.1; below ~16 MB
    of output the two are level or the blocks lose (up to 1.9x on 4608 rows: the threads' hand-off).
    """

    name = "pointwise"
    roles = ("forward", "kernel_grad", "input_grad")
    _grad_x: tuple[np.ndarray, np.ndarray] | None = None  # (grad_out, grad_x) kept by kernel_grad
    summary = "1x1 stride 1: x (N*H*W, C) @ kernel (C, F) without im2col; gradients x^T g and g kernel^T"
    measured = (
        "fwd+bwd (128, 13x13, 32->64): 7.1 ms im2col/transposed -> 2.4 ms; (128, 6x6, 64->128): 4.1 -> 1.5 ms "
        "(Intel Xeon, 1 thread)"
    )

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        g = problem.geometry
        if g.kernel_size != (1, 1) or g.strides != (1, 1) or g.is_padded:
            return (
                f"needs a 1x1 kernel, stride 1 and no padding, got {g.kernel_size[0]}x{g.kernel_size[1]}, "
                f"strides {g.strides}, pads {g.pads}"
            )
        return needs_one_group(problem)

    def _x2d(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, self.dtype).reshape(self.problem.rows, self.problem.channels)

    def _k2d(self, kernel: np.ndarray) -> np.ndarray:
        return kernel.astype(self.dtype, copy=False).reshape(self.problem.channels, self.problem.filters)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        x2d, k2d = self._x2d(x), self._k2d(kernel)
        b = None if bias is None else bias.astype(self.dtype, copy=False)
        rows, filters = x2d.shape[0], k2d.shape[1]
        per_row = filters * self.dtype.itemsize
        if rows * per_row < POINTWISE_BLOCKED_MIN_BYTES:
            out = x2d @ k2d
            if b is not None:
                add_row(out, b)
            return out.reshape(self.problem.output_shape)
        out = np.empty((rows, filters), self.dtype)
        blocks = image_blocks(rows, per_row, POINTWISE_BLOCK_BYTES)  # (blocks of rows)

        def run(b0: int, b1: int) -> None:
            for block in blocks[b0:b1]:
                part = out[block]
                np.matmul(x2d[block], k2d, out=part)
                if b is not None:
                    part += b  # (while the block is in cache)

        over_blocks_one_blas_thread(run, len(blocks), x2d.nbytes + out.nbytes)
        return out.reshape(self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        """Kernel and bias gradients; with ``input_grad_follows`` the input gradient too, in the same pass over
        ``grad_out`` (:func:`convlens.ops.linalg.gemm_grads`)."""
        g2d = self._g2d(grad_out)
        if self.input_grad_follows:
            grad_k, grad_bias, grad_x = gemm_grads(self._x2d(x), g2d, np.ascontiguousarray(self._k2d(kernel)))
            self._grad_x = (grad_out, grad_x)
            return grad_k.reshape(self.problem.kernel_shape), grad_bias
        grad_kernel = matmul_tn(self._x2d(x), g2d, chunk_rows=GRADS_CHUNK_ROWS).reshape(self.problem.kernel_shape)
        return grad_kernel, np.ones(self.problem.rows, self.dtype) @ g2d

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        kept, self._grad_x = self._grad_x, None
        if kept is not None and kept[0] is grad_out:
            return kept[1].reshape(self.problem.x_shape)
        return (self._g2d(grad_out) @ self._k2d(kernel).T).reshape(self.problem.x_shape)


class GroupedGemm(ConvStrategy):
    """im2col, then per group one GEMM of its channels (a batched matmul); the input gradient by col2im."""

    name = "grouped_gemm"
    roles = ("forward", "kernel_grad", "input_grad")
    summary = "im2col + one batched GEMM over the groups; input gradient by batched GEMM + col2im"
    measured = "the general path for groups > 1 (no measurement: nothing else computes grouped convolutions)"

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self._cols: np.ndarray | None = None
        self._cols_source: np.ndarray | None = None

    def _split(self) -> tuple[int, int, int, int, int]:
        kh, kw, cg, filters = self.problem.kernel_shape
        g = self.problem.groups
        return kh * kw, cg, g, filters // g, kh * kw * cg

    def _cols_by_group(self, cols: np.ndarray) -> np.ndarray:
        taps, cg, g, _, depth = self._split()
        return cols.reshape(self.problem.rows, taps, g, cg).transpose(2, 0, 1, 3).reshape(g, self.problem.rows, depth)

    def _kernel_by_group(self, kernel: np.ndarray) -> np.ndarray:
        taps, cg, g, fg, depth = self._split()
        return kernel.astype(self.dtype).reshape(taps, cg, g, fg).transpose(2, 0, 1, 3).reshape(g, depth, fg)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        cols = im2col(x.astype(self.dtype, copy=False), self.problem.geometry, workspace=self.workspace)
        self._cols, self._cols_source = cols, x
        out_g = self._cols_by_group(cols) @ self._kernel_by_group(kernel)
        out = out_g.transpose(1, 0, 2).reshape(self.problem.rows, self.problem.filters)
        if bias is not None:
            out += bias.astype(self.dtype, copy=False)
        return out.reshape(self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        taps, cg, g, fg, _ = self._split()
        g2d = self._g2d(grad_out)
        cols = self._cols
        fresh = cols is None or cols.dtype != self.dtype or x is not self._cols_source
        self._cols, self._cols_source = None, None
        if fresh or cols is None:
            cols = im2col(x.astype(self.dtype, copy=False), self.problem.geometry, workspace=self.workspace)
        grad_bias = np.ones(self.problem.rows, self.dtype) @ g2d
        g_g = g2d.reshape(self.problem.rows, g, fg).transpose(1, 0, 2)
        gk = self._cols_by_group(cols).transpose(0, 2, 1) @ g_g  # (G, KH*KW*CG, FG)
        grad_kernel = np.ascontiguousarray(
            gk.reshape(g, taps, cg, fg).transpose(1, 2, 0, 3).reshape(self.problem.kernel_shape)
        )
        return grad_kernel, grad_bias

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        taps, cg, g, fg, _ = self._split()
        kh, kw = self.problem.geometry.kernel_size
        batch, oh, ow = self.problem.output_shape[:3]
        g_g = self._g2d(grad_out).reshape(self.problem.rows, g, fg).transpose(1, 0, 2)
        gc = g_g @ self._kernel_by_group(kernel).transpose(0, 2, 1)  # (G, rows, KH*KW*CG)
        grad_cols = gc.reshape(g, self.problem.rows, taps, cg).transpose(1, 2, 0, 3)
        return col2im(
            np.ascontiguousarray(grad_cols).reshape(batch, oh, ow, kh, kw, cg * g),
            self.problem.geometry,
            workspace=self.workspace,
        )


class Depthwise(ConvStrategy):
    """One input channel per group: k*k broadcast multiply-adds instead of per-group GEMMs (ops/depthwise.py)."""

    name = "depthwise"
    roles = ("forward", "kernel_grad", "input_grad")
    summary = "k*k broadcast multiply-adds of each input channel with its filters"
    measured = "per-group GEMMs with a single input channel are mostly call overhead (see the selection table)"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        if problem.channels_per_group != 1:
            return f"needs one input channel per group (groups == channels), got {problem.channels_per_group}"
        return None

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        dtype = self.dtype
        x, kernel = x.astype(dtype, copy=False), kernel.astype(dtype, copy=False)
        return depthwise_forward(self.problem.geometry, self.problem.output_shape, x, kernel, bias)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        g = grad_out.astype(self.dtype, copy=False)
        return depthwise_kernel_grad(self.problem.geometry, g, x.astype(self.dtype, copy=False), kernel.shape)

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        g = grad_out.astype(self.dtype, copy=False)
        k = kernel.astype(self.dtype, copy=False)
        return depthwise_input_grad(self.problem.geometry, g, k, self.problem.x_shape)


class Winograd(ConvStrategy):
    """F(2x2, 3x3) Winograd (ops/winograd.py): 16 GEMMs of (tiles, C) @ (C, F) instead of 36 MACs per 2x2 tile."""

    name = "winograd"
    roles = ("forward", "kernel_grad", "input_grad")
    summary = "F(2x2, 3x3): transforms of 4x4 input tiles, 16 GEMMs, inverse transform; gradients share dM"
    measured = "2.25x fewer multiply-adds; wins for wide layers only (see the selection table)"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        g = problem.geometry
        if g.kernel_size != (3, 3):
            return f"needs a 3x3 kernel, got {g.kernel_size[0]}x{g.kernel_size[1]}"
        if g.strides != (1, 1) or g.dilation_rate != (1, 1):
            return f"needs stride 1 and no dilation, got strides {g.strides}, dilation {g.dilation_rate}"
        return needs_one_group(problem)

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self.conv = WinogradConv(problem.x_shape, problem.filters, problem.geometry, workspace or Workspace())

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        dtype = self.dtype
        b = None if bias is None else bias.astype(dtype, copy=False)
        return self.conv.forward(x.astype(dtype, copy=False), kernel.astype(dtype, copy=False), b, source=x)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        g = np.ascontiguousarray(grad_out.astype(self.dtype, copy=False))
        grad_bias = np.ones(self.problem.rows, self.dtype) @ g.reshape(self.problem.rows, self.problem.filters)
        return self.conv.kernel_gradient(g, x), grad_bias

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        g = np.ascontiguousarray(grad_out.astype(self.dtype, copy=False))
        return self.conv.input_gradient(g, kernel)


#: The NumPy convolution strategies that compute the forward pass (the input-gradient-only ones in
#: :mod:`convlens.ops.conv_input_grads` and the compiled ones follow them in ``conv_algorithms()``).
CONV_STRATEGIES: tuple[type[ConvStrategy], ...] = (
    Im2col,
    Im2colChannelsFirst,
    Pointwise,
    GroupedGemm,
    Depthwise,
    Winograd,
)
