"""Keras-style training callbacks: History, EarlyStopping, ModelCheckpoint, CSVLogger,
LearningRateScheduler, TerminateOnNaN, ReduceLROnPlateau, BackupAndRestore, LambdaCallback, and ProgbarLogger
(defined in :mod:`convlens.progbar`; the file writers in :mod:`convlens.callbacks_files`, the last three in
:mod:`convlens.callbacks_extra`).

The model calls the hooks through a :class:`CallbackList`; every hook gets the same ``logs``
dict, so a callback that adds a key (LearningRateScheduler's ``learning_rate``) is seen by the
callbacks after it. History and ProgbarLogger, when added by ``CallbackList``, come last.
Epochs and batches are 0-based in hooks; file names and messages show epochs 1-based, like Keras.

>>> history = History()
>>> callbacks = CallbackList([history], model=None, params={"epochs": 2})
>>> callbacks.on_train_begin()
>>> callbacks.on_epoch_end(0, {"loss": 0.5}); callbacks.on_epoch_end(1, {"loss": 0.25})
>>> history.history, history.epoch
({'loss': [0.5, 0.25]}, [0, 1])
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from convlens.callback_base import Callback, Logs, _check_monitor, _check_verbose, _monitor_value, _resolve_mode
from convlens.errors import (
    ConfigError,
    ConfigTypeError,
    StateError,
    check_bool,
    check_float,
    check_int,
    short_repr,
)
from convlens.progbar import ProgbarLogger

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]


class CallbackList(Callback):
    """Dispatch every hook to a list of callbacks, in order.

    Args:
        callbacks: user callbacks (None for none).
        model: given to every callback with ``set_model``.
        params: given with ``set_params`` (``epochs``, ``steps``, ``verbose``, ``do_validation``...).
        add_history: append a :class:`History` unless one is in the list.
        add_progbar: append a :class:`ProgbarLogger` unless one is in the list.
    """

    def __init__(
        self,
        callbacks: Iterable[Callback] | None = None,
        model: Any = None,
        params: dict[str, Any] | None = None,
        *,
        add_history: bool = False,
        add_progbar: bool = False,
    ) -> None:
        super().__init__()
        self.callbacks: list[Callback] = []
        for cb in callbacks or []:
            if not isinstance(cb, Callback):
                raise ConfigTypeError(
                    f"CallbackList: every callback must be a Callback instance, got {short_repr(cb)}."
                )
            self.callbacks.append(cb)
        if add_history and not any(isinstance(cb, History) for cb in self.callbacks):
            self.callbacks.append(History())
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        self.set_model(model)
        self.set_params(params or {})

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    @property
    def history(self) -> History | None:
        """The History callback in the list, if any."""
        return next((cb for cb in self.callbacks if isinstance(cb, History)), None)

    def append(self, callback: Callback) -> None:
        callback.set_model(self.model)
        callback.set_params(self.params)
        self.callbacks.append(callback)

    def set_model(self, model: Any) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    # Every hook passes the same logs dict (a fresh one when none is given) to each callback in order.

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._call("on_train_begin", {} if logs is None else logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        self._call("on_train_end", {} if logs is None else logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._call("on_epoch_begin", epoch, {} if logs is None else logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._call("on_epoch_end", epoch, {} if logs is None else logs)

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_train_batch_begin", batch, {} if logs is None else logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_train_batch_end", batch, {} if logs is None else logs)

    def on_test_begin(self, logs: Logs | None = None) -> None:
        self._call("on_test_begin", {} if logs is None else logs)

    def on_test_end(self, logs: Logs | None = None) -> None:
        self._call("on_test_end", {} if logs is None else logs)

    def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_test_batch_begin", batch, {} if logs is None else logs)

    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_test_batch_end", batch, {} if logs is None else logs)

    def on_predict_begin(self, logs: Logs | None = None) -> None:
        self._call("on_predict_begin", {} if logs is None else logs)

    def on_predict_end(self, logs: Logs | None = None) -> None:
        self._call("on_predict_end", {} if logs is None else logs)

    def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_predict_batch_begin", batch, {} if logs is None else logs)

    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_predict_batch_end", batch, {} if logs is None else logs)


class History(Callback):
    """Records every epoch's logs: ``history['loss']``, ``history['val_accuracy']``...; ``fit`` returns it."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras 3 semantics).

    An epoch improves when ``current + min_delta < best`` ('min') or ``current - min_delta > best``
    ('max'); with a ``baseline``, the patience count restarts only for values that also beat it.
    After ``patience`` epochs without improvement, ``model.stop_training`` is set. With
    ``restore_best_weights`` the best epoch's weights are put back at the end of training.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        owner = "EarlyStopping"
        self.monitor = _check_monitor(owner, monitor)
        self.mode = _resolve_mode(owner, mode, monitor)
        self.min_delta: float = abs(check_float(min_delta, "min_delta", owner=owner))
        self.patience: int = check_int(patience, "patience", owner=owner, minimum=0)
        self.start_from_epoch: int = check_int(start_from_epoch, "start_from_epoch", owner=owner, minimum=0)
        self.verbose: int = _check_verbose(owner, verbose)
        self.baseline: float | None = None if baseline is None else check_float(baseline, "baseline", owner=owner)
        self.restore_best_weights: bool = check_bool(restore_best_weights, "restore_best_weights", owner=owner)
        self.wait: int = 0
        self.stopped_epoch: int = 0
        self.best: float | None = None
        self.best_weights: Any = None
        self.best_epoch: int = 0

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = _monitor_value("EarlyStopping", self.monitor, logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, float(self.baseline)):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class LearningRateScheduler(Callback):
    """Set ``model.optimizer.learning_rate = schedule(epoch, lr)`` at the start of each epoch.

    ``schedule`` may also take only the epoch. At epoch end the rate goes into
    ``logs['learning_rate']``, as Keras 3.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise ConfigTypeError(f"LearningRateScheduler: `schedule` must be callable, got {short_repr(schedule)}.")
        self.schedule = schedule
        self.verbose = _check_verbose("LearningRateScheduler", verbose)
        try:
            parameters = inspect.signature(schedule).parameters.values()
            positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            self._takes_lr = len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)
        except (TypeError, ValueError):
            self._takes_lr = True

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "learning_rate"):
            raise ConfigError("LearningRateScheduler: the model's optimizer must have a `learning_rate`.")
        lr = float(optimizer.learning_rate)
        new_lr = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        if not isinstance(new_lr, numbers.Real) or isinstance(new_lr, bool) or not math.isfinite(new_lr) or new_lr < 0:
            raise ConfigError(
                f"LearningRateScheduler: `schedule` must return a finite float >= 0, got {short_repr(new_lr)} at "
                f"epoch {epoch}."
            )
        optimizer.learning_rate = float(new_lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(new_lr)}.")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite (``keras.callbacks.TerminateOnNaN``).

    At the end of every training batch, a NaN or infinite ``logs['loss']`` prints
    ``Batch {batch}: Invalid loss, terminating training`` and sets ``model.stop_training`` (the epoch
    ends after that batch, ``on_train_end`` still runs), as Keras 3 does; with ``raise_error=True`` it
    raises a ``StateError`` (a ``RuntimeError``, as Keras raises) instead, skipping the other callbacks'
    ``on_train_end``. ``fit`` has its own guard (``on_nan``, on by default) that also keeps the NaN
    batch's update from being applied; this callback is for Keras code that passes it explicitly.

    >>> TerminateOnNaN().raise_error
    False
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = check_bool(raise_error, "raise_error", owner="TerminateOnNaN")

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(loss)
        if math.isnan(value) or math.isinf(value):
            if self.raise_error:
                raise StateError(
                    f"NaN or Inf loss encountered at batch {batch}. Loss value: {value}. Terminating training "
                    "immediately."
                )
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


# The callbacks that write files and the Keras-API additions live in their own modules (they import the base
# and helpers of convlens.callback_base); re-exported here, as Keras has them all in keras.callbacks.
from convlens.callbacks_extra import BackupAndRestore, LambdaCallback, ReduceLROnPlateau  # noqa: E402
from convlens.callbacks_files import CSVLogger, ModelCheckpoint  # noqa: E402
