"""Backward passes as traces: the conv input gradient as a full convolution, pooling gradient routing.

The input gradient of a strided, padded, dilated convolution is a stride-1 'valid' convolution of
the *zero-inserted, zero-padded* output gradient with the *flipped* kernel (same dilation)::

    z = grad_out with S - 1 zeros inserted between neighbours   ((OH - 1) * SH + 1 rows)
    z is padded by E - 1 zeros on every side                    (E = (KH - 1) * DH + 1)
    grad_padded = conv('valid', dilation D)(z, flip(kernel))    ((OH - 1) * SH + E rows)
    grad_x = grad_padded cropped by the forward pads            (H rows)

Rows of the padded input that no window read (``used_size < padded_size``) get zero gradient.

>>> b = convolution_backward((3, 3), [[1, 2], [3, 4]], [[1, 0], [0, 0]])
>>> b.trace.kernel.tolist(), b.grad_x.tolist()
([[4.0, 3.0], [2.0, 1.0]], [[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ShapeError, check_choice
from convlens.geometry import WindowGeometry
from convlens.lab.explain import (
    CELL_INSERTED,
    CELL_PAD,
    ConvTrace,
    PoolTrace,
    check_traceable,
    conv_trace,
    json_grid,
    pooling,
)
from convlens.lab.kernels import as_grid, get_kernel
from convlens.ops.windows import crop, pad

__all__ = ["ConvBackwardTrace", "PoolBackwardTrace", "convolution_backward", "pooling_backward"]


@dataclass(frozen=True)
class ConvBackwardTrace:
    """The conv input gradient, replayed as the flipped kernel sliding over the expanded ``grad_out``.

    Attributes:
        forward: geometry of the forward convolution.
        grad_out: (OH, OW) the output gradient.
        kernel: (KH, KW) the forward kernel (``trace.kernel`` is its flip).
        trace: stride-1 'valid' :class:`ConvTrace` over the zero-inserted, padded ``grad_out``
            (``trace.cells`` marks inserted zeros and the border).
        grad_padded: (H + PT + PB, W + PL + PR) gradient of the padded input.
        grad_x: (H, W) gradient of the input (``grad_padded`` without the forward pads).
    """

    forward: WindowGeometry
    grad_out: np.ndarray
    kernel: np.ndarray
    trace: ConvTrace
    grad_padded: np.ndarray
    grad_x: np.ndarray
    kind: str = "conv_backward"

    def to_dict(self, include_maps: bool = True) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "grad_out": json_grid(self.grad_out),
            "kernel": json_grid(self.kernel),
            "grad_padded": json_grid(self.grad_padded),
            "grad_x": json_grid(self.grad_x),
            "trace": self.trace.to_dict(include_maps),
        }


@dataclass(frozen=True)
class PoolBackwardTrace:
    """Pooling gradients routed back: max to each window's arg-max, avg shared by the real cells.

    Attributes:
        trace: the forward :class:`PoolTrace` (its steps carry the arg-max cells).
        grad_out: (OH, OW).
        grad_x: (H, W) the input gradient (overlapping windows accumulate).
        partial: (OH * OW, H, W) ``grad_x`` after each step, row-major.
    """

    trace: PoolTrace
    grad_out: np.ndarray
    grad_x: np.ndarray
    partial: np.ndarray
    kind: str = "pool_backward"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "grad_out": json_grid(self.grad_out),
            "grad_x": json_grid(self.grad_x),
            "trace": self.trace.to_dict(include_maps=False),
        }


def _grad_out(grad_out: Any, shape: tuple[int, ...], owner: str) -> np.ndarray:
    if grad_out is None:
        return np.arange(1, int(np.prod(shape)) + 1, dtype=np.float64).reshape(shape)
    grad = as_grid(grad_out, "grad_out")
    if grad.shape != shape:
        raise ShapeError(f"{owner}: `grad_out` must have the output shape {shape}, got {grad.shape}.")
    return grad


def convolution_backward(
    input_size: Any,
    kernel: Any,
    grad_out: Any = None,
    *,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
) -> ConvBackwardTrace:
    """Trace the input gradient of a convolution as a full convolution with the flipped kernel.

    Args:
        input_size: (H, W) of the forward input (an int for square), or the input array itself.
        kernel: (KH, KW) numbers or a kernel name.
        grad_out: (OH, OW); default 1, 2, 3, ... row-major (distinct values are easy to follow).
        strides, padding, dilation_rate: as the forward :func:`convlens.lab.explain.convolution`.

    Shapes:
        z (expanded grad_out): ((OH - 1) * SH + 1 + 2 * (EH - 1), ...), EH = (KH - 1) * DH + 1;
        grad_x: (H, W).
    """
    owner = "explain.convolution_backward"
    if isinstance(input_size, (int, np.integer)):
        size: tuple[int, ...] = (int(input_size), int(input_size))
    elif np.ndim(input_size) == 2:
        size = np.shape(input_size)
    else:
        size = tuple(input_size)
    k = get_kernel(kernel)
    forward = WindowGeometry.resolve(size, k.shape, strides, padding, dilation_rate, owner=owner)
    check_traceable(forward, owner)
    grad = _grad_out(grad_out, forward.output_size, owner)
    sh, sw = forward.strides
    # The full convolution's geometry (WindowGeometry owns its pads): grad_out with S - 1 zeros inserted,
    # padded by E - 1 on every side, read by stride-1 windows; its output is the used part of the padded input.
    full = forward.full_convolution(crop=False, owner=owner)
    inner = np.zeros(full.input_size)
    inner[::sh, ::sw] = grad
    inner_cells = np.full(inner.shape, CELL_INSERTED, np.int8)
    inner_cells[::sh, ::sw] = 0
    z = pad(inner[None, :, :, None], full)[0, :, :, 0]
    cells = pad(inner_cells[None, :, :, None], full, CELL_PAD)[0, :, :, 0]
    geometry = WindowGeometry.resolve(full.padded_size, k.shape, 1, "valid", forward.dilation_rate, owner=owner)
    flipped = k[::-1, ::-1].copy()
    trace = conv_trace(geometry, z, z, cells, flipped, 0.0, "zero-inserted, padded grad_out")
    grad_padded = np.zeros(forward.padded_size)
    used_h, used_w = full.output_size
    grad_padded[:used_h, :used_w] = trace.output
    grad_x = crop(grad_padded[None, :, :, None], forward)[0, :, :, 0].copy()
    return ConvBackwardTrace(forward, grad, k, trace, grad_padded, grad_x)


def pooling_backward(
    input: Any,
    grad_out: Any = None,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    kind: str = "max",
) -> PoolBackwardTrace:
    """Trace how a pooling routes ``grad_out`` back to its input.

    Max: each window's gradient goes to its arg-max (first maximum in row-major order, padding never
    wins). Avg: each real cell of the window gets ``grad / count``. Overlapping windows add up.

    Shapes:
        input: (H, W); grad_out: (OH, OW); grad_x: (H, W).
    """
    kind = check_choice(kind, "kind", ("max", "avg"), owner="explain.pooling_backward")
    trace = pooling(input, pool_size=pool_size, strides=strides, padding=padding, kind=kind)
    grad = _grad_out(grad_out, trace.geometry.output_size, "explain.pooling_backward")
    height, width = trace.input.shape
    partial = np.zeros((len(trace.steps), height, width))
    running = np.zeros((height, width))
    for step in trace.steps:
        g = grad[step.index]
        if step.argmax is not None:
            running[step.argmax] += g
        else:
            for cell in trace.geometry.real_taps(step.index):
                running[cell] += g / step.count
        partial[step.position] = running
    return PoolBackwardTrace(trace, grad, running.copy(), partial)
