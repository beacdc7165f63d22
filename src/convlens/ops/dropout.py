"""Inverted dropout as Keras: keep a value with probability ``1 - rate``, scale it by ``1 / (1 - rate)``.

Shapes:
    x, y, mask, grad_out, grad_x: all the same shape (any).

>>> import numpy as np
>>> y, mask = dropout(np.ones((2, 3), np.float32), 0.5, np.random.default_rng(0), training=False)
>>> mask is None and y.dtype == np.float32
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import check_bool, check_float
from convlens.ops._checks import as_float_array, check_generator, check_same_shape

__all__ = ["dropout", "dropout_backward", "dropout_mask"]


def dropout(x: Any, rate: float, rng: np.random.Generator, training: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Zero each value with probability ``rate`` and scale the survivors by ``1 / (1 - rate)``.

    A value is kept when its uniform draw is ``>= rate`` (TensorFlow's rule). Outside training,
    or with ``rate == 0``, returns ``(x, None)`` unchanged.

    Args:
        x: input of any shape.
        rate: fraction dropped, in [0, 1).
        rng: the generator the masks are drawn from.
        training: only training drops anything.

    Returns:
        ``(y, mask)`` where ``mask`` holds 0 or ``1 / (1 - rate)`` per value (None when nothing was dropped).

    Shapes:
        x, y, mask: the same shape.
    """
    rate = check_float(rate, "rate", owner="dropout", minimum=0.0, maximum=1.0, inclusive_max=False)
    training = check_bool(training, "training", owner="dropout")
    x = as_float_array(x, "x", "dropout")
    if training and rate > 0.0:
        check_generator(rng, "dropout")
    if not training or rate == 0.0:
        return x, None
    mask = dropout_mask(x.shape, x.dtype, rate, rng)
    return x * mask, mask


def dropout_mask(shape: tuple[int, ...], dtype: Any, rate: float, rng: np.random.Generator) -> np.ndarray | None:
    """The mask :func:`dropout` multiplies an input of ``shape`` and ``dtype`` by (the same draws from ``rng``):
    0 or ``1 / (1 - rate)`` per value; None when ``rate`` is 0 (nothing dropped, nothing drawn).

    Shapes:
        mask: ``shape``.
    """
    if rate == 0.0:
        return None
    dtype = np.dtype(dtype)
    draws = rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    mask = np.greater_equal(draws, rate).astype(dtype)
    mask *= 1.0 / (1.0 - rate)
    return mask


def dropout_backward(grad_out: Any, mask: np.ndarray | None) -> np.ndarray:
    """Gradient of :func:`dropout`: ``grad_out * mask`` (``grad_out`` itself when ``mask`` is None).

    Shapes:
        grad_out, mask, grad_x: the same shape.
    """
    grad_out = as_float_array(grad_out, "grad_out", "dropout_backward")
    if mask is None:
        return np.asarray(grad_out)
    mask = as_float_array(mask, "mask", "dropout_backward")
    check_same_shape(grad_out, mask, ("grad_out", "mask"), "dropout_backward")
    return np.asarray(grad_out * mask)
