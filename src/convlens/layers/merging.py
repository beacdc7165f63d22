"""Merge layers for the Functional API: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Concatenate``.

Each takes a LIST of inputs (symbolic tensors when building a model, arrays when called directly) and
returns one output; the backward pass returns one gradient per input. Element-wise merges broadcast like
NumPy over the non-batch axes (a (None, 1, 1, C) input against (None, H, W, C)); the gradient of a
broadcast input is summed back to its shape. ``Concatenate(axis=-1)`` joins along ``axis``.

Shapes:
    Add / Subtract / Multiply / Average: inputs (N, ...) broadcastable; output the broadcast shape.
    Concatenate: inputs equal except on ``axis``; output's ``axis`` is the sum of the inputs'.

>>> import numpy as np
>>> a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2.0, np.float32)
>>> Add()([a, b])[0], Average()([a, b])[0], Concatenate()([a, b]).shape
(array([3., 3., 3.], dtype=float32), array([1.5, 1.5, 1.5], dtype=float32), (2, 6))
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConfigError, ShapeError, StateError, check_int
from convlens.layers.base import Layer, register
from convlens.layers.symbolic import is_symbolic, symbolic_call

__all__ = ["Add", "Average", "Concatenate", "Multiply", "Subtract"]

Shapes = list[tuple[int | None, ...]]


def _sum(arrays: list[np.ndarray]) -> np.ndarray:
    out = arrays[0] + arrays[1]
    for a in arrays[2:]:
        out = out + a
    return np.asarray(out)


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape, strict=True)) if s == 1 and g != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class _Merge(Layer):
    """Shared machinery: a list of inputs in, one output; ``backward`` returns a list."""

    takes_list: ClassVar[bool] = True
    min_inputs: ClassVar[int] = 2
    max_inputs: ClassVar[int | None] = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_shapes: Shapes | None = None
        self._inputs: list[np.ndarray] | None = None

    def _check_count(self, count: int) -> None:
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            want = f"exactly {self.min_inputs}" if self.max_inputs == self.min_inputs else f"at least {self.min_inputs}"
            raise ConfigError(f"{self!r}: takes {want} inputs, got {count}.")

    def _broadcast(self, shapes: Shapes) -> tuple[int | None, ...]:
        self._check_count(len(shapes))
        rest = [s[1:] for s in shapes]
        rank = max(len(r) for r in rest)
        out: list[int | None] = []
        for i in range(rank):
            sizes = {r[len(r) - rank + i] for r in rest if len(r) - rank + i >= 0} - {1}
            if len(sizes) > 1:
                raise ShapeError(
                    f"{self!r}: input shapes {shapes} do not broadcast (axis {i + 1}: {sorted(sizes, key=str)})."
                )
            out.append(sizes.pop() if sizes else 1)
        return (shapes[0][0], *out)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self._broadcast([tuple(s) for s in input_shape])

    def build(self, input_shape: Any, rng: np.random.Generator | None = None) -> None:
        shapes = [tuple(s) for s in input_shape]
        self.compute_output_shape(shapes)
        self.input_shapes = shapes
        self.input_shape = shapes[0]
        self.built = True

    @property
    def output_shape(self) -> Any:
        if self.input_shapes is None:
            raise StateError(f"{self!r}: output_shape is known once the layer is built.")
        return self.compute_output_shape(self.input_shapes)

    def __call__(self, x: Any, training: bool = False) -> Any:
        if is_symbolic(x):
            return symbolic_call(self, x)
        if not isinstance(x, (list, tuple)):
            raise ConfigError(f"{self!r}: expects a list of inputs, got {type(x).__name__}.")
        arrays = [np.asarray(a, dtype=self.dtype) for a in x]
        if not self.built:
            self.build([(None, *a.shape[1:]) for a in arrays])
        if len({a.shape[0] for a in arrays}) != 1:
            raise ShapeError(f"{self!r}: the inputs have different batch sizes {[a.shape[0] for a in arrays]}.")
        return self.forward(arrays, training)  # type: ignore[arg-type]

    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        arrays = [np.asarray(a, dtype=self.dtype) for a in x]
        self._check_count(len(arrays))
        y = self._merge(arrays)
        self._inputs = arrays if training else None
        return y

    def backward(self, grad_out: np.ndarray) -> Any:
        if self._inputs is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        arrays, self._inputs = self._inputs, None
        return [_unbroadcast(g, a.shape) for g, a in zip(self._merge_backward(grad_out, arrays), arrays, strict=True)]

    def _merge(self, arrays: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _merge_backward(self, grad_out: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


@register
class Add(_Merge):
    """Element-wise sum of the inputs (``keras.layers.Add``); each input's gradient is ``grad_out``."""

    def _merge(self, arrays: list[np.ndarray]) -> np.ndarray:
        return _sum(arrays)

    def _merge_backward(self, grad_out: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [grad_out] * len(arrays)


@register
class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (``keras.layers.Subtract``, exactly two inputs)."""

    max_inputs: ClassVar[int | None] = 2

    def _merge(self, arrays: list[np.ndarray]) -> np.ndarray:
        return np.asarray(arrays[0] - arrays[1])

    def _merge_backward(self, grad_out: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [grad_out, -grad_out]


@register
class Multiply(_Merge):
    """Element-wise product (``keras.layers.Multiply``); input i's gradient is ``grad_out`` times the others."""

    min_inputs: ClassVar[int] = 2

    def _merge(self, arrays: list[np.ndarray]) -> np.ndarray:
        out = arrays[0] * arrays[1]
        for a in arrays[2:]:
            out = out * a
        return np.asarray(out)

    def _merge_backward(self, grad_out: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
        grads = []
        for i in range(len(arrays)):
            g = grad_out
            for j, a in enumerate(arrays):
                if j != i:
                    g = g * a
            grads.append(np.asarray(g))
        return grads


@register
class Average(_Merge):
    """Element-wise mean (``keras.layers.Average``); each input's gradient is ``grad_out / n``."""

    def _merge(self, arrays: list[np.ndarray]) -> np.ndarray:
        return np.asarray(_sum(arrays) / np.asarray(len(arrays), arrays[0].dtype))

    def _merge_backward(self, grad_out: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(grad_out / np.asarray(len(arrays), grad_out.dtype))] * len(arrays)


@register
class Concatenate(_Merge):
    """Join the inputs along ``axis`` (default -1, the channels) (``keras.layers.Concatenate``)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = check_int(axis, "axis", owner=repr(self))

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = [tuple(s) for s in input_shape]
        self._check_count(len(shapes))
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ShapeError(f"{self!r}: cannot join shapes {shapes} along axis {self.axis}.")
        axis = self.axis % rank
        for i in range(1, rank):
            if i != axis and len({s[i] for s in shapes} - {None}) > 1:
                raise ShapeError(f"{self!r}: shapes {shapes} differ on axis {i}, only axis {self.axis} may differ.")
        sizes = [s[axis] for s in shapes]
        joined = None if any(v is None for v in sizes) else sum(sizes)  # type: ignore[misc]
        return tuple(joined if i == axis else shapes[0][i] for i in range(rank))

    def _merge(self, arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays, axis=self.axis)

    def _merge_backward(self, grad_out: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
        bounds = np.cumsum([a.shape[self.axis] for a in arrays])[:-1]
        return list(np.split(grad_out, bounds, axis=self.axis))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config
