"""Pooling layers with Keras arguments and defaults; no weights.

``MaxPooling2D``/``AveragePooling2D`` (and the 1-D forms) keep one plan from
:mod:`convlens.ops.pooling` per input shape; the global layers reduce every spatial axis.

Shapes (channels_last):
    MaxPooling2D / AveragePooling2D: (N, H, W, C) -> (N, OH, OW, C), 'valid': OH = (H - KH) // SH + 1,
    'same': OH = ceil(H / SH) (strides default to pool_size)
    MaxPooling1D / AveragePooling1D: (N, L, C) -> (N, OL, C)
    GlobalMaxPooling2D / GlobalAveragePooling2D: (N, H, W, C) -> (N, C) ((N, 1, 1, C) with keepdims)

>>> import numpy as np
>>> layer = MaxPooling2D(name="pool")
>>> layer.compute_output_shape((None, 28, 28, 32))
(None, 14, 14, 32)
>>> layer(np.zeros((2, 28, 28, 32), np.float32)).shape
(2, 14, 14, 32)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from convlens.errors import ShapeError, StateError, check_bool, check_choice, normalize_tuple
from convlens.geometry import WindowGeometry
from convlens.layers.base import Layer, Shape, register
from convlens.ops import global_pooling
from convlens.ops._checks import check_data_format
from convlens.ops.pooling import POOL_PADDINGS, AvgPool2DPlan, MaxPool2DPlan, pool_plan
from convlens.resources import check_window

__all__ = [
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "MaxPooling1D",
    "MaxPooling2D",
]

_MAX_PLANS = 4  # e.g. the full batch and the last, smaller one of an epoch


class _Pooling(Layer):
    """Shared machinery: ``rank`` spatial axes computed as channels-last 2-D."""

    rank: ClassVar[int] = 2
    kind: ClassVar[str] = "max"

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size", owner=owner)
        check_window(self.pool_size, "pool_size", owner=owner)
        self.strides = (
            self.pool_size if strides is None else normalize_tuple(strides, self.rank, "strides", owner=owner)
        )
        self.padding = check_choice(padding, "padding", POOL_PADDINGS, owner=owner)
        self.data_format = check_data_format("channels_last" if data_format is None else data_format, owner)
        self.min_ndim = self.max_ndim = self.rank + 2  # type: ignore[misc]
        self._plans: dict[tuple[int, ...], MaxPool2DPlan | AvgPool2DPlan] = {}
        self._last: MaxPool2DPlan | AvgPool2DPlan | None = None

    def _spatial(self, input_shape: Shape) -> tuple[int | None, ...]:
        return tuple(input_shape[2:] if self.data_format == "channels_first" else input_shape[1:-1])

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        spatial = self._spatial(input_shape)
        owner = repr(self)
        known = [s for s in spatial if s is not None]
        if len(known) == len(spatial):
            out: tuple[int | None, ...] = WindowGeometry.resolve(
                known, self.pool_size, self.strides, self.padding, owner=owner
            ).output_size
        else:  # unknown sizes stay unknown; known axes are still checked
            out = tuple(
                None if s is None else WindowGeometry.resolve((s,), k, st, self.padding, owner=owner).output_size[0]
                for s, k, st in zip(spatial, self.pool_size, self.strides, strict=True)
            )
        if self.data_format == "channels_first":
            return (input_shape[0], input_shape[1], *out)
        return (input_shape[0], *out, input_shape[-1])

    def _plan(self, x2d: np.ndarray) -> MaxPool2DPlan | AvgPool2DPlan:
        plan = self._plans.get(x2d.shape)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            one = (1,) if self.rank == 1 else ()
            plan = pool_plan(
                self.kind, x2d.shape, (*one, *self.pool_size), (*one, *self.strides), self.padding,
                owner=repr(self), backward=True,
            )  # fmt: skip
            self._plans[x2d.shape] = plan
        return plan

    def _to_2d(self, x: np.ndarray) -> np.ndarray:
        if self.data_format == "channels_first":
            x = np.moveaxis(x, 1, -1)
        return x[:, None] if self.rank == 1 else x

    def _from_2d(self, y: np.ndarray) -> np.ndarray:
        y = y[:, 0] if self.rank == 1 else y
        if self.data_format == "channels_first":
            y = np.ascontiguousarray(np.moveaxis(y, -1, 1))
        return y

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != self.rank + 2:
            self.check_input_shape(x.shape)
        x2d = self._to_2d(x)
        plan = self._plan(x2d)
        # Inference keeps no arg-max; a later backward recomputes it from x.
        y = plan.forward(x2d, keep_argmax=training) if isinstance(plan, MaxPool2DPlan) else plan.forward(x2d)
        self._last = plan
        return self._from_2d(y)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        plan = self._last
        if plan is None:
            raise StateError(f"{self!r}: backward called before forward.")
        grad_out = np.asarray(grad_out, dtype=self.dtype)
        shape = plan.output_shape[:1] + plan.output_shape[3 - self.rank :]
        if self.data_format == "channels_first":
            shape = (shape[0], shape[-1], *shape[1:-1])
        if grad_out.shape != shape:
            raise ShapeError(f"{self!r}: `grad_out` must have the output shape {shape}, got {grad_out.shape}.")
        grad = self._to_2d(grad_out)
        return self._from_2d(plan.backward(grad))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            pool_size=list(self.pool_size),
            strides=list(self.strides),
            padding=self.padding,
            data_format=self.data_format,
        )
        return config


@register
class MaxPooling2D(_Pooling):
    """Keras ``MaxPooling2D``; the gradient of a window goes to its first maximum (row-major)."""

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


@register
class AveragePooling2D(_Pooling):
    """Keras ``AveragePooling2D``; 'same' leaves padded cells out of each mean."""

    kind = "avg"

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


@register
class MaxPooling1D(_Pooling):
    """Keras ``MaxPooling1D`` over (N, L, C)."""

    rank = 1

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


@register
class AveragePooling1D(_Pooling):
    """Keras ``AveragePooling1D`` over (N, L, C)."""

    rank = 1
    kind = "avg"

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class _GlobalPooling(Layer):
    """Reduce every spatial axis (``rank`` of them) per channel."""

    rank: ClassVar[int] = 2
    kind: ClassVar[str] = "max"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = check_data_format("channels_last" if data_format is None else data_format, repr(self))
        self.keepdims = check_bool(keepdims, "keepdims", owner=repr(self))
        self.min_ndim = self.max_ndim = self.rank + 2  # type: ignore[misc]
        self._x: np.ndarray | None = None
        name = f"global_{self.kind}_pool{self.rank}d"
        self._forward = getattr(global_pooling, name)
        self._backward = getattr(global_pooling, name + "_backward")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        channels = input_shape[1] if self.data_format == "channels_first" else input_shape[-1]
        if not self.keepdims:
            return (input_shape[0], channels)
        ones = (1,) * self.rank
        if self.data_format == "channels_first":
            return (input_shape[0], channels, *ones)
        return (input_shape[0], *ones, channels)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != self.rank + 2:
            self.check_input_shape(x.shape)
        self._x = x
        try:
            y: np.ndarray = self._forward(x, keepdims=self.keepdims, data_format=self.data_format)
        except ShapeError as exc:
            raise ShapeError(f"{self!r}: {exc}") from None
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise StateError(f"{self!r}: backward called before forward.")
        grad = np.asarray(grad_out, dtype=self.dtype)
        try:
            grad_x: np.ndarray = self._backward(grad, self._x, keepdims=self.keepdims, data_format=self.data_format)
        except ShapeError as exc:
            raise ShapeError(f"{self!r}: {exc}") from None
        return grad_x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


@register
class GlobalMaxPooling2D(_GlobalPooling):
    """Keras ``GlobalMaxPooling2D``: (N, H, W, C) -> (N, C)."""


@register
class GlobalAveragePooling2D(_GlobalPooling):
    """Keras ``GlobalAveragePooling2D``: (N, H, W, C) -> (N, C)."""

    kind = "avg"


@register
class GlobalMaxPooling1D(_GlobalPooling):
    """Keras ``GlobalMaxPooling1D``: (N, L, C) -> (N, C)."""

    rank = 1


@register
class GlobalAveragePooling1D(_GlobalPooling):
    """Keras ``GlobalAveragePooling1D``: (N, L, C) -> (N, C)."""

    rank = 1
    kind = "avg"
