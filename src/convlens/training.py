"""The loops behind ``Sequential.fit``, ``evaluate`` and ``predict`` (Keras semantics).

Kept apart from :mod:`convlens.models` so the model class stays about structure and API; these
functions take the model and work on already-validated float32 arrays.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from convlens.errors import ConfigError
from convlens.progbar import Progbar

__all__ = [
    "accepts_datasets",
    "as_float32",
    "evaluate_arrays",
    "ordered",
    "predict_arrays",
    "split_validation",
    "train_epoch",
    "verbosity",
]


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
        owner = f"Sequential '{given['self'].name}': {method.__name__}"
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


def as_float32(x: Any, what: str) -> np.ndarray:
    """``x`` as a float32 array, or a ``TypeError`` naming the argument (no copy when already float32)."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"Sequential: `{what}` must be array-like, got {type(x).__name__}.") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"Sequential: `{what}` must hold numbers, got dtype {arr.dtype}.")
    return arr.astype(np.float32, copy=False)


def verbosity(verbose: Any) -> int:
    """Keras's ``verbose`` ('auto' means 1)."""
    return 1 if verbose == "auto" else int(verbose)


def ordered(logs: dict[str, float]) -> dict[str, float]:
    """Keras 3 prints metrics alphabetically (accuracy before loss)."""
    return dict(sorted(logs.items()))


def split_validation(
    model: Any, x: np.ndarray, y: np.ndarray, validation_split: float, validation_data: Any
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Training arrays and the validation pair: ``validation_data`` as given, or the LAST
    ``validation_split`` fraction of the samples (before any shuffling), as Keras does."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ConfigError(f"Sequential '{model.name}': `validation_data` must be a tuple (x_val, y_val).")
        vx = model._as_input(validation_data[0], "validation_data x")
        model._check_x(vx)
        return x, y, (vx, model._prepare_y(validation_data[1], vx.shape[0], "validation_data y"))
    if validation_split > 0:
        split = math.floor(x.shape[0] * (1.0 - validation_split))
        if split == 0 or split == x.shape[0]:
            raise ConfigError(
                f"Sequential '{model.name}': validation_split={validation_split} leaves an empty training or "
                f"validation set for {x.shape[0]} samples."
            )
        return x[:split], y[:split], (x[split:], y[split:])
    return x, y, None


def train_epoch(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    order: np.ndarray | None,
    callbacks: Any,
    bar: Progbar | None,
) -> dict[str, float]:
    """One pass over ``(x, y)`` in mini-batches (in ``order`` when shuffling); returns the running logs.

    The logged loss is the mean over samples of the batch losses (each batch weighted by its size).
    """
    n = x.shape[0]
    steps = -(-n // batch_size)
    params, grads = model._trainable()
    loss_sum, seen = 0.0, 0
    logs: dict[str, float] = {}
    for metric in model.metrics:
        metric.reset()
    for step in range(steps):
        callbacks.on_train_batch_begin(step)
        lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
        if order is not None:
            idx = np.sort(order[lo:hi])  # sorted: the gather walks memory forwards
            xb, yb = x[idx], y[idx]
        else:
            xb, yb = x[lo:hi], y[lo:hi]
        loss, y_pred = model._loss_and_grad(yb, xb)
        model.optimizer.apply(params, grads)
        loss_sum += loss * (hi - lo)
        seen += hi - lo
        logs = {"loss": loss_sum / seen}
        for metric in model.metrics:
            metric.update(yb, y_pred)
            logs[metric.name] = metric.result()
        callbacks.on_train_batch_end(step, logs)
        if bar is not None:
            bar.update(step + 1, list(ordered(logs).items()), finalize=False)
    return logs


def evaluate_arrays(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int, verbose: int) -> dict[str, float]:
    """Loss (mean over samples) and metrics over ``(x, y)``, batch by batch, no weight updates."""
    n = x.shape[0]
    steps = -(-n // batch_size)
    bar = Progbar(steps, verbose=verbose) if verbose else None
    for metric in model.metrics:
        metric.reset()
    loss_sum = 0.0
    logs: dict[str, float] = {}
    for step in range(steps):
        lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
        y_pred = model._forward(x[lo:hi], training=False)
        loss_sum += float(model.loss.forward(y[lo:hi], y_pred)) * (hi - lo)
        logs = {"loss": loss_sum / hi}
        for metric in model.metrics:
            metric.update(y[lo:hi], y_pred)
            logs[metric.name] = metric.result()
        if bar is not None:
            bar.update(step + 1, list(ordered(logs).items()), finalize=step + 1 == steps)
    return logs


def predict_arrays(model: Any, x: np.ndarray, batch_size: int, verbose: int) -> np.ndarray | None:
    """Outputs for every sample, batch by batch (None for an empty ``x``)."""
    n = x.shape[0]
    steps = -(-n // batch_size)
    bar = Progbar(steps, verbose=verbose) if verbose and steps else None
    out: np.ndarray | None = None
    for step, lo in enumerate(range(0, n, batch_size)):
        hi = min(n, lo + batch_size)
        y = model._forward(x[lo:hi], training=False)
        if out is None:
            out = np.empty((n, *y.shape[1:]), y.dtype)
        out[lo:hi] = y
        if bar is not None:
            bar.update(step + 1, finalize=step + 1 == steps)
    return out
