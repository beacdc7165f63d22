"""Preprocessing and augmentation layers: ``Rescaling``, ``RandomFlip``, ``RandomTranslation``.

``Rescaling`` is always on (``x * scale + offset``). The random layers augment only while training (``fit``,
``train_on_batch``, or a call with ``training=True``) and are the identity otherwise, as in Keras. Their draws
come from ``np.random.default_rng(seed)`` when ``seed`` is given (a repeatable sequence), else from the model's
generator. Every one has an exact backward pass (flips and translations are linear in the image), so they may
sit anywhere in a model.

Keras 3's ``RandomFlip('horizontal_and_vertical')`` draws ONE coin per image and flips both axes together
(a 180-degree turn) or neither; convlens does the same.

Shapes:
    x, out: (N, H, W, C).

>>> import numpy as np
>>> Rescaling(1 / 255.0, name="r")(np.full((1, 1, 1, 1), 255.0, np.float32))[0, 0, 0]
array([1.], dtype=float32)
>>> flip = RandomFlip("horizontal", seed=0, name="f")
>>> x = np.arange(3.0, dtype=np.float32)[None, None, :, None]
>>> flip(x) is x  # inference: untouched
True
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlens.errors import ConfigError, StateError, check_choice, check_float, check_int, short_repr
from convlens.layers.base import Layer, Shape, register
from convlens.ops._checks import check_channels_last
from convlens.ops.translate import FILL_MODES, TRANSLATE_INTERPOLATIONS, translate, translate_backward

__all__ = ["RandomFlip", "RandomTranslation", "Rescaling"]


def _number_or_list(owner: str, name: str, value: Any) -> float | list[float]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [check_float(v, name, owner=owner) for v in np.asarray(value, np.float64).ravel().tolist()]
    return check_float(value, name, owner=owner)


@register
class Rescaling(Layer):
    """``x * scale + offset`` (``keras.layers.Rescaling``); ``scale``/``offset`` may be per-channel lists.

    Shapes:
        x, out: (N, ...); a list ``scale`` broadcasts against the last axis.
    """

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = _number_or_list(repr(self), "scale", scale)
        self.offset = _number_or_list(repr(self), "offset", offset)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        return np.asarray(x * np.asarray(self.scale, x.dtype) + np.asarray(self.offset, x.dtype))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.asarray(grad_out * np.asarray(self.scale, grad_out.dtype))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(scale=self.scale, offset=self.offset)
        return config


class _Random(Layer):
    """A layer that draws from its own generator while training."""

    min_ndim = max_ndim = 4

    def __init__(self, seed: int | None = None, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = None if seed is None else check_int(seed, "seed", owner=repr(self), minimum=0)
        check_channels_last(data_format, repr(self))
        self.rng: np.random.Generator | None = None
        self._draw: np.ndarray | None = None

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        self.rng = np.random.default_rng(self.seed) if self.seed is not None or rng is None else rng

    def _generator(self) -> np.random.Generator:
        if self.rng is None:
            self.rng = np.random.default_rng(self.seed)
        return self.rng

    def _drawn(self) -> np.ndarray:
        if self._draw is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        return self._draw

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["seed"] = self.seed
        return config


@register
class RandomFlip(_Random):
    """Flip images at random while training (``keras.layers.RandomFlip``): ``mode`` 'horizontal', 'vertical' or
    'horizontal_and_vertical' (default); each image is flipped when its uniform draw is <= 0.5 (Keras's rule)."""

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.mode = check_choice(mode, "mode", ("horizontal", "vertical", "horizontal_and_vertical"), owner=repr(self))
        self._axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[self.mode]

    def _flip(self, x: np.ndarray, flips: np.ndarray) -> np.ndarray:
        y = x.copy()
        y[flips] = np.flip(x[flips], axis=self._axes)
        return y

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training:
            self._draw = None
            return x
        flips = np.asarray(self._generator().uniform(size=x.shape[0]) <= 0.5)
        self._draw = flips
        return self._flip(x, flips)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return self._flip(grad_out, self._drawn())  # a flip is its own adjoint

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["mode"] = self.mode
        return config


def _factor(owner: str, name: str, factor: Any) -> tuple[float, float]:
    values = factor if isinstance(factor, (list, tuple)) else [factor]
    if len(values) not in (1, 2) or not all(isinstance(v, numbers.Real) and -1.0 <= float(v) <= 1.0 for v in values):
        raise ConfigError(
            f"{owner}: `{name}` must be a number or a (lower, upper) pair in [-1, 1], got {short_repr(factor)}."
        )
    if len(values) == 1:
        return -abs(float(values[0])), abs(float(values[0]))
    low, high = sorted(float(v) for v in values)
    return low, high


@register
class RandomTranslation(_Random):
    """Shift images by a random fraction of their size while training (``keras.layers.RandomTranslation``).

    Each image moves by ``U(lower, upper) * H`` rows and ``U(lower, upper) * W`` columns; a ``*_factor`` f means
    (-f, f). Pixels are read with ``interpolation`` ('bilinear' or 'nearest') and the border filled by
    ``fill_mode`` ('reflect', 'wrap', 'constant' with ``fill_value``, 'nearest'), as Keras (see
    :mod:`convlens.ops.translate`).
    """

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        owner = repr(self)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor(owner, "height_factor", height_factor)
        self._width = _factor(owner, "width_factor", width_factor)
        self.fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES[:4], owner=owner)  # Keras's four
        self.interpolation = check_choice(interpolation, "interpolation", TRANSLATE_INTERPOLATIONS, owner=owner)
        self.fill_value = check_float(fill_value, "fill_value", owner=owner)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training:
            self._draw = None
            return x
        rng = self._generator()
        batch, height, width = x.shape[:3]
        dy = rng.uniform(*self._height, size=batch) * height
        dx = rng.uniform(*self._width, size=batch) * width
        self._draw = np.stack([dy, dx], axis=1)
        return translate(
            np.asarray(x, dtype=self.dtype), self._draw, self.interpolation, self.fill_mode, self.fill_value
        )

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return translate_backward(
            np.asarray(grad_out, dtype=self.dtype), self._drawn(), self.interpolation, self.fill_mode
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            height_factor=list(self.height_factor) if isinstance(self.height_factor, tuple) else self.height_factor,
            width_factor=list(self.width_factor) if isinstance(self.width_factor, tuple) else self.width_factor,
            fill_mode=self.fill_mode,
            interpolation=self.interpolation,
            fill_value=self.fill_value,
        )
        return config
