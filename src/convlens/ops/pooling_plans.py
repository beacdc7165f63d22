"""Pooling plans: max and average pooling for one input shape, buffers reused across calls.

The work is a loop over the KH*KW window offsets, each a strided slice of the (padded) input
(:func:`convlens.ops.windows.tap_slices`): the max is a running ``np.maximum``; the arg-max is the
index 0..KH*KW-1 of the first maximum, kept as ``uint8`` and counted with comparisons against the
max; the backward scatters ``grad_out * (argmax == k)`` into each offset's slice (assigned when
windows tile the input, added when they overlap). The pure functions live in :mod:`convlens.ops.pooling`.
With Numba installed, max pooling of float32/float64 runs the kernels of :mod:`convlens.ops.pooling_jit`
instead (the same bits, one pass on all cores); ``CONVLENS_JIT=0`` keeps the NumPy code.

Shapes (channels_last):
    x: (N, H, W, C); out: (N, OH, OW, C), OH from :mod:`convlens.geometry`
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convlens.errors import ShapeError, StateError, check_choice, normalize_tuple
from convlens.geometry import WindowGeometry
from convlens.ops.jit import jit_enabled
from convlens.ops.pooling_jit import JIT_DTYPES, max_pool2d_backward_jit, max_pool2d_forward_jit
from convlens.ops.windows import Workspace, crop, pad, tap_slices

__all__ = ["POOL_PADDINGS", "AvgPool2DPlan", "MaxPool2DPlan"]

POOL_PADDINGS = ("valid", "same")

# The KH*KW passes run over batch chunks of about this many input bytes, which stay in cache
# between passes (measured ~25% faster than whole-batch passes on (128, 28, 28, 32) float32).
# Python loops over chunks, not items: each pass is still one vectorised ufunc call per chunk.
# (A thread pool over the chunks gave no speed-up on the 2-core development machine.)
_CHUNK_BYTES = 1 << 20


class _PoolPlan:
    """Geometry, batch chunks and buffers of a 2-D pooling over one channels-last input shape."""

    pad_value = 0.0

    def __init__(
        self,
        x_shape: tuple[int, ...],
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        *,
        owner: str = "pool2d",
    ) -> None:
        if len(x_shape) != 4:
            raise ShapeError(
                f"{owner}: input must be 4-D (batch, height, width, channels), got shape {tuple(x_shape)}."
            )
        pool = normalize_tuple(pool_size, 2, "pool_size", owner=owner)
        stride = pool if strides is None else normalize_tuple(strides, 2, "strides", owner=owner)
        mode = check_choice(padding, "padding", POOL_PADDINGS, owner=owner)
        self.owner = owner
        self.x_shape = tuple(int(s) for s in x_shape)
        self.geometry = WindowGeometry.resolve(self.x_shape[1:3], pool, stride, mode, owner=owner)
        geometry = self.geometry
        kh, kw = geometry.kernel_size
        self.slices = [tap_slices(geometry, i, j) for i in range(kh) for j in range(kw)]
        self.disjoint = all(s >= k for s, k in zip(geometry.strides, geometry.kernel_size, strict=True))
        # Windows tile the input exactly: every input cell gets exactly one gradient write.
        self.tiles = (
            geometry.strides == geometry.kernel_size
            and not geometry.is_padded
            and geometry.used_size == geometry.input_size
        )
        batch = self.x_shape[0]
        step = max(1, _CHUNK_BYTES // max(1, 4 * math.prod(self.x_shape[1:])))
        self.chunks = [slice(b, min(b + step, batch)) for b in range(0, batch, step)] or [slice(0, 0)]
        self.workspace = Workspace()

    @classmethod
    def for_1d(
        cls,
        x_shape: tuple[int, ...],
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        *,
        owner: str = "pool1d",
    ) -> Any:
        """Plan for a 1-D input (N, L, C), run as 2-D over (N, 1, L, C); errors speak 1-D."""
        if len(x_shape) != 3:
            raise ShapeError(f"{owner}: input must be 3-D (batch, steps, channels), got shape {tuple(x_shape)}.")
        (pool,) = normalize_tuple(pool_size, 1, "pool_size", owner=owner)
        (stride,) = (pool,) if strides is None else normalize_tuple(strides, 1, "strides", owner=owner)
        mode = check_choice(padding, "padding", POOL_PADDINGS, owner=owner)
        WindowGeometry.resolve((int(x_shape[1]),), pool, stride, mode, owner=owner)
        return cls((x_shape[0], 1, *x_shape[1:]), (1, pool), (1, stride), mode, owner=owner)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, OH, OW, C)."""
        oh, ow = self.geometry.output_size
        return (self.x_shape[0], oh, ow, self.x_shape[3])

    def _check_x(self, x: np.ndarray) -> None:
        if x.shape != self.x_shape:
            raise ShapeError(f"{self.owner}: expected input shape {self.x_shape}, got {x.shape}.")

    def _check_grad(self, grad_out: np.ndarray) -> None:
        if grad_out.shape != self.output_shape:
            raise ShapeError(
                f"{self.owner}: `grad_out` must have the output shape {self.output_shape}, got {grad_out.shape}."
            )

    def _scatter(self, fill: Callable[[slice, int, np.ndarray], object], dtype: np.dtype[Any]) -> np.ndarray:
        """Gradient (N, H, W, C); ``fill(chunk, k, out)`` writes offset k's share for a batch chunk."""
        batch, _, _, channels = self.x_shape
        if self.tiles:
            target = np.empty(self.x_shape, dtype)
        else:
            target = np.zeros((batch, *self.geometry.padded_size, channels), dtype)

        def work(chunk: slice) -> None:
            part = None
            if not self.disjoint:
                part = np.empty((chunk.stop - chunk.start, *self.output_shape[1:]), dtype)
            for k, (rows, cols) in enumerate(self.slices):
                view = target[chunk, rows, cols]
                if part is None:
                    fill(chunk, k, view)
                else:
                    fill(chunk, k, part)
                    view += part

        for chunk in self.chunks:
            work(chunk)
        return crop(target, self.geometry).copy() if self.geometry.is_padded else target


