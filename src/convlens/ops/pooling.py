"""Max and average pooling (1-D, 2-D, global) with exact gradients, as TensorFlow/Keras.

Semantics: padded cells never win a max; 'same' average pooling divides by the number of real
cells in each window (padding is left out of the count); the max-pool gradient of a window goes
to exactly one cell, the FIRST maximum in row-major order of the window (ties: lowest row, then
lowest column), as TensorFlow's CPU kernel. Strides default to ``pool_size`` (Keras).

The plans that do the work (:class:`MaxPool2DPlan`, :class:`AvgPool2DPlan`) live in
:mod:`convlens.ops.pooling_plans` and are re-exported here.

Shapes (2-D, channels_last):
    x: (N, H, W, C)
    out: (N, OH, OW, C), per axis 'valid': OH = (H - KH) // SH + 1; 'same': OH = ceil(H / SH)
    (see :mod:`convlens.geometry`)

>>> import numpy as np
>>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
>>> max_pool2d(x)[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]], dtype=float32)
>>> avg_pool2d(x, pool_size=3, strides=2, padding="same")[0, :, :, 0]
array([[ 5. ,  6.5],
       [11. , 12.5]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ShapeError, check_choice, normalize_tuple
from convlens.geometry import WindowGeometry
from convlens.ops._checks import as_float_array, check_data_format, from_channels_last, to_channels_last
from convlens.ops.global_pooling import (
    global_avg_pool1d,
    global_avg_pool1d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool1d,
    global_max_pool1d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
)
from convlens.ops.pooling_plans import POOL_PADDINGS, AvgPool2DPlan, MaxPool2DPlan
from convlens.resources import check_arrays, check_window

__all__ = [
    "POOL_PADDINGS",
    "AvgPool2DPlan",
    "MaxPool2DPlan",
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool1d",
    "global_avg_pool1d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool1d",
    "global_max_pool1d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "pool_plan",
]


def pool_plan(
    kind: str,
    x_shape: tuple[int, ...],
    pool_size: Any,
    strides: Any,
    padding: Any,
    *,
    owner: str,
    backward: bool = False,
) -> MaxPool2DPlan | AvgPool2DPlan:
    """A checked plan for a channels-last 2-D input (N, H, W, C): window size and memory refused up front.

    A zero batch is planned as a batch of one (the caller returns an empty result).

    Raises:
        ConfigError, ShapeError: bad arguments; ResourceError: a window over 65,536 cells, or arrays that
            would not fit in memory.

    Shapes:
        x_shape: (N, H, W, C); the plan's output (max(N, 1), OH, OW, C).
    """
    pool = normalize_tuple(pool_size, 2, "pool_size", owner=owner)
    stride = pool if strides is None else normalize_tuple(strides, 2, "strides", owner=owner)
    mode = check_choice(padding, "padding", POOL_PADDINGS, owner=owner)
    check_window(pool, "pool_size", owner=owner)
    geometry = WindowGeometry.resolve(x_shape[1:3], pool, stride, mode, owner=owner)
    batch, channels = x_shape[0], x_shape[3]
    out = (batch, *geometry.output_size, channels)
    padded = (batch, *geometry.padded_size, channels)
    parts = [("the output", out, 8), ("the padded input", padded, 8), ("the arg-max", out, 1)]
    if backward:
        parts += [("the padded gradient", padded, 8), ("the input gradient", tuple(x_shape), 8)]
    check_arrays(parts, owner=owner, hint="Use a smaller batch or pool_size.")
    plan_cls: Any = MaxPool2DPlan if kind == "max" else AvgPool2DPlan
    plan: MaxPool2DPlan | AvgPool2DPlan = plan_cls((max(batch, 1), *x_shape[1:]), pool, stride, mode, owner=owner)
    return plan


# ----- pure functions ------------------------------------------------------------------------------
def _pool(
    kind: str,
    rank: int,
    x: Any,
    grad_out: Any,
    pool_size: Any,
    strides: Any,
    padding: str,
    data_format: str,
    owner: str,
) -> np.ndarray:
    fmt = check_data_format(data_format, owner)
    x = to_channels_last(as_float_array(x, "x", owner, rank + 2), fmt)
    if rank == 1:
        # The 1-D arguments, checked as 1-D (so messages speak 1-D), then run over a height-1 view.
        (pool,) = normalize_tuple(pool_size, 1, "pool_size", owner=owner)
        (stride,) = (pool,) if strides is None else normalize_tuple(strides, 1, "strides", owner=owner)
        mode = check_choice(padding, "padding", POOL_PADDINGS, owner=owner)
        WindowGeometry.resolve(x.shape[1:2], pool, stride, mode, owner=owner)
        pool_size, strides, x = (1, pool), (1, stride), x[:, None]
    backward = owner.endswith("_backward")  # every *_backward op passes grad_out, None included (refused below)
    plan = pool_plan(kind, x.shape, pool_size, strides, padding, owner=owner, backward=backward)
    batch = x.shape[0]
    if not backward:
        result = np.zeros((0, *plan.output_shape[1:]), x.dtype) if batch == 0 else plan.forward(x)
    else:
        grad = to_channels_last(as_float_array(grad_out, "grad_out", owner, rank + 2), fmt)
        expected: tuple[int, ...] = (batch, *plan.output_shape[1:])
        if rank == 1:
            expected = (batch, *plan.output_shape[2:])
        if grad.shape != expected:
            shown = expected if fmt == "channels_last" else (expected[0], expected[-1], *expected[1:-1])
            raise ShapeError(f"{owner}: `grad_out` must have the output shape {shown}, got {grad.shape}.")
        if rank == 1:
            grad = grad[:, None]
        if batch == 0:
            result = np.zeros(x.shape, x.dtype)
        elif isinstance(plan, MaxPool2DPlan):
            plan.forward(x)
            result = plan.backward(grad)
        else:
            result = plan.backward(grad, x.dtype)
    return from_channels_last(result[:, 0] if rank == 1 else result, fmt)


def max_pool2d(
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """2-D max pooling (Keras ``MaxPooling2D``); padded cells never win.

    Args:
        x: (N, H, W, C), or (N, C, H, W) with ``data_format='channels_first'``.
        pool_size: int or (KH, KW).
        strides: int or (SH, SW); None means ``pool_size``.
        padding: 'valid' or 'same' (TensorFlow rule, odd padded cell bottom/right).
        data_format: 'channels_last' (default) or 'channels_first'.

    Shapes:
        out: (N, OH, OW, C); 'valid': OH = (H - KH) // SH + 1; 'same': OH = ceil(H / SH).
    """
    return _pool("max", 2, x, None, pool_size, strides, padding, data_format, "max_pool2d")


def max_pool2d_backward(
    grad_out: Any,
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    Each window's gradient goes to one cell: its FIRST maximum in row-major window order
    (ties go to the lowest row, then the lowest column). Overlapping windows accumulate.

    Shapes:
        grad_out: (N, OH, OW, C); returns (N, H, W, C) (channels_first: the input's layout).
    """
    return _pool("max", 2, x, grad_out, pool_size, strides, padding, data_format, "max_pool2d_backward")


