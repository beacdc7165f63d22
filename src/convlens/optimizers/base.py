"""The optimizer base class: arguments (Keras's, checked), the learning rate or its schedule, gradient
clipping, decoupled weight decay, the in-place step and the per-parameter state (the update rules are in
:mod:`convlens.optimizers`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConfigError, ConfigTypeError, ShapeError, check_float, check_int, short_repr
from convlens.optimizers import schedules
from convlens.optimizers.schedules import LearningRateSchedule

__all__ = ["Optimizer"]

# Keras's optimizer arguments convlens accepts only at their defaults (they name features it does not have).
_KERAS_ONLY = {
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


class Optimizer:
    """Base class: learning rate, iteration count, clipping, weight decay and slot storage.

    Subclasses define ``_slot_names()`` and ``_update(param, grad, slots, scratch, lr)``.

    Attributes:
        learning_rate: the current rate (a float; a schedule's value at ``iterations``); settable unless the
            optimizer was made with a schedule.
        iterations: number of completed ``apply`` calls.
        name: Keras's default name (``SGD``, ``adam``, ``rmsprop``) unless given.
    """

    default_name: ClassVar[str] = "optimizer"

    def __init__(
        self,
        learning_rate: float,
        *,
        name: str | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigTypeError(f"{type(self).__name__}: `name` must be a non-empty string, got {short_repr(name)}.")
        self.name = name or self.default_name
        for arg, value in kwargs.items():
            if arg not in _KERAS_ONLY:
                raise ConfigTypeError(f"{self!r}: unexpected keyword argument {short_repr(arg, 40)}.")
            default = _KERAS_ONLY[arg]
            if not (value is default or (type(value) is type(default) and value == default)):
                raise ConfigError(f"{self!r}: `{arg}` is not supported by convlens, got {arg}={short_repr(value)}.")
        self._schedule: LearningRateSchedule | None = None
        if isinstance(learning_rate, dict):
            learning_rate = schedules.deserialize(learning_rate)
        if isinstance(learning_rate, LearningRateSchedule):
            self._schedule, self._learning_rate = learning_rate, 0.0
        else:
            self.learning_rate = learning_rate
        clips = [c for c in (clipnorm, clipvalue, global_clipnorm) if c is not None]
        if len(clips) > 1:
            raise ConfigError(
                f"{self!r}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set, got "
                f"clipnorm={clipnorm!r}, clipvalue={clipvalue!r}, global_clipnorm={global_clipnorm!r}."
            )
        self.clipnorm = self._optional_positive(clipnorm, "clipnorm")
        self.clipvalue = self._optional_positive(clipvalue, "clipvalue")
        self.global_clipnorm = self._optional_positive(global_clipnorm, "global_clipnorm")
        self.weight_decay = (
            None if weight_decay is None else check_float(weight_decay, "weight_decay", owner=repr(self), minimum=0.0)
        )
        self.iterations = 0
        self._slots: list[dict[str, np.ndarray]] = []
        self._scratch: list[np.ndarray] = []
        self._clip_buffers: list[np.ndarray] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _optional_positive(self, value: Any, name: str) -> float | None:
        if value is None:
            return None
        number = check_float(value, name, owner=repr(self))
        if number <= 0:
            raise ConfigError(f"{self!r}: `{name}` must be > 0, got {number!r}.")
        return number

    @property
    def learning_rate(self) -> float:
        """The step size for the next update: a non-negative float, or the schedule's value at ``iterations``."""
        if self._schedule is not None:
            return float(self._schedule(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._schedule is not None:
            raise ConfigError(
                f"{self!r}: its learning rate comes from {self._schedule!r} and cannot be set; make the optimizer "
                "with a float learning_rate to change it during training (as Keras)."
            )
        self._learning_rate = check_float(value, "learning_rate", owner=repr(self), minimum=0.0)

    # ----- subclass hooks ------------------------------------------------------------------------
    def _slot_names(self) -> tuple[str, ...]:
        return ()

    def _update(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        slots: dict[str, np.ndarray],
        scratch: np.ndarray,
        lr: float,
    ) -> None:
        raise NotImplementedError

    # ----- the step ------------------------------------------------------------------------------
    def _check(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        decay = (self.weight_decay or 0.0) * self.learning_rate
        if decay > 1.0:  # p *= 1 - decay would flip the weights' signs
            raise ConfigError(f"{self!r}: `weight_decay` * `learning_rate` must be <= 1, got {decay}.")
        for name, arrays in (("params", params), ("grads", grads)):
            for i, a in enumerate(arrays):
                writeable = name == "grads" or (isinstance(a, np.ndarray) and a.flags.writeable)
                if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or not writeable:
                    got = f"dtype {a.dtype}{'' if writeable else ' (read-only)'}" if isinstance(a, np.ndarray) else a
                    need = "a writeable float ndarray (updated in place)" if name == "params" else "a float ndarray"
                    raise ConfigTypeError(f"{self!r}: `{name}[{i}]` must be {need}, got {short_repr(got)}.")
        if len(params) != len(grads):
            raise ShapeError(
                f"{self!r}: `params` and `grads` must have the same length, got {len(params)} and {len(grads)}."
            )
        if self._slots and len(self._slots) > len(params):
            raise ShapeError(
                f"{self!r}: it holds state for {len(self._slots)} parameters, got {len(params)}; pass the "
                "same parameter list every step."
            )
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if p.shape != g.shape:
                raise ShapeError(
                    f"{self!r}: gradient {i} has shape {g.shape}, expected its parameter's shape {p.shape}."
                )
            if i < len(self._scratch) and self._scratch[i].shape != p.shape:
                raise ShapeError(
                    f"{self!r}: parameter {i} has shape {p.shape} but its optimizer state has shape "
                    f"{self._scratch[i].shape}; pass the same parameter list every step."
                )

    def _ensure_state(self, params: list[np.ndarray]) -> None:
        names = self._slot_names()
        for i in range(len(self._scratch), len(params)):
            p = params[i]
            if i >= len(self._slots):
                self._slots.append({})
            slots = self._slots[i]
            for name in names:
                if name not in slots:
                    slots[name] = np.zeros_like(p)
                elif slots[name].shape != p.shape:
                    raise ShapeError(
                        f"{self!r}: loaded state '{name}_{i}' has shape {slots[name].shape}, "
                        f"but parameter {i} has shape {p.shape}."
                    )
                else:
                    slots[name] = np.ascontiguousarray(slots[name], dtype=p.dtype)
            self._scratch.append(np.empty_like(p))

    def _clipped(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clipvalue is None and self.clipnorm is None and self.global_clipnorm is None:
            return grads
        if len(self._clip_buffers) < len(grads):
            self._clip_buffers = [np.empty_like(g) for g in grads]
        out = self._clip_buffers[: len(grads)]
        if self.clipvalue is not None:
            for g, buf in zip(grads, out, strict=True):
                np.clip(g, -self.clipvalue, self.clipvalue, out=buf)
            return out
        if self.clipnorm is not None:
            for g, buf in zip(grads, out, strict=True):
                norm = math.sqrt(float(np.vdot(g, g)))
                np.multiply(g, self.clipnorm / max(norm, self.clipnorm), out=buf)
            return out
        clip = float(self.global_clipnorm or 0.0)
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        for g, buf in zip(grads, out, strict=True):
            np.multiply(g, clip / max(norm, clip), out=buf)
        return out

    def apply(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update ``params`` in place from ``grads`` (same order every call).

        Args:
            params: the trainable arrays, updated in place.
            grads: their gradients, same shapes.

        Raises:
            ShapeError: when the lists differ in length, a gradient's shape differs from its
                parameter's, or the parameter list changed since state was created.

        Shapes:
            params[i]: any shape S_i; grads[i]: S_i.
        """
        if not isinstance(params, (list, tuple)) or not isinstance(grads, (list, tuple)):
            raise ConfigTypeError(
                f"{self!r}: `params` and `grads` must be lists of arrays, got {type(params).__name__} and "
                f"{type(grads).__name__}."
            )
        params = list(params)
        grads = list(grads)
        self._check(params, grads)
        self._ensure_state(params)
        grads = self._clipped(grads)
        lr = self.learning_rate
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.weight_decay:
                p *= 1.0 - self.weight_decay * lr
            self._update(p, g, self._slots[i], self._scratch[i], lr)
        self.iterations += 1

    # ----- state and config ----------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Slots as ``{"m_0": ..., "v_0": ..., "iterations": array(3)}`` for saving."""
        state: dict[str, np.ndarray] = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for i, slots in enumerate(self._slots):
            for name, value in slots.items():
                state[f"{name}_{i}"] = value.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned; shapes are checked on the next ``apply``.

        Raises:
            ConfigError: on a key that is not ``iterations`` or ``<slot>_<index>``.
        """
        names = self._slot_names()
        slots: list[dict[str, np.ndarray]] = []
        iterations = 0
        for key, value in state.items():
            if key == "iterations":
                saved = value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
                iterations = check_int(saved, "iterations", owner=repr(self), minimum=0)
                continue
            name, _, index = key.rpartition("_")
            if name not in names or not index.isdigit():
                valid = ", ".join(f"'{n}_<i>'" for n in names) or "none"
                raise ConfigError(f"{self!r}: unknown state key {key!r}; expected 'iterations' or slots {valid}.")
            if int(index) > 1_000_000:
                raise ConfigError(f"{self!r}: state key {key!r} names parameter {index}, more than any model has.")
            array = np.asarray(value)
            if array.dtype.kind != "f":
                raise ConfigTypeError(f"{self!r}: state {key!r} must hold floats, got dtype {array.dtype}.")
            while len(slots) <= int(index):
                slots.append({})
            slots[int(index)][name] = np.array(array, copy=True)
        self._slots = slots
        self._scratch = []
        self._clip_buffers = []
        self.iterations = iterations

    def get_config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        return {
            "name": self.name,
            "learning_rate": self._learning_rate if self._schedule is None else schedules.serialize(self._schedule),
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            "weight_decay": self.weight_decay,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Rebuild from :meth:`get_config` output (a key the optimizer does not take is a ``ConfigTypeError``)."""
        try:
            return cls(**config)
        except TypeError as exc:  # an unexpected or missing keyword: Python's own message names it
            raise ConfigTypeError(f"{cls.__name__}.from_config: {exc}.") from None
