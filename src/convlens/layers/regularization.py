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

from convlens.layers.base import register
from convlens.layers.core import Dropout
from convlens.ops._checks import check_channels_last
from convlens.ops.dropout import dropout

__all__ = ["SpatialDropout2D"]


@register
class SpatialDropout2D(Dropout):
    """Drop entire channels of (N, H, W, C) inputs while training (``keras.layers.SpatialDropout2D``): a
    ``Dropout`` whose mask has shape (N, 1, 1, C). Draws from ``np.random.default_rng(seed)`` when ``seed`` is
    given, else from the generator given to ``build``.
    """

    min_ndim = max_ndim = 4

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(rate, seed=seed, **kwargs)
        check_channels_last(data_format, repr(self))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.rng is None:
            self.rng = np.random.default_rng(self.seed)
        ones = np.ones((x.shape[0], 1, 1, x.shape[-1]), x.dtype)
        _, self._mask = dropout(ones, self.rate, self.rng, training)
        return x if self._mask is None else x * self._mask
