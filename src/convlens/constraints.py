"""Weight constraints with Keras 3's names and formulas, applied after every optimizer step.

``MaxNorm(max_value=2, axis=0)``: ``w * clip(n, 0, max_value) / (1e-7 + n)`` with ``n`` the L2 norm along
``axis``; ``NonNeg``: ``max(w, 0)``; ``UnitNorm(axis=0)``: ``w / (1e-7 + n)``; ``MinMaxNorm(min_value=0,
max_value=1, rate=1, axis=0)``: ``w * (rate * clip(n, min, max) + (1 - rate) * n) / (1e-7 + n)``. For a
Dense kernel (D, U) ``axis=0`` constrains each unit's incoming vector; for a Conv2D kernel (KH, KW, C, F)
``axis=[0, 1, 2]`` constrains each filter.

>>> import numpy as np
>>> w = np.array([[3.0, 0.5], [4.0, -0.5]], np.float32)
>>> np.round(MaxNorm(2.0)(w), 4)  # column norms 5 and 0.707: the first is scaled to 2
array([[ 1.2,  0.5],
       [ 1.6, -0.5]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens import serialization
from convlens.errors import ConfigError, check_float, short_repr

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get", "serialize"]

EPSILON = 1e-7  # keras.config.epsilon()


class Constraint:
    """Base class: ``__call__(w)`` returns the projected weights (same shape and dtype)."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w

    def get_config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """Inverse of :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _axis(owner: str, axis: Any) -> int | tuple[int, ...]:
    if isinstance(axis, (list, tuple)) and axis and all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
        return tuple(axis)
    if isinstance(axis, int) and not isinstance(axis, bool):
        return axis
    raise ConfigError(f"{owner}: `axis` must be an integer or a list of integers, got {short_repr(axis)}.")


class _NormConstraint(Constraint):
    def __init__(self, axis: Any) -> None:
        self.axis = _axis(type(self).__name__, axis)

    def _norms(self, w: np.ndarray) -> np.ndarray:
        try:
            return np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        except np.exceptions.AxisError as exc:
            raise ConfigError(f"{self!r}: `axis` {self.axis} does not fit a weight of shape {w.shape}.") from exc

    def get_config(self) -> dict[str, Any]:
        return {"axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis}


class MaxNorm(_NormConstraint):
    """Rescale weight vectors (along ``axis``) whose L2 norm exceeds ``max_value``."""

    def __init__(self, max_value: float = 2, axis: Any = 0) -> None:
        super().__init__(axis)
        self.max_value = check_float(max_value, "max_value", owner="MaxNorm", minimum=0.0)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = self._norms(w)
        return (w * (np.clip(norms, 0, self.max_value) / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, **super().get_config()}


class UnitNorm(_NormConstraint):
    """Scale weight vectors (along ``axis``) to unit L2 norm."""

    def __init__(self, axis: Any = 0) -> None:
        super().__init__(axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return (w / (EPSILON + self._norms(w))).astype(w.dtype, copy=False)


class MinMaxNorm(_NormConstraint):
    """Move weight-vector norms (along ``axis``) into [min_value, max_value] at ``rate``."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0) -> None:
        super().__init__(axis)
        self.min_value = check_float(min_value, "min_value", owner="MinMaxNorm", minimum=0.0)
        self.max_value = check_float(max_value, "max_value", owner="MinMaxNorm", minimum=self.min_value)
        self.rate = check_float(rate, "rate", owner="MinMaxNorm", minimum=0.0, maximum=1.0)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = self._norms(w)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, **super().get_config()}


class NonNeg(Constraint):
    """Set negative weights to zero."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.maximum(w, 0).astype(w.dtype, copy=False)


max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

_CLASSES: dict[str, type[Constraint]] = {
    "MaxNorm": MaxNorm,
    "MinMaxNorm": MinMaxNorm,
    "NonNeg": NonNeg,
    "UnitNorm": UnitNorm,
}
_STRINGS: dict[str, type[Constraint]] = {
    **_CLASSES,
    "max_norm": MaxNorm,
    "min_max_norm": MinMaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
}


def get(identifier: Any, *, owner: str | None = None, name: str = "constraint") -> Constraint | None:
    """A constraint from None, a Keras name ('max_norm', 'non_neg', 'unit_norm', 'min_max_norm' or the class
    names), a config dict or an object.

    Raises:
        ConfigError: for anything else, naming ``owner`` and the argument ``name``.
    """
    found: Constraint | None = serialization.lookup(
        identifier,
        Constraint,
        _STRINGS,
        _CLASSES,
        "constraints",
        owner=owner,
        name=name,
        example="convlens.constraints.MaxNorm(2)",
    )
    return found


def serialize(constraint: Constraint | None) -> dict[str, Any] | None:
    """JSON-safe form that :func:`get` reads back (None stays None).

    Raises:
        ConfigError: for a custom Constraint subclass, which a config cannot name.
    """
    if constraint is None:
        return None
    return serialization.serialize(constraint, _CLASSES, "constraints", "constraint")
