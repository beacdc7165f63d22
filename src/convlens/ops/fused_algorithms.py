"""The two algorithms of the fused conv -> activation -> max-pool stage (:mod:`convlens.ops.fused`).

``conv_pool_gemm``: im2col rows grouped by the offset inside the pooling window, one GEMM per offset
(slab) folded into a running max while in cache (with Numba: per block of rows, one compiled pass for
max, winner, bias and ReLU); the backward routes each pooled gradient to its winner's slab and runs the
kernel-gradient GEMM over all slabs at once.

``conv_pool_direct``: compiled direct convolution (:mod:`convlens.ops.fused_jit`) for few input
channels, no im2col matrix at all. It needs Numba; the table in :mod:`convlens.ops.fused` picks it.

Both keep only which offset won each window (a small integer per pooled value) and give exactly the
gradients of the unfused layers, ties included (the first maximum in row-major window order).

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, C, F); window_max, winner: (N * QH * QW, F)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from convlens.ops.conv_plan import Conv2DGrads
from convlens.ops.fused_jit import conv_max_pool_backward_jit, conv_max_pool_forward_jit
from convlens.ops.fused_pool_jit import pool_slabs_jit, route_gradient_jit
from convlens.ops.jit import compiled_for
from convlens.ops.linalg import matmul_tn
from convlens.ops.strategy import Strategy
from convlens.ops.windows import crop, pad, window_view

if TYPE_CHECKING:
    from convlens.ops.fused import ConvMaxPoolPlan, ConvPoolProblem

__all__ = ["ConvPoolDirect", "ConvPoolGemm", "ConvPoolStrategy"]

# The GEMM path's compiled pass works on blocks of rows whose slabs (conv outputs of every pool offset)
# take about this many bytes: they are still in cache when the pass reads them, and inference on large
# batches does not hold every slab at once.
_SLAB_BLOCK_BYTES = 4 << 20

# From this many input channels one strided copy of the window view per pooling offset beats KH*KW slab
# copies per offset (runs of C floats are long enough; commit dbd69c2, AMD EPYC, no numbers recorded).
_VIEW_COPY_CHANNELS = 8


class ConvPoolStrategy(Strategy):
    """A fused-stage algorithm bound to one plan; the backward always follows its own forward."""

    roles: ClassVar[tuple[str, ...]] = ("forward",)

    def __init__(self, plan: ConvMaxPoolPlan) -> None:
        self.plan = plan

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None,
        window_max: np.ndarray,
        winner: np.ndarray | None,
    ) -> tuple[Any, np.ndarray | None]:
        """Fill ``window_max`` (max conv value per window, no bias) and ``winner``; return (what the backward
        needs, the pooled output with bias and ReLU applied when a compiled pass did that, else None).
        """
        raise NotImplementedError

    def backward(
        self,
        kept: Any,
        x: np.ndarray,
        grad_out: np.ndarray,
        out: np.ndarray,
        pre: np.ndarray | None,
        winner: np.ndarray,
        kernel: np.ndarray,
        compute_grad_x: bool,
    ) -> Conv2DGrads:
        """Gradients from ``grad_out`` (N * QH * QW, F) of the pooled activations ``out``."""
        raise NotImplementedError


class ConvPoolGemm(ConvPoolStrategy):
    """im2col grouped by pool offset, one GEMM per offset into a running max."""

    name = "conv_pool_gemm"
    summary = "im2col rows grouped by pool offset, one GEMM per offset into a running max (compiled pass if on)"
    measured = "the course stage (28x28x1 -> 32, pool 2): 6.1 ms fwd+bwd vs 7.1 ms for the direct kernels (AMD EPYC)"

    def _cols(self, x: np.ndarray) -> np.ndarray:
        """im2col grouped by pool offset: (PH, PW, N, QH, QW, KH, KW, C)."""
        plan = self.plan
        ph, pw = plan.pool_size
        qh, qw = plan.pool_geometry.output_size
        kh, kw, channels, _ = plan.kernel_shape
        batch = x.shape[0]
        padded = pad(x, plan.geometry, workspace=plan.workspace)
        cols = plan.workspace.get("cols", (ph, pw, batch, qh, qw, kh, kw, channels), x.dtype)
        if channels >= _VIEW_COPY_CHANNELS:
            view = window_view(padded, plan.geometry)
            for a in range(ph):
                for b in range(pw):
                    cols[a, b] = view[:, a : a + (qh - 1) * ph + 1 : ph, b : b + (qw - 1) * pw + 1 : pw]
        else:
            for a, b, i, j, rows, columns in plan.taps:
                cols[a, b, :, :, :, i, j, :] = padded[:, rows, columns, :]
        return cols

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None,
        window_max: np.ndarray,
        winner: np.ndarray | None,
    ) -> tuple[Any, np.ndarray | None]:
        plan = self.plan
        ph, pw = plan.pool_size
        kh, kw, channels, filters = plan.kernel_shape
        cols = self._cols(x)
        depth = kh * kw * channels
        slabs = ph * pw
        rows = window_max.shape[0]
        kernel2d = kernel.reshape(depth, filters)
        cols3 = cols.reshape(slabs, rows, depth)
        same_dtype = x.dtype == kernel.dtype and (bias is None or bias.dtype == x.dtype)
        if slabs > 1 and same_dtype and compiled_for(x.dtype):
            # Compiled: per block of rows, every slab's GEMM into a cache-sized buffer, then one pass for the
            # max, the winner, the bias and the ReLU into the fresh output array.
            block = max(256, _SLAB_BLOCK_BYTES // (slabs * filters * x.itemsize))
            conv = plan.workspace.get("slabs", (slabs * min(block, rows) * filters,), x.dtype)
            pooled = np.empty((rows, filters), x.dtype)
            relu = plan.activation.name == "relu"
            for start in range(0, rows, block):
                stop = min(start + block, rows)
                part = conv[: slabs * (stop - start) * filters].reshape(slabs, stop - start, filters)  # contiguous
                for s in range(slabs):
                    np.matmul(cols3[s, start:stop], kernel2d, out=part[s])
                pool_slabs_jit(part, bias, relu, pooled[start:stop], None if winner is None else winner[start:stop])
            return cols, pooled
        # One pooling offset at a time: each slab's GEMM output is still in cache when it is maxed.
        # Training also keeps, per window and filter, which offset won (the first maximum in
        # row-major window order: a later offset takes over only when strictly greater).
        np.matmul(cols3[0], kernel2d, out=window_max)
        if winner is not None:
            winner.fill(0)
        if slabs > 1:
            slab = plan.workspace.get("slab", (rows, filters), x.dtype)
            newer = plan.workspace.get("newer", (rows, filters), bool)
            marked = plan.workspace.get("marked", (rows, filters), plan.index_dtype)
            for s in range(1, slabs):
                np.matmul(cols3[s], kernel2d, out=slab)
                if winner is not None:
                    # The winner is the last offset that raised the running max: max over s of s * newer.
                    np.greater(slab, window_max, out=newer)
                    np.multiply(newer, plan.index_dtype.type(s), out=marked)
                    np.maximum(winner, marked, out=winner)
                np.maximum(window_max, slab, out=window_max)
        return cols, None

    def backward(
        self,
        kept: Any,
        x: np.ndarray,
        grad_out: np.ndarray,
        out: np.ndarray,
        pre: np.ndarray | None,
        winner: np.ndarray,
        kernel: np.ndarray,
        compute_grad_x: bool,
    ) -> Conv2DGrads:
        plan = self.plan
        rows, filters = grad_out.shape
        slabs = plan.pool_size[0] * plan.pool_size[1]
        g, routed = grad_out, None
        if plan.activation.name == "relu" and g.dtype == out.dtype:
            # Compiled: the ReLU mask and the routing to each slab in one pass.
            routed = plan.workspace.get("routed", (slabs, rows, filters), g.dtype)
            masked = np.empty((rows, filters), g.dtype)
            if route_gradient_jit(np.ascontiguousarray(g), out, winner, True, masked, routed):
                g = masked
            else:
                routed = None
        if routed is None:
            g = plan.activation_grad(g, out, pre)
            # Route g to the offset that won each window.
            routed = plan.workspace.get("routed", (slabs, rows, filters), g.dtype)
            hit = plan.workspace.get("hit", (rows, filters), bool)
            for s in range(slabs):
                np.equal(winner, s, out=hit)
                np.multiply(g, hit, out=routed[s])
        grad_bias = np.ones(rows, g.dtype) @ g
        cols = kept
        kh, kw, channels, _ = plan.kernel_shape
        depth = kh * kw * channels
        cols2d = cols.reshape(slabs * rows, depth)
        routed2d = routed.reshape(slabs * rows, filters)
        grad_kernel = matmul_tn(cols2d, routed2d).reshape(plan.kernel_shape)
        grad_x = None
        if compute_grad_x:
            grad_cols = (routed2d @ kernel.reshape(depth, filters).T).reshape(cols.shape)
            grad_x = self._col2im(grad_cols, x.shape)
        return Conv2DGrads(grad_x, grad_kernel, grad_bias)

    def _col2im(self, grad_cols: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
        geometry = self.plan.geometry
        hp, wp = geometry.padded_size
        grad_padded = np.zeros((x_shape[0], hp, wp, x_shape[3]), grad_cols.dtype)
        for a, b, i, j, rows, columns in self.plan.taps:
            grad_padded[:, rows, columns, :] += grad_cols[a, b, :, :, :, i, j, :]
        return np.ascontiguousarray(crop(grad_padded, geometry))


class ConvPoolDirect(ConvPoolStrategy):
    """Compiled direct convolution, filters innermost, pooled on the fly (:mod:`convlens.ops.fused_jit`)."""

    name = "conv_pool_direct"
    summary = "compiled direct convolution into the running max; no im2col matrix (Numba)"
    measured = "few input channels with an input gradient (see the table in convlens.ops.fused)"

    @classmethod
    def applies(cls, problem: ConvPoolProblem) -> str | None:
        if not compiled_for(problem.dtype):
            return (
                f"needs compiled kernels for {problem.dtype.name} (numba installed, CONVLENS_JIT not 0, "
                "the dtype in CONVLENS_JIT_DTYPES)"
            )
        return None

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None,
        window_max: np.ndarray,
        winner: np.ndarray | None,
    ) -> tuple[Any, np.ndarray | None]:
        plan = self.plan
        source = pad(x, plan.geometry, workspace=plan.workspace)
        conv_max_pool_forward_jit(
            source,
            kernel,
            plan.geometry,
            plan.pool_size,
            window_max.reshape(plan.output_shape),
            None if winner is None else winner.reshape(plan.output_shape),
        )
        return source, None

    def backward(
        self,
        kept: Any,
        x: np.ndarray,
        grad_out: np.ndarray,
        out: np.ndarray,
        pre: np.ndarray | None,
        winner: np.ndarray,
        kernel: np.ndarray,
        compute_grad_x: bool,
    ) -> Conv2DGrads:
        plan = self.plan
        g = plan.activation_grad(grad_out, out, pre)
        grad_bias = np.ones(g.shape[0], g.dtype) @ g
        grad_kernel, grad_padded = conv_max_pool_backward_jit(
            kept,
            kernel,
            g.reshape(plan.output_shape),
            winner.reshape(plan.output_shape),
            plan.geometry,
            plan.pool_size,
            compute_grad_x=compute_grad_x,
        )
        grad_x = None
        if grad_padded is not None:
            geometry = plan.geometry
            grad_x = np.ascontiguousarray(crop(grad_padded, geometry)) if geometry.is_padded else grad_padded
        return Conv2DGrads(grad_x, grad_kernel, grad_bias)
