"""The loops behind ``Sequential.fit``, ``evaluate`` and ``predict`` (Keras semantics).

Kept apart from :mod:`convlens.models` so the model class stays about structure and API; these
functions take the model and work on already-validated float32 arrays.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from convlens.errors import ConfigError, ConfigTypeError, StateError, check_verbose, short_repr
from convlens.ops._checks import as_float_array
from convlens.progbar import Progbar

__all__ = [
    "NAN_POLICIES",
    "NonFiniteLossWarning",
    "accepts_datasets",
    "as_float32",
    "check_finite",
    "evaluate_arrays",
    "ordered",
    "predict_arrays",
    "split_validation",
    "train_epoch",
    "train_step",
    "verbosity",
]

NAN_POLICIES = ("stop", "raise", "continue")


class NonFiniteLossWarning(RuntimeWarning):
    """``fit`` stopped because the training loss became NaN or infinite (``on_nan='stop'``)."""


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
    """``x`` as a float32 array, or a ``ConfigTypeError`` naming the argument (no copy when already float32)."""
    return as_float_array(x, what, "Sequential").astype(np.float32, copy=False)


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


def verbosity(verbose: Any, owner: str | None = None) -> int:
    """Keras's ``verbose``: 'auto' (1), 0, 1, 2 (True/False read as 1/0)."""
    return check_verbose(verbose, owner=owner)


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
            raise ConfigTypeError(
                f"Sequential '{model.name}': `validation_data` must be a tuple (x_val, y_val), got "
                f"{short_repr(validation_data, 60)}."
            )
        vx = model._as_input(validation_data[0], "validation_data x")
        model._check_x(vx, "validation_data")
        model._check_not_empty(vx, "fit's validation_data")
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


def diverged(loss: float, grads: list[np.ndarray]) -> str | None:
    """Why a step must not be applied: a NaN or infinite loss, or gradients whose squares overflow their dtype
    (Adam, RMSprop and clipping square them: the weights would turn NaN with a finite loss). None when fine.

    Shapes:
        grads: any shapes.
    """
    if not math.isfinite(loss):
        return f"the loss became {loss}"
    for g in grads:
        if g.size == 0:
            continue
        largest = max(abs(float(g.max())), abs(float(g.min())))
        if not largest <= math.sqrt(float(np.finfo(g.dtype).max)):
            return f"the gradients overflowed (|gradient| up to {largest:.3g}, too large to square in {g.dtype})"
    return None


def non_finite_loss(model: Any, what: str, where: str, on_nan: str, *, stopped: bool = True) -> None:
    """What ``fit``/``train_on_batch`` do when a step diverged (``what``, from :func:`diverged`): its update is
    not applied; warn (``on_nan='stop'``) or raise ``StateError`` (``'raise'``)."""
    action = "training stopped and that batch's update was not applied" if stopped else "the update was not applied"
    message = (
        f"Sequential '{model.name}': {what} at {where}; {action}, so the weights are those of the last finite step. "
        "Lower the learning rate or check the data (on_nan='continue' trains on, as Keras does)."
    )
    if on_nan == "raise":
        raise StateError(message)
    warnings.warn(message, NonFiniteLossWarning, stacklevel=4)


def train_step(
    model: Any, x: np.ndarray, y: np.ndarray, params: list[np.ndarray], grads: list[np.ndarray], on_nan: str
) -> tuple[float, np.ndarray, str | None]:
    """Forward, backward and (unless it diverged, see :func:`diverged`) the optimizer step on one batch:
    ``(loss, y_pred, why it diverged or None)``. NumPy's overflow warnings are silenced: the guard says it once.

    Shapes:
        x: (N, ...) inputs; y: (N, ...) targets; y_pred: the model's output.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, y_pred = model._loss_and_grad(y, x)
    problem = diverged(loss, grads) if on_nan != "continue" else None
    if problem is None:
        model.optimizer.apply(params, grads)
    return loss, y_pred, problem


def train_epoch(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    order: np.ndarray | None,
    callbacks: Any,
    bar: Progbar | None,
    *,
    epoch: int = 0,
    on_nan: str = "stop",
) -> dict[str, float]:
    """One pass over ``(x, y)`` in mini-batches (in ``order`` when shuffling); returns the running logs.

    The logged loss is the mean over samples of the batch losses (each batch weighted by its size).
    With ``on_nan`` 'stop' or 'raise', a batch whose loss is NaN or infinite (or whose gradients overflow, see
    :func:`diverged`) is not applied: 'stop' warns
    (:class:`NonFiniteLossWarning`) and sets ``model.stop_training``, 'raise' raises ``StateError``. As in
    Keras 3, the epoch ends early once a callback sets ``model.stop_training``.
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
        loss, y_pred, problem = train_step(model, xb, yb, params, grads, on_nan)
        loss_sum += loss * (hi - lo)
        seen += hi - lo
        logs = {"loss": loss_sum / seen}
        for metric in model.metrics:
            metric.update(yb, y_pred)
            logs[metric.name] = metric.result()
        callbacks.on_train_batch_end(step, logs)
        if bar is not None:
            bar.update(step + 1, list(ordered(logs).items()), finalize=False)
        if problem is not None:
            non_finite_loss(model, problem, f"epoch {epoch + 1}, batch {step + 1}", on_nan)
            model.stop_training = True
        if model.stop_training:
            break
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
