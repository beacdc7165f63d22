"""Upsampling by integer factors (Keras's ``UpSampling2D``), 'nearest' and 'bilinear', with exact backward passes.

'nearest' repeats each pixel ``size`` times per axis (its gradient sums each block). 'bilinear' follows
``keras.ops.image.resize`` (TensorFlow and torch, ``align_corners=False``): output index ``o`` reads input
coordinate ``(o + 0.5) / s - 0.5``, clamped to the first and last pixel, interpolated linearly between its two
neighbours. Both axes are linear maps, so ``y = A_h x A_w^T`` per channel and the gradient is
``A_h^T g A_w``.

Shapes:
    x: (N, H, W, C); out: (N, H * SH, W * SW, C).

>>> import numpy as np
>>> x = np.array([[0.0, 4.0]])[None, :, :, None]
>>> upsample2d(x, (1, 2))[0, :, :, 0], upsample2d(x, (1, 2), "bilinear")[0, :, :, 0]
(array([[0., 0., 4., 4.]]), array([[0., 1., 3., 4.]]))
"""

from __future__ import annotations

import numpy as np

from convlens.errors import ConfigError

__all__ = ["INTERPOLATIONS", "bilinear_matrix", "upsample2d", "upsample2d_backward"]

INTERPOLATIONS = ("nearest", "bilinear")


def bilinear_matrix(size: int, factor: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """The (size * factor, size) matrix of 1-D linear interpolation with half-pixel centres.

    >>> bilinear_matrix(2, 2)
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    out = np.arange(size * factor)
    source = np.clip((out + 0.5) / factor - 0.5, 0.0, size - 1)
    lower = np.floor(source).astype(np.intp)
    upper = np.minimum(lower + 1, size - 1)
    weight = source - lower
    matrix = np.zeros((size * factor, size), dtype)
    np.add.at(matrix, (out, lower), 1.0 - weight)
    np.add.at(matrix, (out, upper), weight)
    return matrix


def _check(interpolation: str) -> None:
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"upsample2d: `interpolation` must be one of {INTERPOLATIONS}, got {interpolation!r}.")


def upsample2d(x: np.ndarray, size: tuple[int, int], interpolation: str = "nearest") -> np.ndarray:
    """Upsample height and width by ``size`` (see the module docstring)."""
    _check(interpolation)
    sh, sw = size
    if interpolation == "nearest":
        return np.asarray(np.repeat(np.repeat(x, sh, axis=1), sw, axis=2))
    rows = bilinear_matrix(x.shape[1], sh, x.dtype)
    cols = bilinear_matrix(x.shape[2], sw, x.dtype)
    return np.asarray(np.einsum("oh,nhwc,pw->nopc", rows, x, cols, optimize=True))


def upsample2d_backward(grad_out: np.ndarray, size: tuple[int, int], interpolation: str = "nearest") -> np.ndarray:
    """Gradient of :func:`upsample2d` with respect to its input.

    Shapes:
        grad_out: (N, H * SH, W * SW, C); returns (N, H, W, C).
    """
    _check(interpolation)
    sh, sw = size
    batch, oh, ow, channels = grad_out.shape
    height, width = oh // sh, ow // sw
    if interpolation == "nearest":
        return np.asarray(grad_out.reshape(batch, height, sh, width, sw, channels).sum(axis=(2, 4)))
    rows = bilinear_matrix(height, sh, grad_out.dtype)
    cols = bilinear_matrix(width, sw, grad_out.dtype)
    return np.asarray(np.einsum("oh,nopc,pw->nhwc", rows, grad_out, cols, optimize=True))
