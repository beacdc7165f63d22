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

from convlens.optimizers import schedules
from convlens.optimizers.base import Optimizer
from convlens.optimizers.registry import get
from convlens.optimizers.rules import SGD, Adam, AdamW, RMSprop

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "get", "schedules"]
