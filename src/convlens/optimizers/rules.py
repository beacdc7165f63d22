"""The update rules: SGD (momentum, Nesterov), Adam (AMSGrad), AdamW and RMSprop (centered, momentum), each
one ``_update`` on top of :class:`~convlens.optimizers.base.Optimizer`, with Keras 3's defaults.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_bool, check_float
from convlens.ops.adam_jit import adam_update_jit
from convlens.optimizers.base import Optimizer

__all__ = ["SGD", "Adam", "AdamW", "RMSprop"]


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
        if not self.amsgrad and adam_update_jit(
            param, grad, m, v, 1.0 - self.beta_1, 1.0 - self.beta_2, self.epsilon, alpha
        ):
            return  # (one compiled pass, the same bits as the NumPy below)
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
