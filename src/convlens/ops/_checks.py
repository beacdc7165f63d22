"""Input checks shared by the ops (kept out of the hot loops: called once per call)."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ShapeError, check_choice

DATA_FORMATS = ("channels_last", "channels_first")


def as_float_array(x: Any, name: str, owner: str, ndim: int | None = None) -> np.ndarray:
    """Return ``x`` as a floating ndarray (float32 unless it already is floating)."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"{owner}: `{name}` must be an array, got {type(x).__name__}.") from exc
    if not np.issubdtype(x.dtype, np.floating):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
            raise TypeError(f"{owner}: `{name}` must hold numbers, got dtype {x.dtype}.")
        x = x.astype(np.float32)
    if ndim is not None and x.ndim != ndim:
        raise ShapeError(f"{owner}: `{name}` must be {ndim}-D, got shape {x.shape} ({x.ndim}-D).")
    return x


def check_data_format(data_format: Any, owner: str) -> str:
    """Validate ``data_format`` ('channels_last' or 'channels_first')."""
    return check_choice(data_format, "data_format", DATA_FORMATS, owner=owner)


def to_channels_last(x: np.ndarray, data_format: str) -> np.ndarray:
    """Move the channel axis last for an (N, C, *S) array when ``data_format`` is channels_first."""
    if data_format == "channels_first":
        return np.moveaxis(x, 1, -1)
    return x


def from_channels_last(x: np.ndarray, data_format: str) -> np.ndarray:
    """Inverse of :func:`to_channels_last` (returns a contiguous array)."""
    if data_format == "channels_first":
        return np.ascontiguousarray(np.moveaxis(x, -1, 1))
    return x
