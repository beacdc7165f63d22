"""Losses with Keras semantics: the mean over the batch ('sum_over_batch_size') and its gradient.

Per-sample losses follow Keras: the crossentropies from probabilities renormalise the
predictions to sum to 1 (categorical) and clip them to ``[1e-7, 1 - 1e-7]``; binary
crossentropy and mean squared error average over the last axis. Each backward returns
``dL/dy_pred`` of the returned mean, the exact derivative of that formula (clipped entries
get no gradient).

The fused versions work from logits and never overflow (``|logits| = 1e4`` is fine); they are
what Keras computes when the last layer's activation is softmax or sigmoid, and give
``grad_logits = (softmax(z) - onehot) / N`` (sigmoid: ``(sigmoid(z) - y) / size``).

Shapes:
    sparse labels: (N, ...) or (N, ..., 1) ints in [0, K); one-hot / targets: like y_pred
    y_pred, logits, grads: (N, ..., K)

>>> import numpy as np
>>> loss = get_loss("sparse_categorical_crossentropy")
>>> probs = np.array([[0.5, 0.5], [1.0, 0.0]], np.float32)
>>> round(loss.forward(np.array([0, 0]), probs), 6)  # (ln 2 + 0) / 2
0.346574
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ConfigError, ConfigTypeError, ShapeError, check_bool, short_repr
from convlens.ops._checks import as_array, as_float_array
from convlens.ops.activations import sigmoid

__all__ = [
    "EPSILON",
    "LOSSES",
    "Loss",
    "binary_crossentropy",
    "binary_crossentropy_backward",
    "binary_crossentropy_terms",
    "categorical_crossentropy",
    "categorical_crossentropy_backward",
    "categorical_crossentropy_terms",
    "get_loss",
    "mean_squared_error",
    "mean_squared_error_backward",
    "mean_squared_error_terms",
    "sigmoid_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits",
    "sparse_categorical_crossentropy",
    "sparse_categorical_crossentropy_backward",
    "sparse_categorical_crossentropy_terms",
]

EPSILON = 1e-7  # keras.config.epsilon()
Array = np.ndarray


# ----- validation ----------------------------------------------------------------------------------------
def _pred(y_pred: Any, owner: str) -> Array:
    y_pred = as_float_array(y_pred, "y_pred", owner)
    if y_pred.ndim < 1 or y_pred.shape[0] == 0:
        raise ShapeError(f"{owner}: `y_pred` must have a non-empty batch axis, got shape {y_pred.shape}.")
    if y_pred.size == 0:
        raise ShapeError(f"{owner}: `y_pred` must hold at least one value per sample, got shape {y_pred.shape}.")
    return np.asarray(y_pred)


def _from_logits(value: Any, owner: str) -> bool:
    return check_bool(value, "from_logits", owner=owner)


def _sparse_labels(y_true: Any, y_pred: Array, owner: str) -> Array:
    """Integer labels of shape y_pred.shape[:-1]; accepts a trailing axis of 1 and integral floats."""
    labels = as_array(y_true, "y_true", owner)
    if labels.dtype == np.bool_:
        labels = labels.astype(np.intp)
    if labels.shape == (*y_pred.shape[:-1], 1):
        labels = labels.reshape(y_pred.shape[:-1])
    if y_pred.ndim < 2 or labels.shape != y_pred.shape[:-1]:
        raise ShapeError(
            f"{owner}: sparse labels must have shape {y_pred.shape[:-1]} or {(*y_pred.shape[:-1], 1)} "
            f"for predictions of shape {y_pred.shape}, got {labels.shape}."
        )
    if np.issubdtype(labels.dtype, np.floating):
        if labels.size and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
            bad = float(labels[~(np.isfinite(labels) & (labels == np.round(labels)))].flat[0])
            raise ConfigError(f"{owner}: sparse labels must be integers, got {bad!r}.")
    elif not np.issubdtype(labels.dtype, np.integer):  # pragma: no cover - as_array admits only numbers
        raise ConfigTypeError(f"{owner}: sparse labels must be integers, got dtype {labels.dtype}.")
    classes = y_pred.shape[-1]
    labels = labels.astype(np.intp)
    out_of_range = (labels < 0) | (labels >= classes)
    if out_of_range.any():
        bad_label = int(labels[out_of_range].flat[0])
        raise ConfigError(
            f"{owner}: label {bad_label} is out of range for {classes} classes (K = y_pred.shape[-1]); "
            f"labels must be in [0, {classes})."
        )
    return labels


def _dense_targets(y_true: Any, y_pred: Array, owner: str, *, allow_squeezed: bool) -> Array:
    """Targets with y_pred's shape; (N,) against (N, 1) is accepted when ``allow_squeezed``."""
    target = as_float_array(y_true, "y_true", owner)
    if allow_squeezed and target.shape == y_pred.shape[:-1] and y_pred.shape[-1:] == (1,):
        target = target.reshape(y_pred.shape)
    if target.shape != y_pred.shape:
        hint = " For integer labels use 'sparse_categorical_crossentropy'." if target.ndim < y_pred.ndim else ""
        raise ShapeError(f"{owner}: `y_true` must have the shape of `y_pred` {y_pred.shape}, got {target.shape}.{hint}")
    return target.astype(y_pred.dtype, copy=False)


