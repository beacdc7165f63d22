"""Error classes and the argument checkers shared by every public entry point.

Every message names the owner (a layer's repr, an op name or a CLI flag), the argument,
what was expected and what came, so a user never sees a bare NumPy traceback.

The classes (all :class:`ConvlensError`, so one ``except ConvlensError`` catches every refusal):

* :class:`ConfigError` (a ``ValueError``): a bad argument value; :class:`ConfigTypeError` (also a
  ``TypeError``) when its type is wrong (None, a string, an object array); :class:`ResourceError` (also a
  ``MemoryError``) when a request would need more memory than this process can get;
* :class:`ShapeError` (a ``ValueError``): an array whose shape does not fit;
* :class:`StateError` (a ``RuntimeError``): a call in the wrong order, a training run that diverged;
* :class:`DataError` (a ``ValueError``): a bad file; :class:`FileAccessError` (also an ``OSError``) when a
  path cannot be read or written as a file; :class:`MissingFileError` (also a ``FileNotFoundError``) when
  there is none.

>>> normalize_tuple((3, 3), 2, "kernel_size", owner="Conv2D 'conv2d'")
(3, 3)
>>> normalize_tuple(3, 2, "kernel_size", owner="Conv2D 'conv2d'")
(3, 3)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "MAX_SIZE",
    "ConfigError",
    "ConfigTypeError",
    "ConvlensError",
    "DataError",
    "FileAccessError",
    "MissingFileError",
    "ResourceError",
    "ShapeError",
    "StateError",
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_verbose",
    "normalize_tuple",
    "short_repr",
]


class ConvlensError(Exception):
    """Base class of every error convlens raises on purpose."""


class ConfigError(ConvlensError, ValueError):
    """A bad argument value: wrong range, wrong type of setting, unknown name."""


class ShapeError(ConvlensError, ValueError):
    """An array whose shape does not fit the layer or op it was given to."""


class StateError(ConvlensError, RuntimeError):
    """A call in the wrong order (e.g. ``fit`` before ``compile``)."""


class DataError(ConvlensError, ValueError):
    """A bad data file: wrong magic number, truncated, inconsistent dimensions, wrong checksum."""


class ConfigTypeError(ConfigError, TypeError):
    """An argument of the wrong type: None where an array goes, a string where a number goes."""


class ResourceError(ConfigError, MemoryError):
    """A request that would need more memory than this process can get (refused before allocating)."""


class FileAccessError(DataError, OSError):
    """A path that cannot be read or written as a file: a directory, a device, a full disk, no permission
    (still an ``OSError`` for callers that catch that)."""


class MissingFileError(FileAccessError, FileNotFoundError):
    """A file that does not exist (still a ``FileNotFoundError``)."""


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message never quotes a megabyte of input).

    >>> short_repr("x" * 100, 12)
    "'xxxxxxx...'"
    """
    try:
        text = repr(value)
    except Exception:  # a repr that raises still gets named
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    closing = text[-1] if text[-1] in "'\")]}" else ""
    return text[: limit - 3 - len(closing)] + "..." + closing


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    """A Python bool or NumPy's (``numpy.bool``, ``numpy.bool_`` before NumPy 2)."""
    kind = type(value)
    return kind is bool or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"))


