"""Pooling plans: max and average pooling for one input shape, buffers reused across calls.

Each plan picks its algorithm once per dtype from a small table (``plan.algorithms``, ``plan.explain()``):

- ``max_pool_taps`` / ``avg_pool_taps`` (NumPy): a loop over the KH*KW window offsets, each a strided
  slice of the (padded) input (:func:`convlens.ops.windows.tap_slices`): the max is a running
  ``np.maximum``; the arg-max is the index 0..KH*KW-1 of the first maximum, kept as ``uint8`` and counted
  with comparisons against the max; the backward scatters ``grad_out * (argmax == k)`` into each offset's
  slice (assigned when windows tile the input, added when they overlap);
- ``max_pool_compiled`` / ``avg_pool_compiled``: the Numba kernels of :mod:`convlens.ops.pooling_jit`, the
  same bits in one pass on all cores (float32/float64 with Numba installed; ``CONVLENS_JIT=0`` turns it off).

The pure functions live in :mod:`convlens.ops.pooling`.

Shapes (channels_last):
    x: (N, H, W, C); out: (N, OH, OW, C), OH from :mod:`convlens.geometry`
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ShapeError, StateError, check_choice, normalize_tuple
from convlens.geometry import WindowGeometry
from convlens.ops.jit import compiled_for, jit_enabled
from convlens.ops.parallel import parallel_ranges
from convlens.ops.pooling_jit import (
    avg_pool2d_backward_jit,
    avg_pool2d_forward_jit,
    max_pool2d_backward_jit,
    max_pool2d_forward_jit,
)
from convlens.ops.strategy import Explanation, Registry, Rule, Strategy
from convlens.ops.windows import Workspace, crop, pad, tap_slices

__all__ = ["AVG_POOL_REGISTRY", "MAX_POOL_REGISTRY", "POOL_PADDINGS", "AvgPool2DPlan", "MaxPool2DPlan"]

POOL_PADDINGS = ("valid", "same")

# The KH*KW passes run over batch chunks of about this many input bytes, which stay in cache
# between passes (measured ~25% faster than whole-batch passes on (128, 28, 28, 32) float32).
# Python loops over chunks, not items: each pass is still one vectorised ufunc call per chunk. The chunks split
# over the threads (NumPy releases the GIL in its loops): average pooling 2x2 of LeNet-5's (128, 28x28, 6), Intel
# Xeon, 2 threads: fwd 0.58 -> 0.43 ms, bwd 0.60 -> 0.49 ms; 1000 images fwd 4.7 -> 2.5 ms, bwd 4.6 -> 2.8 ms
# (the AMD EPYC saw no gain for max pooling).
_CHUNK_BYTES = 1 << 20


def _fold_taps(plan: Any, padded: np.ndarray, chunk: slice, result: np.ndarray, ufunc: Any) -> list[np.ndarray]:
    """``result`` = ``ufunc`` folded over the window offsets of a batch chunk, in offset order; returns the taps."""
    taps = [padded[chunk, rows, cols] for rows, cols in plan.slices]
    if len(taps) == 1:
        np.copyto(result, taps[0])
    else:
        ufunc(taps[0], taps[1], out=result)
        for tap in taps[2:]:
            ufunc(result, tap, out=result)
    return taps


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


# ----------------------------------------------------------------------------- the algorithms and their tables
@dataclass(frozen=True)
class PoolProblem:
    """What a pooling algorithm is chosen on."""

    geometry: WindowGeometry
    x_shape: tuple[int, ...]
    dtype: np.dtype[Any]


class _PoolStrategy(Strategy):
    roles = ("forward", "input_grad")

    def __init__(self, plan: Any) -> None:
        self.plan = plan


class MaxPoolTaps(_PoolStrategy):
    """One strided ``np.maximum`` pass per window offset over cache-sized batch chunks (the NumPy reference)."""

    name = "max_pool_taps"
    summary = "one strided np.maximum per window offset over batch chunks; arg-max by counting; scatter back"
    measured = "chunks of ~1 MB: ~25% faster than whole-batch passes on (128, 28, 28, 32) float32 (AMD EPYC)"

    def forward(self, x: np.ndarray, out: np.ndarray, argmax: np.ndarray | None) -> None:
        plan = self.plan
        padded = pad(x, plan.geometry, plan.pad_value, workspace=plan.workspace)
        ws, shape = plan.workspace, plan.output_shape
        missed = ws.get("missed", shape, np.bool_) if argmax is not None else None
        other = ws.get("other", shape, np.bool_) if argmax is not None else None

        def work(chunk: slice) -> None:
            result = out[chunk]
            taps = _fold_taps(plan, padded, chunk, result, np.maximum)
            if argmax is not None and missed is not None and other is not None:
                _first_argmax(taps, result, argmax[chunk], missed[chunk], other[chunk])

        plan.over_chunks(work, x.nbytes)

    def input_grad(self, grad_out: np.ndarray, argmax: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        grad = grad_out.astype(dtype, copy=False)

        def fill(chunk: slice, k: int, out: np.ndarray) -> None:
            np.multiply(grad[chunk], argmax[chunk] == k, out=out)

        return self.plan._scatter(fill, dtype)  # type: ignore[no-any-return]


class _CompiledPool(_PoolStrategy):
    """A pooling algorithm that runs compiled kernels."""

    @classmethod
    def applies(cls, problem: PoolProblem) -> str | None:
        if not compiled_for(problem.dtype):
            return (
                f"needs compiled kernels for {problem.dtype.name} (numba installed, CONVLENS_JIT not 0, "
                "the dtype in CONVLENS_JIT_DTYPES)"
            )
        return None


class MaxPoolCompiled(_CompiledPool):
    """The Numba kernels of :mod:`convlens.ops.pooling_jit`: the same bits as :class:`MaxPoolTaps`, one pass."""

    name = "max_pool_compiled"
    summary = "compiled one-pass max + first arg-max and gradient routing (Numba), bit-identical to max_pool_taps"
    measured = "max-pool 2x2 (128, 28x28, 32) fwd+bwd: 1.0 ms vs 6.6 ms NumPy (AMD EPYC), 1.3 vs 3.8 ms (Intel Xeon)"

    def forward(self, x: np.ndarray, out: np.ndarray, argmax: np.ndarray | None) -> None:
        max_pool2d_forward_jit(x, self.plan.geometry, out, argmax)

    def input_grad(self, grad_out: np.ndarray, argmax: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        batch, _, _, channels = self.plan.x_shape
        return max_pool2d_backward_jit(grad_out, argmax, self.plan.geometry, batch, channels, dtype)


class AvgPoolTaps(_PoolStrategy):
    """One strided ``np.add`` pass per window offset, divided by each window's real cells."""

    name = "avg_pool_taps"
    summary = "one strided np.add per window offset over batch chunks, divided by the real cells; shares scattered"
    measured = "the NumPy reference; chunks of ~1 MB split over the threads"

    def forward(self, x: np.ndarray) -> np.ndarray:
        plan = self.plan
        padded = pad(x, plan.geometry, 0.0, workspace=plan.workspace)
        out = np.empty(plan.output_shape, x.dtype)
        divisor = plan._divisor(x.dtype)

        def work(chunk: slice) -> None:
            result = out[chunk]
            _fold_taps(plan, padded, chunk, result, np.add)
            np.divide(result, divisor, out=result)

        plan.over_chunks(work, x.nbytes)
        return out

    def input_grad(self, grad_out: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        plan = self.plan
        share = np.divide(grad_out.astype(dtype, copy=False), plan._divisor(dtype))
        return plan._scatter(lambda chunk, _, out: np.copyto(out, share[chunk]), dtype)  # type: ignore[no-any-return]


class AvgPoolCompiled(_CompiledPool):
    """The Numba kernels of :mod:`convlens.ops.pooling_jit`: the same bits as :class:`AvgPoolTaps`, one pass."""

    name = "avg_pool_compiled"
    summary = "compiled one-pass window sums / divisor and gradient shares (Numba), bit-identical to avg_pool_taps"
    measured = (
        "average-pool 2x2 (128, 28x28, 6) fwd+bwd: 0.7 ms vs 0.9 ms NumPy, torch 0.7 (Intel Xeon, conv_ops.py, 2 "
        "threads); 1 thread, windows inside summed in registers (2x2 spelt out): fwd 0.36 -> 0.20 ms, bwd 0.25 -> 0.20"
    )

    def forward(self, x: np.ndarray) -> np.ndarray:
        return avg_pool2d_forward_jit(x, self.plan.geometry, self.plan._window_divisors(x.dtype))

    def input_grad(self, grad_out: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        batch, _, _, channels = self.plan.x_shape
        divisors = self.plan._window_divisors(dtype)
        return avg_pool2d_backward_jit(grad_out, divisors, self.plan.geometry, batch, channels, dtype)


def _always(problem: PoolProblem, chosen: Mapping[str, str]) -> bool:
    return True


MAX_POOL_REGISTRY = Registry(
    "max_pool2d",
    ("forward", "input_grad"),
    (MaxPoolTaps, MaxPoolCompiled),
    [
        Rule("forward", "max_pool_compiled", "always, when compiled", _always, MaxPoolCompiled.measured),
        Rule("forward", "max_pool_taps", "otherwise", _always, "the NumPy reference"),
        Rule("input_grad", "max_pool_compiled", "always, when compiled", _always, MaxPoolCompiled.measured),
        Rule("input_grad", "max_pool_taps", "otherwise", _always, "the NumPy reference"),
    ],
)
AVG_POOL_REGISTRY = Registry(
    "avg_pool2d",
    ("forward", "input_grad"),
    (AvgPoolTaps, AvgPoolCompiled),
    [
        Rule("forward", "avg_pool_compiled", "always, when compiled", _always, AvgPoolCompiled.measured),
        Rule("forward", "avg_pool_taps", "otherwise", _always, "the NumPy reference"),
        Rule("input_grad", "avg_pool_compiled", "always, when compiled", _always, AvgPoolCompiled.measured),
        Rule("input_grad", "avg_pool_taps", "otherwise", _always, "the NumPy reference"),
    ],
)


# ----------------------------------------------------------------------------- the plans
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
        algorithm: str | Mapping[str, str] = "auto",
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
        self._source = f"algorithm={algorithm!r}"
        self._forced = self.registry.forced_roles(algorithm, owner, self._source)
        self._selections: dict[tuple[Any, ...], tuple[Any, dict[str, Any]]] = {}
        self._choose(np.dtype(np.float32))  # a forced algorithm that cannot run fails here

    registry: Registry  # the subclass's algorithms and selection table

    def _choose(self, dtype: Any) -> dict[str, Any]:
        """``{role: strategy}`` for ``dtype``, chosen once per dtype (and state of the compiled kernels)."""
        key = (np.dtype(dtype), jit_enabled())
        found = self._selections.get(key)
        if found is None:
            problem = PoolProblem(self.geometry, self.x_shape, np.dtype(dtype))
            choices = self.registry.select(problem, self._forced, self.owner, self._source)
            instances: dict[str, Any] = {}
            for choice in choices:
                if choice.algorithm not in instances:
                    instances[choice.algorithm] = self.registry.strategies[choice.algorithm](self)  # type: ignore[call-arg]
            found = self._selections[key] = (choices, {c.role: instances[c.algorithm] for c in choices})
        return found[1]

    @property
    def algorithms(self) -> tuple[str, ...]:
        """(forward, input_grad) algorithm names for float32."""
        chosen = self._choose(np.float32)
        return tuple(chosen[role].name for role in self.registry.roles)

    def explain(self, dtype: Any = np.float32) -> Explanation:
        """Which algorithms applied, which won and why."""
        self._choose(dtype)
        choices = self._selections[(np.dtype(dtype), jit_enabled())][0]
        g = self.geometry
        title = (
            f"{self.owner}: x {self.x_shape} -> {self.output_shape}; window {g.kernel_size}, strides {g.strides}, "
            f"pads {g.pads}, {np.dtype(dtype).name}, compiled kernels {'on' if jit_enabled() else 'off'}"
        )
        return Explanation(title, choices)

    @classmethod
    def for_1d(
        cls,
        x_shape: tuple[int, ...],
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        *,
        owner: str = "pool1d",
        algorithm: str | Mapping[str, str] = "auto",
    ) -> Any:
        """Plan for a 1-D input (N, L, C), run as 2-D over (N, 1, L, C); errors speak 1-D."""
        if len(x_shape) != 3:
            raise ShapeError(f"{owner}: input must be 3-D (batch, steps, channels), got shape {tuple(x_shape)}.")
        (pool,) = normalize_tuple(pool_size, 1, "pool_size", owner=owner)
        (stride,) = (pool,) if strides is None else normalize_tuple(strides, 1, "strides", owner=owner)
        mode = check_choice(padding, "padding", POOL_PADDINGS, owner=owner)
        WindowGeometry.resolve((int(x_shape[1]),), pool, stride, mode, owner=owner)
        return cls((x_shape[0], 1, *x_shape[1:]), (1, pool), (1, stride), mode, owner=owner, algorithm=algorithm)

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

        self.over_chunks(work, target.nbytes)
        return crop(target, self.geometry).copy() if self.geometry.is_padded else target

    def over_chunks(self, work: Callable[[slice], object], nbytes: int) -> None:
        """``work(chunk)`` for every batch chunk; the chunks split over the threads when ``nbytes`` is large
        (NumPy's passes run on one core; the chunks are disjoint, so the results do not depend on the split).
        """
        chunks = self.chunks
        parallel_ranges(lambda lo, hi: [work(chunk) for chunk in chunks[lo:hi]], len(chunks), nbytes)


class MaxPool2DPlan(_PoolPlan):
    """Max pooling for one input shape; ``forward`` keeps the arg-max that ``backward`` needs.

    The gradient of each window goes to its FIRST maximum in row-major window order.
    Layers keep one plan per input shape; :func:`max_pool2d` builds a throwaway one.

    Shapes:
        x: (N, H, W, C); out and grad_out: (N, OH, OW, C); argmax: (N, OH, OW, C) uint8
        (index i * KW + j of the winning window offset).
    """

    pad_value = -np.inf
    registry = MAX_POOL_REGISTRY

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
        self._choose(x.dtype)["forward"].forward(x, out, argmax)
        self._x, self.argmax = x, argmax
        return out

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
        return self._choose(dtype)["input_grad"].input_grad(grad_out, argmax, dtype)


class AvgPool2DPlan(_PoolPlan):
    """Average pooling for one input shape ('same' divides by the real cells of each window).

    Shapes:
        x: (N, H, W, C); out and grad_out: (N, OH, OW, C); counts: (OH, OW, 1).
    """

    registry = AVG_POOL_REGISTRY

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rows, cols = (np.array(c, np.float64) for c in self.geometry.real_counts())
        self.counts: np.ndarray = (rows[:, None] * cols[None, :])[:, :, None]
        self._dtype: np.dtype[Any] | None = None
        self._divisors: dict[np.dtype[Any], np.ndarray] = {}

    def _divisor(self, dtype: np.dtype[Any]) -> np.ndarray:
        if self.geometry.is_padded:
            return self.counts.astype(dtype)
        return self.counts[:1, :1].astype(dtype)

    def _window_divisors(self, dtype: np.dtype[Any]) -> np.ndarray:
        """Each window's divisor (OH, OW) in ``dtype``: what :meth:`_divisor` broadcasts."""
        found = self._divisors.get(np.dtype(dtype))
        if found is None:
            whole = np.broadcast_to(self._divisor(dtype)[:, :, 0], self.geometry.output_size)
            found = self._divisors[np.dtype(dtype)] = np.ascontiguousarray(whole)
        return found

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Mean over the real cells of each window of ``x`` (N, H, W, C); returns (N, OH, OW, C)."""
        self._check_x(x)
        out = self._choose(x.dtype)["forward"].forward(x)
        self._dtype = x.dtype
        return out  # type: ignore[no-any-return]

    def backward(self, grad_out: np.ndarray, dtype: Any = None) -> np.ndarray:
        """Gradient (N, H, W, C) for ``grad_out`` (N, OH, OW, C); needs no forward state."""
        self._check_grad(grad_out)
        dtype = np.dtype(dtype or self._dtype or grad_out.dtype)
        return self._choose(dtype)["input_grad"].input_grad(grad_out, dtype)  # type: ignore[no-any-return]
