"""What the training loops read: dataset inputs (:func:`accepts_datasets`), per-sample weights
(``sample_weight``/``class_weight``), the validation split, and the batches of each epoch
(:class:`EpochBatches`, Keras's epoch iterator over arrays).

These take a model (its input checks: :class:`~convlens.model_checks.InputChecks`) and arrays; the loops
themselves are in :mod:`convlens.training`.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from convlens.errors import ConfigError, ConfigTypeError, ShapeError, check_float, short_repr
from convlens.model_checks import as_float32, check_finite

__all__ = ["OUT_OF_DATA", "EpochBatches", "accepts_datasets", "sample_weights", "split_validation"]

OUT_OF_DATA = (
    "Your input ran out of data; interrupting training. Make sure that your dataset or generator can generate at "
    "least `steps_per_epoch * epochs` batches."
)


Method = TypeVar("Method", bound=Callable[..., Any])


def _dataset_arrays(data: Any, labelled: bool) -> Any:
    arrays = data.to_arrays()
    if data.labels is None:
        return arrays, None
    return arrays if labelled else (arrays[0], None)


def accepts_datasets(method: Method) -> Method:
    """Let ``fit``/``evaluate``/``predict`` take an :class:`~convlens.datasets.image_directory.ImageDataset` as ``x``.

    As in Keras: the dataset yields the batches, so ``y`` must be None and ``batch_size`` is not given (the
    dataset's is used); ``validation_split`` is refused (split with ``subset=`` instead); ``validation_data`` may
    be a dataset too. The images are decoded once into arrays and the usual loop runs; ``fit`` reshuffles every
    epoch when the dataset was made with ``shuffle=True`` (``fit``'s own ``shuffle`` is ignored, as in Keras).
    """
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # the method's own argument checks answer
            return method(*args, **kwargs)
        given = bound.arguments
        if isinstance(given.get("x"), np.ndarray):
            return method(*args, **kwargs)
        from convlens.datasets.image_directory import ImageDataset

        if not isinstance(given.get("x"), ImageDataset):
            return method(*args, **kwargs)
        owner = f"{given['self']._owner}: {method.__name__}"
        for name in ("y", "batch_size", "validation_split"):
            if given.get(name) is not None and not (name == "validation_split" and given[name] == 0):
                shown = type(given[name]).__name__ if name == "y" else repr(given[name])
                raise ConfigError(
                    f"{owner}: `{name}` must not be given when `x` is an ImageDataset, got {name}={shown}; "
                    "the dataset yields the batches and their labels."
                )
        data = given["x"]
        if data.labels is None and method.__name__ != "predict":
            raise ConfigError(f"{owner}: the ImageDataset has no labels (made with labels=None or label_mode=None).")
        given["x"], labels = _dataset_arrays(data, labelled=method.__name__ != "predict")
        if "y" in signature.parameters:
            given["y"] = labels
        given["batch_size"] = data.batch_size
        if "shuffle" in signature.parameters:
            given["shuffle"] = data.shuffle
        if isinstance(given.get("validation_data"), ImageDataset):
            given["validation_data"] = _dataset_arrays(given["validation_data"], labelled=True)
        return method(*bound.args, **bound.kwargs)

    return wrapper  # type: ignore[return-value]


def sample_weights(model: Any, y: np.ndarray, sample_weight: Any, class_weight: Any, n: int) -> np.ndarray | None:
    """Per-sample weights from ``sample_weight`` or ``class_weight`` ({class: weight}; classes from integer labels,
    or the argmax of one-hot ones, as Keras), or None.

    Raises:
        ConfigError: both given, or a malformed ``class_weight``.
        ShapeError: ``sample_weight`` without one weight per sample.
    """
    owner = model._owner
    if sample_weight is not None and class_weight is not None:
        raise ConfigError(f"{owner}: give `sample_weight` or `class_weight`, not both (as Keras).")
    if class_weight is not None:
        if not isinstance(class_weight, dict) or not all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in class_weight
        ):
            raise ConfigTypeError(
                f"{owner}: `class_weight` must be a dict {{class index: weight}}, got {short_repr(class_weight)}."
            )
        table = {int(k): check_float(v, f"class_weight[{k}]", owner=owner) for k, v in class_weight.items()}
        labels = y[..., 0] if y.ndim > 1 and y.shape[-1] == 1 else (np.argmax(y, axis=-1) if y.ndim > 1 else y)
        labels = np.round(labels).astype(np.int64)
        return np.array([table.get(int(c), 1.0) for c in labels.reshape(labels.shape[0], -1)[:, 0]], np.float32)
    if sample_weight is None:
        return None
    weights = as_float32(sample_weight, "sample_weight", owner)
    if weights.ndim == 0 or weights.shape[0] != n:
        raise ShapeError(f"{owner}: `sample_weight` must have one weight per sample ({n}), got shape {weights.shape}.")
    check_finite(weights, "sample_weight", owner)
    return weights


def split_validation(
    model: Any, x: np.ndarray, y: np.ndarray, validation_split: float, validation_data: Any, weights: Any = None
) -> tuple[np.ndarray, np.ndarray, Any, tuple[np.ndarray, np.ndarray, Any] | None]:
    """Training arrays (and weights) and the validation triple: ``validation_data`` as given ((x, y) or
    (x, y, sample_weight)), or the LAST ``validation_split`` fraction of the samples (before any shuffling)."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ConfigTypeError(
                f"{model._owner}: `validation_data` must be a tuple (x_val, y_val) or "
                f"(x_val, y_val, sample_weight_val), got {short_repr(validation_data, 60)}."
            )
        vx = model._as_input(validation_data[0], "validation_data x")
        model._check_x(vx, "validation_data")
        model._check_not_empty(vx, "fit's validation_data")
        vy = model._prepare_y(validation_data[1], vx.shape[0], "validation_data y")
        vw = validation_data[2] if len(validation_data) == 3 else None
        return x, y, weights, (vx, vy, sample_weights(model, vy, vw, None, vx.shape[0]))
    if validation_split > 0:
        split = math.floor(x.shape[0] * (1.0 - validation_split))
        if split == 0 or split == x.shape[0]:
            raise ConfigError(
                f"{model._owner}: validation_split={validation_split} leaves an empty training or "
                f"validation set for {x.shape[0]} samples."
            )
        val_w = None if weights is None else weights[split:]
        return x[:split], y[:split], None if weights is None else weights[:split], (x[split:], y[split:], val_w)
    return x, y, weights, None


class EpochBatches:
    """The batches of each epoch, as Keras's epoch iterator over arrays.

    Without ``steps_per_epoch`` every epoch is one pass over the data (reshuffled when ``shuffle`` is True).
    With it, an epoch is ``steps_per_epoch`` batches and the pass carries on where the last epoch stopped; when
    the pass ends early the epoch ends with Keras's "ran out of data" warning, and the next epoch starts a new
    pass. ``shuffle='batch'`` would only reorder samples within a batch, which changes no update: it runs as
    False.
    """

    def __init__(
        self, n: int, batch_size: int, steps_per_epoch: int | None, shuffle: Any, rng: np.random.Generator
    ) -> None:
        self.n = n
        self.batch_size = batch_size
        self.num_batches = -(-n // batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.shuffle = bool(shuffle) and shuffle != "batch"
        self.rng = rng
        self._pass: Iterator[np.ndarray | slice] | None = None
        self._seen = 0

    @property
    def steps(self) -> int:
        """Steps shown by the progress bar (``steps_per_epoch`` or one pass)."""
        return self.steps_per_epoch or self.num_batches

    def _new_pass(self) -> Iterator[np.ndarray | slice]:
        order = self.rng.permutation(self.n) if self.shuffle else None
        for lo in range(0, self.n, self.batch_size):
            hi = min(self.n, lo + self.batch_size)
            # sorted: the gather walks memory forwards (the order within a batch changes nothing)
            yield slice(lo, hi) if order is None else np.sort(order[lo:hi])

    def epoch(self) -> Iterator[np.ndarray | slice]:
        """The index sets (slices or sorted index arrays) of the next epoch's batches."""
        if self._pass is None or self.steps_per_epoch is None:
            self._pass, self._seen = self._new_pass(), 0
        for _ in range(self.steps):
            if self._seen >= self.num_batches:
                warnings.warn(OUT_OF_DATA, UserWarning, stacklevel=4)
                break
            self._seen += 1
            yield next(self._pass)
        if self._seen >= self.num_batches:
            self._pass, self._seen = None, 0


def _take(a: Any, index: np.ndarray | slice) -> Any:
    return None if a is None else a[index]