def _count(y_pred: Array) -> int:
    """Number of per-sample losses averaged (every axis but the class axis)."""
    return int(np.prod(y_pred.shape[:-1], dtype=np.int64)) if y_pred.ndim > 1 else int(y_pred.shape[0])


# ----- per-sample values and the gradient of their mean ---------------------------------------------------
# Every loss is computed as ``values`` (one per sample and position: y_pred.shape[:-1], or (N,) for 1-D
# predictions) and ``grad`` = d mean(values) / d y_pred. Weighted reductions scale ``grad`` per sample
# (see convlens.losses), the plain functions below return the mean.
def _normalised(y_pred: Array) -> tuple[Array, Array]:
    total = np.sum(y_pred, axis=-1, keepdims=True)
    return y_pred / total, total


def _categorical_grad(target: Array, y_pred: Array) -> Array:
    probs, total = _normalised(y_pred)
    inside = (probs >= EPSILON) & (probs <= 1.0 - EPSILON)
    grad_p = np.where(inside, -target / np.clip(probs, EPSILON, None), 0.0)
    # Through p = y / sum(y): dp_i/dy_j = (delta_ij - p_i) / sum(y).
    grad = (grad_p - np.sum(grad_p * probs, axis=-1, keepdims=True)) / total
    return np.asarray((grad / _count(y_pred)).astype(y_pred.dtype, copy=False))


def _per_sample(elementwise: Array) -> Array:
    """Keras's mean over the last axis (1-D predictions: one value per sample already)."""
    return np.asarray(np.mean(elementwise, axis=-1)) if elementwise.ndim > 1 else elementwise


def sparse_categorical_crossentropy_terms(
    y_true: Any, y_pred: Any, from_logits: bool = False, *, grad: bool = True
) -> tuple[Array, Any]:
    """Per-sample ``-log(p[label])`` and the gradient of their mean (see the module docstring).

    Shapes:
        y_true: (N, ...) or (N, ..., 1) integer labels; y_pred: (N, ..., K); values: (N, ...).
    """
    owner = "sparse_categorical_crossentropy"
    from_logits = _from_logits(from_logits, owner)
    y_pred = _pred(y_pred, owner)
    labels = _sparse_labels(y_true, y_pred, owner)
    if from_logits:
        return _softmax_terms(labels, y_pred, owner)[:2]
    probs, _ = _normalised(y_pred)
    picked = np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0]
    values = -np.log(np.clip(picked, EPSILON, 1.0 - EPSILON))
    if not grad:
        return values, None
    onehot = np.zeros_like(y_pred)
    np.put_along_axis(onehot, labels[..., None], 1.0, axis=-1)
    return values, _categorical_grad(onehot, y_pred)


