"""Weight and activity regularizers with Keras 3's names, defaults and penalties.

A regularizer maps a weight array to a scalar penalty that training adds to the loss (Keras reports the
sum in ``loss``); :meth:`Regularizer.gradient` is its exact derivative, which the model adds to the weight's
gradient. ``l1``: ``l1 * sum(|w|)`` (gradient ``l1 * sign(w)``, 0 at 0 like torch's); ``l2``:
``l2 * sum(w**2)`` (no one-half; gradient ``2 * l2 * w``); ``L1L2``: both. An ``activity_regularizer``
penalises a layer's output, divided by the batch size as in Keras 3.

Strings as Keras: ``'l1'`` (0.01), ``'l2'`` (0.01), ``'L1L2'``/``'l1l2'`` (the class defaults, 0 and 0). Keras
documents ``'l1_l2'`` as L1L2(0.01, 0.01) but 3.15 refuses the string; convlens follows the documentation.

>>> import numpy as np
>>> w = np.array([[1.0, -2.0], [0.0, 3.0]])
>>> float(get("l2")(w)), float(L1(0.5)(w))  # 0.01 * (1 + 4 + 9), 0.5 * (1 + 2 + 3)
(0.14, 3.0)
>>> L1L2(l1=0.1, l2=0.1).gradient(w)
array([[ 0.3, -0.5],
       [ 0. ,  0.7]])
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from convlens import serialization
from convlens.errors import check_float

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "l1", "l1_l2", "l2", "serialize"]


class Regularizer:
    """Base class: ``__call__(w) -> float`` (the penalty) and ``gradient(w) -> array`` (its derivative).

    Shapes:
        w: any shape; ``gradient(w)``: w's shape and dtype.
    """

    keras_names: ClassVar[tuple[str, ...]] = ()

    def __call__(self, x: np.ndarray) -> float:
        return 0.0

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """d(penalty)/dx."""
        return np.zeros_like(x)

    def get_config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Inverse of :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _factor(owner: str, name: str, value: Any) -> float:
    return check_float(0.0 if value is None else value, name, owner=owner, minimum=0.0)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)`` (``keras.regularizers.L1L2``, alias ``l1_l2``; defaults 0 and 0)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _factor(type(self).__name__, "l1", l1)
        self.l2 = _factor(type(self).__name__, "l2", l2)

    def __call__(self, x: np.ndarray) -> float:
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.sum(np.abs(x), dtype=np.float64))
        if self.l2:
            total += self.l2 * float(np.sum(np.square(x, dtype=np.float64)))
        return total

    def gradient(self, x: np.ndarray) -> np.ndarray:
        grad = np.zeros_like(x)
        if self.l1:
            grad += self.l1 * np.sign(x)
        if self.l2:
            grad += (2.0 * self.l2) * x
        return grad

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)`` (``keras.regularizers.L1``, alias ``l1``; default 0.01)."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x**2)`` (``keras.regularizers.L2``, alias ``l2``; default 0.01)."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


l1 = L1
l2 = L2
l1_l2 = L1L2

_CLASSES: dict[str, type[Regularizer]] = {"L1": L1, "L2": L2, "L1L2": L1L2}
_STRINGS: dict[str, Any] = {
    "l1": L1,
    "l2": L2,
    "l1l2": L1L2,
    "L1": L1,
    "L2": L2,
    "L1L2": L1L2,
    "l1_l2": lambda: L1L2(l1=0.01, l2=0.01),
}


def get(identifier: Any, *, owner: str | None = None, name: str = "regularizer") -> Regularizer | None:
    """A regularizer from None, a string, a config dict (``{"class_name": "L2", "config": {...}}``) or an object.

    Raises:
        ConfigError: for anything else, naming ``owner`` and the argument ``name``.
    """
    found: Regularizer | None = serialization.lookup(
        identifier,
        Regularizer,
        _STRINGS,
        _CLASSES,
        "regularizers",
        owner=owner,
        name=name,
        example="convlens.regularizers.L2(0.01)",
    )
    return found


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """JSON-safe form that :func:`get` reads back (None stays None).

    Raises:
        ConfigError: for a custom Regularizer subclass, which a config cannot name.
    """
    if regularizer is None:
        return None
    return serialization.serialize(regularizer, _CLASSES, "regularizers", "regularizer")
