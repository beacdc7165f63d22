"""``SpatialDropout2D``: dropout of whole feature maps (Keras's ``noise_shape=(N, 1, 1, C)``).

While training each (sample, channel) map is kept with probability ``1 - rate`` and scaled by
``1 / (1 - rate)``, or zeroed entirely; at inference the layer is the identity. Neighbouring pixels of a
feature map are strongly correlated, so dropping single pixels (``Dropout``) regularises convolutions little.

Shapes:
    x, out: (N, H, W, C); the mask: (N, 1, 1, C).

>>> import numpy as np
>>> layer = SpatialDropout2D(0.5, seed=0, name="sd")
>>> y = layer(np.ones((2, 3, 3, 4), np.float32), training=True)
>>> sorted(set(np.unique(y))) == [0.0, 2.0], bool((y == y[:, :1, :1]).all())  # maps kept or dropped whole
(True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_float, check_int
from convlens.layers.base import Layer, Shape, register
from convlens.ops.dropout import dropout

__all__ = ["SpatialDropout2D"]


@register
class SpatialDropout2D(Layer):
    """Drop entire channels of (N, H, W, C) inputs while training (``keras.layers.SpatialDropout2D``).

    Draws from ``np.random.default_rng(seed)`` when ``seed`` is given, else from the generator given to ``build``.
    """

    min_ndim = max_ndim = 4

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.rate = check_float(rate, "rate", owner=owner, minimum=0.0, maximum=1.0, inclusive_max=False)
        if data_format not in (None, "channels_last"):
            raise ConfigError(f"{owner}: only data_format='channels_last' is supported, got {data_format!r}.")
        self.seed = None if seed is None else check_int(seed, "seed", owner=owner, minimum=0)
        self.rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        self.rng = np.random.default_rng(self.seed) if self.seed is not None or rng is None else rng

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.rng is None:
            self.rng = np.random.default_rng(self.seed)
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        _, mask = dropout(np.ones((x.shape[0], 1, 1, x.shape[-1]), x.dtype), self.rate, self.rng, training=True)
        self._mask = mask
        return x * mask  # type: ignore[operator]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask, self._mask = self._mask, None
        return grad_out if mask is None else grad_out * mask

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config
