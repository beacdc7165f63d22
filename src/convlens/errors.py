"""Error classes and the argument checkers shared by every public entry point.

Every message names the owner (a layer's repr, an op name or a CLI flag), the argument,
what was expected and what came, so a user never sees a bare NumPy traceback.

>>> normalize_tuple((3, 3), 2, "kernel_size", owner="Conv2D 'conv2d'")
(3, 3)
>>> normalize_tuple(3, 2, "kernel_size", owner="Conv2D 'conv2d'")
(3, 3)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "ConvlensError",
    "DataError",
    "ShapeError",
    "StateError",
    "check_choice",
    "check_float",
    "check_int",
    "normalize_tuple",
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


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value: Any, name: str, *, owner: str | None = None, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise naming ``owner`` and ``name``.

    >>> check_int(3, "units", minimum=1)
    3
    """
    if not _is_int(value):
        raise ConfigError(f"{_prefix(owner)}`{name}` must be an integer, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{_prefix(owner)}`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_float(
    value: Any,
    name: str,
    *,
    owner: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    inclusive_max: bool = True,
) -> float:
    """Return ``value`` as a float in the given range, or raise a ``ConfigError``.

    >>> check_float(0.5, "rate", minimum=0.0, maximum=1.0, inclusive_max=False)
    0.5
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(f"{_prefix(owner)}`{name}` must be a number, got {value!r}.")
    value = float(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{_prefix(owner)}`{name}` must be >= {minimum}, got {value!r}.")
    if maximum is not None and (value > maximum or (not inclusive_max and value >= maximum)):
        bound = "<=" if inclusive_max else "<"
        raise ConfigError(f"{_prefix(owner)}`{name}` must be {bound} {maximum}, got {value!r}.")
    return value


def normalize_tuple(value: Any, rank: int, name: str, *, owner: str | None = None, minimum: int = 1) -> tuple[int, ...]:
    """Standardise an int or a sequence of ``rank`` ints (Keras's ``kernel_size=3`` == ``(3, 3)``).

    Raises:
        ConfigError: naming ``owner`` and ``name`` when the value is not ``rank`` integers >= ``minimum``.
    """
    if _is_int(value):
        values: tuple[Any, ...] = (value,) * rank
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        values = tuple(value)
    else:
        raise ConfigError(f"{_prefix(owner)}`{name}` must be an integer or a tuple of {rank} integers, got {value!r}.")
    if len(values) != rank or not all(_is_int(v) for v in values):
        raise ConfigError(f"{_prefix(owner)}`{name}` must be an integer or a tuple of {rank} integers, got {value!r}.")
    if any(v < minimum for v in values):
        what = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise ConfigError(f"{_prefix(owner)}`{name}` must be {what}, got {value!r}.")
    return tuple(int(v) for v in values)


def check_choice(value: Any, name: str, choices: Sequence[str], *, owner: str | None = None) -> str:
    """Return ``value`` lower-cased if it is one of ``choices``.

    >>> check_choice("Same", "padding", ("valid", "same"))
    'same'
    """
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    options = ", ".join(repr(c) for c in choices)
    raise ConfigError(f"{_prefix(owner)}`{name}` must be one of {options}, got {value!r}.")
