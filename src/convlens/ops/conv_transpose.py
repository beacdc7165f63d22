"""Transposed 2-D convolution (Keras's ``Conv2DTranspose``): the input gradient of a convolution, run forwards.

For the convolution ``conv`` whose geometry :meth:`WindowGeometry.resolve_transpose` gives (it maps the
transposed output, size OH x OW, back to the input, size H x W, with the same kernel), the transposed
convolution is its adjoint: ``y = conv^T x``. So the forward pass is ``conv``'s input gradient (one GEMM and a
col2im) and the backward pass is ``conv`` itself: ``grad_x = conv(grad_out)`` and the kernel gradient is
``conv``'s kernel gradient with ``x`` in the role of the output gradient. Everything below reuses
:class:`convlens.ops.conv_plan.Conv2DPlan` and :func:`convlens.ops.windows.col2im`.

Shapes (channels_last):
    x: (N, H, W, C); kernel: (KH, KW, F, C) (Keras's layout: filters, then input channels); bias: (F,)
    out: (N, OH, OW, F) with, per axis, 'valid': OH = H * SH + max(EH - SH, 0), 'same': OH = H * SH,
    output_padding QH: OH = (H - 1) * SH + EH - 2 * PAD + QH (PAD = EH // 2 for 'same', else 0),
    EH = (KH - 1) * DH + 1.

>>> import numpy as np
>>> x = np.ones((1, 2, 2, 1), np.float32)
>>> conv2d_transpose(x, np.ones((2, 2, 1, 1), np.float32), strides=2)[0, :, :, 0]  # each input -> a 2x2 block
array([[1., 1., 1., 1.],
       [1., 1., 1., 1.],
       [1., 1., 1., 1.],
       [1., 1., 1., 1.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ShapeError
from convlens.geometry import WindowGeometry
from convlens.ops._checks import as_float_array
from convlens.ops.conv_plan import Conv2DGrads, Conv2DPlan
from convlens.ops.windows import col2im

__all__ = ["Conv2DTransposePlan", "conv2d_transpose", "conv2d_transpose_backward"]


class Conv2DTransposePlan:
    """A transposed convolution for one input shape: the adjoint convolution's plan, built once.

    Shapes:
        x: (N, H, W, C); kernel: (KH, KW, F, C); output (N, OH, OW, F).
    """

    def __init__(
        self,
        x_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        *,
        strides: Any = 1,
        padding: str = "valid",
        output_padding: Any = None,
        dilation_rate: Any = 1,
        owner: str = "conv2d_transpose",
    ) -> None:
        if len(x_shape) != 4 or len(kernel_shape) != 4:
            raise ShapeError(
                f"{owner}: `x` and `kernel` must be 4-D, got shapes {tuple(x_shape)} and {tuple(kernel_shape)}."
            )
        batch, height, width, channels = (int(s) for s in x_shape)
        kh, kw, filters, kernel_channels = (int(s) for s in kernel_shape)
        if kernel_channels != channels:
            raise ShapeError(
                f"{owner}: kernel {tuple(kernel_shape)} expects {kernel_channels} input channels (its last axis), "
                f"got an input with {channels} (shape {tuple(x_shape)})."
            )
        self.owner = owner
        self.x_shape = (batch, height, width, channels)
        self.kernel_shape = (kh, kw, filters, channels)
        self.geometry: WindowGeometry = WindowGeometry.resolve_transpose(
            (height, width), (kh, kw), strides, padding, output_padding, dilation_rate, owner=owner
        )
        self.output_shape = (batch, *self.geometry.input_size, filters)
        # The adjoint: a convolution from the transposed output back to x (no buffer reuse: its input varies).
        self.adjoint = Conv2DPlan(
            self.output_shape,
            self.kernel_shape,
            strides=self.geometry.strides,
            padding=self.geometry.pads,
            dilation_rate=self.geometry.dilation_rate,
            owner=owner,
        )

    def _check(self, x: np.ndarray, kernel: np.ndarray) -> None:
        if x.shape != self.x_shape or kernel.shape != self.kernel_shape:
            raise ShapeError(
                f"{self.owner}: expected input {self.x_shape} and kernel {self.kernel_shape}, got {x.shape} and "
                f"{kernel.shape}."
            )

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """``conv^T x`` (+ bias): one GEMM to window contributions, then col2im onto the output."""
        self._check(x, kernel)
        dtype = np.result_type(x.dtype, kernel.dtype)
        kh, kw, filters, channels = self.kernel_shape
        batch, height, width, _ = self.x_shape
        taps = (
            x.reshape(-1, channels).astype(dtype, copy=False) @ kernel.astype(dtype, copy=False).reshape(-1, channels).T
        )
        y = col2im(taps.reshape(batch, height, width, kh, kw, filters), self.geometry)
        if bias is not None:
            y += bias.astype(dtype, copy=False)
        return y

    def backward(
        self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray, *, compute_grad_x: bool = True
    ) -> Conv2DGrads:
        """Gradients: ``x``'s is the adjoint convolution of ``grad_out``; the kernel's is that convolution's kernel
        gradient with ``x`` as its output gradient; the bias's sums ``grad_out``."""
        self._check(x, kernel)
        if grad_out.shape != self.output_shape:
            raise ShapeError(f"{self.owner}: `grad_out` must have shape {self.output_shape}, got {grad_out.shape}.")
        dtype = np.result_type(x.dtype, kernel.dtype, grad_out.dtype)
        grad_out = np.ascontiguousarray(grad_out, dtype=dtype)
        kernel = kernel.astype(dtype, copy=False)
        grad_x = self.adjoint.forward(grad_out, kernel) if compute_grad_x else None
        grads = self.adjoint.backward(x.astype(dtype, copy=False), grad_out, kernel, compute_grad_x=False)
        return Conv2DGrads(grad_x, grads.kernel, grad_out.reshape(-1, grad_out.shape[-1]).sum(axis=0))


def _plan(x: Any, kernel: Any, **keywords: Any) -> tuple[np.ndarray, np.ndarray, Conv2DTransposePlan]:
    x = as_float_array(x, "x", "conv2d_transpose")
    kernel = as_float_array(kernel, "kernel", "conv2d_transpose")
    return x, kernel, Conv2DTransposePlan(x.shape, kernel.shape, **keywords)


def conv2d_transpose(
    x: Any,
    kernel: Any,
    bias: Any = None,
    *,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    dilation_rate: Any = 1,
) -> np.ndarray:
    """Transposed convolution with Keras's arguments (see the module docstring for shapes and sizes)."""
    x, kernel, plan = _plan(
        x, kernel, strides=strides, padding=padding, output_padding=output_padding, dilation_rate=dilation_rate
    )
    return plan.forward(x, kernel, None if bias is None else as_float_array(bias, "bias", "conv2d_transpose"))


def conv2d_transpose_backward(
    grad_out: Any,
    x: Any,
    kernel: Any,
    *,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    dilation_rate: Any = 1,
) -> Conv2DGrads:
    """Gradients of :func:`conv2d_transpose` with respect to ``x``, ``kernel`` and the bias."""
    x, kernel, plan = _plan(
        x, kernel, strides=strides, padding=padding, output_padding=output_padding, dilation_rate=dilation_rate
    )
    return plan.backward(as_float_array(grad_out, "grad_out", "conv2d_transpose_backward"), x, kernel)
