"""Running-mean metrics with Keras's names and resolution rules.

A metric turns each batch into per-sample values (Keras's ``MeanMetricWrapper``), accumulates
their sum and count, and ``result()`` is the running mean over everything seen since
``reset()``. ``get('accuracy', loss_name)`` picks the accuracy that fits the loss as Keras
does; without a known loss it decides on the first batch by Keras 3's shape rule. The
metric's ``name`` is the identifier as the user wrote it (Keras 3 logs ``'accuracy'``).

>>> import numpy as np
>>> acc = get("accuracy", "sparse_categorical_crossentropy")
>>> acc.update(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]))
>>> acc.name, round(acc.result(), 4)
('accuracy', 0.6667)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from convlens.errors import ConfigError, ShapeError, check_float, check_int

__all__ = [
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "Mean",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "get",
]


class Metric:
    """Base class: a running mean of per-sample values.

    Subclasses implement ``compute(y_true, y_pred) -> values`` (one value per sample, or per
    sample and position for outputs of rank > 2, like Keras).
    """

    default_name: ClassVar[str] = "metric"

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or self.default_name
        self.dtype = dtype
        self._total = 0.0
        self._count = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def reset(self) -> None:
        """Forget everything seen (start of an epoch or of an evaluation)."""
        self._total = 0.0
        self._count = 0.0

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Per-sample values for one batch."""
        raise NotImplementedError

    def update(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulate one batch (Keras's ``update_state``); with ``sample_weight`` the running mean is
        ``sum(w * value) / sum(w)`` over per-sample values (positions averaged first, as Keras).

        Shapes:
            see the subclass; the batch axis N comes first in both arrays; sample_weight: (N,) or (N, 1).
        """
        values = self.compute(np.asarray(y_true), np.asarray(y_pred))
        self._accumulate(np.asarray(values, dtype=np.float64), sample_weight)

    def _accumulate(self, values: np.ndarray, sample_weight: Any) -> None:
        if sample_weight is None:
            self._total += float(np.sum(values))
            self._count += values.size
            return
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
            weights = weights[..., 0]
        if values.ndim > weights.ndim:
            values = np.mean(values, axis=tuple(range(max(weights.ndim, 1), values.ndim)))
        try:
            weights = np.broadcast_to(weights, values.shape)
        except ValueError as exc:
            raise ShapeError(
                f"{self!r}: `sample_weight` of shape {np.shape(sample_weight)} does not fit values of shape "
                f"{values.shape}."
            ) from exc
        self._total += float(np.sum(values * weights))
        self._count += float(np.sum(weights))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Keras's name for :meth:`update`."""
        self.update(y_true, y_pred, sample_weight)

    def reset_state(self) -> None:
        """Keras's name for :meth:`reset`."""
        self.reset()

    def result(self) -> float:
        """Running mean as a Python float (0.0 before any update, like Keras)."""
        return self._total / self._count if self._count else 0.0

    def get_config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        return {"name": self.name}


class Mean(Metric):
    """Weighted running mean of scalars; the model tracks its loss with it.

    Keras weights each batch's mean loss by the batch size, so an epoch's loss is the mean
    over samples even when the last batch is short.

    >>> m = Mean("loss")
    >>> m.update_value(1.0, weight=3); m.update_value(3.0, weight=1)
    >>> m.result()
    1.5
    """

    default_name = "mean"

    def update_value(self, value: float, weight: float = 1.0) -> None:
        """Add ``value`` counted ``weight`` times."""
        self._total += float(value) * float(weight)
        self._count += float(weight)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        """Keras's ``Mean.update_state(values, sample_weight=None)``: a (weighted) mean of the values."""
        self._accumulate(np.atleast_1d(np.asarray(values, dtype=np.float64)), sample_weight)

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise ConfigError(f"{self!r}: use `update_value(value, weight)`; it does not take (y_true, y_pred).")


def _same_rank(owner: Metric, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's ``squeeze_or_expand_to_same_rank``, then require equal shapes."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            f"{owner!r}: `y_true` and `y_pred` must have the same shape, got {y_true.shape} and {y_pred.shape}."
        )
    return y_true, y_pred


class SparseCategoricalAccuracy(Metric):
    """Share of samples whose integer label equals ``argmax(y_pred)`` (first max on ties).

    Shapes:
        y_true: (N,) or (N, 1) integer labels; y_pred: (N, K) scores or probabilities.
    """

    default_name = "sparse_categorical_accuracy"

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if y_pred.ndim < 1:
            raise ShapeError(f"{self!r}: `y_pred` must have a class axis, got shape {y_pred.shape}.")
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape[:-1]:
            raise ShapeError(
                f"{self!r}: `y_true` must hold one label per sample, shape {y_pred.shape[:-1]}, "
                f"got {y_true.shape} (y_pred {y_pred.shape})."
            )
        return np.asarray(np.argmax(y_pred, axis=-1) == y_true)


class CategoricalAccuracy(Metric):
    """Share of samples with ``argmax(y_true) == argmax(y_pred)``.

    Shapes:
        y_true: (N, K) one-hot; y_pred: (N, K).
    """

    default_name = "categorical_accuracy"

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if y_true.shape != y_pred.shape or y_pred.ndim < 1:
            raise ShapeError(
                f"{self!r}: `y_true` (one-hot) and `y_pred` must have the same shape, "
                f"got {y_true.shape} and {y_pred.shape}."
            )
        return np.asarray(np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1))


class BinaryAccuracy(Metric):
    """Share of entries with ``(y_pred > threshold) == y_true``, averaged over the last axis.

    Shapes:
        y_true: (N, ...) 0/1 labels; y_pred: same shape (or with an extra trailing axis of 1).
    """

    default_name = "binary_accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None, threshold: float = 0.5) -> None:
        super().__init__(name, dtype)
        self.threshold = check_float(threshold, "threshold", owner=repr(self))

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true, y_pred = _same_rank(self, y_true, y_pred)
        matches = (y_pred > self.threshold) == y_true
        return np.asarray(np.mean(matches, axis=-1)) if matches.ndim > 1 else matches

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class MeanSquaredError(Metric):
    """Mean of ``(y_true - y_pred) ** 2`` over the last axis, then over samples.

    Shapes:
        y_true, y_pred: (N, ...) the same shape.
    """

    default_name = "mean_squared_error"

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true, y_pred = _same_rank(self, y_true, y_pred)
        diff = np.square(y_pred - y_true)
        return np.asarray(np.mean(diff, axis=-1)) if diff.ndim > 1 else diff


class MeanAbsoluteError(Metric):
    """Mean of ``|y_true - y_pred|`` over the last axis, then over samples.

    Shapes:
        y_true, y_pred: (N, ...) the same shape.
    """

    default_name = "mean_absolute_error"

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true, y_pred = _same_rank(self, y_true, y_pred)
        diff = np.abs(y_pred - y_true)
        return np.asarray(np.mean(diff, axis=-1)) if diff.ndim > 1 else diff


class TopKCategoricalAccuracy(Metric):
    """Share of samples whose one-hot class is among the ``k`` highest scores (ties at the k-th score count
    as in, like Keras's ``in_top_k``).

    Shapes:
        y_true: (N, K) one-hot; y_pred: (N, K).
    """

    default_name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.k = check_int(k, "k", owner=repr(self), minimum=1)

    def _in_top_k(self, labels: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if y_pred.ndim < 2 or labels.shape != y_pred.shape[:-1]:
            raise ShapeError(
                f"{self!r}: expected one label per sample for y_pred {y_pred.shape}, got labels {labels.shape}."
            )
        scores = y_pred.reshape(-1, y_pred.shape[-1])
        flat = labels.reshape(-1).astype(np.intp)
        k = min(self.k, scores.shape[-1])
        kth = -np.partition(-scores, k - 1, axis=-1)[:, k - 1]
        return np.asarray(scores[np.arange(flat.size), flat] >= kth).reshape(labels.shape)

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if y_true.shape != y_pred.shape:
            raise ShapeError(
                f"{self!r}: `y_true` (one-hot) and `y_pred` must have the same shape, got {y_true.shape} and "
                f"{y_pred.shape}."
            )
        return self._in_top_k(np.argmax(y_true, axis=-1), y_pred)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Share of samples whose integer label is among the ``k`` highest scores.

    Shapes:
        y_true: (N,) or (N, 1) integer labels; y_pred: (N, K).
    """

    default_name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None, from_sorted_ids: bool = False) -> None:
        super().__init__(k, name, dtype)
        if from_sorted_ids:
            raise ConfigError(f"{self!r}: `from_sorted_ids=True` is not supported by convlens.")

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if y_true.ndim == y_pred.ndim and y_true.shape[-1:] == (1,):
            y_true = y_true[..., 0]
        return self._in_top_k(y_true, y_pred)


class _LossMetric(Metric):
    """A loss function averaged over samples (``keras.metrics.CategoricalCrossentropy`` and friends)."""

    loss_name: ClassVar[str] = ""

    def __init__(
        self,
        name: str | None = None,
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
    ) -> None:
        from convlens import losses

        super().__init__(name or self.loss_name, dtype)
        if axis != -1:
            raise ConfigError(f"{self!r}: only axis=-1 (the class axis last) is supported, got axis={axis!r}.")
        config: dict[str, Any] = {"from_logits": from_logits}
        if label_smoothing:
            if self.loss_name == "sparse_categorical_crossentropy":
                raise ConfigError(f"{self!r}: takes no `label_smoothing` (Keras's neither), got {label_smoothing!r}.")
            config["label_smoothing"] = label_smoothing
        self._loss = losses.get({"class_name": type(self).__name__, "config": config})
        self.from_logits = bool(from_logits)

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return self._loss.call(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        config = self._loss.get_config()
        config.pop("reduction", None)
        config["name"] = self.name
        return config


class SparseCategoricalCrossentropy(_LossMetric):
    """Mean sparse categorical crossentropy (``from_logits`` as the loss).

    Shapes:
        y_true: (N,) ints; y_pred: (N, K).
    """

    default_name = loss_name = "sparse_categorical_crossentropy"


class CategoricalCrossentropy(_LossMetric):
    """Mean categorical crossentropy (``from_logits``, ``label_smoothing`` as the loss).

    Shapes:
        y_true, y_pred: (N, K).
    """

    default_name = loss_name = "categorical_crossentropy"


class BinaryCrossentropy(_LossMetric):
    """Mean binary crossentropy (``from_logits``, ``label_smoothing`` as the loss).

    Shapes:
        y_true, y_pred: (N, ...).
    """

    default_name = loss_name = "binary_crossentropy"


class Accuracy(Metric):
    """'accuracy' without a known loss: chooses on the first batch by Keras 3's shape rule.

    Binary when ``y_pred``'s last axis is 1; sparse categorical when ``y_true`` has lower rank
    than ``y_pred`` (or a last axis of 1 against more classes); categorical otherwise.

    Shapes:
        as the accuracy it resolves to.
    """

    default_name = "accuracy"

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.resolved: Metric | None = None

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.resolved is None:
            if y_pred.ndim == 0 or y_true.ndim == 0:
                raise ShapeError(
                    f"{self!r}: needs batched arrays, got y_true {y_true.shape} and y_pred {y_pred.shape}."
                )
            if y_pred.shape[-1] == 1:
                self.resolved = BinaryAccuracy(self.name)
            elif y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
                self.resolved = SparseCategoricalAccuracy(self.name)
            else:
                self.resolved = CategoricalAccuracy(self.name)
        return self.resolved.compute(y_true, y_pred)


_ACCURACY_FOR_LOSS: dict[str, type[Metric]] = {
    "sparsecategoricalcrossentropy": SparseCategoricalAccuracy,
    "categoricalcrossentropy": CategoricalAccuracy,
    "binarycrossentropy": BinaryAccuracy,
}
_METRICS: dict[str, type[Metric]] = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
}


def get(identifier: str | Metric | dict[str, Any], loss_name: str | None = None) -> Metric:
    """Resolve a metric name (any case) or return a :class:`Metric` instance as is.

    ``'accuracy'``/``'acc'`` becomes sparse categorical, categorical or binary accuracy for
    ``loss_name`` 'sparse_categorical_crossentropy', 'categorical_crossentropy' or
    'binary_crossentropy' (underscores and case ignored, so class names work too), and the
    shape-deciding :class:`Accuracy` otherwise. The metric is named as the user wrote it.

    Raises:
        ConfigError: on an unknown name, listing the valid ones.

    Shapes:
        no arrays.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        classes = {cls.__name__: cls for cls in {*_METRICS.values(), *_ACCURACY_FOR_LOSS.values(), Accuracy}}
        cls = classes.get(identifier.get("class_name", ""))
        if cls is not None and isinstance(identifier.get("config", {}), dict):
            return cls(**identifier.get("config", {}))
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            loss_key = (loss_name or "").lower().replace("_", "")
            return _ACCURACY_FOR_LOSS.get(loss_key, Accuracy)(name=identifier)
        if key in _METRICS:
            return _METRICS[key](name=identifier)
    valid = ", ".join(repr(n) for n in ("accuracy", "acc", *_METRICS))
    raise ConfigError(f"metrics.get: unknown metric {identifier!r}; valid names are {valid}.")
