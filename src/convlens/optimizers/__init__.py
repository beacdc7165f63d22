"""Optimizers with Keras 3's defaults and update rules: SGD, Adam, AdamW, RMSprop.

``apply(params, grads)`` updates the parameter arrays in place. Per-parameter state (the
"slots": momentum, first and second moments) is created lazily on the first call, one set
per position in the list, so the model must pass its weights in the same order every step.
Every update runs in place through one scratch buffer per parameter: no allocation per
step, and float32 parameters stay float32.

Keras 3 order within one step: clip the gradients (``clipnorm``/``clipvalue``/
``global_clipnorm``), apply decoupled weight decay ``p -= p * weight_decay * lr``, then the
update rule; ``iterations`` counts completed steps. ``learning_rate`` may be a float or a schedule from
:mod:`convlens.optimizers.schedules` (evaluated at ``iterations``, as Keras).

>>> import numpy as np
>>> w = np.array([1.0, -2.0], np.float32)
>>> opt = get("sgd")
>>> opt.apply([w], [np.array([10.0, 10.0], np.float32)])
>>> w, opt.iterations
(array([ 0.9, -2.1], dtype=float32), 1)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConfigError, ShapeError, check_float
from convlens.optimizers import schedules
from convlens.optimizers.schedules import LearningRateSchedule

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "get", "schedules"]

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
        self.name = name or self.default_name
        for arg, value in kwargs.items():
            if arg not in _KERAS_ONLY:
                raise ConfigError(f"{self!r}: unexpected keyword argument {arg!r}.")
            if value != _KERAS_ONLY[arg]:
                raise ConfigError(f"{self!r}: `{arg}` is not supported by convlens, got {arg}={value!r}.")
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
                iterations = int(np.asarray(value))
                continue
            name, _, index = key.rpartition("_")
            if name not in names or not index.isdigit():
                valid = ", ".join(f"'{n}_<i>'" for n in names) or "none"
                raise ConfigError(f"{self!r}: unknown state key {key!r}; expected 'iterations' or slots {valid}.")
            while len(slots) <= int(index):
                slots.append({})
            slots[int(index)][name] = np.array(value, copy=True)
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
        """Rebuild from :meth:`get_config` output."""
        return cls(**config)


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as Keras 3.

    ``m = momentum * m - lr * g``; ``p += m`` or, with Nesterov, ``p += momentum * m - lr * g``.
    With a constant learning rate this equals ``torch.optim.SGD`` (its buffer is ``-m / lr``).
    """

    default_name = "SGD"

    def __init__(
        self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_float(momentum, "momentum", owner=repr(self), minimum=0.0, maximum=1.0)
        self.nesterov = bool(nesterov)

    def _slot_names(self) -> tuple[str, ...]:
        return ("m",) if self.momentum != 0 else ()

    def _update(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        slots: dict[str, np.ndarray],
        scratch: np.ndarray,
        lr: float,
    ) -> None:
        np.multiply(grad, lr, out=scratch)
        if not self.momentum:
            param -= scratch
            return
        m = slots["m"]
        m *= self.momentum
        m -= scratch
        if self.nesterov:
            param -= scratch
            np.multiply(m, self.momentum, out=scratch)
            param += scratch
        else:
            param += m

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam as Keras 3 writes it (epsilon added to ``sqrt(v)``, bias correction folded into lr).

    ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``; ``m += (g - m) * (1 - beta_1)``;
    ``v += (g*g - v) * (1 - beta_2)``; with amsgrad ``vhat = max(vhat, v)`` replaces ``v``;
    ``p -= alpha * m / (sqrt(v) + epsilon)``. With ``epsilon=0`` this is ``torch.optim.Adam``;
    otherwise Keras's epsilon equals torch's ``eps * sqrt(1 - beta_2**t)``.
    """

    default_name = "adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_float(beta_1, "beta_1", owner=repr(self), minimum=0.0, maximum=1.0, inclusive_max=False)
        self.beta_2 = check_float(beta_2, "beta_2", owner=repr(self), minimum=0.0, maximum=1.0, inclusive_max=False)
        self.epsilon = check_float(epsilon, "epsilon", owner=repr(self), minimum=0.0)
        self.amsgrad = bool(amsgrad)

    def _slot_names(self) -> tuple[str, ...]:
        return ("m", "v", "vhat") if self.amsgrad else ("m", "v")

    def _update(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        slots: dict[str, np.ndarray],
        scratch: np.ndarray,
        lr: float,
    ) -> None:
        t = self.iterations + 1
        alpha = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        m, v = slots["m"], slots["v"]
        np.subtract(grad, m, out=scratch)
        scratch *= 1.0 - self.beta_1
        m += scratch
        np.square(grad, out=scratch)
        scratch -= v
        scratch *= 1.0 - self.beta_2
        v += scratch
        if self.amsgrad:
            np.maximum(slots["vhat"], v, out=slots["vhat"])
            v = slots["vhat"]
        np.sqrt(v, out=scratch)
        scratch += self.epsilon
        np.divide(m, scratch, out=scratch)
        scratch *= alpha
        param -= scratch

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``keras.optimizers.AdamW`` (``weight_decay=0.004`` by default):
    ``p -= p * weight_decay * lr`` before each Adam update."""

    default_name = "adamw"

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        if weight_decay is None:
            raise ConfigError("AdamW: `weight_decay` must be a number (Adam has no decay), got None.")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop as Keras 3 (epsilon inside the square root, plain momentum on the increment).

    ``v = rho*v + (1-rho)*g*g``; centered: ``mg = rho*mg + (1-rho)*g``, ``d = max(v - mg**2, 0) + eps``,
    else ``d = v + eps``; ``inc = lr * g / sqrt(d)``; with momentum ``mom = momentum*mom + inc``,
    ``p -= mom``, else ``p -= inc``. With ``epsilon=0`` this is ``torch.optim.RMSprop(alpha=rho, eps=0)``.
    """

    default_name = "rmsprop"

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = check_float(rho, "rho", owner=repr(self), minimum=0.0, maximum=1.0, inclusive_max=False)
        self.momentum = check_float(momentum, "momentum", owner=repr(self), minimum=0.0, maximum=1.0)
        self.epsilon = check_float(epsilon, "epsilon", owner=repr(self), minimum=0.0)
        self.centered = bool(centered)

    def _slot_names(self) -> tuple[str, ...]:
        names = ["velocity"]
        if self.momentum > 0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return tuple(names)

    def _update(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        slots: dict[str, np.ndarray],
        scratch: np.ndarray,
        lr: float,
    ) -> None:
        velocity = slots["velocity"]
        velocity *= self.rho
        np.square(grad, out=scratch)
        scratch *= 1.0 - self.rho
        velocity += scratch
        if self.centered:
            average = slots["average_gradient"]
            average *= self.rho
            np.multiply(grad, 1.0 - self.rho, out=scratch)
            average += scratch
            np.square(average, out=scratch)
            np.subtract(velocity, scratch, out=scratch)
            # v - mg**2 >= 0 in exact arithmetic; rounding can dip below and make sqrt NaN
            # (Keras would), so clamp at zero.
            np.maximum(scratch, 0.0, out=scratch)
            scratch += self.epsilon
        else:
            np.add(velocity, self.epsilon, out=scratch)
        np.sqrt(scratch, out=scratch)
        np.divide(grad, scratch, out=scratch)
        scratch *= lr
        if self.momentum > 0:
            mom = slots["momentum"]
            mom *= self.momentum
            mom += scratch
            param -= mom
        else:
            param -= scratch

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


from convlens.optimizers.registry import get  # noqa: E402  (the registry names the classes above)
