"""More Keras 3 callbacks: ``ReduceLROnPlateau``, ``BackupAndRestore``, ``LambdaCallback`` (import them from
:mod:`convlens.callbacks`).

>>> import convlens as cl
>>> seen = []
>>> log = cl.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
>>> log.on_epoch_end(3, {}); seen
[3]
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from typing import Any

from convlens.callback_base import Callback, Logs, _check_monitor, _check_verbose, _monitor_value, _resolve_mode
from convlens.errors import ConfigError, ConfigTypeError, check_bool, check_float, check_int, short_repr
from convlens.files import as_path

__all__ = ["BackupAndRestore", "LambdaCallback", "ReduceLROnPlateau"]


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs
    (Keras 3 semantics).

    An epoch improves when ``current < best - min_delta`` ('min') or ``current > best + min_delta`` ('max';
    'auto' picks 'max' for accuracy-like names). After a reduction, ``cooldown`` epochs pass before the count
    starts again; the rate never goes below ``min_lr``. The rate before any reduction of that epoch goes into
    ``logs['learning_rate']``, as Keras logs it.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        owner = "ReduceLROnPlateau"
        if kwargs:
            unknown = ", ".join(sorted(str(k)[:40] for k in kwargs))
            raise ConfigTypeError(f"{owner}: unexpected keyword argument(s): {unknown}.")
        self.monitor = _check_monitor(owner, monitor)
        self.factor = check_float(factor, "factor", owner=owner, minimum=0.0)
        if self.factor >= 1.0:
            raise ConfigError(f"{owner}: `factor` must be < 1 (it multiplies the learning rate), got {factor!r}.")
        self.patience = check_int(patience, "patience", owner=owner, minimum=0)
        self.verbose = _check_verbose(owner, verbose)
        self.mode = _resolve_mode(owner, mode, monitor)
        self.min_delta = abs(check_float(min_delta, "min_delta", owner=owner))
        self.cooldown = check_int(cooldown, "cooldown", owner=owner, minimum=0)
        self.min_lr = check_float(min_lr, "min_lr", owner=owner, minimum=0.0)
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def _is_improvement(self, current: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = _monitor_value("ReduceLROnPlateau", self.monitor, logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current):
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old_lr = float(optimizer.learning_rate)
            if old_lr > self.min_lr:
                new_lr = max(old_lr * self.factor, self.min_lr)
                optimizer.learning_rate = new_lr
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class BackupAndRestore(Callback):
    """Keep the training state in ``backup_dir`` so an interrupted ``fit`` resumes where it stopped.

    At the end of every epoch (or every ``save_freq`` batches) the weights, the optimizer's state and the epoch
    reached go to ``backup_dir/latest.npz`` (written atomically); with ``double_checkpoint`` the previous one is
    kept as ``latest.npz.bkp`` and used when the latest is missing or cannot be read. When ``fit`` starts and a
    backup exists, the model and optimizer are restored and training continues from the epoch after the last one
    backed up (``initial_epoch`` is overridden, as Keras does). A finished ``fit`` deletes ``backup_dir`` unless
    ``delete_checkpoint=False``. Unlike Keras's weights-only backup, the optimizer's moments come back too, so
    the resumed run equals an uninterrupted one at epoch boundaries.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str | int = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ) -> None:
        super().__init__()
        owner = "BackupAndRestore"
        self.backup_dir = str(as_path(backup_dir, owner=owner, name="backup_dir"))
        if save_freq != "epoch" and not (
            isinstance(save_freq, int) and not isinstance(save_freq, bool) and save_freq > 0
        ):
            raise ConfigError(
                f"{owner}: `save_freq` must be 'epoch' or a positive integer, got {short_repr(save_freq)}."
            )
        self.save_freq = save_freq
        self.double_checkpoint = check_bool(double_checkpoint, "double_checkpoint", owner=owner)
        self.delete_checkpoint = check_bool(delete_checkpoint, "delete_checkpoint", owner=owner)
        self.path = os.path.join(self.backup_dir, "latest.npz")
        self._epoch = 0
        self._batches = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        from convlens.checkpoint import load_checkpoint
        from convlens.errors import DataError

        self._batches = 0
        for path in (self.path, f"{self.path}.bkp"):
            if not os.path.exists(path):
                continue
            try:
                epoch = load_checkpoint(self.model, path).get("epoch")
                if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
                    raise DataError(f"its epoch must be an integer >= 0, got {short_repr(epoch)}")
            except DataError as exc:
                warnings.warn(
                    f"BackupAndRestore: cannot read '{path}' ({exc}); trying the previous backup.", stacklevel=2
                )
                continue
            self.model._initial_epoch = epoch
            return

    def _save(self) -> None:
        from convlens.checkpoint import save_checkpoint

        if self.double_checkpoint and os.path.exists(self.path):
            os.replace(self.path, f"{self.path}.bkp")  # on_train_begin falls back to it until the new one exists
        save_checkpoint(self.model, self.path, {"epoch": self._epoch})

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.save_freq != "epoch":
            self._batches += 1
            if self._batches >= int(self.save_freq):
                self._batches = 0
                self._save()  # mid-epoch: a restart repeats this epoch from its start, as Keras

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch + 1
        if self.save_freq == "epoch":
            self._save()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)


_HOOKS = (
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_begin",
    "on_train_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class LambdaCallback(Callback):
    """A callback from plain functions (``keras.callbacks.LambdaCallback``): ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``, and any other hook by keyword.
    """

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        **kwargs: Callable[..., Any],
    ) -> None:
        super().__init__()
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, function in hooks.items():
            if name not in _HOOKS:
                raise ConfigTypeError(
                    f"LambdaCallback: unknown hook {short_repr(name, 40)}; hooks are {', '.join(_HOOKS)}."
                )
            if function is None:
                continue
            if not callable(function):
                raise ConfigTypeError(f"LambdaCallback: `{name}` must be callable, got {short_repr(function)}.")
            setattr(self, name, function)
