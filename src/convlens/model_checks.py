"""The argument and state checks of :class:`~convlens.models.Sequential` (a mixin, kept apart from the model).

Every public method of the model checks its arguments here before anything runs: inputs (numbers, the
model's input shape, at least one sample), labels, build shapes, the callbacks list, the call order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlens import training
from convlens.callbacks import Callback, CallbackList
from convlens.errors import MAX_SIZE, ConfigError, ConfigTypeError, ShapeError, StateError, short_repr
from convlens.ops._checks import as_array
from convlens.resources import check_arrays

__all__ = ["InputChecks", "check_callbacks"]

Shape = tuple[int | None, ...]


def check_callbacks(callbacks: Any) -> list[Callback]:
    """``callbacks`` as a list of Callback instances (None for none), refused with a hint otherwise.

    Raises:
        ConfigTypeError: for a single callback (not in a list), a string, a dict, or an item that is not one.
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        raise ConfigTypeError(
            f"fit: `callbacks` must be a list of Callback instances, got a single {type(callbacks).__name__}; "
            "wrap it: callbacks=[...]."
        )
    if not isinstance(callbacks, (list, tuple, CallbackList)):
        raise ConfigTypeError(f"fit: `callbacks` must be a list of Callback instances, got {short_repr(callbacks)}.")
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise ConfigTypeError(f"fit: every item of `callbacks` must be a Callback instance, got {short_repr(cb)}.")
    return list(callbacks)


class InputChecks:
    """Checks shared by the model's methods; the model provides ``name``, ``built``, ``compiled``, ``_input_shape``."""

    name: str
    built: bool
    compiled: bool
    _input_shape: Shape | None
    _layers: list[Any]
    build: Callable[..., None]

    def _check_batch_memory(self, batch: int, method: str, *, training: bool) -> None:
        """Refuse a batch whose activations would not fit in memory (every layer's output, and each
        convolution's im2col matrix; training keeps outputs and gradients too), before running any layer.

        Raises:
            ResourceError: naming the estimate, the largest array and the memory available.
        """
        if self._input_shape is None or batch == 0:
            return
        shape: Shape = self._input_shape
        parts: list[tuple[str, tuple[int, ...], int]] = []
        for layer in self._layers:
            out = layer.compute_output_shape(shape)
            spatial = [int(s or 1) for s in out[1:]]
            parts.append((f"the output of {layer!r}", (batch, *spatial), 12 if training else 4))
            kernel = layer.params.get("kernel")
            if kernel is not None and kernel.ndim >= 3:  # a convolution: its im2col matrix
                rows = batch * math.prod(spatial[:-1])
                parts.append((f"the im2col matrix of {layer!r}", (rows, math.prod(kernel.shape[:-1]) + 1), 4))
            shape = out
        check_arrays(parts, owner=f"Sequential '{self.name}': {method}", hint="Use a smaller batch_size.")

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise StateError(
                f"Sequential '{self.name}': {what} needs a built model; give the first layer input_shape=... "
                "or call build(input_shape)."
            )

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise StateError(f"Sequential '{self.name}': call compile(optimizer, loss, metrics) before {what}.")

    def _check_build_shape(self, input_shape: Any) -> Shape:
        """``input_shape`` (batch axis included) as a tuple of positive ints and Nones."""
        bad = ConfigError(
            f"Sequential '{self.name}': `input_shape` must be a tuple of positive ints (at most {MAX_SIZE}) or None, "
            f"batch axis included, e.g. (None, 28, 28, 1); got {short_repr(input_shape)}."
        )
        if isinstance(input_shape, (str, bytes, dict)) or not isinstance(input_shape, Sequence):
            raise bad
        shape = tuple(input_shape)
        if not 1 < len(shape) <= 32 or not all(
            s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 < s <= MAX_SIZE)
            for s in shape
        ):
            raise bad
        return tuple(None if s is None else int(s) for s in shape)

    @staticmethod
    def _as_input(x: Any, what: str) -> np.ndarray:
        return training.as_float32(x, what)

    def _check_not_empty(self, x: np.ndarray, method: str) -> None:
        if x.ndim == 0 or x.shape[0] == 0:
            raise ConfigError(f"Sequential '{self.name}': {method} needs at least one sample, got an empty x.")

    def _check_x(self, x: np.ndarray, what: str = "x") -> None:
        expected = self._input_shape
        if expected is None:
            return
        if x.ndim != len(expected) or any(
            e is not None and e != a for e, a in zip(expected[1:], x.shape[1:], strict=False)
        ):
            hint = ""
            if x.ndim == len(expected) - 1 and tuple(x.shape[1:]) == tuple(expected[1:-1]):
                hint = " Add a channel axis: x[..., None]."
            shown = "(None, " + ", ".join(str(e) for e in expected[1:]) + ")"
            which = "" if what == "x" else f" (`{what}`)"
            raise ShapeError(f"Sequential '{self.name}': expected input of shape {shown}, got {x.shape}{which}.{hint}")

    def _inference_input(self, x: Any, method: str) -> np.ndarray:
        """``x`` as float32 with the model's input shape (building the model from it the first time)."""
        x = self._as_input(x, "x")
        if not self.built:
            self.build((None, *x.shape[1:]))
        self._check_x(x)
        if x.ndim == 0:
            raise ShapeError(f"Sequential '{self.name}': {method} needs a batch of samples, got a scalar.")
        return x

    def _training_data(self, x: Any, y: Any, method: str) -> tuple[np.ndarray, np.ndarray]:
        """``x`` (float32, the model's input shape, at least one sample; builds the model) and ``y``, both
        finite: what ``fit`` and ``train_on_batch`` train on."""
        x = self._inference_input(x, method)
        self._check_not_empty(x, method)
        y = self._prepare_y(y, x.shape[0])
        owner = "fit" if method == "fit" else f"Sequential '{self.name}'"
        training.check_finite(x, "x", owner)
        training.check_finite(y, "y", owner)
        return x, y

    def _prepare_y(self, y: Any, n: int, what: str = "y") -> np.ndarray:
        arr = as_array(y, what, f"Sequential '{self.name}'")
        if arr.shape[:1] != (n,):
            raise ShapeError(
                f"Sequential '{self.name}': x and {what} must have the same number of samples, got {n} and "
                f"{arr.shape[0] if arr.ndim else 'a scalar'}."
            )
        return arr
