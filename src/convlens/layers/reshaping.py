"""Reshaping layers: ``ZeroPadding1D``, ``ZeroPadding2D``, ``Cropping2D``, ``UpSampling2D`` (channels-last,
Keras arguments).

Shapes:
    ZeroPadding2D: (N, H, W, C) -> (N, H + PT + PB, W + PL + PR, C)
    ZeroPadding1D: (N, L, C) -> (N, L + PL + PR, C)
    Cropping2D: (N, H, W, C) -> (N, H - CT - CB, W - CL - CR, C)
    UpSampling2D: (N, H, W, C) -> (N, H * SH, W * SW, C)

>>> import numpy as np
>>> ZeroPadding2D(((0, 1), (2, 3))).compute_output_shape((None, 28, 28, 1))
(None, 29, 33, 1)
>>> ZeroPadding2D(1)(np.ones((1, 2, 2, 1), np.float32))[0, :, :, 0]
array([[0., 0., 0., 0.],
       [0., 1., 1., 0.],
       [0., 1., 1., 0.],
       [0., 0., 0., 0.]], dtype=float32)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConfigError, ShapeError, StateError, check_choice, normalize_tuple, short_repr
from convlens.geometry import normalize_padding
from convlens.layers.base import Layer, Shape, register
from convlens.ops._checks import check_channels_last, check_data_format
from convlens.ops.upsampling import INTERPOLATIONS, upsample2d, upsample2d_backward
from convlens.resources import check_arrays

__all__ = ["Cropping2D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D"]


class _ZeroPadding(Layer):
    rank: ClassVar[int] = 2

    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        if isinstance(padding, str):
            raise ConfigError(
                f"{owner}: `padding` must be an int, ints or (before, after) pairs per axis, got {padding!r}."
            )
        spec = normalize_padding(padding, self.rank, owner=owner)
        if isinstance(spec, str):  # pragma: no cover - strings rejected above
            raise ConfigError(f"{owner}: `padding` must be numeric, got {padding!r}.")
        self.padding: tuple[tuple[int, int], ...] = spec
        if data_format is not None and check_data_format(data_format, owner) != "channels_last":
            raise ConfigError(f"{owner}: only data_format='channels_last' is supported, got {data_format!r}.")
        self._spatial: tuple[int, ...] = ()

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        spatial = tuple(
            None if s is None else s + b + a for s, (b, a) in zip(input_shape[1:-1], self.padding, strict=True)
        )
        return (input_shape[0], *spatial, input_shape[-1])

    def _interior(self, shape: tuple[int, ...]) -> tuple[slice, ...]:
        inner = tuple(slice(b, b + s) for s, (b, _) in zip(shape, self.padding, strict=True))
        return (slice(None), *inner, slice(None))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._spatial = tuple(x.shape[1:-1])
        spatial = tuple(s + b + a for s, (b, a) in zip(self._spatial, self.padding, strict=True))
        shape = (x.shape[0], *spatial, x.shape[-1])
        check_arrays([("the padded output", shape, x.dtype.itemsize)], owner=repr(self), hint="Use less padding.")
        out = np.zeros(shape, x.dtype)
        out[self._interior(self._spatial)] = x
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(grad_out[self._interior(self._spatial)])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["padding"] = [list(p) for p in self.padding]
        return config


@register
class ZeroPadding2D(_ZeroPadding):
    """Pad height and width with zeros.

    ``padding``: an int (all four sides), ``(sym_h, sym_w)`` or ``((top, bottom), (left, right))``.

    Shapes:
        x: (N, H, W, C); out: (N, H + PT + PB, W + PL + PR, C).
    """

    rank = 2
    min_ndim = 4
    max_ndim = 4


@register
class ZeroPadding1D(_ZeroPadding):
    """Pad the steps axis with zeros; ``padding`` is an int or ``(left, right)``.

    Shapes:
        x: (N, L, C); out: (N, L + PL + PR, C).
    """

    rank = 1
    min_ndim = 3
    max_ndim = 3

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["padding"] = list(self.padding[0])
        return config


@register
class Cropping2D(Layer):
    """Cut rows and columns off the edges (the inverse of ``ZeroPadding2D``; its gradient pads with zeros).

    ``cropping``: an int (all four sides), ``(sym_h, sym_w)`` or ``((top, bottom), (left, right))``.

    Shapes:
        x: (N, H, W, C); out: (N, H - CT - CB, W - CL - CR, C).
    """

    min_ndim = max_ndim = 4

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        spec = normalize_padding(cropping, 2, owner=repr(self)) if not isinstance(cropping, str) else None
        if not isinstance(spec, tuple):
            raise ConfigError(
                f"{self!r}: `cropping` must be an int, two ints or ((top, bottom), (left, right)), got "
                f"{short_repr(cropping)}."
            )
        self.cropping: tuple[tuple[int, int], ...] = spec
        check_channels_last(data_format, repr(self))
        self._x_shape: tuple[int, ...] | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        spatial = []
        for size, (before, after) in zip(input_shape[1:3], self.cropping, strict=True):
            if size is not None and size - before - after <= 0:
                raise ShapeError(f"{self!r}: cropping {self.cropping} leaves nothing of input {input_shape}.")
            spatial.append(None if size is None else size - before - after)
        return (input_shape[0], *spatial, input_shape[-1])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.compute_output_shape((None, *x.shape[1:]))
        self._x_shape = x.shape
        (top, bottom), (left, right) = self.cropping
        return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._x_shape is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        grad_x = np.zeros(self._x_shape, grad_out.dtype)
        (top, _), (left, _) = self.cropping
        grad_x[:, top : top + grad_out.shape[1], left : left + grad_out.shape[2]] = grad_out
        return grad_x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["cropping"] = [list(p) for p in self.cropping]
        return config


@register
class UpSampling2D(Layer):
    """Repeat (``interpolation='nearest'``) or bilinearly interpolate (``'bilinear'``) rows and columns ``size``
    times, as ``keras.layers.UpSampling2D`` (see :mod:`convlens.ops.upsampling`).

    Shapes:
        x: (N, H, W, C); out: (N, H * SH, W * SW, C).
    """

    min_ndim = max_ndim = 4

    def __init__(
        self, size: Any = (2, 2), data_format: str | None = None, interpolation: str = "nearest", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        height, width = normalize_tuple(size, 2, "size", owner=owner)
        self.size = (height, width)
        self.interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS, owner=owner)
        check_channels_last(data_format, repr(self))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        spatial = (None if s is None else s * f for s, f in zip(input_shape[1:3], self.size, strict=True))
        return (input_shape[0], *spatial, input_shape[-1])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return upsample2d(np.asarray(x, dtype=self.dtype), self.size, self.interpolation)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return upsample2d_backward(np.asarray(grad_out, dtype=self.dtype), self.size, self.interpolation)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(size=list(self.size), interpolation=self.interpolation)
        return config
