"""Input checks shared by the public ops, layers and models (called once per call, never in hot loops).

:func:`as_float_array` is the one gate an array goes through: None, strings, dicts, ragged lists and
object, string, complex, datetime or structured dtypes are refused with a
:class:`~convlens.errors.ConfigTypeError` naming the argument; bools and integers become float32 (as
Keras casts them), float16 is computed in float32, float32 and float64 are kept; a view whose logical size
exceeds the memory this process can get (a broadcast of 10**12 values) is refused up front.

>>> as_float_array([[1, 2]], "x", "demo").dtype
dtype('float32')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.errors import ConfigError, ConfigTypeError, ShapeError, check_choice, short_repr
from convlens.resources import check_array_size

DATA_FORMATS = ("channels_last", "channels_first")

# dtype kinds: b bool, i/u integers, f floats; everything else (c complex, O object, U/S strings, V void,
# M/m datetimes) is refused.
_ACCEPTED_KINDS = frozenset("biuf")


def _refuse(x: Any, name: str, owner: str, what: str) -> ConfigTypeError:
    return ConfigTypeError(f"{owner}: `{name}` must hold numbers, got {what}.")


def as_array(x: Any, name: str, owner: str) -> np.ndarray:
    """``x`` as an ndarray of real numbers (any real dtype kept), or a ``ConfigTypeError`` naming ``name``."""
    if x is None:
        raise _refuse(x, name, owner, "None")
    if isinstance(x, (str, bytes, dict, set)) or (
        not isinstance(x, np.ndarray) and not hasattr(x, "__array__") and _is_iterator(x)
    ):
        raise _refuse(x, name, owner, f"{type(x).__name__} {short_repr(x, 40)}")
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError, OverflowError) as exc:
            reason = "ragged nested lists" if "inhomogeneous" in str(exc) else f"{type(x).__name__} ({exc})"
            raise _refuse(x, name, owner, reason) from None
    if x.dtype.kind not in _ACCEPTED_KINDS:
        extra = " (complex numbers are not supported)" if x.dtype.kind == "c" else ""
        raise _refuse(x, name, owner, f"dtype {x.dtype}{extra}")
    return x


def _is_iterator(x: Any) -> bool:
    return hasattr(x, "__next__") or (hasattr(x, "__iter__") and not hasattr(x, "__len__"))


def as_float_array(x: Any, name: str, owner: str, ndim: int | None = None) -> np.ndarray:
    """Return ``x`` as a float32 or float64 ndarray (float32 unless it already is float64).

    Raises:
        ConfigTypeError: for None and anything that is not an array of real numbers.
        ShapeError: when ``ndim`` is given and ``x`` has another rank.
        ResourceError: for a view larger than the memory available.
    """
    x = as_array(x, name, owner)
    if ndim is not None and x.ndim != ndim:
        raise ShapeError(f"{owner}: `{name}` must be {ndim}-D, got shape {x.shape} ({x.ndim}-D).")
    check_array_size(x, name, owner=owner)
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float64 if x.dtype.kind == "f" and x.dtype.itemsize > 8 else np.float32)
    return x


def as_optional_float_array(x: Any, name: str, owner: str, ndim: int | None = None) -> np.ndarray | None:
    """:func:`as_float_array`, passing None through (an optional bias, gamma...)."""
    return None if x is None else as_float_array(x, name, owner, ndim)


def check_same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str], owner: str) -> None:
    """Raise ``ShapeError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ShapeError(f"{owner}: `{names[1]}` must have the shape of `{names[0]}` {a.shape}, got {b.shape}.")


def check_axis(axis: Any, ndim: int, owner: str, name: str = "axis") -> int:
    """``axis`` as a non-negative index into ``ndim`` axes (negative counts from the end)."""
    from convlens.errors import check_int

    value = check_int(axis, name, owner=owner)
    if not -ndim <= value < ndim:
        raise ShapeError(f"{owner}: `{name}` {value} is out of range for a {ndim}-D input.")
    return value % ndim


def check_generator(rng: Any, owner: str) -> np.random.Generator:
    """``rng`` must be a ``numpy.random.Generator``."""
    if not isinstance(rng, np.random.Generator):
        raise ConfigTypeError(
            f"{owner}: `rng` must be a numpy.random.Generator (np.random.default_rng(seed)), got {short_repr(rng)}."
        )
    return rng


def check_data_format(data_format: Any, owner: str) -> str:
    """Validate ``data_format`` ('channels_last' or 'channels_first')."""
    return check_choice(data_format, "data_format", DATA_FORMATS, owner=owner)


def check_channels_last(data_format: Any, owner: str) -> None:
    """Refuse a ``data_format`` other than None or 'channels_last' (layers that have no channels_first path)."""
    if data_format is not None and check_data_format(data_format, owner) != "channels_last":
        raise ConfigError(f"{owner}: only data_format='channels_last' is supported, got 'channels_first'.")


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
