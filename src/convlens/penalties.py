"""The regularization terms Keras adds to the loss, and their gradients.

* Weight regularizers (``kernel_regularizer=...``) of the trainable layers: ``reg(w)`` summed; training adds
  ``reg.gradient(w)`` to each weight's gradient after the backward pass (Keras counts only trainable weights).
* Activity regularizers: ``reg(output) / batch`` for each layer that has one, recorded while the model runs
  forwards (:class:`ActivityTape`); the backward pass adds ``reg.gradient(output) / batch`` to the gradient
  arriving at that layer's output.

>>> import numpy as np
>>> import convlens as cl
>>> layer = cl.layers.Dense(2, kernel_regularizer=cl.regularizers.L2(0.5), activity_regularizer="l1")
>>> layer.build((None, 3), np.random.default_rng(0))
>>> layer.params["kernel"][...] = 1.0
>>> weight_penalty([layer])  # 0.5 * 6
3.0
>>> tape = ActivityTape()
>>> y = tape.record(layer, np.array([[1.0, -3.0], [2.0, 0.0]]))
>>> tape.penalty  # 0.01 * (1 + 3 + 2 + 0) / 2
0.03
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["ActivityTape", "apply_constraints", "weight_penalty"]


def weight_penalty(layers: Iterable[Any], add_gradients: bool = False) -> float:
    """Sum of the weight regularizers of the trainable ``layers`` (optionally adding their gradients)."""
    return sum(layer.regularization_penalty(add_gradients) for layer in layers if layer.trainable)


def apply_constraints(layers: Iterable[Any]) -> None:
    """Project the constrained weights of the trainable ``layers`` (after each optimizer step)."""
    for layer in layers:
        if layer.trainable and layer.constraints:
            layer.apply_constraints()


class ActivityTape:
    """Activity penalties of one forward pass, and the outputs their gradients need."""

    def __init__(self) -> None:
        self.penalty = 0.0
        self._outputs: dict[int, np.ndarray] = {}

    def record(self, layer: Any, output: np.ndarray) -> np.ndarray:
        """Add ``layer``'s activity penalty for ``output`` (no-op without a regularizer); returns ``output``."""
        reg = getattr(layer, "activity_regularizer", None)
        if reg is not None:
            batch = max(int(output.shape[0]), 1) if output.ndim else 1
            self.penalty += reg(output) / batch
            self._outputs[id(layer)] = output
        return output

    def gradient(self, layer: Any, grad_out: np.ndarray) -> np.ndarray:
        """``grad_out`` plus the activity penalty's gradient for ``layer``'s recorded output."""
        output = self._outputs.get(id(layer))
        if output is None:
            return grad_out
        reg = layer.activity_regularizer
        batch = max(int(output.shape[0]), 1) if output.ndim else 1
        extra = reg.gradient(output) / batch
        return np.asarray(grad_out + extra.astype(grad_out.dtype, copy=False))