def avg_pool2d(
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """2-D average pooling (Keras ``AveragePooling2D``); 'same' leaves padded cells out of the mean.

    Shapes:
        x: (N, H, W, C); out: (N, OH, OW, C); 'valid': OH = (H - KH) // SH + 1; 'same': OH = ceil(H / SH).
    """
    return _pool("avg", 2, x, None, pool_size, strides, padding, data_format, "avg_pool2d")


def avg_pool2d_backward(
    grad_out: Any,
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: each window shares its gradient among its real cells.

    Shapes:
        grad_out: (N, OH, OW, C); returns (N, H, W, C).
    """
    return _pool("avg", 2, x, grad_out, pool_size, strides, padding, data_format, "avg_pool2d_backward")


def max_pool1d(
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """1-D max pooling (Keras ``MaxPooling1D``).

    Shapes:
        x: (N, L, C) (or (N, C, L)); out: (N, OL, C); 'valid': OL = (L - K) // S + 1; 'same': ceil(L / S).
    """
    return _pool("max", 1, x, None, pool_size, strides, padding, data_format, "max_pool1d")


def max_pool1d_backward(
    grad_out: Any,
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of :func:`max_pool1d` (first maximum of each window wins ties).

    Shapes:
        grad_out: (N, OL, C); returns (N, L, C).
    """
    return _pool("max", 1, x, grad_out, pool_size, strides, padding, data_format, "max_pool1d_backward")


def avg_pool1d(
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """1-D average pooling (Keras ``AveragePooling1D``).

    Shapes:
        x: (N, L, C); out: (N, OL, C); 'valid': OL = (L - K) // S + 1; 'same': OL = ceil(L / S).
    """
    return _pool("avg", 1, x, None, pool_size, strides, padding, data_format, "avg_pool1d")


def avg_pool1d_backward(
    grad_out: Any,
    x: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    data_format: str = "channels_last",
) -> np.ndarray:
    """Gradient of :func:`avg_pool1d`.

    Shapes:
        grad_out: (N, OL, C); returns (N, L, C).
    """
    return _pool("avg", 1, x, grad_out, pool_size, strides, padding, data_format, "avg_pool1d_backward")
