"""The loops behind ``Model.fit``, ``evaluate`` and ``predict`` (Keras 3 semantics), and the guard that
keeps a diverged step from reaching the weights (``on_nan``).

Kept apart from the model classes (:mod:`convlens.model`) so they stay about structure and API; these
functions take the model (Sequential or Functional) and check every argument before anything runs. What
they read (datasets, sample weights, the validation split, each epoch's batches) is prepared by
:mod:`convlens.training_data`.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from convlens.callbacks import CallbackList, History
from convlens.errors import (
    ConfigError,
    ConfigTypeError,
    StateError,
    check_choice,
    check_float,
    check_int,
    check_verbose,
    short_repr,
)
from convlens.inference import forward_in_chunks, piece_rows
from convlens.model_checks import as_float32, check_callbacks, check_finite
from convlens.progbar import Progbar
from convlens.resources import check_arrays
from convlens.training_data import OUT_OF_DATA, EpochBatches, _take, accepts_datasets, sample_weights, split_validation

__all__ = [
    "NAN_POLICIES",
    "NonFiniteLossWarning",
    "accepts_datasets",
    "all_metrics",
    "as_float32",
    "check_finite",
    "compile_metrics",
    "diverged",
    "evaluate",
    "evaluate_arrays",
    "fit",
    "non_finite_loss",
    "ordered",
    "predict",
    "predict_arrays",
    "refuse_unknown",
    "sample_weights",
    "split_validation",
    "train_epoch",
    "verbosity",
]

NAN_POLICIES = ("stop", "raise", "continue")


class NonFiniteLossWarning(RuntimeWarning):
    """``fit`` stopped because the training loss became NaN or infinite (``on_nan='stop'``)."""


def verbosity(verbose: Any, owner: str | None = None) -> int:
    """Keras's ``verbose``: 'auto' (1), 0, 1, 2 (True/False read as 1/0)."""
    return check_verbose(verbose, owner=owner)


def ordered(logs: dict[str, float]) -> dict[str, float]:
    """Keras 3 prints metrics alphabetically (accuracy before loss)."""
    return dict(sorted(logs.items()))


def refuse_unknown(model: Any, method: str, kwargs: dict[str, Any], allowed: Sequence[str] = ()) -> None:
    """A ConfigError naming keyword arguments ``method`` does not take (Keras's or not)."""
    unknown = sorted(str(k)[:40] for k in kwargs if k not in allowed)
    if unknown:
        raise ConfigTypeError(
            f"{model._owner}: {method} got unexpected keyword argument(s): {', '.join(unknown)}. Either Keras has "
            f"no such argument or convlens does not support it; see help(model.{method})."
        )


def compile_metrics(model: Any, metrics: Any, weighted_metrics: Any) -> None:
    """Resolve ``compile``'s ``metrics`` and ``weighted_metrics`` on ``model``; a metric in both lists is logged as
    ``weighted_<name>`` the second time (Keras's rule)."""
    from convlens import metrics as metrics_module

    lists = {}
    for arg, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
        if value is not None and (isinstance(value, str) or not isinstance(value, (list, tuple))):
            raise ConfigTypeError(
                f"{model._owner}: `{arg}` must be a list such as ['accuracy'], got {short_repr(value)}."
            )
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


# ----- the guard against diverged steps ---------------------------------------------------------------
def diverged(loss: float, grads: list[np.ndarray]) -> str | None:
    """Why a step must not be applied: a NaN or infinite loss, or gradients whose squares overflow their dtype
    (Adam, RMSprop and clipping square them: the weights would turn NaN with a finite loss). None when fine.

    Shapes:
        grads: any shapes.
    """
    if not math.isfinite(loss):
        return f"the loss became {loss}"
    with np.errstate(over="ignore", invalid="ignore"):  # (once for the list: ~1.5 us an entry and exit)
        for g in grads:
            if g.size == 0:
                continue
            flat = g.reshape(-1)
            if math.isfinite(float(np.dot(flat, flat))):  # one BLAS pass: then every square is finite too
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
        f"{model._owner}: {what} at {where}; {action}, so the weights are those of the last finite step. "
        "Lower the learning rate or check the data (on_nan='continue' trains on, as Keras does)."
    )
    if on_nan == "raise":
        raise StateError(message)
    warnings.warn(message, NonFiniteLossWarning, stacklevel=4)


