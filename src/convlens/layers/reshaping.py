"""Zero padding layers: ``ZeroPadding1D`` and ``ZeroPadding2D`` (channels-last, Keras arguments).

Shapes:
    ZeroPadding2D: (N, H, W, C) -> (N, H + PT + PB, W + PL + PR, C)
    ZeroPadding1D: (N, L, C) -> (N, L + PL + PR, C)

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

from convlens.errors import ConfigError
from convlens.geometry import normalize_padding
from convlens.layers.base import Layer, Shape, register
from convlens.ops._checks import check_data_format
from convlens.resources import check_arrays

__all__ = ["ZeroPadding1D", "ZeroPadding2D"]


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
