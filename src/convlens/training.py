"""The loops behind ``Model.fit``, ``evaluate`` and ``predict`` (Keras 3 semantics).

Kept apart from :mod:`convlens.models` so the model classes stay about structure and API; these
functions take the model and work on validated float32 arrays.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from convlens.callbacks import CallbackList, History
from convlens.errors import ConfigError, ShapeError, check_float, check_int
from convlens.progbar import Progbar

__all__ = [
    "EpochBatches",
    "accepts_datasets",
    "all_metrics",
    "as_float32",
    "compile_metrics",
    "evaluate",
    "evaluate_arrays",
    "fit",
    "ordered",
    "predict",
    "predict_arrays",
    "refuse_unknown",
    "sample_weights",
    "split_validation",
    "train_epoch",
    "verbosity",
]

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


def refuse_unknown(model: Any, method: str, kwargs: dict[str, Any], allowed: Sequence[str] = ()) -> None:
    """A ConfigError naming keyword arguments ``method`` does not take (Keras's or not)."""
    unknown = sorted(k for k in kwargs if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{model!r}: {method} got unexpected keyword argument(s): {', '.join(unknown)}. Either Keras has no such "
            f"argument or convlens does not support it; see help(model.{method})."
        )


def compile_metrics(model: Any, metrics: Any, weighted_metrics: Any) -> None:
    """Resolve ``compile``'s ``metrics`` and ``weighted_metrics`` on ``model``; a metric in both lists is logged as
    ``weighted_<name>`` the second time (Keras's rule)."""
    from convlens import metrics as metrics_module

    lists = {}
    for arg, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
        if value is not None and (isinstance(value, str) or not isinstance(value, Sequence)):
            raise ConfigError(f"{model!r}: `{arg}` must be a list such as ['accuracy'], got {value!r}.")
        lists[arg] = list(value or [])
    model._metric_ids, model._weighted_metric_ids = lists["metrics"], lists["weighted_metrics"]
    loss_name = model.loss.function_name
    model.metrics = [metrics_module.get(m, loss_name) for m in lists["metrics"]]
    model.weighted_metrics = [metrics_module.get(m, loss_name) for m in lists["weighted_metrics"]]
    taken = {m.name for m in model.metrics}
    for metric in model.weighted_metrics:
        if metric.name in taken:
            metric.name = f"weighted_{metric.name}"
        taken.add(metric.name)


def all_metrics(model: Any) -> list[tuple[Any, bool]]:
    """The compiled metrics with whether ``sample_weight`` applies (``weighted_metrics``) or not (``metrics``)."""
    return [(m, False) for m in model.metrics] + [(m, True) for m in model.weighted_metrics]


def sample_weights(model: Any, y: np.ndarray, sample_weight: Any, class_weight: Any, n: int) -> np.ndarray | None:
    """Per-sample weights from ``sample_weight`` or ``class_weight`` ({class: weight}; classes from integer labels,
    or the argmax of one-hot ones, as Keras), or None.

    Raises:
        ConfigError: both given, or a malformed ``class_weight``.
        ShapeError: ``sample_weight`` without one weight per sample.
    """
    owner = repr(model)
    if sample_weight is not None and class_weight is not None:
        raise ConfigError(f"{owner}: give `sample_weight` or `class_weight`, not both (as Keras).")
    if class_weight is not None:
        if not isinstance(class_weight, dict) or not all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in class_weight
        ):
            raise ConfigError(f"{owner}: `class_weight` must be a dict {{class index: weight}}, got {class_weight!r}.")
        labels = y[..., 0] if y.ndim > 1 and y.shape[-1] == 1 else (np.argmax(y, axis=-1) if y.ndim > 1 else y)
        labels = np.round(labels).astype(np.int64)
        table = {int(k): float(v) for k, v in class_weight.items()}
        return np.array([table.get(int(c), 1.0) for c in labels.reshape(labels.shape[0], -1)[:, 0]], np.float32)
    if sample_weight is None:
        return None
    weights = as_float32(sample_weight, "sample_weight")
    if weights.ndim == 0 or weights.shape[0] != n:
        raise ShapeError(f"{owner}: `sample_weight` must have one weight per sample ({n}), got shape {weights.shape}.")
    return weights


