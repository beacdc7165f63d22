"""Fused convolution -> monotonic activation -> non-overlapping max pooling.

``maxpool(act(conv(x) + bias))`` equals ``act(maxpool(conv(x)) + bias)`` whenever ``act`` never
decreases (relu, linear, sigmoid, tanh, leaky_relu) and the pooling windows do not overlap: the bias is
the same for every cell of a window and a non-decreasing function keeps the arg-max. Computing it in that
order never stores the full-resolution feature map: the im2col rows are grouped by the offset inside the
pooling window, each offset's conv outputs (one slab) come from one GEMM into a reused buffer and are
folded into a running ``np.maximum`` while still in cache, and training keeps only which offset won each
window (a small integer per pooled value). The backward pass routes each pooled gradient to its winner's
slab and runs the kernel-gradient GEMM over all slabs at once.

For a few input channels (``JIT_CHANNELS``) and float32/float64, Numba kernels convolve directly
instead (:mod:`convlens.ops.fused_jit`, same winner rule, no im2col matrix); ``CONVLENS_JIT=0``
keeps this NumPy code, which is also the reference the kernels are tested against.

Gradients are exactly those of the unfused layers, including the tie rule: the gradient of each
window goes to the first maximal cell in row-major order.

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, C, F); bias: (F,)
    conv output (never stored whole): (N, OH, OW, F), OH from the conv geometry
    out: (N, OH // PH, OW // PW, F) (pooling 'valid' with strides == pool_size)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ShapeError
from convlens.geometry import WindowGeometry
from convlens.ops.activations import Activation
from convlens.ops.conv import Conv2DGrads
from convlens.ops.fused_jit import JIT_DTYPES, conv_max_pool_backward_jit, conv_max_pool_forward_jit
from convlens.ops.fused_pool_jit import pool_slabs_jit, route_gradient_jit
from convlens.ops.jit import jit_enabled
from convlens.ops.linalg import matmul_tn
from convlens.ops.windows import Workspace, crop, pad, tap_slices, window_view

__all__ = ["JIT_CHANNELS", "MONOTONIC_ACTIVATIONS", "ConvMaxPoolPlan"]

MONOTONIC_ACTIVATIONS = frozenset({"relu", "linear", "sigmoid", "tanh", "leaky_relu"})

# Input channel counts for which the direct-convolution JIT kernels (:mod:`convlens.ops.fused_jit`)
# replace im2col + GEMM when grad_x is wanted. Measured (2-core AMD EPYC, float32, batch 128, 3x3
# 'same', pool 2x2, F=32; forward + backward with grad_x, ms, JIT vs GEMM): 14x14 C=2 4.5 vs 6.7,
# C=3 3.3 vs 7.2, C=4 4.5 vs 8.3, C=6 6.3 vs 10.6; but C=8 9.7 vs 8.6 and (F=64, C=4) 11.7 vs 10.9.
# Without grad_x (a first layer) the GEMM path wins: the kernel-gradient GEMM over the im2col matrix
# beats the kernels' vector loops (course stage 28x28x1: 7.1 vs 6.1; 28x28x3: 17.9 vs 11.8).
JIT_CHANNELS = range(2, 7)

# The GEMM path's compiled pass works on blocks of rows whose slabs (conv outputs of every pool offset)
# take about this many bytes: they are still in cache when the pass reads them, and inference on large
# batches does not hold every slab at once.
_SLAB_BLOCK_BYTES = 4 << 20


class ConvMaxPoolPlan:
    """A fused conv + activation + max-pool stage for one input shape (buffers reused across calls)."""

    def __init__(
        self,
        x_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        conv_geometry: WindowGeometry,
        pool_size: tuple[int, int],
        activation: Activation,
        owner: str = "conv+maxpool",
    ) -> None:
        if activation.name not in MONOTONIC_ACTIVATIONS:
            raise ShapeError(f"{owner}: activation {activation.name!r} is not monotonic; cannot fuse with max pooling.")
        oh, ow = conv_geometry.output_size
        ph, pw = pool_size
        self.pool_geometry = WindowGeometry.resolve((oh, ow), pool_size, pool_size, "valid", owner=owner)
        self.x_shape = tuple(x_shape)
        self.kernel_shape = tuple(kernel_shape)
        self.geometry = conv_geometry
        self.pool_size = (ph, pw)
        self.activation = activation
        self.workspace = Workspace()
        self._cache: tuple[Any, ...] | None = None
        self._winner: np.ndarray | None = None
        self.index_dtype = np.dtype(np.min_scalar_type(ph * pw - 1))
        qh, qw = self.pool_geometry.output_size
        kh, kw = kernel_shape[:2]
        # Input slices read by tap (i, j) for the conv outputs at pool offset (a, b).
        self._taps = [
            (a, b, i, j, *tap_slices(conv_geometry, i, j, first=(a, b), step=(ph, pw), count=(qh, qw)))
            for a in range(ph)
            for b in range(pw)
            for i in range(kh)
            for j in range(kw)
        ]

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, OH // PH, OW // PW, F)."""
        qh, qw = self.pool_geometry.output_size
        return (self.x_shape[0], qh, qw, self.kernel_shape[3])

    def _cols(self, x: np.ndarray) -> np.ndarray:
        """im2col grouped by pool offset: (PH, PW, N, QH, QW, KH, KW, C)."""
        ph, pw = self.pool_size
        qh, qw = self.pool_geometry.output_size
        kh, kw, channels, _ = self.kernel_shape
        batch = x.shape[0]
        padded = pad(x, self.geometry, workspace=self.workspace)
        cols = self.workspace.get("cols", (ph, pw, batch, qh, qw, kh, kw, channels), x.dtype)
        if channels >= 8:
            view = window_view(padded, self.geometry)
            for a in range(ph):
                for b in range(pw):
                    cols[a, b] = view[:, a : a + (qh - 1) * ph + 1 : ph, b : b + (qw - 1) * pw + 1 : pw]
        else:
            for a, b, i, j, rows, columns in self._taps:
                cols[a, b, :, :, :, i, j, :] = padded[:, rows, columns, :]
        return cols

    @property
    def winner(self) -> np.ndarray | None:
        """Which pool offset ``a * PW + b`` won each window in the last training forward, else None.

        Shapes:
            winner: (N, QH, QW, F), unsigned integers
        """
        return None if self._winner is None else self._winner.reshape(self.output_shape)

    def uses_jit(self, dtype: Any, compute_grad_x: bool = True) -> bool:
        """Whether :meth:`forward` takes the compiled direct-convolution path for inputs of ``dtype``."""
        return (
            compute_grad_x and np.dtype(dtype) in JIT_DTYPES and self.kernel_shape[2] in JIT_CHANNELS and jit_enabled()
        )

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None,
        training: bool = False,
        *,
        compute_grad_x: bool = True,
    ) -> np.ndarray:
        """Pooled activations (N, QH, QW, F); keeps what backward needs when ``training``.

        ``compute_grad_x=False`` says the backward will not need ``grad_x`` (it only picks the faster
        path; the backward's own flag decides what it returns).
        """
        filters = self.kernel_shape[3]
        rows = self.output_shape[0] * self.output_shape[1] * self.output_shape[2]
        winner = self.workspace.get("winner", (rows, filters), self.index_dtype) if training else None
        window_max = self.workspace.get("window_max", (rows, filters), x.dtype)
        use_jit = x.dtype == kernel.dtype and self.uses_jit(x.dtype, compute_grad_x)
        if use_jit:
            source = pad(x, self.geometry, workspace=self.workspace)
            conv_max_pool_forward_jit(
                source,
                kernel,
                self.geometry,
                self.pool_size,
                window_max.reshape(self.output_shape),
                None if winner is None else winner.reshape(self.output_shape),
            )
            done = None
        else:
            source, done = self._gemm_forward(x, kernel, bias, window_max, winner)
        if done is not None:  # the compiled pass already added the bias (and applied the ReLU)
            pooled = done
        else:
            pooled = window_max + bias if bias is not None else window_max.copy()
            if self.activation.name == "relu":
                np.maximum(pooled, 0, out=pooled)
        if self.activation.name == "relu":
            out, pre = pooled, None
        else:
            out = self.activation.forward(pooled)
            pre = pooled
        self._winner = winner
        self._cache = (x, source, winner, out, pre, use_jit) if training else None
        return out.reshape(self.output_shape)

    def _gemm_forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None,
        window_max: np.ndarray,
        winner: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One GEMM per pool offset; returns the im2col matrix and, when the compiled pass ran, the pooled
        output with the bias added (and the ReLU applied). Otherwise ``window_max`` (and ``winner``) are filled
        and the second value is None.
        """
        ph, pw = self.pool_size
        kh, kw, channels, filters = self.kernel_shape
        cols = self._cols(x)
        depth = kh * kw * channels
        slabs = ph * pw
        rows = window_max.shape[0]
        kernel2d = kernel.reshape(depth, filters)
        cols3 = cols.reshape(slabs, rows, depth)
        same_dtype = x.dtype == kernel.dtype and (bias is None or bias.dtype == x.dtype)
        if slabs > 1 and same_dtype and x.dtype in JIT_DTYPES and jit_enabled():
            # Compiled: per block of rows, every slab's GEMM into a cache-sized buffer, then one pass for the
            # max, the winner, the bias and the ReLU into the fresh output array.
            block = max(256, _SLAB_BLOCK_BYTES // (slabs * filters * x.itemsize))
            conv = self.workspace.get("slabs", (slabs * min(block, rows) * filters,), x.dtype)
            pooled = np.empty((rows, filters), x.dtype)
            relu = self.activation.name == "relu"
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
            slab = self.workspace.get("slab", (rows, filters), x.dtype)
            newer = self.workspace.get("newer", (rows, filters), bool)
            marked = self.workspace.get("marked", (rows, filters), self.index_dtype)
            for s in range(1, slabs):
                np.matmul(cols3[s], kernel2d, out=slab)
                if winner is not None:
                    # The winner is the last offset that raised the running max: max over s of s * newer.
                    np.greater(slab, window_max, out=newer)
                    np.multiply(newer, self.index_dtype.type(s), out=marked)
                    np.maximum(winner, marked, out=winner)
                np.maximum(window_max, slab, out=window_max)
        return cols, None

    def backward(self, grad_out: np.ndarray, kernel: np.ndarray, *, compute_grad_x: bool = True) -> Conv2DGrads:
        """Gradients w.r.t. input, kernel and bias from ``grad_out`` (N, QH, QW, F)."""
        if self._cache is None:
            raise ShapeError("conv+maxpool: backward called without a forward(training=True) first.")
        x, source, winner, out, pre, use_jit = self._cache
        self._cache = None
        filters = self.kernel_shape[3]
        rows = winner.shape[0]
        g = grad_out.reshape(rows, filters)
        relu = self.activation.name == "relu"
        routed = None
        if not use_jit and relu and g.dtype == out.dtype:
            # Compiled: the ReLU mask and the routing to each slab in one pass.
            slabs = self.pool_size[0] * self.pool_size[1]
            routed = self.workspace.get("routed", (slabs, rows, filters), g.dtype)
            masked = np.empty((rows, filters), g.dtype)
            if route_gradient_jit(np.ascontiguousarray(g), out, winner, True, masked, routed):
                g = masked
            else:
                routed = None
        if routed is None:
            g = np.multiply(g, out > 0, dtype=out.dtype) if relu else self.activation.backward(g, pre, out)
        grad_bias = np.ones(rows, g.dtype) @ g
        if use_jit:
            grad_kernel, grad_padded = conv_max_pool_backward_jit(
                source,
                kernel,
                g.reshape(self.output_shape),
                winner.reshape(self.output_shape),
                self.geometry,
                self.pool_size,
                compute_grad_x=compute_grad_x,
            )
            grad_x = None
            if grad_padded is not None:
                grad_x = (
                    np.ascontiguousarray(crop(grad_padded, self.geometry)) if self.geometry.is_padded else grad_padded
                )
            return Conv2DGrads(grad_x, grad_kernel, grad_bias)
        return self._gemm_backward(x, source, winner, g, grad_bias, kernel, compute_grad_x, routed)

    def _gemm_backward(
        self,
        x: np.ndarray,
        cols: np.ndarray,
        winner: np.ndarray,
        g: np.ndarray,
        grad_bias: np.ndarray,
        kernel: np.ndarray,
        compute_grad_x: bool,
        routed: np.ndarray | None = None,
    ) -> Conv2DGrads:
        ph, pw = self.pool_size
        kh, kw, channels, filters = self.kernel_shape
        slabs = ph * pw
        rows = winner.shape[0]
        if routed is None:
            # Route g to the offset that won each window.
            routed = self.workspace.get("routed", (slabs, rows, filters), g.dtype)
            hit = self.workspace.get("hit", (rows, filters), bool)
            for s in range(slabs):
                np.equal(winner, s, out=hit)
                np.multiply(g, hit, out=routed[s])
        depth = kh * kw * channels
        cols2d = cols.reshape(slabs * rows, depth)
        routed2d = routed.reshape(slabs * rows, filters)
        grad_kernel = matmul_tn(cols2d, routed2d).reshape(self.kernel_shape)
        grad_x = None
        if compute_grad_x:
            grad_cols = (routed2d @ kernel.reshape(depth, filters).T).reshape(cols.shape)
            grad_x = self._col2im(grad_cols, x.shape)
        return Conv2DGrads(grad_x, grad_kernel, grad_bias)

    def _col2im(self, grad_cols: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
        hp, wp = self.geometry.padded_size
        grad_padded = np.zeros((x_shape[0], hp, wp, x_shape[3]), grad_cols.dtype)
        for a, b, i, j, rows, columns in self._taps:
            grad_padded[:, rows, columns, :] += grad_cols[a, b, :, :, :, i, j, :]
        return np.ascontiguousarray(crop(grad_padded, self.geometry))
