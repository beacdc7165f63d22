"""Convolution (1-D and 2-D, strided, padded, dilated, grouped) with exact gradients.

Keras semantics and layouts: inputs channels-last, kernels (KH, KW, C / groups, F),
'same' padding as TensorFlow (odd pixel bottom/right). These functions validate and convert
layouts; the work is done by :class:`convlens.ops.conv_plan.Conv2DPlan`, which picks one of the named
algorithms of :mod:`convlens.ops.conv_algorithms` per role (``Conv2DPlan(...).explain()`` says which and why).

Shapes (2-D, channels_last):
    x: (N, H, W, C)
    kernel: (KH, KW, C / G, F), F divisible by G
    bias: (F,)
    out: (N, OH, OW, F), with per axis OH = (H + PT + PB - ((KH - 1) * DH + 1)) // SH + 1
         (for 'same': OH = ceil(H / SH); see :mod:`convlens.geometry`)

>>> import numpy as np
>>> x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
>>> k = np.ones((3, 3, 1, 1), np.float32)
>>> conv2d(x, k)[0, :, :, 0]
array([[ 54.,  63.,  72.],
       [ 99., 108., 117.],
       [144., 153., 162.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ShapeError, check_bool
from convlens.geometry import WindowGeometry
from convlens.ops._checks import (
    as_float_array,
    check_data_format,
    from_channels_last,
    to_channels_last,
)
from convlens.ops.conv_plan import CONV_ALGORITHMS, Conv2DGrads, Conv2DPlan
from convlens.resources import check_arrays, check_window

__all__ = [
    "CONV_ALGORITHMS",
    "Conv2DGrads",
    "Conv2DPlan",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
]


def _prepare(
    x: Any, kernel: Any, data_format: str, owner: str, ndim: int
) -> tuple[np.ndarray, np.ndarray, str, tuple[int, ...]]:
    """Validate arrays; return channels-last x, kernel, the format and the user's x shape (for messages)."""
    fmt = check_data_format(data_format, owner)
    x = as_float_array(x, "x", owner, ndim)
    kernel = as_float_array(kernel, "kernel", owner, ndim)
    return to_channels_last(x, fmt), kernel, fmt, tuple(x.shape)


def _check_bias(bias: Any, filters: int, owner: str) -> np.ndarray | None:
    if bias is None:
        return None
    bias = as_float_array(bias, "bias", owner)
    if bias.shape != (filters,):
        raise ShapeError(f"{owner}: `bias` must have shape ({filters},) (one per filter), got {bias.shape}.")
    return bias


def conv_memory(
    x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], geometry: WindowGeometry, itemsize: int, *, backward: bool
) -> list[tuple[str, tuple[int, ...], int]]:
    """The big arrays a 2-D convolution creates (for the resource guard): output, padded input, im2col matrix.

    Shapes:
        x_shape: (N, H, W, C); kernel_shape: (KH, KW, C / G, F); returns (description, shape, itemsize) triples.
    """
    batch, channels = x_shape[0], x_shape[-1]
    kh, kw, cg, filters = kernel_shape
    lead = (1,) * (2 - geometry.rank)  # a 1-D geometry runs over a height-1 view
    oh, ow = (*lead, *geometry.output_size)
    parts = [
        ("the output", (batch, oh, ow, filters), itemsize),
        ("the padded input", (batch, *lead, *geometry.padded_size, channels), itemsize),
        ("the im2col matrix", (batch * oh * ow, kh * kw * cg + 1), itemsize),
    ]
    if backward:
        parts += [("the input gradient", tuple(x_shape), itemsize), ("the window gradients", parts[2][1], itemsize)]
    return parts