# ----- fit ------------------------------------------------------------------------------------------------
def train_epoch(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    batches: Iterator[np.ndarray | slice],
    callbacks: Any,
    bar: Progbar | None,
    weights: np.ndarray | None = None,
    *,
    epoch: int = 0,
    on_nan: str = "stop",
) -> dict[str, float]:
    """One epoch of mini-batch steps over ``batches``; returns the running logs.

    The logged loss is the mean over samples of the batch losses (each batch weighted by its size), the batch
    loss as Keras computes it (weighted data loss + regularization). With ``on_nan`` 'stop' or 'raise', a batch
    whose loss is NaN or infinite (or whose gradients overflow, see :func:`diverged`) is not applied: 'stop'
    warns (:class:`NonFiniteLossWarning`) and sets ``model.stop_training``, 'raise' raises ``StateError``. As in
    Keras 3, the epoch ends early once a callback sets ``model.stop_training``.
    """
    loss_sum, seen = 0.0, 0
    logs: dict[str, float] = {}
    metrics = all_metrics(model)
    for metric, _ in metrics:
        metric.reset()
    for step, index in enumerate(batches):
        callbacks.on_train_batch_begin(step)
        xb, yb, wb = x[index], y[index], _take(weights, index)
        loss, y_pred, problem = model._train_step(xb, yb, wb, on_nan)
        loss_sum += loss * xb.shape[0]
        seen += xb.shape[0]
        logs = {"loss": loss_sum / seen}
        for metric, weighted in metrics:
            metric.update(yb, y_pred, wb if weighted else None)
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


def _positive(value: Any, name: str, owner: str) -> int | None:
    return None if value is None else check_int(value, name, owner=owner, minimum=1)


def _validation_freq(freq: Any, owner: str) -> Any:
    if isinstance(freq, int) and not isinstance(freq, bool) and freq >= 1:
        return freq
    if isinstance(freq, (list, tuple)) and all(isinstance(e, int) and not isinstance(e, bool) for e in freq):
        return list(freq)
    raise ConfigError(f"{owner}: `validation_freq` must be a positive int or a list of epochs, got {short_repr(freq)}.")


