"""The argument and state checks of every model (a mixin of :class:`~convlens.trainer.Trainer`, so of
:class:`~convlens.model.Model`: Sequential and Functional alike), kept apart from the model classes.

Every public method of a model checks its arguments here before anything runs: inputs (numbers, the
model's input shape, at least one sample, finite values for training), labels, build shapes, the callbacks
list, the call order, and whether a batch's activations fit in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from convlens.callbacks import Callback, CallbackList
from convlens.errors import MAX_SIZE, ConfigError, ConfigTypeError, ShapeError, StateError, short_repr
from convlens.layers.base import Layer
from convlens.ops._checks import as_array, as_float_array
from convlens.resources import check_arrays

__all__ = ["InputChecks", "as_float32", "check_callbacks", "check_finite"]

Shape = tuple[int | None, ...]


def as_float32(x: Any, what: str, owner: str = "Sequential") -> np.ndarray:
    """``x`` as a float32 array, or a ``ConfigTypeError`` naming the argument (no copy when already float32)."""
    return as_float_array(x, what, owner).astype(np.float32, copy=False)


def check_finite(arr: np.ndarray, what: str, owner: str) -> None:
    """Refuse NaN or infinite values in training data (they would turn every weight into NaN).

    Raises:
        ConfigError: naming the argument, how many values are bad and the first one's index.
    """
    if arr.dtype.kind != "f" or np.isfinite(arr.sum(dtype=np.float64)):  # one pass, no temporary, usually
        return
    bad = ~np.isfinite(arr)
    if bad.any():  # (a float64 sum of huge float64 values can overflow with every value finite)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(
            f"{owner}: `{what}` holds {int(bad.sum())} NaN or infinite value(s), the first at index {first} "
            f"({arr[first]!r}); training on them turns every weight into NaN. Clean the data first."
        )


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
    """Checks shared by the models' methods. The model provides ``name``, ``built``, ``compiled``, ``build``,
    ``_owner`` (``"Sequential 'name'"``, ``"Model 'name'"``), ``_expected_input`` (the one input's shape with
    its batch axis, None before the model knows it) and ``_activation_shapes`` (every layer with its output
    shape, in the order they run)."""

    name: str
    built: bool
    compiled: bool
    build: Callable[..., None]

    @property
    def _owner(self) -> str:
        raise NotImplementedError

    def _expected_input(self) -> Shape | None:
        raise NotImplementedError

    def _activation_shapes(self) -> Iterator[tuple[Layer, Shape]]:
        raise NotImplementedError

    def _check_batch_memory(self, batch: int, method: str, *, training: bool) -> None:
        """Refuse a batch whose activations would not fit in memory (every layer's output, and each
        convolution's im2col matrix; training keeps outputs and gradients too), before running any layer.

        Raises:
            ResourceError: naming the estimate, the largest array and the memory available.
        """
        if not self.built or batch == 0:
            return
        parts: list[tuple[str, tuple[int, ...], int]] = []
        for layer, out in self._activation_shapes():
            spatial = [int(s or 1) for s in out[1:]]
            parts.append((f"the output of {layer!r}", (batch, *spatial), 12 if training else 4))
            kernel = layer.params.get("kernel")
            if kernel is not None and kernel.ndim >= 3:  # a convolution: its im2col matrix
                rows = batch * math.prod(spatial[:-1])
                parts.append((f"the im2col matrix of {layer!r}", (rows, math.prod(kernel.shape[:-1]) + 1), 4))
        check_arrays(parts, owner=f"{self._owner}: {method}", hint="Use a smaller batch_size.")

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise StateError(
                f"{self._owner}: {what} needs a built model; give the first layer input_shape=... "
                "or call build(input_shape)."
            )

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise StateError(f"{self._owner}: call compile(optimizer, loss, metrics) before {what}.")

    def _check_build_shape(self, input_shape: Any) -> Shape:
        """``input_shape`` (batch axis included) as a tuple of positive ints and Nones."""
        bad = ConfigError(
            f"{self._owner}: `input_shape` must be a tuple of positive ints (at most {MAX_SIZE}) or None, "
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

    def _as_input(self, x: Any, what: str) -> np.ndarray:
        return as_float32(x, what, self._owner)

    def _check_not_empty(self, x: np.ndarray, method: str) -> None:
        if x.ndim == 0 or x.shape[0] == 0:
            raise ConfigError(f"{self._owner}: {method} needs at least one sample, got an empty x.")

    def _check_x(self, x: np.ndarray, what: str = "x", expected: Shape | None = None) -> None:
        """Refuse ``x`` unless it has the model's input shape (or ``expected``: one input of several)."""
        expected = self._expected_input() if expected is None else expected
        if expected is None:
            return
        if x.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, x.shape, strict=False)):
            hint = ""
            if x.ndim == len(expected) - 1 and tuple(x.shape[1:]) == tuple(expected[1:-1]):
                hint = " Add a channel axis: x[..., None]."
            shown = "(" + ", ".join(str(e) for e in expected) + ")"
            which = "" if what == "x" else f" (`{what}`)"
            raise ShapeError(f"{self._owner}: expected input of shape {shown}, got {x.shape}{which}.{hint}")

    def _inference_input(self, x: Any, method: str) -> np.ndarray:
        """``x`` as float32 with the model's input shape (building the model from it the first time)."""
        x = self._as_input(x, "x")
        if x.ndim == 0:
            raise ShapeError(f"{self._owner}: {method} needs a batch of samples, got a scalar.")
        if not self.built:
            self.build((None, *x.shape[1:]))
        self._check_x(x)
        return x

    def _training_data(self, x: Any, y: Any, method: str) -> tuple[np.ndarray, np.ndarray]:
        """``x`` (float32, the model's input shape, at least one sample; builds the model) and ``y``, both
        finite: what ``fit`` and ``train_on_batch`` train on."""
        x = self._inference_input(x, method)
        self._check_not_empty(x, method)
        y = self._prepare_y(y, x.shape[0])
        owner = "fit" if method == "fit" else self._owner
        check_finite(x, "x", owner)
        check_finite(y, "y", owner)
        return x, y

    def _prepare_y(self, y: Any, n: int, what: str = "y") -> np.ndarray:
        arr = as_array(y, what, self._owner)
        if arr.shape[:1] != (n,):
            raise ShapeError(
                f"{self._owner}: x and {what} must have the same number of samples, got {n} and "
                f"{arr.shape[0] if arr.ndim else 'a scalar'}."
            )
        return arr
