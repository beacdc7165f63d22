"""Fully connected op (Keras ``Dense`` layout: kernel (D, U)) with exact gradients.

The op acts on the last axis, so any leading axes are batch-like (as Keras ``Dense``).

Shapes:
    x: (N, ..., D)
    kernel: (D, U)
    bias: (U,)
    out: (N, ..., U)

>>> import numpy as np
>>> x = np.array([[1.0, 2.0]], np.float32)
>>> dense(x, np.array([[1.0], [10.0]], np.float32), np.array([0.5], np.float32))
array([[21.5]], dtype=float32)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from convlens.errors import ShapeError, check_bool
from convlens.ops._checks import as_float_array
from convlens.resources import check_arrays

__all__ = ["DenseGrads", "dense", "dense_backward"]


class DenseGrads(NamedTuple):
    """Gradients of :func:`dense`: ``x`` is None when it was not asked for."""

    x: np.ndarray | None
    kernel: np.ndarray
    bias: np.ndarray


def _check(x: Any, kernel: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array(x, "x", owner)
    kernel = as_float_array(kernel, "kernel", owner, 2)
    if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ShapeError(
            f"{owner}: the last axis of `x` must match the kernel's input size {kernel.shape[0]} "
            f"(kernel shape {kernel.shape}), got x of shape {x.shape}."
        )
    return x, kernel


def dense(x: Any, kernel: Any, bias: Any = None) -> np.ndarray:
    """``x @ kernel + bias`` over the last axis of ``x``.

    Args:
        x: (N, ..., D) inputs.
        kernel: (D, U) weights (Keras layout; torch's ``Linear.weight`` is its transpose).
        bias: optional (U,).

    Returns:
        (N, ..., U), in the common floating dtype of ``x`` and ``kernel``.

    Shapes:
        x: (N, ..., D); kernel: (D, U); bias: (U,); out: (N, ..., U).
    """
    x, kernel = _check(x, kernel, "dense")
    check_arrays([("the output", (*x.shape[:-1], kernel.shape[1]), 8)], owner="dense")
    dtype = np.result_type(x.dtype, kernel.dtype)
    units = kernel.shape[1]
    x2d = x.reshape(-1, x.shape[-1]).astype(dtype, copy=False)
    out = x2d @ kernel.astype(dtype, copy=False)
    if bias is not None:
        bias = as_float_array(bias, "bias", "dense")
        if bias.shape != (units,):
            raise ShapeError(f"dense: `bias` must have shape ({units},) (one per unit), got {bias.shape}.")
        out += bias.astype(dtype, copy=False)
    return np.asarray(out.reshape(*x.shape[:-1], units))


def dense_backward(grad_out: Any, x: Any, kernel: Any, compute_grad_x: bool = True) -> DenseGrads:
    """Gradients of :func:`dense` with respect to ``x``, ``kernel`` and bias.

    The bias gradient sums ``grad_out`` over every leading axis with a matrix-vector product
    against ones (BLAS accumulation, accurate and fast in float32).

    Shapes:
        grad_out: (N, ..., U); x: (N, ..., D); kernel: (D, U);
        returns x: (N, ..., D) or None, kernel: (D, U), bias: (U,).
    """
    x, kernel = _check(x, kernel, "dense_backward")
    compute_grad_x = check_bool(compute_grad_x, "compute_grad_x", owner="dense_backward")
    grad_out = as_float_array(grad_out, "grad_out", "dense_backward")
    units = kernel.shape[1]
    expected = (*x.shape[:-1], units)
    if grad_out.shape != expected:
        raise ShapeError(f"dense_backward: `grad_out` must have shape {expected}, got {grad_out.shape}.")
    dtype = np.result_type(x.dtype, kernel.dtype, grad_out.dtype)
    x2d = x.reshape(-1, x.shape[-1]).astype(dtype, copy=False)
    g2d = grad_out.reshape(-1, units).astype(dtype, copy=False)
    grad_kernel = x2d.T @ g2d
    grad_bias = np.ones(g2d.shape[0], dtype) @ g2d
    grad_x = None
    if compute_grad_x:
        grad_x = (g2d @ kernel.astype(dtype, copy=False).T).reshape(x.shape)
    return DenseGrads(grad_x, grad_kernel, grad_bias)
