"""Callbacks driven by a tiny fake model and a hand-written fit loop."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import pytest

from convlens import callbacks as cbs
from convlens.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
)
from convlens.errors import ConfigError
from convlens.optimizers import SGD
from convlens.progbar import ProgbarLogger


class FakeModel:
    def __init__(self) -> None:
        self.weights = [np.zeros(2)]
        self.stop_training = False
        self.optimizer = SGD(0.1)
        self.saved: list[tuple[str, str]] = []

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.weights = [w.copy() for w in weights]

    def save(self, path: str) -> None:
        self.saved.append(("model", path))

    def save_weights(self, path: str) -> None:
        self.saved.append(("weights", path))


def fit(model: FakeModel, callbacks: list[Callback], epoch_logs: list[dict[str, float]], steps: int = 2) -> int:
    """Minimal Keras-like loop: weights become [epoch, epoch] during each epoch. Returns epochs run."""
    cb = CallbackList(callbacks, model=model, params={"epochs": len(epoch_logs), "steps": steps, "verbose": 0})
    cb.on_train_begin()
    ran = 0
    for epoch, logs in enumerate(epoch_logs):
        cb.on_epoch_begin(epoch)
        for batch in range(steps):
            cb.on_train_batch_begin(batch)
            cb.on_train_batch_end(batch, {"loss": logs.get("loss", 0.0)})
        model.weights = [np.full(2, float(epoch))]
        cb.on_epoch_end(epoch, dict(logs))
        ran += 1
        if model.stop_training:
            break
    cb.on_train_end()
    return ran


class Recorder(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.calls.append(f"batch_begin {batch}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.calls.append(f"epoch_end {epoch}")
        if logs is not None:
            logs["seen_by_recorder"] = 1.0


def test_callback_list_dispatch_alias_and_shared_logs():
    model, rec = FakeModel(), Recorder()
    cb = CallbackList([rec], model=model, params={"epochs": 1}, add_history=True, add_progbar=True)
    assert [type(c) for c in cb] == [Recorder, History, ProgbarLogger]  # defaults come last
    assert rec.model is model
    assert rec.params == {"epochs": 1}
    cb.set_params({"epochs": 1, "steps": 1, "verbose": 0})
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_train_batch_begin(0)
    cb.on_train_batch_end(0, {"loss": 1.0})
    cb.on_epoch_end(0, {"loss": 1.0})
    cb.on_train_end()
    assert rec.calls == ["batch_begin 0", "epoch_end 0"]
    assert cb.history is not None
    assert cb.history.history == {"loss": [1.0], "seen_by_recorder": [1.0]}
    assert model.history is cb.history
    history = History()
    assert CallbackList([history], add_history=True).history is history
    assert len(CallbackList(None)) == 0
    assert cbs.ProgbarLogger is ProgbarLogger


def test_history_keys_and_epochs():
    history = History()
    fit(FakeModel(), [history], [{"loss": 1.0, "val_loss": 2.0}, {"loss": 0.5, "val_loss": 1.5}])
    assert history.history == {"loss": [1.0, 0.5], "val_loss": [2.0, 1.5]}
    assert history.epoch == [0, 1]


def val_losses(*values: float) -> list[dict[str, float]]:
    return [{"val_loss": v} for v in values]


@pytest.mark.parametrize(
    ("losses", "kwargs", "ran"),
    [
        ((1.0, 0.9, 0.95, 0.97, 0.5, 0.4), {"patience": 2}, 4),  # epochs 2 and 3 fail to improve
        ((1.0, 0.9, 0.95, 0.97, 0.5, 0.4), {"patience": 0}, 3),
        ((1.0, 0.95, 0.91, 0.88, 0.86), {"patience": 1, "min_delta": 0.1}, 2),  # small gains do not count
        ((1.0, 1.1, 1.2, 0.9), {"patience": 2}, 3),
        ((1.0, 1.1, 1.2, 0.9), {"patience": 2, "baseline": 0.5}, 2),  # epoch 0 missed the baseline
        ((1.0, 2.0, 3.0, 0.5, 0.4), {"patience": 0, "start_from_epoch": 3}, 5),
    ],
)
def test_early_stopping_min_mode(losses, kwargs, ran):
    model = FakeModel()
    assert fit(model, [EarlyStopping(**kwargs)], val_losses(*losses)) == ran
    assert model.stop_training == (ran < len(losses))


def test_early_stopping_accuracy_is_maximised_and_restores_best_weights(capsys):
    model = FakeModel()
    stopper = EarlyStopping(monitor="val_accuracy", patience=1, restore_best_weights=True, verbose=1)
    assert stopper.mode == "max"
    logs = [{"val_accuracy": a} for a in (0.5, 0.8, 0.7, 0.6, 0.9)]
    assert fit(model, [stopper], logs) == 3
    assert stopper.best_epoch == 1
    assert stopper.best == 0.8
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])  # weights from the end of epoch 1
    out = capsys.readouterr().out
    assert "Epoch 3: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 2." in out


def test_early_stopping_missing_monitor_warns():
    with pytest.warns(UserWarning, match=r"EarlyStopping: metric `val_loss` is not in the logs; available: loss"):
        assert fit(FakeModel(), [EarlyStopping()], [{"loss": 1.0}, {"loss": 2.0}]) == 2


def test_model_checkpoint_formats_names_and_saves_every_epoch(tmp_path):
    model = FakeModel()
    path = str(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.2f}.npz")
    fit(model, [ModelCheckpoint(path)], val_losses(0.5, 0.25))
    assert model.saved == [
        ("model", str(tmp_path / "ckpt" / "m-01-0.50.npz")),
        ("model", str(tmp_path / "ckpt" / "m-02-0.25.npz")),
    ]
    assert (tmp_path / "ckpt").is_dir()


def test_model_checkpoint_save_best_only_weights_only(tmp_path, capsys):
    model = FakeModel()
    check = ModelCheckpoint(str(tmp_path / "best-{epoch}.npz"), save_best_only=True, save_weights_only=True, verbose=1)
    fit(model, [check], val_losses(0.5, 0.7, 0.4, 0.4))
    assert model.saved == [
        ("weights", str(tmp_path / "best-1.npz")),
        ("weights", str(tmp_path / "best-3.npz")),
    ]
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from inf to 0.50000, saving model to" in out
    assert "Epoch 2: val_loss did not improve from 0.50000" in out


def test_model_checkpoint_every_n_batches(tmp_path):
    model = FakeModel()
    fit(
        model,
        [ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.npz"), save_freq=3)],
        val_losses(1, 1, 1),
        steps=2,
    )
    names = [p.rsplit("/", 1)[-1] for _, p in model.saved]
    assert names == ["e2-b1.npz", "e3-b2.npz"]  # batches 3 and 6 overall; epochs and batches 1-based


def test_csv_logger_rows_append_and_validation_columns(tmp_path):
    path = tmp_path / "log.csv"
    fit(FakeModel(), [CSVLogger(path)], [{"loss": 0.5, "accuracy": 0.75}, {"loss": 0.25, "accuracy": 0.875}])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["epoch", "accuracy", "loss"], ["0", "0.75", "0.5"], ["1", "0.875", "0.25"]]
    fit(FakeModel(), [CSVLogger(path, append=True)], [{"loss": 0.125, "accuracy": 1.0}])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[-1] == ["0", "1.0", "0.125"]
    assert len(rows) == 4
    logger = CSVLogger(tmp_path / "val.csv", separator=";")
    cb = CallbackList([logger], params={"do_validation": True})
    cb.on_train_begin()
    cb.on_epoch_end(0, {"loss": 1.0})
    cb.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.75})
    cb.on_train_end()
    assert (tmp_path / "val.csv").read_text().splitlines() == [
        "epoch;loss;val_loss",
        "0;1.0;NA",
        "1;0.5;0.75",
    ]


def test_learning_rate_scheduler_sets_rate_and_logs_it(capsys):
    model = FakeModel()
    history = History()
    seen: list[float] = []

    class Spy(Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            seen.append(self.model.optimizer.learning_rate)

    sched = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 else lr, verbose=1)
    fit(model, [sched, Spy(), history], [{"loss": 1.0}] * 3, steps=1)
    assert seen == [0.1, 0.05, 0.025]
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.05." in capsys.readouterr().out
    one_arg = LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    fit(model, [one_arg], [{"loss": 1.0}] * 2)
    assert model.optimizer.learning_rate == 0.02


def test_errors(tmp_path):
    with pytest.raises(TypeError, match=r"CallbackList: every callback must be a Callback instance, got 'x'"):
        CallbackList(["x"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"EarlyStopping: `mode` must be one of 'auto', 'min', 'max', got 'up'"):
        EarlyStopping(mode="up")
    with pytest.raises(ConfigError, match=r"EarlyStopping: `patience` must be an integer >= 0, got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(ConfigError, match=r"ModelCheckpoint: `save_freq` must be 'epoch' or a positive integer"):
        ModelCheckpoint("m.npz", save_freq=0)
    check = ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.npz"))
    with pytest.raises(ConfigError, match=r"ModelCheckpoint: cannot format `filepath` .* with epoch and log keys"):
        fit(FakeModel(), [check], val_losses(1.0))
    with pytest.raises(ConfigError, match=r"LearningRateScheduler: `schedule` must be callable, got 0.1"):
        LearningRateScheduler(0.1)  # type: ignore[arg-type]
    bad = LearningRateScheduler(lambda epoch, lr: "fast")
    with pytest.raises(ConfigError, match=r"`schedule` must return a finite float >= 0, got 'fast' at epoch 0"):
        fit(FakeModel(), [bad], [{"loss": 1.0}])
