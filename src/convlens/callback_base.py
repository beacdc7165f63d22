"""The callback base class: every hook of a Keras callback, each doing nothing.

It lives below :mod:`convlens.callbacks` and :mod:`convlens.progbar` (whose ``ProgbarLogger`` is a callback
too), so neither imports the other in a circle; ``convlens.callbacks.Callback`` is this class.
"""

from __future__ import annotations

import warnings
from typing import Any

from convlens.errors import ConfigTypeError, check_choice, check_int, short_repr

__all__ = ["Callback", "Logs"]

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


# Helpers of the callbacks that watch a metric (EarlyStopping, ModelCheckpoint, ...).


def _check_monitor(owner: str, monitor: Any) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise ConfigTypeError(
            f"{owner}: `monitor` must be a metric name such as 'val_loss', got {short_repr(monitor)}."
        )
    return monitor


def _check_verbose(owner: str, verbose: Any) -> int:
    """A callback's ``verbose``: 0 (silent) or more (messages); True/False read as 1/0."""
    if isinstance(verbose, bool):
        return int(verbose)
    return check_int(verbose, "verbose", owner=owner, minimum=0, maximum=2)


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
