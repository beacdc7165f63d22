"""Optimizers with Keras 3's defaults and update rules: SGD, Adam, RMSprop.

``apply(params, grads)`` updates the parameter arrays in place. Per-parameter state (the
"slots": momentum, first and second moments) is created lazily on the first call, one set
per position in the list, so the model must pass its weights in the same order every step.
Every update runs in place through one scratch buffer per parameter: no allocation per
step, and float32 parameters stay float32.

Keras 3 order within one step: clip the gradients (``clipnorm``/``clipvalue``/
``global_clipnorm``), apply decoupled weight decay ``p -= p * weight_decay * lr``, then the
update rule; ``iterations`` counts completed steps.

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

from convlens.errors import ConfigError, ConfigTypeError, ShapeError, check_bool, check_float, check_int, short_repr

__all__ = ["SGD", "Adam", "Optimizer", "RMSprop", "get"]


class Optimizer:
    """Base class: learning rate, iteration count, clipping, weight decay and slot storage.

    Subclasses define ``_slot_names()`` and ``_update(param, grad, slots, scratch, lr)``.

    Attributes:
        learning_rate: a float; learning-rate schedulers set it between epochs.
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
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigTypeError(f"{type(self).__name__}: `name` must be a non-empty string, got {short_repr(name)}.")
        self.name = name or self.default_name
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
        """The step size, a non-negative float (settable)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
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
        decay = (self.weight_decay or 0.0) * self._learning_rate
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
        lr = self._learning_rate
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
            "learning_rate": self._learning_rate,
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
        self.nesterov = check_bool(nesterov, "nesterov", owner=repr(self))

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
        self.amsgrad = check_bool(amsgrad, "amsgrad", owner=repr(self))

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
        self.centered = check_bool(centered, "centered", owner=repr(self))

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


_OPTIMIZERS: dict[str, type[SGD] | type[Adam] | type[RMSprop]] = {
    "sgd": SGD,
    "adam": Adam,
    "rmsprop": RMSprop,
}


def get(identifier: str | Optimizer | dict[str, Any]) -> Optimizer:
    """Resolve ``'sgd'``/``'adam'``/``'rmsprop'`` (any case), an instance, or a config dict.

    A config dict is ``{"class_name": "Adam", "config": {...}}`` as :meth:`Optimizer.get_config`
    produces. Instances are returned as they are.

    Raises:
        ConfigError: on an unknown name, listing the valid ones.

    Shapes:
        no arrays.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    valid = ", ".join(repr(n) for n in _OPTIMIZERS)
    if isinstance(identifier, dict):
        class_name = identifier.get("class_name")
        config = identifier.get("config", {})
        if not isinstance(class_name, str) or class_name.lower() not in _OPTIMIZERS or not isinstance(config, dict):
            raise ConfigError(
                f"optimizers.get: config dict must have a `class_name` in {valid} and a `config` dict, "
                f"got {identifier!r}."
            )
        return _OPTIMIZERS[class_name.lower()].from_config(config)
    if isinstance(identifier, str) and identifier.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[identifier.lower()]()
    raise ConfigError(f"optimizers.get: unknown optimizer {identifier!r}; valid names are {valid}.")