def _plan_2d(
    x: np.ndarray,
    kernel: np.ndarray,
    strides: Any,
    padding: Any,
    dilation_rate: Any,
    groups: int,
    owner: str,
    shown: tuple[int, ...],
    backward: bool = False,
) -> Conv2DPlan:
    """The plan for one call, after the window and memory checks; a zero batch is planned as a batch of one."""
    geometry = WindowGeometry.resolve(x.shape[1:3], kernel.shape[:2], strides, padding, dilation_rate, owner=owner)
    check_window(kernel.shape[:2], "kernel", owner=owner)
    itemsize = np.result_type(x.dtype, kernel.dtype).itemsize
    check_arrays(
        conv_memory(x.shape, kernel.shape, geometry, itemsize, backward=backward),
        owner=owner,
        hint="Use a smaller batch, padding, dilation_rate or kernel.",
    )
    return Conv2DPlan(
        (max(x.shape[0], 1), *x.shape[1:]),
        kernel.shape,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        groups=groups,
        owner=owner,
        reuse_buffers=False,
        display_shape=shown,
    )


def _empty_batch(plan: Conv2DPlan, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The (0, OH, OW, F) output of a convolution over an empty batch."""
    return np.zeros((0, *plan.output_shape[1:]), np.result_type(x.dtype, kernel.dtype))


def _empty_grads(x: np.ndarray, kernel: np.ndarray, compute_grad_x: bool) -> Conv2DGrads:
    """Gradients over an empty batch: all zeros (sums over no samples)."""
    dtype = np.result_type(x.dtype, kernel.dtype)
    grad_x = np.zeros(x.shape, dtype) if compute_grad_x else None
    return Conv2DGrads(grad_x, np.zeros(kernel.shape, dtype), np.zeros(kernel.shape[-1], dtype))


def _plan_1d(
    x: np.ndarray,
    kernel: np.ndarray,
    strides: Any,
    padding: Any,
    dilation_rate: Any,
    groups: int,
    owner: str,
    shown: tuple[int, ...],
    backward: bool = False,
) -> Conv2DPlan:
    """A 2-D plan over a height-1 view, after resolving the 1-D geometry (so errors speak 1-D)."""
    geometry = WindowGeometry.resolve((x.shape[1],), kernel.shape[0], strides, padding, dilation_rate, owner=owner)
    return _plan_2d(
        x[:, None],
        kernel[None],
        (1, geometry.strides[0]),
        ((0, 0), geometry.pads[0]),
        (1, geometry.dilation_rate[0]),
        groups,
        owner,
        shown,
        backward,
    )


def _check_grad_out(grad_out: np.ndarray, expected: tuple[int, ...], shown: tuple[int, ...], owner: str) -> None:
    if grad_out.shape != shown:
        raise ShapeError(f"{owner}: `grad_out` must have the output shape {expected}, got {grad_out.shape}.")


def _user_layout(shape: tuple[int, ...], fmt: str) -> tuple[int, ...]:
    if fmt == "channels_first":
        return (shape[0], shape[-1], *shape[1:-1])
    return shape


def conv2d(
    x: Any,
    kernel: Any,
    bias: Any = None,
    *,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    groups: int = 1,
    data_format: str = "channels_last",
) -> np.ndarray:
    """2-D convolution (cross-correlation, as in Keras and PyTorch).

    Args:
        x: (N, H, W, C), or (N, C, H, W) with ``data_format='channels_first'``.
        kernel: (KH, KW, C / groups, F).
        bias: optional (F,).
        strides: int or (SH, SW).
        padding: 'valid', 'same', an int, (PH, PW) or ((PT, PB), (PL, PR)).
        dilation_rate: int or (DH, DW).
        groups: channel groups; ``groups == C`` is a depthwise convolution.
        data_format: 'channels_last' (default) or 'channels_first'.

    Returns:
        (N, OH, OW, F) (or (N, F, OH, OW) channels_first), OH = (H + PT + PB - ((KH - 1) * DH + 1)) // SH + 1.
    """
    x, kernel, fmt, shown = _prepare(x, kernel, data_format, "conv2d", 4)
    plan = _plan_2d(x, kernel, strides, padding, dilation_rate, groups, "conv2d", shown)
    bias = _check_bias(bias, kernel.shape[3], "conv2d")
    if x.shape[0] == 0:
        return from_channels_last(_empty_batch(plan, x, kernel), fmt)
    return from_channels_last(plan.forward(x, kernel, bias), fmt)


def conv2d_backward(
    grad_out: Any,
    x: Any,
    kernel: Any,
    *,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    groups: int = 1,
    data_format: str = "channels_last",
    compute_grad_x: bool = True,
) -> Conv2DGrads:
    """Gradients of :func:`conv2d` with respect to input, kernel and bias.

    Shapes:
        grad_out: the output's shape; returns grads ``x`` (like x), ``kernel`` (KH, KW, C / G, F), ``bias`` (F,).
    """
    owner = "conv2d_backward"
    compute_grad_x = check_bool(compute_grad_x, "compute_grad_x", owner=owner)
    x, kernel, fmt, shown = _prepare(x, kernel, data_format, owner, 4)
    plan = _plan_2d(x, kernel, strides, padding, dilation_rate, groups, owner, shown, backward=True)
    grad_out = as_float_array(grad_out, "grad_out", owner, 4)
    expected = _user_layout((x.shape[0], *plan.output_shape[1:]), fmt)
    _check_grad_out(grad_out, expected, expected, owner)
    if x.shape[0] == 0:
        empty = _empty_grads(x, kernel, compute_grad_x)
        return empty._replace(x=None if empty.x is None else from_channels_last(empty.x, fmt))
    grads = plan.backward(to_channels_last(grad_out, fmt), x, kernel, compute_grad_x=compute_grad_x)
    grad_x = None if grads.x is None else from_channels_last(grads.x, fmt)
    return Conv2DGrads(grad_x, grads.kernel, grads.bias)


def conv1d(
    x: Any,
    kernel: Any,
    bias: Any = None,
    *,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    groups: int = 1,
    data_format: str = "channels_last",
) -> np.ndarray:
    """1-D convolution; ``padding`` may also be 'causal' (Keras ``Conv1D``).

    Shapes:
        x: (N, L, C) (or (N, C, L)); kernel: (K, C / groups, F); out: (N, OL, F),
        OL = (L + PL + PR - ((K - 1) * D + 1)) // S + 1.
    """
    x, kernel, fmt, shown = _prepare(x, kernel, data_format, "conv1d", 3)
    plan = _plan_1d(x, kernel, strides, padding, dilation_rate, groups, "conv1d", shown)
    bias = _check_bias(bias, kernel.shape[2], "conv1d")
    if x.shape[0] == 0:
        return from_channels_last(_empty_batch(plan, x, kernel)[:, 0], fmt)
    out = plan.forward(x[:, None], kernel[None], bias)[:, 0]
    return from_channels_last(out, fmt)


def conv1d_backward(
    grad_out: Any,
    x: Any,
    kernel: Any,
    *,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    groups: int = 1,
    data_format: str = "channels_last",
    compute_grad_x: bool = True,
) -> Conv2DGrads:
    """Gradients of :func:`conv1d`: ``x`` like x, ``kernel`` (K, C / G, F), ``bias`` (F,)."""
    owner = "conv1d_backward"
    compute_grad_x = check_bool(compute_grad_x, "compute_grad_x", owner=owner)
    x, kernel, fmt, shown = _prepare(x, kernel, data_format, owner, 3)
    plan = _plan_1d(x, kernel, strides, padding, dilation_rate, groups, owner, shown, backward=True)
    grad_out = as_float_array(grad_out, "grad_out", owner, 3)
    _, _, length, filters = plan.output_shape
    expected = _user_layout((x.shape[0], length, filters), fmt)
    _check_grad_out(grad_out, expected, expected, owner)
    if x.shape[0] == 0:
        empty = _empty_grads(x, kernel, compute_grad_x)
        return empty._replace(x=None if empty.x is None else from_channels_last(empty.x, fmt))
    grads = plan.backward(
        to_channels_last(grad_out, fmt)[:, None], x[:, None], kernel[None], compute_grad_x=compute_grad_x
    )
    grad_x = None if grads.x is None else from_channels_last(grads.x[:, 0], fmt)
    return Conv2DGrads(grad_x, grads.kernel[0], grads.bias)
