"""Image translation by (fractional) pixel shifts, as ``keras.ops.image.affine_transform`` computes it, and its
exact adjoint.

Output pixel ``(i, j)`` of image ``n`` reads input coordinate ``(i - dy[n], j - dx[n])``: 'nearest' rounds it
(half to even), 'bilinear' mixes its two neighbours per axis. Coordinates outside the image are mapped by
``fill_mode`` (Keras's names): 'reflect' (d c b a | a b c d | d c b a), 'mirror' (d c b | a b c d | c b a),
'wrap' (a b c d | a b c d), 'nearest' (a a a | a b c d | d d d), or 'constant' (taps outside read
``fill_value``). Each axis is then a linear map ``A`` (plus, for 'constant', the fill value where taps fall
outside), so ``y = A_h x A_w^T + fill_value * (1 - outer(a_h, a_w))`` with ``a`` the in-range weight per
output row/column, and the gradient is ``A_h^T g A_w``.

Shapes:
    x, y: (N, H, W, C); shifts: (N, 2) as (dy, dx) in pixels.

>>> import numpy as np
>>> x = np.arange(4.0)[None, None, :, None]
>>> translate(x, np.array([[0.0, 1.0]]), fill_mode="constant")[0, 0, :, 0]  # one pixel right
array([0., 0., 1., 2.])
>>> translate(x, np.array([[0.0, 0.5]]), fill_mode="nearest")[0, 0, :, 0]
array([0. , 0.5, 1.5, 2.5])
"""

from __future__ import annotations

import numpy as np

from convlens.errors import ConfigError

__all__ = ["FILL_MODES", "TRANSLATE_INTERPOLATIONS", "axis_map", "translate", "translate_backward"]

FILL_MODES = ("reflect", "wrap", "constant", "nearest", "mirror")
TRANSLATE_INTERPOLATIONS = ("bilinear", "nearest")


def _mirror(index: np.ndarray, size: int) -> np.ndarray:
    period = size - 1  # half-wavelength of the triangle wave
    if period == 0:
        return np.zeros_like(index)
    return np.asarray(np.abs((index + period) % (2 * period) - period))


def _fix(index: np.ndarray, size: int, fill_mode: str) -> np.ndarray:
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "mirror":
        return _mirror(index, size)
    if fill_mode == "reflect":
        return (_mirror(2 * index + 1, 2 * size + 1) - 1) // 2
    return np.clip(index, 0, size - 1)  # 'nearest', and 'constant' (whose outside taps are masked)


def axis_map(size: int, shift: float, interpolation: str, fill_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The (size, size) matrix moving one axis by ``shift`` pixels, and each output's in-range weight.

    >>> axis_map(3, 1.0, "nearest", "wrap")[0]
    array([[0., 0., 1.],
           [1., 0., 0.],
           [0., 1., 0.]])
    """
    coordinate = np.arange(size) - shift
    if interpolation == "nearest":
        taps = [(np.round(coordinate).astype(np.int64), np.ones(size))]
    else:
        lower = np.floor(coordinate)
        upper_weight = coordinate - lower
        taps = [(lower.astype(np.int64), 1.0 - upper_weight), (lower.astype(np.int64) + 1, upper_weight)]
    matrix = np.zeros((size, size))
    covered = np.zeros(size)
    rows = np.arange(size)
    for index, weight in taps:
        if fill_mode == "constant":
            weight = weight * ((index >= 0) & (index < size))
        np.add.at(matrix, (rows, _fix(index, size, fill_mode)), weight)
        covered += weight
    return matrix, covered


def _check(interpolation: str, fill_mode: str) -> None:
    if interpolation not in TRANSLATE_INTERPOLATIONS:
        raise ConfigError(
            f"translate: `interpolation` must be one of {TRANSLATE_INTERPOLATIONS}, got {interpolation!r}."
        )
    if fill_mode not in FILL_MODES:
        raise ConfigError(f"translate: `fill_mode` must be one of {FILL_MODES}, got {fill_mode!r}.")


def _maps(shape: tuple[int, ...], shifts: np.ndarray, interpolation: str, fill_mode: str) -> tuple[np.ndarray, ...]:
    height, width = shape[1], shape[2]
    rows = [axis_map(height, float(dy), interpolation, fill_mode) for dy, _ in shifts]
    cols = [axis_map(width, float(dx), interpolation, fill_mode) for _, dx in shifts]
    return (
        np.stack([m for m, _ in rows]),
        np.stack([c for _, c in rows]),
        np.stack([m for m, _ in cols]),
        np.stack([c for _, c in cols]),
    )


def translate(
    x: np.ndarray,
    shifts: np.ndarray,
    interpolation: str = "bilinear",
    fill_mode: str = "reflect",
    fill_value: float = 0.0,
) -> np.ndarray:
    """Shift each image of ``x`` by its ``(dy, dx)`` (see the module docstring)."""
    _check(interpolation, fill_mode)
    row_maps, row_cover, col_maps, col_cover = _maps(x.shape, shifts, interpolation, fill_mode)
    y = np.einsum("noh,nhwc,npw->nopc", row_maps.astype(x.dtype), x, col_maps.astype(x.dtype), optimize=True)
    if fill_mode == "constant" and fill_value:
        outside = 1.0 - row_cover[:, :, None] * col_cover[:, None, :]
        y += (fill_value * outside)[..., None].astype(x.dtype)
    return np.asarray(y, dtype=x.dtype)


def translate_backward(
    grad_out: np.ndarray, shifts: np.ndarray, interpolation: str = "bilinear", fill_mode: str = "reflect"
) -> np.ndarray:
    """Gradient of :func:`translate` with respect to ``x`` (the fill value is a constant)."""
    _check(interpolation, fill_mode)
    row_maps, _, col_maps, _ = _maps(grad_out.shape, shifts, interpolation, fill_mode)
    dtype = grad_out.dtype
    return np.asarray(
        np.einsum("noh,nopc,npw->nhwc", row_maps.astype(dtype), grad_out, col_maps.astype(dtype), optimize=True)
    )
