"""Learning-rate schedules (``keras.optimizers.schedules``): pass one as an optimizer's ``learning_rate``.

The optimizer evaluates ``schedule(step)`` with ``step = optimizer.iterations`` (0 for the first update),
as Keras does. Formulas (Keras 3):

* ``ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False)``:
  ``initial * decay_rate ** (step / decay_steps)`` (the exponent floored when ``staircase``);
* ``CosineDecay(initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0)``:
  ``lr0 * ((1 - alpha) * 0.5 * (1 + cos(pi * min(s, decay_steps) / decay_steps)) + alpha)``; with a
  ``warmup_target`` the rate first rises linearly from ``initial_learning_rate`` to it over ``warmup_steps``
  and then decays from it (``s`` counted from the end of the warm-up);
* ``PiecewiseConstantDecay(boundaries, values)``: ``values[0]`` while ``step <= boundaries[0]``, ``values[i]``
  while ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary.

>>> schedule = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
>>> schedule(0), schedule(10), round(schedule(5), 6)
(0.1, 0.05, 0.070711)
>>> PiecewiseConstantDecay([2, 4], [1.0, 0.5, 0.1])(3)
0.5
"""

from __future__ import annotations

import math
from typing import Any

from convlens import serialization
from convlens.errors import ConfigError, check_float, check_int

__all__ = [
    "CosineDecay",
    "ExponentialDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "deserialize",
    "serialize",
]


class LearningRateSchedule:
    """Base class: ``__call__(step) -> float`` and a JSON-safe ``get_config``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """Inverse of :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (integer exponent when ``staircase``)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ) -> None:
        owner = "ExponentialDecay"
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate", owner=owner, minimum=0)
        self.decay_steps = check_int(decay_steps, "decay_steps", owner=owner, minimum=1)
        self.decay_rate = check_float(decay_rate, "decay_rate", owner=owner, minimum=0)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` (or, after a linear warm-up, from ``warmup_target``) down to
    ``alpha`` times that rate over ``decay_steps``."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        owner = "CosineDecay"
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate", owner=owner, minimum=0)
        self.decay_steps = check_int(decay_steps, "decay_steps", owner=owner, minimum=1)
        self.alpha = check_float(alpha, "alpha", owner=owner, minimum=0.0, maximum=1.0)
        self.name = name
        self.warmup_target = None if warmup_target is None else check_float(warmup_target, "warmup_target", owner=owner)
        self.warmup_steps = check_int(warmup_steps, "warmup_steps", owner=owner, minimum=0)

    def _decay(self, step: float, start: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return (self.warmup_target - self.initial_learning_rate) * fraction + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` between boundaries (see the module docstring); ``len(values) == len(boundaries) + 1``."""

    def __init__(self, boundaries: list[int], values: list[float], name: str = "PiecewiseConstant") -> None:
        owner = "PiecewiseConstantDecay"
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1 or not boundaries:
            raise ConfigError(
                f"{owner}: `values` must have one more entry than `boundaries`, got {len(boundaries)} boundaries "
                f"and {len(values)} values."
            )
        self.boundaries = [check_int(b, "boundaries", owner=owner) for b in boundaries]
        if self.boundaries != sorted(self.boundaries):
            raise ConfigError(f"{owner}: `boundaries` must increase, got {self.boundaries}.")
        self.values = [check_float(v, "values", owner=owner, minimum=0.0) for v in values]
        self.name = name

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


_CLASSES: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls for cls in (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)
}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}``.

    Raises:
        ConfigError: for a custom schedule class, which a config cannot name.
    """
    return serialization.serialize(schedule, _CLASSES, "schedules", "schedule")


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """Inverse of :func:`serialize`.

    Raises:
        ConfigError: for an unknown class name.
    """
    return serialization.deserialize(config, _CLASSES, "schedules")
