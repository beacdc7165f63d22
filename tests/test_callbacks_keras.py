"""ReduceLROnPlateau, BackupAndRestore and LambdaCallback against Keras 3 itself (torch backend), plus their errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError
from tests.support.keras_twin import KERAS_WARNINGS, check, copy_weights, import_keras

keras = import_keras()
pytestmark = KERAS_WARNINGS


def twins(optimizer: Any = None) -> tuple[Any, Any]:
    cl.utils.set_random_seed(0)
    model = cl.Sequential(
        [cl.Input((5,)), cl.layers.Dense(4, activation="tanh"), cl.layers.Dense(3, activation="softmax")]
    )
    twin = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3, activation="softmax")]
    )
    copy_weights(model, twin)
    make = optimizer or (lambda lib: lib.optimizers.SGD(0.5))
    model.compile(make(cl), "sparse_categorical_crossentropy", metrics=["accuracy"])
    twin.compile(make(keras), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, twin


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 5)).astype(np.float32), rng.integers(0, 3, 16)


def test_reduce_lr_on_plateau_like_keras() -> None:
    model, twin = twins()
    x, y = data()

    def callback(lib: Any) -> Any:  # min_delta 0.05: most epochs count as a plateau
        return lib.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=0.05, cooldown=1, min_lr=0.07)

    ours = model.fit(x, y, batch_size=8, epochs=8, shuffle=False, verbose=0, callbacks=[callback(cl)])
    theirs = twin.fit(x, y, batch_size=8, epochs=8, shuffle=False, verbose=0, callbacks=[callback(keras)])
    assert sorted(ours.history) == sorted(theirs.history)
    check("ReduceLROnPlateau: learning_rate", ours.history["learning_rate"], theirs.history["learning_rate"])
    check("ReduceLROnPlateau: loss", ours.history["loss"], theirs.history["loss"])
    check("ReduceLROnPlateau: weights", model.get_weights(), twin.get_weights())
    assert len(set(ours.history["learning_rate"])) > 2  # it did reduce, down to min_lr
    assert min(ours.history["learning_rate"]) == pytest.approx(0.07)


class InterruptError(Exception):
    pass


def _interrupt_at(lib: Any, epoch: int) -> Any:
    def stop(e: int, logs: Any) -> None:
        if e == epoch:
            raise InterruptError

    return lib.callbacks.LambdaCallback(on_epoch_end=stop)


def test_backup_and_restore_resumes_like_keras(tmp_path: Path) -> None:
    model, twin = twins()
    x, y = data()
    for lib, m, folder in ((cl, model, tmp_path / "ours"), (keras, twin, tmp_path / "theirs")):
        # The backup runs before the interruption at the end of epoch 2 (callbacks run in order).
        callbacks = [lib.callbacks.BackupAndRestore(str(folder)), _interrupt_at(lib, 1)]
        with pytest.raises(InterruptError):
            m.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    assert (tmp_path / "ours" / "latest.npz").exists()
    cl.utils.set_random_seed(1)
    model.set_weights([w * 0 for w in model.get_weights()])  # the restore must bring them back
    ours = model.fit(
        x,
        y,
        batch_size=8,
        epochs=4,
        shuffle=False,
        verbose=0,
        callbacks=[cl.callbacks.BackupAndRestore(str(tmp_path / "ours"))],
    )
    theirs = twin.fit(
        x,
        y,
        batch_size=8,
        epochs=4,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "theirs"))],
    )
    assert ours.epoch == theirs.epoch == [2, 3]
    check("BackupAndRestore: resumed loss", ours.history["loss"], theirs.history["loss"])
    check("BackupAndRestore: weights", model.get_weights(), twin.get_weights())
    assert not (tmp_path / "ours").exists()  # delete_checkpoint


def test_backup_and_restore_brings_the_optimizer_back(tmp_path: Path) -> None:
    x, y = data()
    whole, _ = twins(lambda lib: lib.optimizers.Adam(0.05))
    whole.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    model, _ = twins(lambda lib: lib.optimizers.Adam(0.05))
    backup = cl.callbacks.BackupAndRestore(tmp_path / "b", double_checkpoint=True)
    with pytest.raises(InterruptError):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[backup, _interrupt_at(cl, 1)])
    assert (tmp_path / "b" / "latest.npz.bkp").exists()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[cl.callbacks.BackupAndRestore(tmp_path / "b")],
    )
    for a, b in zip(model.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == whole.optimizer.iterations == 6


def test_backup_every_few_batches_resumes_at_the_epoch_in_progress(tmp_path: Path) -> None:
    model, _ = twins()
    x, y = data()
    seen: list[int] = []
    backup = cl.callbacks.BackupAndRestore(tmp_path / "b", save_freq=3, delete_checkpoint=False)
    with pytest.raises(InterruptError):
        model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[backup, _interrupt_at(cl, 2)])
    log = cl.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[cl.callbacks.BackupAndRestore(tmp_path / "b"), log])
    assert seen == [2, 3]  # the last save (the 6th batch) came during epoch 2: Keras repeats that epoch


def test_lambda_callback_hooks_like_keras() -> None:
    model, twin = twins()
    x, y = data()
    calls: dict[str, list[Any]] = {"ours": [], "theirs": []}

    def callback(lib: Any, log: list[Any]) -> Any:
        return lib.callbacks.LambdaCallback(
            on_train_begin=lambda logs: log.append("train_begin"),
            on_epoch_begin=lambda epoch, logs: log.append(("epoch_begin", epoch)),
            on_train_batch_end=lambda batch, logs: log.append(("batch_end", batch, sorted(logs))),
            on_epoch_end=lambda epoch, logs: log.append(("epoch_end", epoch, sorted(logs))),
            on_train_end=lambda logs: log.append("train_end"),
        )

    model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.25, callbacks=[callback(cl, calls["ours"])])
    twin.fit(
        x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.25, callbacks=[callback(keras, calls["theirs"])]
    )
    assert calls["ours"] == calls["theirs"]


def test_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"ReduceLROnPlateau: `factor` must be < 1 \(it multiplies the learning rate\), got 1.5"
    ):
        cl.callbacks.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(ConfigError, match=r"ReduceLROnPlateau: unexpected keyword argument\(s\): epsilon"):
        cl.callbacks.ReduceLROnPlateau(epsilon=1e-3)
    with pytest.raises(
        ConfigError, match=r"BackupAndRestore: `save_freq` must be 'epoch' or a positive integer, got 0"
    ):
        cl.callbacks.BackupAndRestore("b", save_freq=0)
    with pytest.raises(ConfigError, match=r"BackupAndRestore: `backup_dir` must be a non-empty file path .*, got ''"):
        cl.callbacks.BackupAndRestore("")
    with pytest.raises(ConfigError, match=r"LambdaCallback: unknown hook 'on_step'; hooks are on_epoch_begin"):
        cl.callbacks.LambdaCallback(on_step=print)
    with pytest.raises(ConfigError, match=r"LambdaCallback: `on_epoch_end` must be callable, got 3"):
        cl.callbacks.LambdaCallback(on_epoch_end=3)
    model, _ = twins(lambda lib: lib.optimizers.SGD(lib.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)))
    with pytest.raises(ConfigError, match=r"its learning rate comes from ExponentialDecay\(.*\) and cannot be set"):
        model.fit(
            *data(), epochs=2, verbose=0, callbacks=[cl.callbacks.ReduceLROnPlateau("loss", patience=0, min_delta=10)]
        )
