"""The 2-D convolution plan: geometry resolved once, buffers reused, algorithm chosen per shape.

:class:`Conv2DPlan` runs every 2-D (and, through a height-1 view, 1-D) convolution in convlens: the
pure functions in :mod:`convlens.ops.conv` build a throwaway plan, layers keep one per input shape.
Depthwise convolutions take k*k broadcast multiply-adds, wide 3x3 stride-1 ones Winograd
(:mod:`convlens.ops.winograd`), everything else one im2col copy and one GEMM per group.

Shapes (channels_last):
    x: (N, H, W, C); kernel: (KH, KW, C / G, F); bias: (F,); out: (N, OH, OW, F)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from convlens.errors import ConfigError, ShapeError, check_choice, check_int
from convlens.geometry import WindowGeometry
from convlens.ops.depthwise import depthwise_backward, depthwise_forward
from convlens.ops.linalg import matmul_tn
from convlens.ops.windows import Workspace, col2im, col2im_channels_first, im2col
from convlens.ops.windows_jit import col2im_compiled
from convlens.ops.winograd import WinogradConv, winograd_applies

__all__ = ["CONV_ALGORITHMS", "Conv2DGrads", "Conv2DPlan"]


CONV_ALGORITHMS = ("auto", "im2col", "winograd")


class Conv2DGrads(NamedTuple):
    """Gradients of a convolution: ``x`` is None when it was not asked for."""

    x: np.ndarray | None
    kernel: np.ndarray
    bias: np.ndarray


def _fmt(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


class Conv2DPlan:
    """A 2-D convolution for one input shape: geometry resolved once, buffers reused.

    ``forward`` keeps the im2col matrix so that ``backward`` needs no second copy.
    Layers keep one plan per input shape; :func:`conv2d` builds a throwaway one.

    Shapes:
        x: (N, H, W, C) channels-last; kernel: (KH, KW, C / G, F).
    """

    def __init__(
        self,
        x_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        *,
        strides: Any = 1,
        padding: Any = "valid",
        dilation_rate: Any = 1,
        groups: int = 1,
        owner: str = "conv2d",
        reuse_buffers: bool = True,
        display_shape: tuple[int, ...] | None = None,
        algorithm: str = "auto",
    ) -> None:
        if len(x_shape) != 4:
            raise ShapeError(f"{owner}: input must be 4-D (batch, height, width, channels), got shape {_fmt(x_shape)}.")
        if len(kernel_shape) != 4:
            raise ShapeError(
                f"{owner}: `kernel` must be 4-D (kernel_h, kernel_w, in_channels / groups, filters), "
                f"got shape {_fmt(kernel_shape)}."
            )
        groups = check_int(groups, "groups", owner=owner, minimum=1)
        _, height, width, channels = x_shape
        kh, kw, cg, filters = kernel_shape
        shown = _fmt(display_shape if display_shape is not None else x_shape)
        if channels == 0 or filters == 0:
            raise ShapeError(
                f"{owner}: input channels and filters must be positive, got {channels} channels and {filters} filters."
            )
        if channels % groups or filters % groups:
            raise ShapeError(
                f"{owner}: input channels ({channels}) and filters ({filters}) must both be divisible by "
                f"groups={groups}."
            )
        if cg * groups != channels:
            raise ShapeError(
                f"{owner}: kernel expects {cg * groups} input channels ({cg} per group x {groups} groups), "
                f"got an input with {channels} channels (shape {shown})."
            )
        self.owner = owner
        self.groups = groups
        self.x_shape = tuple(int(s) for s in x_shape)
        self.kernel_shape = tuple(int(s) for s in kernel_shape)
        self.geometry = WindowGeometry.resolve((height, width), (kh, kw), strides, padding, dilation_rate, owner=owner)
        self.workspace: Workspace | None = Workspace() if reuse_buffers else None
        self._cols: np.ndarray | None = None
        self._cols_source: np.ndarray | None = None
        # One input channel per group (depthwise): k*k broadcast multiply-adds beat per-group GEMMs.
        self.depthwise = groups > 1 and cg == 1
        self._transposed: Conv2DPlan | bool | None = None  # built on the first backward that needs it
        algorithm = check_choice(algorithm, "algorithm", CONV_ALGORITHMS, owner=owner)
        applies = winograd_applies(self.geometry, self.kernel_shape, groups)
        if algorithm == "winograd" and not applies:
            raise ConfigError(
                f"{owner}: algorithm='winograd' needs a 3x3 kernel, stride 1, no dilation, groups=1 and at least "
                f"16 input channels and filters, got kernel {_fmt(kernel_shape)}, strides {self.geometry.strides}, "
                f"dilation {self.geometry.dilation_rate}, groups={groups}."
            )
        # F(2x2, 3x3) Winograd for wide 3x3 stride-1 layers (see convlens.ops.winograd), im2col + GEMM otherwise.
        self.winograd: WinogradConv | None = None
        if applies and algorithm != "im2col":
            self.winograd = WinogradConv(self.x_shape, filters, self.geometry, self.workspace or Workspace())
        self.algorithm = "winograd" if self.winograd is not None else "im2col"

    def _transposed_plan(self) -> Conv2DPlan | None:
        """For stride 1 (no groups), the input gradient is a convolution of the padded output gradient
        with the flipped, transposed kernel ("full convolution"): one im2col + GEMM, no col2im adds.

        Padding of grad_out per side: (KH - 1) * DH - PT above and (KH - 1) * DH - PB below (likewise for
        columns), which gives back H x W. Over-padded convolutions (PT > (KH - 1) * DH) fall back to col2im.
        """
        if self._transposed is None:
            self._transposed = False
            geometry = self.geometry
            channels, filters = self.kernel_shape[2], self.kernel_shape[3]
            # Worth it when the input gradient is wide: col2im's adds grow with C, this path's im2col with F.
            if geometry.strides == (1, 1) and self.groups == 1 and channels >= 16 and 2 * channels >= filters:
                pads = tuple(
                    ((k - 1) * d - before, (k - 1) * d - after)
                    for k, d, (before, after) in zip(
                        geometry.kernel_size, geometry.dilation_rate, geometry.pads, strict=True
                    )
                )
                if all(p >= 0 for pair in pads for p in pair):
                    kh, kw, channels, filters = self.kernel_shape
                    self._transposed = Conv2DPlan(
                        self.output_shape,
                        (kh, kw, filters, channels),
                        padding=pads,
                        dilation_rate=geometry.dilation_rate,
                        owner=self.owner,
                        reuse_buffers=self.workspace is not None,
                        algorithm="im2col",  # only im2col plans use it (Winograd has its own adjoint)
                    )
        return self._transposed if isinstance(self._transposed, Conv2DPlan) else None

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, OH, OW, F)."""
        oh, ow = self.geometry.output_size
        return (self.x_shape[0], oh, ow, self.kernel_shape[3])

    def _check(self, x: np.ndarray, kernel: np.ndarray) -> None:
        if x.shape != self.x_shape:
            raise ShapeError(f"{self.owner}: expected input shape {self.x_shape}, got {x.shape}.")
        if kernel.shape != self.kernel_shape:
            raise ShapeError(f"{self.owner}: expected kernel shape {self.kernel_shape}, got {kernel.shape}.")

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """Convolve ``x`` (N, H, W, C) with ``kernel``; returns (N, OH, OW, F)."""
        self._check(x, kernel)
        dtype = np.result_type(x.dtype, kernel.dtype)
        kh, kw, cg, filters = self.kernel_shape
        if self.depthwise:
            return depthwise_forward(
                self.geometry, self.output_shape, x.astype(dtype, copy=False), kernel.astype(dtype, copy=False), bias
            )
        if self.winograd is not None:
            return self.winograd.forward(
                x.astype(dtype, copy=False),
                kernel.astype(dtype, copy=False),
                None if bias is None else bias.astype(dtype, copy=False),
            )
        source = x
        x = x.astype(dtype, copy=False)
        g = self.groups
        depth = kh * kw * cg
        if g == 1:
            # The bias rides in the GEMM: a ones column in the im2col matrix meets a bias row in the kernel
            # (one pass over the output less, and the backward GEMM yields the bias gradient as its last row).
            cols2d = self._im2col_ones(x)
            self._cols, self._cols_source = cols2d, source
            kernel_ones = np.empty((depth + 1, filters), dtype)
            kernel_ones[:depth] = kernel.reshape(depth, filters)
            kernel_ones[depth] = 0 if bias is None else bias
            out = cols2d @ kernel_ones
            return out.reshape(self.output_shape)
        cols = im2col(x, self.geometry, workspace=self.workspace)
        self._cols, self._cols_source = cols, source
        batch, oh, ow = cols.shape[:3]
        rows = batch * oh * ow
        fg = filters // g
        cols_g = cols.reshape(rows, kh * kw, g, cg).transpose(2, 0, 1, 3).reshape(g, rows, depth)
        kernel_g = kernel.astype(dtype).reshape(kh * kw, cg, g, fg).transpose(2, 0, 1, 3)
        out_g = cols_g @ kernel_g.reshape(g, depth, fg)
        out = out_g.transpose(1, 0, 2).reshape(rows, filters)
        if bias is not None:
            out += bias.astype(dtype, copy=False)
        return out.reshape(batch, oh, ow, filters)

    def _im2col_ones(self, x: np.ndarray) -> np.ndarray:
        """im2col of ``x`` as a (N*OH*OW, KH*KW*C + 1) matrix whose last column is all ones."""
        kh, kw, cg, _ = self.kernel_shape
        batch, oh, ow = self.output_shape[:3]
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
        im2col(x, self.geometry, workspace=self.workspace, out=view)
        return cols

    def backward(
        self,
        grad_out: np.ndarray,
        x: np.ndarray,
        kernel: np.ndarray,
        *,
        compute_grad_x: bool = True,
    ) -> Conv2DGrads:
        """Gradients with respect to ``x``, ``kernel`` and bias given ``grad_out`` (N, OH, OW, F).

        Uses the im2col matrix kept by the last :meth:`forward` when it belongs to ``x``.
        """
        self._check(x, kernel)
        if grad_out.shape != self.output_shape:
            raise ShapeError(
                f"{self.owner}: `grad_out` must have the output shape {self.output_shape}, got {grad_out.shape}."
            )
        dtype = np.result_type(x.dtype, kernel.dtype, grad_out.dtype)
        if self.depthwise:
            return Conv2DGrads(
                *depthwise_backward(
                    self.geometry,
                    grad_out.astype(dtype, copy=False),
                    x.astype(dtype, copy=False),
                    kernel.astype(dtype, copy=False),
                    compute_grad_x,
                )
            )
        if self.winograd is not None:
            return self._backward_winograd(
                grad_out.astype(dtype, copy=False), x, kernel.astype(dtype, copy=False), compute_grad_x
            )
        kh, kw, cg, filters = self.kernel_shape
        batch, oh, ow = self.output_shape[:3]
        rows, depth = batch * oh * ow, kh * kw * cg
        g2d = np.ascontiguousarray(grad_out, dtype=dtype).reshape(rows, filters)
        g = self.groups
        kernel = kernel.astype(dtype, copy=False)
        cols = self._cols
        fresh = cols is None or cols.dtype != dtype or x is not self._cols_source
        self._cols, self._cols_source = None, None
        if g == 1:
            cols2d = self._im2col_ones(x.astype(dtype, copy=False)) if fresh or cols is None else cols
            grads_ones = matmul_tn(cols2d, g2d)  # (KH*KW*C + 1, F): kernel gradient, then the bias gradient
            grad_kernel = np.ascontiguousarray(grads_ones[:depth]).reshape(self.kernel_shape)
            grad_bias = grads_ones[depth].copy()
            transposed = self._transposed_plan() if compute_grad_x else None
            if transposed is not None:
                flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)
                return Conv2DGrads(transposed.forward(g2d.reshape(self.output_shape), flipped), grad_kernel, grad_bias)
            if compute_grad_x and cg < 8 and not col2im_compiled(dtype):
                # Few channels, NumPy col2im: build the window gradients tap-major and channel-first,
                # (KH*KW*C, rows), so the adds run over whole output rows instead of 1-7 float runs.
                # (The compiled col2im handles short runs well: the plain path below is faster then.)
                grad_taps = kernel.reshape(depth, filters) @ g2d.T
                grad_input = col2im_channels_first(
                    grad_taps.reshape(kh, kw, cg, batch, oh, ow), self.geometry, workspace=self.workspace
                )
                return Conv2DGrads(grad_input, grad_kernel, grad_bias)
            grad_cols = (g2d @ kernel.reshape(depth, filters).T) if compute_grad_x else None
        else:
            if fresh or cols is None:
                cols = im2col(x.astype(dtype, copy=False), self.geometry, workspace=self.workspace)
            grad_bias = np.ones(rows, dtype) @ g2d
            fg = filters // g
            cols_g = cols.reshape(rows, kh * kw, g, cg).transpose(2, 0, 1, 3).reshape(g, rows, depth)
            g_g = g2d.reshape(rows, g, fg).transpose(1, 0, 2)
            gk = cols_g.transpose(0, 2, 1) @ g_g  # (G, KH*KW*CG, FG)
            grad_kernel = np.ascontiguousarray(
                gk.reshape(g, kh * kw, cg, fg).transpose(1, 2, 0, 3).reshape(self.kernel_shape)
            )
            grad_cols = None
            if compute_grad_x:
                kernel_g = kernel.reshape(kh * kw, cg, g, fg).transpose(2, 0, 1, 3).reshape(g, depth, fg)
                gc = g_g @ kernel_g.transpose(0, 2, 1)  # (G, rows, KH*KW*CG)
                grad_cols = gc.reshape(g, rows, kh * kw, cg).transpose(1, 2, 0, 3)
        grad_x: np.ndarray | None = None
        if grad_cols is not None:
            grad_x = col2im(
                np.ascontiguousarray(grad_cols).reshape(batch, oh, ow, kh, kw, cg * g),
                self.geometry,
                workspace=self.workspace,
            )
        return Conv2DGrads(grad_x, grad_kernel, grad_bias)

    def _backward_winograd(
        self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray, compute_grad_x: bool
    ) -> Conv2DGrads:
        winograd: WinogradConv = self.winograd  # type: ignore[assignment]  # the caller checked
        grad_out = np.ascontiguousarray(grad_out)
        g2d = grad_out.reshape(-1, grad_out.shape[-1])
        grad_bias = np.ones(g2d.shape[0], g2d.dtype) @ g2d
        grad_kernel, grad_x = winograd.backward(grad_out, x, kernel, compute_grad_x)
        return Conv2DGrads(grad_x, grad_kernel, grad_bias)