def check_int(
    value: Any,
    name: str,
    *,
    owner: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Return ``value`` as a Python int, or raise naming ``owner`` and ``name``.

    Booleans are refused (``True`` is not a size); NumPy integers are accepted.

    >>> check_int(3, "units", minimum=1)
    3
    """
    if not _is_int(value):
        raise ConfigTypeError(f"{_prefix(owner)}`{name}` must be an integer, got {short_repr(value)}.")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{_prefix(owner)}`{name}` must be an integer >= {minimum}, got {short_repr(value)}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{_prefix(owner)}`{name}` must be an integer <= {maximum}, got {short_repr(value)}.")
    return int(value)


def check_bool(value: Any, name: str, *, owner: str | None = None) -> bool:
    """Return ``value`` as a bool: only ``True``/``False`` (or NumPy's) are accepted, not ``'no'`` or ``2``.

    >>> check_bool(True, "use_bias")
    True
    """
    if _is_bool(value):
        return bool(value)
    raise ConfigTypeError(f"{_prefix(owner)}`{name}` must be True or False, got {short_repr(value)}.")


def check_verbose(value: Any, *, owner: str | None = None) -> int:
    """Keras's ``verbose``: 'auto' (1), 0, 1 or 2; True and False read as 1 and 0.

    >>> check_verbose("auto"), check_verbose(False), check_verbose(2)
    (1, 0, 2)
    """
    if isinstance(value, str) and value == "auto":
        return 1
    if _is_bool(value):
        return int(bool(value))
    if _is_int(value) and 0 <= value <= 2:
        return int(value)
    raise ConfigError(f"{_prefix(owner)}`verbose` must be 'auto', 0, 1 or 2, got {short_repr(value)}.")


def check_float(
    value: Any,
    name: str,
    *,
    owner: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    inclusive_max: bool = True,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float in the given range, or raise a ``ConfigError``.

    NaN is never accepted; infinities only with ``allow_inf`` (a learning rate, a momentum or an epsilon
    of inf turns every weight into NaN).

    >>> check_float(0.5, "rate", minimum=0.0, maximum=1.0, inclusive_max=False)
    0.5
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigTypeError(f"{_prefix(owner)}`{name}` must be a number, got {short_repr(value)}.")
    try:
        value = float(value)
    except (OverflowError, ValueError):  # an int beyond float's range
        raise ConfigError(f"{_prefix(owner)}`{name}` must be a finite number, got {short_repr(value)}.") from None
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ConfigError(f"{_prefix(owner)}`{name}` must be a finite number, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{_prefix(owner)}`{name}` must be >= {minimum}, got {value!r}.")
    if maximum is not None and (value > maximum or (not inclusive_max and value >= maximum)):
        bound = "<=" if inclusive_max else "<"
        raise ConfigError(f"{_prefix(owner)}`{name}` must be {bound} {maximum}, got {value!r}.")
    return value


MAX_SIZE = 2**31 - 1  # the largest kernel size, stride, dilation or padding (TensorFlow's int32 attributes)


def normalize_tuple(
    value: Any,
    rank: int,
    name: str,
    *,
    owner: str | None = None,
    minimum: int = 1,
    maximum: int = MAX_SIZE,
) -> tuple[int, ...]:
    """Standardise an int or a sequence of ``rank`` ints (Keras's ``kernel_size=3`` == ``(3, 3)``).

    Raises:
        ConfigError: naming ``owner`` and ``name`` when the value is not ``rank`` integers in
            ``[minimum, maximum]`` (a ``ConfigTypeError`` when they are not integers at all).
    """
    expected = f"{_prefix(owner)}`{name}` must be an integer or a tuple of {rank} integers"
    if _is_int(value):
        values: tuple[Any, ...] = (value,) * rank
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)) and _small(value):
        values = tuple(value)
    else:
        raise ConfigTypeError(f"{expected}, got {short_repr(value)}.")
    if len(values) != rank or not all(_is_int(v) for v in values):
        raise ConfigTypeError(f"{expected}, got {short_repr(value)}.")
    if any(v < minimum for v in values):
        what = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise ConfigError(f"{_prefix(owner)}`{name}` must be {what}, got {short_repr(value)}.")
    if any(v > maximum for v in values):
        raise ConfigError(f"{_prefix(owner)}`{name}` must be integers <= {maximum}, got {short_repr(value)}.")
    return tuple(int(v) for v in values)


def _small(value: Any) -> bool:
    """A sized container of at most 64 items (never iterate an endless generator or a huge array)."""
    try:
        return len(value) <= 64
    except TypeError:
        return False


def check_choice(value: Any, name: str, choices: Sequence[str], *, owner: str | None = None) -> str:
    """Return ``value`` lower-cased if it is one of ``choices``.

    >>> check_choice("Same", "padding", ("valid", "same"))
    'same'
    """
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    options = ", ".join(repr(c) for c in choices)
    cls = ConfigError if isinstance(value, str) else ConfigTypeError
    raise cls(f"{_prefix(owner)}`{name}` must be one of {options}, got {short_repr(value)}.")
