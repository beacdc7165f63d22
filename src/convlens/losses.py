"""Loss objects with Keras 3's names, arguments and reductions (the functions live in :mod:`convlens.ops.losses`).

``SparseCategoricalCrossentropy(from_logits=False)``, ``CategoricalCrossentropy(from_logits=False,
label_smoothing=0.0)``, ``BinaryCrossentropy(from_logits=False, label_smoothing=0.0)``, ``MeanSquaredError()``;
``loss(y_true, y_pred, sample_weight=None)`` returns the reduced loss as a float. Each sample's loss is
multiplied by its weight, then ``reduction`` combines them as Keras does:

* ``'sum_over_batch_size'`` (default) and ``'mean'``: ``sum(w * loss) / count`` (count = number of per-sample
  values, NOT the sum of the weights);
* ``'sum'``: ``sum(w * loss)``; ``'mean_with_sample_weight'``: ``sum(w * loss) / sum(w)``;
* ``None``/``'none'``: the weighted per-sample values (not usable by ``compile``).

``compile(loss=...)`` takes a name (``'sparse_categorical_crossentropy'``, ``'mse'``, ...) or one of these
objects; ``get`` resolves either.

>>> import numpy as np
>>> loss = SparseCategoricalCrossentropy(from_logits=True)
>>> logits = np.array([[2.0, 0.0], [0.0, 0.0]])
>>> round(loss(np.array([0, 1]), logits), 6)  # (log(1 + e^-2) + log 2) / 2
0.410038
>>> round(loss(np.array([0, 1]), logits, sample_weight=np.array([0.0, 2.0])), 6)  # 2 log 2 / 2
0.693147
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from convlens import serialization
from convlens.errors import ConfigError, ShapeError, check_float
from convlens.ops import losses as ops_losses

__all__ = [
    "LOSSES",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Loss",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "categorical_crossentropy",
    "deserialize",
    "get",
    "mean_squared_error",
    "serialize",
    "sparse_categorical_crossentropy",
]

LOSSES = ops_losses.LOSSES
binary_crossentropy = ops_losses.binary_crossentropy
categorical_crossentropy = ops_losses.categorical_crossentropy
mean_squared_error = ops_losses.mean_squared_error
sparse_categorical_crossentropy = ops_losses.sparse_categorical_crossentropy

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none")


class Loss:
    """Base class of the loss objects (``keras.losses.Loss``).

    Args:
        name: shown in configs (default: the Keras function name, e.g. ``sparse_categorical_crossentropy``).
        reduction: see the module docstring.
        dtype: accepted for Keras compatibility (computations follow the predictions' float dtype).

    Shapes:
        y_true, y_pred: as the loss function; sample_weight: (N,), (N, 1) or the per-sample values' shape.
    """

    function_name: ClassVar[str] = ""

    def __init__(
        self, name: str | None = None, reduction: str | None = "sum_over_batch_size", dtype: Any = None
    ) -> None:
        owner = type(self).__name__
        if reduction is None:
            reduction = "none"
        if reduction not in REDUCTIONS:
            raise ConfigError(
                f"{owner}: `reduction` must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}."
            )
        self.name = name or self.function_name
        self.reduction = reduction
        self.dtype = dtype
        self.from_logits = False
        self._engine = ops_losses.get_loss(self.function_name)

    @property
    def fused_activation(self) -> str | None:
        """The last-layer activation the model may fold into this loss ('softmax'/'sigmoid'), or None."""
        return self._engine.fused_activation

    def _targets(self, y_true: Any, y_pred: np.ndarray) -> Any:
        return y_true

    def call(self, y_true: Any, y_pred: Any) -> np.ndarray:
        """Per-sample losses (``keras.losses.Loss.call``)."""
        return np.asarray(self._terms(y_true, np.asarray(y_pred), fused=False, grad=False)[0])

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        pred = np.asarray(y_pred)
        values, _ = self._terms(y_true, pred, fused=False, grad=False)
        weights = self._weights(sample_weight, values)
        weighted = values if weights is None else values * weights
        if self.reduction == "none":
            return weighted
        return self._reduce(weighted, weights)

    # ----- the engine's hooks ----------------------------------------------------------------------------
    def _terms(self, y_true: Any, y_pred: np.ndarray, fused: bool, grad: bool = True) -> tuple[np.ndarray, Any]:
        target = self._targets(y_true, y_pred)
        if fused:
            terms = self._engine.fused_terms
            if terms is None:  # pragma: no cover - guarded by fused_activation
                raise ConfigError(f"{self!r}: has no fused form.")
            return terms(target, y_pred, grad=grad)
        return self._engine.terms(target, y_pred, grad=grad)

    def _weights(self, sample_weight: Any, values: np.ndarray) -> np.ndarray | None:
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight, dtype=values.dtype)
        if weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
            weights = weights[..., 0]
        if weights.ndim == 1 and values.ndim > 1:  # one weight per sample, every position
            weights = weights.reshape(-1, *([1] * (values.ndim - 1)))
        try:
            return np.broadcast_to(weights, values.shape)
        except ValueError as exc:
            raise ShapeError(
                f"{self!r}: `sample_weight` of shape {np.shape(sample_weight)} does not fit per-sample losses of "
                f"shape {values.shape}."
            ) from exc

    def _reduce(self, weighted: np.ndarray, weights: np.ndarray | None) -> float:
        # In the predictions' dtype, as Keras (float32 sums also hide last-bit differences between BLAS runs).
        total = np.sum(weighted)
        if self.reduction == "sum":
            return float(total)
        if self.reduction == "mean_with_sample_weight" and weights is not None:
            denominator = np.sum(weights)
        else:
            denominator = weighted.dtype.type(weighted.size)
        return float(total / denominator) if denominator else 0.0

    def value_and_grad(
        self, y_true: Any, y_pred: np.ndarray, sample_weight: Any = None, *, fused: bool = False
    ) -> tuple[float, np.ndarray]:
        """The reduced loss and its gradient with respect to ``y_pred`` (the logits when ``fused``).

        Raises:
            ConfigError: for ``reduction='none'``, which has no scalar to differentiate.
        """
        if self.reduction == "none":
            raise ConfigError(f"{self!r}: reduction='none' gives no scalar loss to train on; use the default.")
        values, grad_mean = self._terms(y_true, y_pred, fused)
        weights = self._weights(sample_weight, values)
        loss = self._reduce(values if weights is None else values * weights, weights)
        count = values.size
        if self.reduction == "sum":
            scale = float(count)
        elif self.reduction == "mean_with_sample_weight" and weights is not None:
            total = float(np.sum(weights, dtype=np.float64))
            scale = count / total if total else 0.0
        else:
            scale = 1.0
        if weights is not None:
            grad_mean = grad_mean * weights.reshape(*weights.shape, *([1] * (grad_mean.ndim - weights.ndim)))
        if scale != 1.0:
            grad_mean = grad_mean * scale
        return loss, np.asarray(grad_mean, dtype=y_pred.dtype)

    def get_config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Inverse of :meth:`get_config`."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__} '{self.name}'"


class _LogitsLoss(Loss):
    def __init__(self, from_logits: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)
        self._engine = ops_losses.get_loss(self.function_name, from_logits=self.from_logits)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


class _SmoothedLoss(_LogitsLoss):
    smoothing_share: ClassVar[str] = ""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(from_logits=from_logits, **kwargs)
        owner = type(self).__name__
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", owner=owner, minimum=0.0, maximum=1.0)
        if axis != -1:
            raise ConfigError(f"{owner}: only axis=-1 (the class axis last) is supported, got axis={axis!r}.")
        self.axis = axis

    def _targets(self, y_true: Any, y_pred: np.ndarray) -> Any:
        if not self.label_smoothing:
            return y_true
        target = np.asarray(y_true, dtype=y_pred.dtype)
        classes = y_pred.shape[-1] if self.smoothing_share == "classes" else 2
        return target * (1.0 - self.label_smoothing) + self.label_smoothing / classes

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(_LogitsLoss):
    """Crossentropy between integer labels and probabilities (or logits with ``from_logits=True``).

    ``ignore_class`` is not supported (ConfigError unless None).

    Shapes:
        y_true: (N, ...) or (N, ..., 1) ints; y_pred: (N, ..., K); per-sample values: (N, ...).
    """

    function_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, **kwargs: Any) -> None:
        if ignore_class is not None:
            raise ConfigError(
                f"SparseCategoricalCrossentropy: `ignore_class` is not supported by convlens, got {ignore_class!r}; "
                "give those samples sample_weight=0 instead."
            )
        super().__init__(from_logits=from_logits, **kwargs)


class CategoricalCrossentropy(_SmoothedLoss):
    """Crossentropy between one-hot (or soft) targets and probabilities/logits; ``label_smoothing`` mixes
    the targets with the uniform distribution: ``t * (1 - s) + s / K``.

    Shapes:
        y_true, y_pred: (N, ..., K); per-sample values: (N, ...).
    """

    function_name = "categorical_crossentropy"
    smoothing_share = "classes"


class BinaryCrossentropy(_SmoothedLoss):
    """Binary crossentropy, averaged over the last axis per sample; ``label_smoothing``: ``t * (1 - s) + s / 2``.

    Shapes:
        y_true: like y_pred (or (N,) for (N, 1)); per-sample values: y_pred.shape[:-1].
    """

    function_name = "binary_crossentropy"
    smoothing_share = "binary"


class MeanSquaredError(Loss):
    """Mean over the last axis of ``(y_true - y_pred) ** 2``, per sample.

    Shapes:
        y_true: like y_pred (or (N,) for (N, 1)); per-sample values: y_pred.shape[:-1].
    """

    function_name = "mean_squared_error"


_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy, MeanSquaredError)
}
_BY_FUNCTION = {cls.function_name: cls for cls in _CLASSES.values()}
_ALIASES = {"mse": "mean_squared_error"}


def get(identifier: Any, *, owner: str | None = None) -> Loss:
    """A loss object from a Keras name (any case; 'mse' too), a class name, a config dict or an object.

    Raises:
        ConfigError: for anything else, listing the valid names.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, ops_losses.Loss):  # the engine's record (convlens.ops.losses.get_loss)
        cls = _BY_FUNCTION[identifier.name]
        return cls(from_logits=True) if identifier.from_logits else cls()  # type: ignore[call-arg]
    if isinstance(identifier, str):
        key = _ALIASES.get(identifier.lower(), identifier.lower())
        if key in _BY_FUNCTION:
            return _BY_FUNCTION[key]()
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    prefix = f"{owner}: " if owner else ""
    names = ", ".join(repr(n) for n in (*LOSSES, *_ALIASES, *_CLASSES))
    raise ConfigError(f"{prefix}unknown `loss` {identifier!r}; choose one of {names}.")


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` that :func:`deserialize` reads back.

    Raises:
        ConfigError: for a custom Loss subclass.
    """
    return serialization.serialize(loss, _CLASSES, "losses", "loss")


def deserialize(config: dict[str, Any]) -> Loss:
    """Inverse of :func:`serialize`.

    Raises:
        ConfigError: for an unknown class name or a malformed dict.
    """
    return serialization.deserialize(config, _CLASSES, "losses")
