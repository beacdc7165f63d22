"""Keras-style training callbacks: History, EarlyStopping, ModelCheckpoint, CSVLogger,
LearningRateScheduler, and ProgbarLogger (defined in :mod:`convlens.progbar`).

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

import csv
import inspect
import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from convlens.errors import ConfigError, check_choice, check_int

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LearningRateScheduler",
    "ModelCheckpoint",
]

Logs = dict[str, Any]


class Callback:
    """Base class: every hook does nothing. ``model`` and ``params`` are set by the model."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Logs | None = None) -> None: ...
    def on_train_end(self, logs: Logs | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...
    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_begin(batch, logs)  # Keras's backwards-compatible alias

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs: Logs | None = None) -> None: ...
    def on_test_end(self, logs: Logs | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: Logs | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...
    def on_predict_begin(self, logs: Logs | None = None) -> None: ...
    def on_predict_end(self, logs: Logs | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: Logs | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...


_PLAIN_HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
)
_INDEXED_HOOKS = (
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


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
                raise TypeError(f"CallbackList: every callback must be a Callback instance, got {cb!r}.")
            self.callbacks.append(cb)
        if add_history and not any(isinstance(cb, History) for cb in self.callbacks):
            self.callbacks.append(History())
        if add_progbar:
            from convlens.progbar import ProgbarLogger  # progbar imports this module

            if not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
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


def _make_dispatcher(hook: str, indexed: bool) -> Callable[..., None]:
    if indexed:

        def dispatch_indexed(self: CallbackList, index: int, logs: Logs | None = None) -> None:
            self._call(hook, index, logs if logs is not None else {})

        dispatch_indexed.__name__ = hook
        return dispatch_indexed

    def dispatch(self: CallbackList, logs: Logs | None = None) -> None:
        self._call(hook, logs if logs is not None else {})

    dispatch.__name__ = hook
    return dispatch


for _hook in _PLAIN_HOOKS:
    setattr(CallbackList, _hook, _make_dispatcher(_hook, indexed=False))
for _hook in _INDEXED_HOOKS:
    setattr(CallbackList, _hook, _make_dispatcher(_hook, indexed=True))


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


def _resolve_mode(owner: str, mode: Any, monitor: str) -> str:
    """'auto' -> 'max' for accuracy-like names, 'min' otherwise (Keras)."""
    choice = check_choice(mode, "mode", ("auto", "min", "max"), owner=owner)
    if choice != "auto":
        return choice
    name = monitor.removeprefix("val_")
    return "max" if "acc" in name or name.endswith("auc") else "min"


def _monitor_value(owner: str, monitor: str, logs: Logs | None) -> float | None:
    logs = logs or {}
    value = logs.get(monitor)
    if value is None:
        available = ", ".join(logs) or "none"
        warnings.warn(f"{owner}: metric `{monitor}` is not in the logs; available: {available}.", stacklevel=3)
        return None
    return float(value)


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
        self.monitor = monitor
        self.mode = _resolve_mode(owner, mode, monitor)
        if not isinstance(min_delta, numbers.Real) or isinstance(min_delta, bool):
            raise ConfigError(f"{owner}: `min_delta` must be a number, got {min_delta!r}.")
        self.min_delta: float = abs(float(min_delta))
        self.patience: int = check_int(patience, "patience", owner=owner, minimum=0)
        self.start_from_epoch: int = check_int(start_from_epoch, "start_from_epoch", owner=owner, minimum=0)
        self.verbose: int = verbose
        self.baseline: float | None = baseline
        self.restore_best_weights: bool = bool(restore_best_weights)
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


class ModelCheckpoint(Callback):
    """Save the model (or its weights) every epoch or every ``save_freq`` batches.

    ``filepath`` may hold format fields filled from the epoch (1-based) and the logs, e.g.
    ``'ckpt-{epoch:02d}-{val_loss:.2f}.npz'``. With ``save_best_only`` a save happens only when
    ``monitor`` improves on the best value so far.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
    ) -> None:
        super().__init__()
        owner = "ModelCheckpoint"
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = _resolve_mode(owner, mode, monitor)
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1):
            raise ConfigError(f"{owner}: `save_freq` must be 'epoch' or a positive integer, got {save_freq!r}.")
        self.save_freq = save_freq
        self.best = math.inf if self.mode == "min" else -math.inf
        self._epoch = 0
        self._batches_since_save = 0

    def file_path(self, epoch: int, logs: Logs | None = None, batch: int | None = None) -> str:
        """The file name for 0-based ``epoch`` (shown 1-based) and the given logs."""
        fields = dict(logs or {})
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**{**fields, "epoch": epoch + 1})
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"ModelCheckpoint: cannot format `filepath` {self.filepath!r} with epoch and log keys "
                f"{sorted(fields)}: {exc!r}."
            ) from exc

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= int(self.save_freq):
            self._batches_since_save = 0
            self._save(self._epoch, logs, batch)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, logs, None)

    def _save(self, epoch: int, logs: Logs | None, batch: int | None) -> None:
        path = self.file_path(epoch, logs, batch)
        if self.save_best_only:
            current = _monitor_value("ModelCheckpoint", self.monitor, logs)
            if current is None:
                return
            better = current < self.best if self.mode == "min" else current > self.best
            if not better:
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                    f"saving model to {path}"
                )
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (0-based, as Keras) then the sorted log keys.

    When the model validates (``params['do_validation']``) but the first epoch has no ``val_``
    keys (``validation_freq > 1``), their columns are added up front and filled with ``NA``.
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self.keys: list[str] | None = None
        self._file: IO[str] | None = None
        self._writer: Any = None
        self._write_header = True

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._write_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as existing:
                self._write_header = not existing.readline()
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        self.keys = None
        self._writer = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self._file is None:
            self.on_train_begin()
        file = self._file
        if file is None:
            return
        if self.keys is None:
            keys = set(logs)
            if self.params.get("do_validation") and not any(k.startswith("val_") for k in keys):
                keys |= {f"val_{k}" for k in logs if k != "learning_rate"}
            self.keys = sorted(keys)
        if self._writer is None:
            self._writer = csv.writer(file, delimiter=self.separator)
            if self._write_header:
                self._writer.writerow(["epoch", *self.keys])
        self._writer.writerow([epoch, *(logs.get(k, "NA") for k in self.keys)])
        file.flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


class LearningRateScheduler(Callback):
    """Set ``model.optimizer.learning_rate = schedule(epoch, lr)`` at the start of each epoch.

    ``schedule`` may also take only the epoch. At epoch end the rate goes into
    ``logs['learning_rate']``, as Keras 3.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise ConfigError(f"LearningRateScheduler: `schedule` must be callable, got {schedule!r}.")
        self.schedule = schedule
        self.verbose = verbose
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
        if not isinstance(new_lr, numbers.Real) or isinstance(new_lr, bool) or not math.isfinite(new_lr):
            raise ConfigError(
                f"LearningRateScheduler: `schedule` must return a finite float, got {new_lr!r} at epoch {epoch}."
            )
        optimizer.learning_rate = float(new_lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(new_lr)}.")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


def __getattr__(name: str) -> Any:
    # ProgbarLogger lives in convlens.progbar and the Keras-API additions in convlens.callbacks_extra (both import
    # this module); re-export them lazily.
    if name == "ProgbarLogger":
        from convlens.progbar import ProgbarLogger

        return ProgbarLogger
    if name in ("ReduceLROnPlateau", "BackupAndRestore", "LambdaCallback"):
        from convlens import callbacks_extra

        return getattr(callbacks_extra, name)
    raise AttributeError(f"module 'convlens.callbacks' has no attribute {name!r}")