def split_validation(
    model: Any, x: np.ndarray, y: np.ndarray, validation_split: float, validation_data: Any, weights: Any = None
) -> tuple[np.ndarray, np.ndarray, Any, tuple[np.ndarray, np.ndarray, Any] | None]:
    """Training arrays (and weights) and the validation triple: ``validation_data`` as given ((x, y) or
    (x, y, sample_weight)), or the LAST ``validation_split`` fraction of the samples (before any shuffling)."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ConfigError(
                f"Sequential '{model.name}': `validation_data` must be a tuple (x_val, y_val) or "
                "(x_val, y_val, sample_weight_val)."
            )
        vx = model._as_input(validation_data[0], "validation_data x")
        model._check_x(vx)
        vy = model._prepare_y(validation_data[1], vx.shape[0], "validation_data y")
        vw = validation_data[2] if len(validation_data) == 3 else None
        return x, y, weights, (vx, vy, sample_weights(model, vy, vw, None, vx.shape[0]))
    if validation_split > 0:
        split = math.floor(x.shape[0] * (1.0 - validation_split))
        if split == 0 or split == x.shape[0]:
            raise ConfigError(
                f"Sequential '{model.name}': validation_split={validation_split} leaves an empty training or "
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


def train_epoch(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    batches: Iterator[np.ndarray | slice],
    callbacks: Any,
    bar: Progbar | None,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """One epoch of mini-batch steps over ``batches``; returns the running logs.

    The logged loss is the mean over samples of the batch losses (each batch weighted by its size), the batch
    loss as Keras computes it (weighted data loss + regularization). Stops early when ``model.stop_training``.
    """
    loss_sum, seen = 0.0, 0
    logs: dict[str, float] = {}
    metrics = all_metrics(model)
    for metric, _ in metrics:
        metric.reset()
    for step, index in enumerate(batches):
        callbacks.on_train_batch_begin(step)
        xb, yb, wb = x[index], y[index], _take(weights, index)
        loss, y_pred = model._train_step(xb, yb, wb)
        loss_sum += loss * xb.shape[0]
        seen += xb.shape[0]
        logs = {"loss": loss_sum / seen}
        for metric, weighted in metrics:
            metric.update(yb, y_pred, wb if weighted else None)
            logs[metric.name] = metric.result()
        callbacks.on_train_batch_end(step, logs)
        if bar is not None:
            bar.update(step + 1, list(ordered(logs).items()), finalize=False)
        if model.stop_training:
            break
    return logs


def _positive(value: Any, name: str, owner: str) -> int | None:
    return None if value is None else check_int(value, name, owner=owner, minimum=1)


def fit(model: Any, **args: Any) -> History:
    """``model.fit`` after its keyword check (see :meth:`convlens.models.Model.fit`)."""
    owner = f"{model!r}: fit"
    steps_per_epoch = _positive(args["steps_per_epoch"], "steps_per_epoch", owner)
    batch_size = args["batch_size"]
    x = model._as_input(args["x"], "x")
    if not model.built:
        model.build((None, *x.shape[1:]))
    model._check_x(x)
    model._check_not_empty(x, "fit")
    if batch_size is None:
        batch_size = -(-x.shape[0] // steps_per_epoch) if steps_per_epoch else 32
    batch_size = check_int(batch_size, "batch_size", owner="fit", minimum=1)
    epochs = check_int(args["epochs"], "epochs", owner="fit", minimum=0)
    initial_epoch = check_int(args["initial_epoch"], "initial_epoch", owner="fit", minimum=0)
    freq = args["validation_freq"]
    if not (isinstance(freq, int) and not isinstance(freq, bool) and freq >= 1) and not (
        isinstance(freq, (list, tuple)) and all(isinstance(e, int) for e in freq)
    ):
        raise ConfigError(f"{owner}: `validation_freq` must be a positive int or a list of epochs, got {freq!r}.")
    if args["shuffle"] not in (True, False, "batch"):
        raise ConfigError(f"{owner}: `shuffle` must be True, False or 'batch', got {args['shuffle']!r}.")
    split = check_float(
        args["validation_split"], "validation_split", owner="fit", minimum=0.0, maximum=1.0, inclusive_max=False
    )
    y = model._prepare_y(args["y"], x.shape[0])
    if args["sample_weight"] is not None and args["class_weight"] is not None:
        sample_weights(model, y, args["sample_weight"], args["class_weight"], x.shape[0])  # raises
    weights = sample_weights(model, y, args["sample_weight"], None, x.shape[0])
    x, y, weights, val = split_validation(model, x, y, split, args["validation_data"], weights)
    if args["class_weight"] is not None:
        weights = sample_weights(model, y, None, args["class_weight"], x.shape[0])
    val_batch = _positive(args["validation_batch_size"], "validation_batch_size", owner) or batch_size
    val_steps = _positive(args["validation_steps"], "validation_steps", owner)
    batches = EpochBatches(x.shape[0], batch_size, steps_per_epoch, args["shuffle"], model._get_rng())
    verbose = verbosity(args["verbose"])
    model.history = History()
    callbacks = CallbackList(
        [*(args["callbacks"] or []), model.history],
        model=model,
        params={"epochs": epochs, "steps": batches.steps, "verbose": verbose, "do_validation": val is not None},
    )
    model.stop_training = False
    model._initial_epoch = None
    callbacks.on_train_begin()
    for epoch in range(model._initial_epoch or initial_epoch, epochs):
        callbacks.on_epoch_begin(epoch)
        if verbose and epochs > 1:
            print(f"Epoch {epoch + 1}/{epochs}", file=sys.stdout, flush=True)
        bar = Progbar(batches.steps, verbose=verbose) if verbose else None
        logs = train_epoch(model, x, y, batches.epoch(), callbacks, bar, weights)
        due = (epoch + 1) % freq == 0 if isinstance(freq, int) else epoch + 1 in freq
        if val is not None and due:
            val_logs = evaluate_arrays(model, *val[:2], val_batch, 0, val[2], val_steps, callbacks)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        if bar is not None:
            bar.update(batches.steps, list(ordered(logs).items()), finalize=True)
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()
    return model.history


def evaluate(
    model: Any, x: Any, y: Any, batch_size: Any, verbose: Any, sample_weight: Any, steps: Any, callbacks: Any
) -> dict[str, float]:
    """``model.evaluate`` after its keyword check: validated arrays, then :func:`evaluate_arrays`."""
    batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="evaluate", minimum=1)
    x = model._as_input(x, "x")
    model._require_built("evaluate")
    model._check_x(x)
    model._check_not_empty(x, "evaluate")
    y = model._prepare_y(y, x.shape[0])
    weights = sample_weights(model, y, sample_weight, None, x.shape[0])
    cb_list = CallbackList(callbacks, model=model, params={"verbose": verbosity(verbose)})
    steps = _positive(steps, "steps", f"{model!r}: evaluate")
    return evaluate_arrays(model, x, y, batch_size, verbosity(verbose), weights, steps, cb_list)


def evaluate_arrays(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    verbose: int,
    weights: np.ndarray | None = None,
    steps: int | None = None,
    callbacks: Any = None,
) -> dict[str, float]:
    """Loss (mean over samples of the batch losses) and metrics over ``(x, y)``, batch by batch, no weight
    updates; ``steps`` limits the batches (with Keras's warning when the data has fewer)."""
    n = x.shape[0]
    num_batches = -(-n // batch_size)
    if steps is not None and steps > num_batches:
        warnings.warn(OUT_OF_DATA, UserWarning, stacklevel=3)
    total = num_batches if steps is None else min(steps, num_batches)
    bar = Progbar(total, verbose=verbose) if verbose else None
    metrics = all_metrics(model)
    for metric, _ in metrics:
        metric.reset()
    callbacks = callbacks if callbacks is not None else CallbackList()
    callbacks.on_test_begin()
    loss_sum, seen = 0.0, 0
    logs: dict[str, float] = {}
    for step in range(total):
        callbacks.on_test_batch_begin(step)
        index = slice(step * batch_size, min(n, (step + 1) * batch_size))
        yb, wb = y[index], _take(weights, index)
        loss, y_pred = model._test_loss(x[index], yb, wb)
        loss_sum += loss * yb.shape[0]
        seen += yb.shape[0]
        logs = {"loss": loss_sum / seen}
        for metric, weighted in metrics:
            metric.update(yb, y_pred, wb if weighted else None)
            logs[metric.name] = metric.result()
        callbacks.on_test_batch_end(step, logs)
        if bar is not None:
            bar.update(step + 1, list(ordered(logs).items()), finalize=step + 1 == total)
    callbacks.on_test_end(logs)
    return logs


def predict(model: Any, x: Any, batch_size: Any, verbose: Any, steps: Any, callbacks: Any) -> Any:
    """``model.predict`` after its keyword check."""
    batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="predict", minimum=1)
    steps = _positive(steps, "steps", f"{model!r}: predict")
    x = model._as_input(x, "x")
    if not model.built:
        model.build((None, *x.shape[1:]))
    model._check_x(x)
    if steps is not None:
        x = x[: steps * batch_size]
    cb_list = CallbackList(callbacks, model=model, params={"verbose": verbosity(verbose)})
    cb_list.on_predict_begin()
    out = predict_arrays(model, x, batch_size, verbosity(verbose), cb_list)
    cb_list.on_predict_end()
    if out is None:
        return np.empty((0, *model.output_shape[1:]), np.float32)
    return out


def predict_arrays(model: Any, x: np.ndarray, batch_size: int, verbose: int, callbacks: Any = None) -> Any:
    """Outputs for every sample, batch by batch (a list of arrays for a model with several outputs; None for
    an empty ``x``)."""
    n = x.shape[0]
    steps = -(-n // batch_size)
    bar = Progbar(steps, verbose=verbose) if verbose and steps else None
    out: list[np.ndarray] | None = None
    several = False
    for step, lo in enumerate(range(0, n, batch_size)):
        if callbacks is not None:
            callbacks.on_predict_batch_begin(step)
        hi = min(n, lo + batch_size)
        y = model._forward(x[lo:hi], training=False)
        several = isinstance(y, list)
        parts = y if several else [y]
        if out is None:
            out = [np.empty((n, *p.shape[1:]), p.dtype) for p in parts]
        for whole, part in zip(out, parts, strict=True):
            whole[lo:hi] = part
        if callbacks is not None:
            callbacks.on_predict_batch_end(step, {"outputs": y})
        if bar is not None:
            bar.update(step + 1, finalize=step + 1 == steps)
    if out is None:
        return None
    return out if several else out[0]