def categorical_crossentropy_terms(
    y_true: Any, y_pred: Any, from_logits: bool = False, *, grad: bool = True
) -> tuple[Array, Any]:
    """Per-sample ``-sum(y_true * log(p))`` (p renormalised and clipped as Keras) and the mean's gradient.

    Shapes:
        y_true, y_pred: (N, ..., K); values: (N, ...).
    """
    owner = "categorical_crossentropy"
    from_logits = _from_logits(from_logits, owner)
    y_pred = _pred(y_pred, owner)
    target = _dense_targets(y_true, y_pred, owner, allow_squeezed=False)
    if from_logits:
        return _softmax_terms(target, y_pred, owner)[:2]
    probs, _ = _normalised(y_pred)
    values = -np.sum(target * np.log(np.clip(probs, EPSILON, 1.0 - EPSILON)), axis=-1)
    return values, _categorical_grad(target, y_pred) if grad else None


def binary_crossentropy_terms(
    y_true: Any, y_pred: Any, from_logits: bool = False, *, grad: bool = True
) -> tuple[Array, Any]:
    """Per-sample mean over the last axis of ``-(y log p + (1 - y) log(1 - p))`` (p clipped to [1e-7, 1 - 1e-7])
    and the gradient of their mean.

    Shapes:
        y_true: like y_pred, or (N,) for y_pred (N, 1); y_pred: (N, ...); values: y_pred.shape[:-1].
    """
    owner = "binary_crossentropy"
    from_logits = _from_logits(from_logits, owner)
    y_pred = _pred(y_pred, owner)
    target = _dense_targets(y_true, y_pred, owner, allow_squeezed=True)
    if from_logits:
        return _sigmoid_terms(target, y_pred, owner)[:2]
    p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
    values = _per_sample(-(target * np.log(p) + (1.0 - target) * np.log1p(-p)))
    if not grad:
        return values, None
    inside = (y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON)
    gradient = np.where(inside, (p - target) / (p * (1.0 - p)), 0.0) / y_pred.size
    return values, np.asarray(gradient.astype(y_pred.dtype, copy=False))


def mean_squared_error_terms(y_true: Any, y_pred: Any, *, grad: bool = True) -> tuple[Array, Any]:
    """Per-sample mean over the last axis of ``(y_pred - y_true) ** 2`` and the gradient of their mean.

    Shapes:
        y_true: like y_pred, or (N,) for y_pred (N, 1); values: y_pred.shape[:-1].
    """
    y_pred = _pred(y_pred, "mean_squared_error")
    target = _dense_targets(y_true, y_pred, "mean_squared_error", allow_squeezed=True)
    diff = y_pred - target
    return _per_sample(diff * diff), np.asarray(diff * (2.0 / y_pred.size)) if grad else None


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> float:
    """Mean of ``-log(p[label])`` (probabilities renormalised and clipped to [1e-7, 1 - 1e-7]).

    Shapes:
        y_true: (N, ...) or (N, ..., 1) integer labels; y_pred: (N, ..., K).
    """
    return float(np.mean(sparse_categorical_crossentropy_terms(y_true, y_pred, from_logits, grad=False)[0]))


def sparse_categorical_crossentropy_backward(y_true: Any, y_pred: Any, from_logits: bool = False) -> Array:
    """Gradient of :func:`sparse_categorical_crossentropy` with respect to ``y_pred``."""
    return sparse_categorical_crossentropy_terms(y_true, y_pred, from_logits)[1]


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> float:
    """Mean over samples of ``-sum(y_true * log(p))``, p renormalised and clipped as Keras.

    Shapes:
        y_true, y_pred: (N, ..., K).
    """
    return float(np.mean(categorical_crossentropy_terms(y_true, y_pred, from_logits, grad=False)[0]))


def categorical_crossentropy_backward(y_true: Any, y_pred: Any, from_logits: bool = False) -> Array:
    """Gradient of :func:`categorical_crossentropy` with respect to ``y_pred``."""
    return categorical_crossentropy_terms(y_true, y_pred, from_logits)[1]


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> float:
    """Mean of ``-(y log p + (1 - y) log(1 - p))`` with p clipped to [1e-7, 1 - 1e-7].

    Shapes:
        y_true: like y_pred, or (N,) for y_pred (N, 1); y_pred: (N, ...).
    """
    return float(np.mean(binary_crossentropy_terms(y_true, y_pred, from_logits, grad=False)[0]))


