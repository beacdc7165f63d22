"""The callbacks that write files: ``ModelCheckpoint`` and ``CSVLogger`` (Keras 3 semantics).

Re-exported by :mod:`convlens.callbacks`; import them from there.
"""

from __future__ import annotations

import csv
import math
import os
from typing import IO, Any

from convlens.callback_base import Callback, Logs, _check_monitor, _check_verbose, _monitor_value, _resolve_mode
from convlens.errors import ConfigError, DataError, check_bool, short_repr
from convlens.files import as_path

__all__ = ["CSVLogger", "ModelCheckpoint"]


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
        self.filepath = str(as_path(filepath, owner=owner, name="filepath"))
        self.monitor = _check_monitor(owner, monitor)
        self.verbose = _check_verbose(owner, verbose)
        self.save_best_only = check_bool(save_best_only, "save_best_only", owner=owner)
        self.save_weights_only = check_bool(save_weights_only, "save_weights_only", owner=owner)
        self.mode = _resolve_mode(owner, mode, monitor)
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1):
            raise ConfigError(
                f"{owner}: `save_freq` must be 'epoch' or a positive integer, got {short_repr(save_freq)}."
            )
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
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
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
        owner = "CSVLogger"
        self.filename = str(as_path(filename, owner=owner, name="filename"))
        if not isinstance(separator, str) or len(separator) != 1 or separator in '\r\n"':
            raise ConfigError(f"{owner}: `separator` must be one character such as ',', got {short_repr(separator)}.")
        self.separator = separator
        self.append = check_bool(append, "append", owner=owner)
        self.keys: list[str] | None = None
        self._file: IO[str] | None = None
        self._writer: Any = None
        self._write_header = True

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._write_header = True
        try:
            if self.append and os.path.exists(self.filename):
                with open(self.filename, encoding="utf-8", errors="replace") as existing:
                    self._write_header = not existing.readline()
            self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise DataError(f"CSVLogger: cannot write `filename` '{self.filename}': {exc.strerror or exc}.") from None
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