def fit(model: Any, **args: Any) -> History:
    """``model.fit`` after its keyword check (see :meth:`convlens.model.Model.fit`): every argument is checked,
    ``x`` and ``y`` must be finite and a batch's activations must fit in memory before anything trains."""
    owner = f"{model._owner}: fit"
    steps_per_epoch = _positive(args["steps_per_epoch"], "steps_per_epoch", owner)
    batch_size = args["batch_size"]
    batch_size = None if batch_size is None else check_int(batch_size, "batch_size", owner="fit", minimum=1)
    epochs = check_int(args["epochs"], "epochs", owner="fit", minimum=0)
    initial_epoch = check_int(args["initial_epoch"], "initial_epoch", owner="fit", minimum=0)
    freq = _validation_freq(args["validation_freq"], owner)
    shuffle = args["shuffle"]
    if not (isinstance(shuffle, str) and shuffle == "batch") and not isinstance(shuffle, (bool, np.bool_)):
        raise ConfigTypeError(f"fit: `shuffle` must be True, False or 'batch', got {short_repr(shuffle)}.")
    split = check_float(
        args["validation_split"], "validation_split", owner="fit", minimum=0.0, maximum=1.0, inclusive_max=False
    )
    on_nan = check_choice(args["on_nan"], "on_nan", NAN_POLICIES, owner="fit")
    verbose = verbosity(args["verbose"], owner="fit")
    user_callbacks = check_callbacks(args["callbacks"])
    val_batch = _positive(args["validation_batch_size"], "validation_batch_size", owner)
    val_steps = _positive(args["validation_steps"], "validation_steps", owner)
    x, y = model._training_data(args["x"], args["y"], "fit")
    if batch_size is None:
        batch_size = -(-x.shape[0] // steps_per_epoch) if steps_per_epoch else 32
    model._check_batch_memory(min(batch_size, x.shape[0]), "fit", training=True)
    if args["sample_weight"] is not None and args["class_weight"] is not None:
        sample_weights(model, y, args["sample_weight"], args["class_weight"], x.shape[0])  # raises
    weights = sample_weights(model, y, args["sample_weight"], None, x.shape[0])
    x, y, weights, val = split_validation(model, x, y, split, args["validation_data"], weights)
    if args["class_weight"] is not None:
        weights = sample_weights(model, y, None, args["class_weight"], x.shape[0])
    batches = EpochBatches(x.shape[0], batch_size, steps_per_epoch, shuffle, model._get_rng())
    model.history = History()
    callbacks = CallbackList(
        [*user_callbacks, model.history],
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
        logs = train_epoch(model, x, y, batches.epoch(), callbacks, bar, weights, epoch=epoch, on_nan=on_nan)
        due = (epoch + 1) % freq == 0 if isinstance(freq, int) else epoch + 1 in freq
        if val is not None and due and not model.stop_training:
            val_logs = evaluate_arrays(model, *val[:2], val_batch or batch_size, 0, val[2], val_steps, callbacks)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        if bar is not None:
            bar.update(batches.steps, list(ordered(logs).items()), finalize=True)
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()
    return model.history


# ----- evaluate / predict ---------------------------------------------------------------------------------
def evaluate(
    model: Any, x: Any, y: Any, batch_size: Any, verbose: Any, sample_weight: Any, steps: Any, callbacks: Any
) -> dict[str, float]:
    """``model.evaluate`` after its keyword check: validated arrays, then :func:`evaluate_arrays`."""
    batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="evaluate", minimum=1)
    verbose_level = verbosity(verbose, owner="evaluate")
    steps = _positive(steps, "steps", f"{model._owner}: evaluate")
    cb_list = CallbackList(check_callbacks(callbacks), model=model, params={"verbose": verbose_level})
    x = model._as_input(x, "x")
    model._require_built("evaluate")
    model._check_x(x)
    model._check_not_empty(x, "evaluate")
    y = model._prepare_y(y, x.shape[0])
    weights = sample_weights(model, y, sample_weight, None, x.shape[0])
    model._check_batch_memory(piece_rows(model, min(batch_size, x.shape[0])), "evaluate", training=False)
    return evaluate_arrays(model, x, y, batch_size, verbose_level, weights, steps, cb_list)


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
    """``model.predict`` after its keyword check (an empty ``x`` gives an empty result)."""
    batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="predict", minimum=1)
    verbose_level = verbosity(verbose, owner="predict")
    steps = _positive(steps, "steps", f"{model._owner}: predict")
    cb_list = CallbackList(check_callbacks(callbacks), model=model, params={"verbose": verbose_level})
    x = model._inference_input(x, "predict")
    if steps is not None:
        x = x[: steps * batch_size]
    model._check_batch_memory(piece_rows(model, min(batch_size, x.shape[0])), "predict", training=False)
    shapes = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    check_arrays(
        [("the predictions", (x.shape[0], *(s or 0 for s in shape[1:])), 4) for shape in shapes],
        owner=f"{model._owner}: predict",
    )
    cb_list.on_predict_begin()
    out = predict_arrays(model, x, batch_size, verbose_level, cb_list)
    cb_list.on_predict_end()
    if out is None:
        empty = [np.empty((0, *(s or 0 for s in shape[1:])), np.float32) for shape in shapes]
        return empty if isinstance(model.output_shape, list) else empty[0]
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
        y = forward_in_chunks(model, x[lo:hi])
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
