"""The convolution algorithms that exist only as compiled (Numba) kernels: one class each, as in
:mod:`convlens.ops.conv_algorithms` (whose NumPy algorithms are their references).

====================== ========================= =====================================================
name                   roles                     what it does
====================== ========================= =====================================================
depthwise_compiled     all three                 :class:`Depthwise` as kernels: one pass per role
winograd_blocked       all three                 :class:`Winograd` a few images at a time, tiles in cache
winograd4_blocked      forward                   Winograd F(4x4, 3x3) a few images at a time (gradients: F(2x2))
direct_compiled        forward, kernel_grad      the convolution from shifted image planes, no im2col
direct_filters         forward, kernel_grad      sums in registers, 3 x 32 or 6 x 16 pixels (taps) x filters
pointwise_compiled     all three                 :class:`Pointwise` with direct_filters' blocks as its forward
transposed_direct      input_grad                :class:`Transposed`'s full convolution run by the direct kernel
====================== ========================= =====================================================

Each applies only where compiled kernels run for its dtype (Numba installed, ``CONVLENS_JIT`` not 0, the
dtype in ``CONVLENS_JIT_DTYPES``); the selection table (:mod:`convlens.ops.conv_selection`) decides when.

Shapes (channels_last):
    x, grad_x: (N, H, W, C); kernel: (KH, KW, C / G, F); bias: (F,); out, grad_out: (N, OH, OW, F)
"""

from __future__ import annotations

import numpy as np

from convlens.ops.conv_algorithms import (
    ConvProblem,
    ConvStrategy,
    Depthwise,
    Grads,
    Pointwise,
    Winograd,
    needs_compiled,
    needs_one_group,
)
from convlens.ops.conv_input_grads import Transposed
from convlens.ops.depthwise_jit import depthwise_forward_jit, depthwise_input_grad_jit, depthwise_kernel_grad_jit
from convlens.ops.direct_filters_jit import (
    BLOCKS,
    block_filters,
    direct_filters_forward_jit,
    direct_filters_kernel_grad_jit,
    pointwise_jit,
)
from convlens.ops.direct_jit import direct_forward_jit, direct_kernel_grad_jit
from convlens.ops.windows import Workspace
from convlens.ops.winograd4 import Winograd4Conv
from convlens.ops.winograd_blocked import WinogradBlockedConv

__all__ = [
    "COMPILED_STRATEGIES",
    "DepthwiseCompiled",
    "DirectCompiled",
    "DirectFilters",
    "PointwiseCompiled",
    "TransposedDirect",
    "Winograd4Blocked",
    "WinogradBlocked",
]


def needs_filter_blocks(problem: ConvProblem) -> str | None:
    """Why the register-blocked kernels cannot take the problem's filters, or None when a block divides them."""
    if block_filters(problem.filters) is None:
        return f"needs a multiple of {min(BLOCKS)} filters, got {problem.filters}"
    return None