class MaxPool2DPlan(_PoolPlan):
    """Max pooling for one input shape; ``forward`` keeps the arg-max that ``backward`` needs.

    The gradient of each window goes to its FIRST maximum in row-major window order.
    Layers keep one plan per input shape; :func:`max_pool2d` builds a throwaway one.

    Shapes:
        x: (N, H, W, C); out and grad_out: (N, OH, OW, C); argmax: (N, OH, OW, C) uint8
        (index i * KW + j of the winning window offset).
    """

    pad_value = -np.inf

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.index_dtype = np.min_scalar_type(len(self.slices) - 1)
        self.argmax: np.ndarray | None = None
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, keep_argmax: bool = True) -> np.ndarray:
        """Max over each window of ``x`` (N, H, W, C); returns a fresh (N, OH, OW, C) array.

        With ``keep_argmax=False`` (inference) only a reference to ``x`` is kept and
        :meth:`backward` recomputes the arg-max if it is ever called. ``self.argmax`` is a
        buffer of the plan, overwritten by the next forward.
        """
        self._check_x(x)
        out = np.empty(self.output_shape, x.dtype)
        argmax = self.workspace.get("argmax", self.output_shape, self.index_dtype) if keep_argmax else None
        if _use_jit(x.dtype):
            max_pool2d_forward_jit(x, self.geometry, out, argmax)
        else:
            self._forward_numpy(x, out, argmax)
        self._x, self.argmax = x, argmax
        return out

    def _forward_numpy(self, x: np.ndarray, out: np.ndarray, argmax: np.ndarray | None) -> None:
        """The reference: one strided pass per window offset, over cache-sized batch chunks."""
        padded = pad(x, self.geometry, self.pad_value, workspace=self.workspace)
        ws, shape = self.workspace, self.output_shape
        missed = ws.get("missed", shape, np.bool_) if argmax is not None else None
        other = ws.get("other", shape, np.bool_) if argmax is not None else None

        def work(chunk: slice) -> None:
            taps = [padded[chunk, rows, cols] for rows, cols in self.slices]
            result = out[chunk]
            if len(taps) == 1:
                np.copyto(result, taps[0])
            else:
                np.maximum(taps[0], taps[1], out=result)
                for tap in taps[2:]:
                    np.maximum(result, tap, out=result)
            if argmax is not None and missed is not None and other is not None:
                _first_argmax(taps, result, argmax[chunk], missed[chunk], other[chunk])

        for chunk in self.chunks:
            work(chunk)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Gradient (N, H, W, C) for ``grad_out`` (N, OH, OW, C) of the last :meth:`forward`.

        Non-finite ``grad_out`` values leak NaN into the losing cells of their window (0 * inf).
        """
        if self._x is None:
            raise StateError(f"{self.owner}: backward called before forward.")
        self._check_grad(grad_out)
        if self.argmax is None:
            self.forward(self._x)
        argmax: np.ndarray = self.argmax  # type: ignore[assignment]  # set by forward
        dtype = self._x.dtype
        if _use_jit(dtype):
            batch, _, _, channels = self.x_shape
            return max_pool2d_backward_jit(grad_out, argmax, self.geometry, batch, channels, dtype)
        grad = grad_out.astype(dtype, copy=False)

        def fill(chunk: slice, k: int, out: np.ndarray) -> None:
            np.multiply(grad[chunk], argmax[chunk] == k, out=out)

        return self._scatter(fill, dtype)


def _use_jit(dtype: np.dtype[Any]) -> bool:
    """Numba kernels for float32/float64 when available (:mod:`convlens.ops.pooling_jit`)."""
    return dtype in JIT_DTYPES and jit_enabled()


def _first_argmax(
    taps: list[np.ndarray], out: np.ndarray, argmax: np.ndarray, missed: np.ndarray, other: np.ndarray
) -> None:
    """Index of the first tap equal to ``out``: the count of leading taps that are not the max."""
    if len(taps) == 1:
        argmax.fill(0)
        return
    np.not_equal(taps[0], out, out=missed)
    np.copyto(argmax, missed.view(np.uint8))
    for tap in taps[1:-1]:
        np.not_equal(tap, out, out=other)
        np.logical_and(missed, other, out=missed)
        np.add(argmax, missed.view(np.uint8), out=argmax)


class AvgPool2DPlan(_PoolPlan):
    """Average pooling for one input shape ('same' divides by the real cells of each window).

    Shapes:
        x: (N, H, W, C); out and grad_out: (N, OH, OW, C); counts: (OH, OW, 1).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        geometry = self.geometry
        per_axis = []
        for n, k, s, o, (before, _) in zip(
            geometry.input_size,
            geometry.kernel_size,
            geometry.strides,
            geometry.output_size,
            geometry.pads,
            strict=True,
        ):
            start = np.arange(o) * s - before
            per_axis.append(np.minimum(start + k, n) - np.maximum(start, 0))
        self.counts: np.ndarray = (per_axis[0][:, None] * per_axis[1][None, :])[:, :, None].astype(np.float64)
        self._dtype: np.dtype[Any] | None = None

    def _divisor(self, dtype: np.dtype[Any]) -> np.ndarray:
        if self.geometry.is_padded:
            return self.counts.astype(dtype)
        return self.counts[:1, :1].astype(dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Mean over the real cells of each window of ``x`` (N, H, W, C); returns (N, OH, OW, C)."""
        self._check_x(x)
        padded = pad(x, self.geometry, 0.0, workspace=self.workspace)
        out = np.empty(self.output_shape, x.dtype)
        divisor = self._divisor(x.dtype)

        def work(chunk: slice) -> None:
            taps = [padded[chunk, rows, cols] for rows, cols in self.slices]
            result = out[chunk]
            if len(taps) == 1:
                np.copyto(result, taps[0])
            else:
                np.add(taps[0], taps[1], out=result)
                for tap in taps[2:]:
                    np.add(result, tap, out=result)
            np.divide(result, divisor, out=result)

        for chunk in self.chunks:
            work(chunk)
        self._dtype = x.dtype
        return out

    def backward(self, grad_out: np.ndarray, dtype: Any = None) -> np.ndarray:
        """Gradient (N, H, W, C) for ``grad_out`` (N, OH, OW, C); needs no forward state."""
        self._check_grad(grad_out)
        dtype = np.dtype(dtype or self._dtype or grad_out.dtype)
        share = np.divide(grad_out.astype(dtype, copy=False), self._divisor(dtype))
        return self._scatter(lambda chunk, _, out: np.copyto(out, share[chunk]), dtype)