def binary_crossentropy_backward(y_true: Any, y_pred: Any, from_logits: bool = False) -> Array:
    """Gradient of :func:`binary_crossentropy` with respect to ``y_pred``."""
    return binary_crossentropy_terms(y_true, y_pred, from_logits)[1]


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """Mean of ``(y_pred - y_true) ** 2`` over every value.

    Shapes:
        y_true: like y_pred, or (N,) for y_pred (N, 1).
    """
    return float(np.mean(mean_squared_error_terms(y_true, y_pred, grad=False)[0]))


def mean_squared_error_backward(y_true: Any, y_pred: Any) -> Array:
    """Gradient of :func:`mean_squared_error`: ``2 (y_pred - y_true) / size``."""
    return mean_squared_error_terms(y_true, y_pred)[1]


# ----- fused, from logits ----------------------------------------------------------------------------
def _softmax_terms(labels: Any, logits: Array, owner: str) -> tuple[Array, Array, Array]:
    """Per-sample softmax crossentropy, the gradient of its mean w.r.t. the logits, and the probabilities."""
    if logits.ndim < 2:
        raise ShapeError(f"{owner}: `logits` must be (N, ..., K), got shape {logits.shape}.")
    labels = as_array(labels, "labels", owner)
    sparse = np.shape(labels) != logits.shape or (
        logits.shape[-1] == 1 and np.issubdtype(np.asarray(labels).dtype, np.integer)
    )
    # (the array methods, not np.max/np.sum: the same reductions without the wrappers' ~2 us a call; the loss runs
    # between steps, on one thread)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    log_probs = shifted - np.log(total)
    probs = exp / total
    grad = probs.copy()
    if sparse and logits.ndim == 2:  # (N, K): one label a row, picked by plain indexing (no *_along_axis set-up)
        rows = np.arange(logits.shape[0])
        labels_1d = _sparse_labels(labels, logits, owner)
        values = -log_probs[rows, labels_1d]
        grad[rows, labels_1d] -= 1.0
    elif sparse:
        index = _sparse_labels(labels, logits, owner)[..., None]
        values = -np.take_along_axis(log_probs, index, axis=-1)[..., 0]
        picked = np.take_along_axis(grad, index, axis=-1) - 1.0
        np.put_along_axis(grad, index, picked, axis=-1)
    else:
        target = _dense_targets(labels, logits, owner, allow_squeezed=False)
        values = -np.sum(target * log_probs, axis=-1)
        # d/dz of -sum(t * log_softmax(z)) = p * sum(t) - t (sum(t) == 1 for one-hot).
        grad *= np.sum(target, axis=-1, keepdims=True)
        grad -= target
    grad /= _count(logits)
    return values, grad, probs


def softmax_cross_entropy_with_logits(labels: Any, logits: Any) -> tuple[float, Array, Array]:
    """Softmax + crossentropy from logits: ``(loss_mean, grad_logits, probs)``.

    ``labels`` are sparse ints (N, ...) / (N, ..., 1) or one-hot (N, ..., K), told apart by shape.
    Uses ``log_softmax = z - max - log(sum(exp(z - max)))``: no overflow for any finite logits.

    Shapes:
        logits, grad_logits, probs: (N, ..., K).
    """
    owner = "softmax_cross_entropy_with_logits"
    values, grad, probs = _softmax_terms(labels, _pred(logits, owner), owner)
    return float(np.mean(values)), grad, probs


def _sigmoid_terms(target: Array, logits: Array, owner: str) -> tuple[Array, Array, Array]:
    per_value = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    probs = sigmoid(logits)
    grad = (probs - target) / logits.size
    return _per_sample(per_value), grad.astype(logits.dtype, copy=False), probs


def sigmoid_cross_entropy_with_logits(labels: Any, logits: Any) -> tuple[float, Array, Array]:
    """Sigmoid + binary crossentropy from logits: ``(loss_mean, grad_logits, probs)``.

    Per value ``max(z, 0) - z * y + log1p(exp(-|z|))`` (TensorFlow's stable form); the gradient
    is ``(sigmoid(z) - y) / size``.

    Shapes:
        labels: like logits, or (N,) for logits (N, 1); logits, grad_logits, probs: (N, ...).
    """
    owner = "sigmoid_cross_entropy_with_logits"
    logits = _pred(logits, owner)
    values, grad, probs = _sigmoid_terms(_dense_targets(labels, logits, owner, allow_squeezed=True), logits, owner)
    return float(np.mean(values)), grad, probs