class DepthwiseCompiled(Depthwise):
    """:class:`Depthwise` as Numba kernels (ops/depthwise_jit.py): one pass per role, channels innermost;
    with stride 1 along the width and one filter per channel, each tap runs as one span of the output row."""

    name = "depthwise_compiled"
    summary = "compiled depthwise kernels: one pass over each image per role, no padding copy, no temporaries"
    measured = (
        "fwd+bwd (128, 15x15, 32) 3x3: 19 ms NumPy depthwise -> 1.1 ms; (128, 13x13, 64) stride 2: 8.2 -> 0.9 ms "
        "(Intel Xeon, 2 threads); row spans for (128, 15x15, 32): 4.4 -> 3.1 ms (AMD EPYC, 1 thread)"
    )

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_compiled(problem) or super().applies(problem)

    def _kernel(self, kernel: np.ndarray) -> np.ndarray:
        kh, kw, _, filters = self.problem.kernel_shape
        return np.ascontiguousarray(kernel, self.dtype).reshape(kh, kw, filters)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        x = np.ascontiguousarray(x, self.dtype)
        return depthwise_forward_jit(x, self._kernel(kernel), bias, self.problem.geometry, self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        g = np.ascontiguousarray(grad_out, self.dtype)
        grad_kernel, grad_bias = depthwise_kernel_grad_jit(
            np.ascontiguousarray(x, self.dtype), g, self.problem.geometry
        )
        return grad_kernel.reshape(self.problem.kernel_shape), grad_bias

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        g = np.ascontiguousarray(grad_out, self.dtype)
        return depthwise_input_grad_jit(g, self._kernel(kernel), self.problem.geometry, self.problem.x_shape)


class WinogradBlocked(ConvStrategy):
    """:class:`Winograd` over blocks of images whose transformed tiles fit in cache (ops/winograd_blocked.py)."""

    name = "winograd_blocked"
    roles = ("forward", "kernel_grad", "input_grad")
    summary = "F(2x2, 3x3) a few images at a time: V and M stay in cache; the backward recomputes V per block"
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_compiled(problem) or Winograd.applies(problem)

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self.conv = WinogradBlockedConv(problem.x_shape, problem.filters, problem.geometry, workspace or Workspace())
        self._grad_x: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        return self.conv.forward(np.ascontiguousarray(x, self.dtype), kernel.astype(self.dtype, copy=False), bias)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        """Kernel and bias gradients; with ``input_grad_follows`` the input gradient too, from the same pass."""
        g = np.ascontiguousarray(grad_out, self.dtype)
        grad_bias = np.ones(self.problem.rows, self.dtype) @ g.reshape(self.problem.rows, self.problem.filters)
        grad_kernel, grad_x = self.conv.backward(
            g, np.ascontiguousarray(x, self.dtype), kernel, self.input_grad_follows
        )
        self._grad_x = (grad_out, grad_x) if grad_x is not None else None
        return grad_kernel, grad_bias

    def input_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        kept, self._grad_x = self._grad_x, None
        if kept is not None and kept[0] is grad_out:
            return kept[1]
        g = np.ascontiguousarray(grad_out, self.dtype)
        grad_x = self.conv.backward(g, np.ascontiguousarray(x, self.dtype), kernel, True)[1]
        return grad_x  # type: ignore[return-value]


class Winograd4Blocked(ConvStrategy):
    """Winograd F(4x4, 3x3) forward over blocks of images (ops/winograd4.py): 36 GEMMs over a quarter of F(2x2)'s
    tiles, 0.56x its multiply-adds. Forward only: the selection table gives its gradients to ``winograd_blocked``,
    which recomputes its own transformed input per block."""

    name = "winograd4_blocked"
    roles = ("forward",)
    summary = "F(4x4, 3x3): 6x6 input tiles, 36 GEMMs, 4x4 output tiles, blocks in cache; float32 error ~4e-6"
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_compiled(problem) or Winograd.applies(problem)

    def __init__(self, problem: ConvProblem, workspace: Workspace | None) -> None:
        super().__init__(problem, workspace)
        self.conv = Winograd4Conv(problem.x_shape, problem.filters, problem.geometry, workspace or Workspace())

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        return self.conv.forward(np.ascontiguousarray(x, self.dtype), kernel, bias)


class DirectCompiled(ConvStrategy):
    """The forward and kernel gradient of few-channel, few-filter convolutions as Numba kernels
    (ops/direct_jit.py)."""

    name = "direct_compiled"
    roles = ("forward", "kernel_grad")
    summary = (
        "direct convolution from shifted, zero-padded image planes (stride 1): no im2col, no thin GEMM; the kernel "
        "gradient as dot products of those planes with grad_out's"
    )
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        if problem.geometry.strides != (1, 1):
            return f"needs stride 1, got strides {problem.geometry.strides}"
        return needs_compiled(problem) or needs_one_group(problem)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        x = np.ascontiguousarray(x, self.dtype)
        k = np.ascontiguousarray(kernel, self.dtype)
        return direct_forward_jit(x, k, bias, self.problem.geometry, self.problem.output_shape)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        x = np.ascontiguousarray(x, self.dtype)
        g = np.ascontiguousarray(grad_out, self.dtype)
        return direct_kernel_grad_jit(x, g, self.problem.geometry, self.problem.kernel_shape)


class DirectFilters(ConvStrategy):
    """The forward of few-channel convolutions with many filters (a first layer: RGB in, 32 filters out) as a
    register-blocked Numba kernel (ops/direct_filters_jit.py): 3 output pixels x 32 filters (or 6 x 16, for a
    filter count 32 does not divide) of running sums in AVX registers, no im2col copy, no thin GEMM. Its kernel
    gradient keeps taps x filters sums over the output pixels; where a window row (KW * C floats) fills its runs
    of taps poorly the selection table gives the kernel gradient to ``im2col_channels_first`` or
    ``im2col_blocked``, which build their matrices in the backward pass."""

    name = "direct_filters"
    roles = ("forward", "kernel_grad")
    summary = "direct convolution, 3 pixels x 32 (or 6 x 16) filters of sums in registers (any stride and padding)"
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        if problem.geometry.dilation_rate[1] != 1:
            return f"needs dilation 1 along the width, got dilation {problem.geometry.dilation_rate}"
        return needs_filter_blocks(problem) or needs_compiled(problem) or needs_one_group(problem)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        x = np.ascontiguousarray(x, self.dtype)
        return direct_filters_forward_jit(x, kernel.astype(self.dtype, copy=False), bias, self.problem.geometry)

    def kernel_grad(self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> Grads:
        x = np.ascontiguousarray(x, self.dtype)
        g = np.ascontiguousarray(grad_out, self.dtype)
        return direct_filters_kernel_grad_jit(x, g, self.problem.geometry, self.problem.kernel_shape)


class PointwiseCompiled(Pointwise):
    """:class:`Pointwise` whose forward is a register-blocked Numba kernel (ops/direct_filters_jit.py): 3 rows x 32
    filters (or 6 x 16) of running sums over the input's rows, which for a 1x1 convolution are its pixels. OpenBLAS
    runs these skinny GEMMs (K = C = 16-64) well below its rate, then the bias takes another pass over the output.
    The gradients are :class:`Pointwise`'s."""

    name = "pointwise_compiled"
    summary = "1x1 stride 1: x (N*H*W, C) @ kernel (C, F) + bias as 3 x 32 (or 6 x 16) sums in registers"
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return needs_filter_blocks(problem) or Pointwise.applies(problem) or needs_compiled(problem)

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        out = pointwise_jit(self._x2d(x), self._k2d(kernel), bias)  # (pointwise_jit blocks the kernel: a copy)
        return out.reshape(self.problem.output_shape)


class TransposedDirect(Transposed):
    """The stride-1 input gradient of a few-channel, few-filter convolution by the direct kernel: grad_out,
    padded, convolved with the flipped, transposed kernel (:class:`Transposed`'s full convolution, which
    :class:`DirectCompiled`'s forward computes instead of an im2col + GEMM). No window-gradient matrix, no col2im
    adds: for LeNet-5's first layer, (128, 28x28, 1->6) 5x5, that matrix is (100352, 25) floats written and then
    added back 25 times over one channel."""

    name = "transposed_direct"
    roles = ("input_grad",)
    summary = "full convolution of grad_out with the flipped, transposed kernel by the direct kernel (stride 1)"
    measured = "see the selection table"

    @classmethod
    def applies(cls, problem: ConvProblem) -> str | None:
        return Transposed.applies(problem) or needs_compiled(problem)

    def _full_convolution(self, inner: ConvProblem, workspace: Workspace | None) -> ConvStrategy:
        return DirectCompiled(inner, None)


#: The compiled convolution strategies, in the order ``conv_algorithms()`` lists them (after the NumPy ones).
COMPILED_STRATEGIES: tuple[type[ConvStrategy], ...] = (
    DepthwiseCompiled,
    PointwiseCompiled,
    WinogradBlocked,
    DirectCompiled,
    Winograd4Blocked,
    DirectFilters,
    TransposedDirect,
)