# ----- registry ----------------------------------------------------------------------------------------
Terms = Callable[..., tuple[Array, Any]]  # (y_true, y_pred, *, grad=True) -> (values, gradient or None)


@dataclass(frozen=True)
class Loss:
    """A loss by name: ``forward``/``backward`` on predictions (the mean and its gradient), ``terms`` the
    per-sample values and the gradient of their mean, ``fused_terms`` the same from the logits of a last
    layer whose activation is ``fused_activation`` ('softmax', 'sigmoid' or None; None as well when
    ``from_logits``: the predictions already are logits).
    """

    name: str
    terms: Terms
    fused_activation: str | None
    fused_terms: Terms | None
    from_logits: bool = False

    def forward(self, y_true: Any, y_pred: Any) -> float:
        """The mean loss."""
        return float(np.mean(self.terms(y_true, y_pred, grad=False)[0]))

    def backward(self, y_true: Any, y_pred: Any) -> Array:
        """d(mean loss)/d(y_pred)."""
        return self.terms(y_true, y_pred)[1]

    def fused(self, y_true: Any, logits: Any) -> tuple[float, Array]:
        """The mean loss and its gradient with respect to the logits (needs ``fused_terms``)."""
        if self.fused_terms is None:
            raise ConfigError(f"loss '{self.name}' has no fused form.")
        values, grad = self.fused_terms(y_true, logits)
        return float(np.mean(values)), grad

    def get_config(self) -> dict[str, Any]:
        """JSON-safe description (name and from_logits)."""
        return {"name": self.name, "from_logits": self.from_logits}


def _fused_softmax(labels: Any, logits: Any, *, grad: bool = True) -> tuple[Array, Array]:
    owner = "softmax_cross_entropy_with_logits"
    return _softmax_terms(labels, _pred(logits, owner), owner)[:2]


def _fused_sigmoid(labels: Any, logits: Any, *, grad: bool = True) -> tuple[Array, Array]:
    owner = "sigmoid_cross_entropy_with_logits"
    logits = _pred(logits, owner)
    return _sigmoid_terms(_dense_targets(labels, logits, owner, allow_squeezed=True), logits, owner)[:2]


def _make(name: str, from_logits: bool) -> Loss:
    if name == "mean_squared_error":
        return Loss(name, mean_squared_error_terms, None, None)
    terms, activation, fused = {
        "sparse_categorical_crossentropy": (sparse_categorical_crossentropy_terms, "softmax", _fused_softmax),
        "categorical_crossentropy": (categorical_crossentropy_terms, "softmax", _fused_softmax),
        "binary_crossentropy": (binary_crossentropy_terms, "sigmoid", _fused_sigmoid),
    }[name]
    if from_logits:
        return Loss(name, lambda t, p, grad=True: terms(t, p, True, grad=grad), None, fused, True)  # type: ignore[operator]
    return Loss(name, terms, activation, fused)  # type: ignore[arg-type]


LOSSES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error",
)
_ALIASES = {"mse": "mean_squared_error"}


def get_loss(identifier: Any, *, from_logits: bool = False, owner: str | None = None) -> Loss:
    """Look up a loss by Keras name or alias ('mse'); a :class:`Loss` passes through.

    Raises:
        ConfigError: for an unknown name, listing the valid ones.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        key = _ALIASES.get(key, key)
        if key in LOSSES:
            if from_logits and key == "mean_squared_error":
                raise ConfigError(f"{owner + ': ' if owner else ''}'mean_squared_error' takes no `from_logits`.")
            return _make(key, bool(from_logits))
    prefix = f"{owner}: " if owner else ""
    names = ", ".join(repr(n) for n in (*LOSSES, *_ALIASES))
    raise ConfigError(f"{prefix}unknown `loss` {short_repr(identifier)}; choose one of {names}.")
