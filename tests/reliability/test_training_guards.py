"""Training guards: fit stops on a NaN/inf loss (on_nan), TerminateOnNaN behaves as Keras 3's, bad data and bad
arguments are refused before anything trains."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.callbacks import Callback, CallbackList, TerminateOnNaN
from convlens.errors import ConfigError, ConfigTypeError, StateError
from convlens.training import NonFiniteLossWarning


class Recorder(Callback):
    """Records hook calls (the order Keras 3 makes them in)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Any, ...]] = []

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.events.append(("batch", batch, float(logs["loss"])))

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.events.append(("epoch_end", epoch))

    def on_train_end(self, logs: Any = None) -> None:
        self.events.append(("train_end",))


def diverging_model() -> tuple[cl.Sequential, np.ndarray, np.ndarray]:
    """A regression whose second batch overflows float32: SGD's first step multiplies the weights by ~1e20."""
    model = cl.Sequential([cl.layers.Dense(1, kernel_initializer="ones", input_shape=(3,))])
    model.compile(cl.optimizers.SGD(learning_rate=1e20), "mse")
    return model, np.ones((40, 3), np.float32), np.ones((40, 1), np.float32)


def test_fit_stops_at_the_first_non_finite_loss_and_keeps_the_last_finite_weights() -> None:
    model, x, y = diverging_model()
    recorder = Recorder()
    with pytest.warns(
        NonFiniteLossWarning,
        match=r"^Sequential '\w+': the loss became inf at epoch 1, batch 2; training stopped and that batch's update "
        r"was not applied, so the weights are those of the last finite step\. Lower the learning rate or check the "
        r"data \(on_nan='continue' trains on, as Keras does\)\.$",
    ):
        history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[recorder])
    assert [e[:2] for e in recorder.events] == [("batch", 0), ("batch", 1), ("epoch_end", 0), ("train_end",)]
    assert np.isfinite(recorder.events[0][2])
    assert np.isinf(recorder.events[1][2])
    assert history.epoch == [0]
    assert model.stop_training
    weights = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)
    assert np.abs(weights[0]).max() > 1e18  # the first (finite) update was applied, the second was not


def test_on_nan_raise_raises_a_state_error() -> None:
    model, x, y = diverging_model()
    with pytest.raises(StateError, match=r"the loss became inf at epoch 1, batch 2; training stopped"):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, on_nan="raise")
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # 'continue' applies the inf step
def test_on_nan_continue_with_terminate_on_nan_is_keras(capsys: pytest.CaptureFixture[str]) -> None:
    # Keras 3.15 (checked with keras.callbacks.TerminateOnNaN): the batch is applied, the message printed, the
    # epoch ends after that batch, on_epoch_end and on_train_end still run.
    model, x, y = diverging_model()
    recorder = Recorder()
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        shuffle=False,
        verbose=0,
        on_nan="continue",
        callbacks=[TerminateOnNaN(), recorder],
    )
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"
    assert [e[:2] for e in recorder.events] == [("batch", 0), ("batch", 1), ("epoch_end", 0), ("train_end",)]
    assert history.epoch == [0]
    assert not all(np.all(np.isfinite(w)) for w in model.get_weights())  # as Keras: the update was applied


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_on_nan_continue_trains_on() -> None:
    model, x, y = diverging_model()
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, on_nan="continue")
    assert history.epoch == [0, 1]


def test_terminate_on_nan_raise_error() -> None:
    model = cl.Sequential([cl.layers.Dense(1, input_shape=(3,))])
    callbacks = CallbackList([TerminateOnNaN(raise_error=True)], model=model)
    callbacks.on_train_batch_end(0, {"loss": 0.5})
    with pytest.raises(RuntimeError, match=r"^NaN or Inf loss encountered at batch 3\. Loss value: nan\. Terminating"):
        callbacks.on_train_batch_end(3, {"loss": float("nan")})
    with pytest.raises(StateError):
        callbacks.on_train_batch_end(4, {"loss": float("-inf")})
    with pytest.raises(ConfigTypeError, match=r"^TerminateOnNaN: `raise_error` must be True or False, got 'yes'\.$"):
        TerminateOnNaN(raise_error="yes")  # type: ignore[arg-type]


def test_train_on_batch_does_not_apply_a_non_finite_step() -> None:
    model, x, y = diverging_model()
    model.train_on_batch(x[:8], y[:8])
    before = [w.copy() for w in model.get_weights()]
    with pytest.warns(NonFiniteLossWarning, match=r"the loss became inf at train_on_batch; the update was not applied"):
        loss = model.train_on_batch(x[:8], y[:8])
    assert np.isinf(loss)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(StateError, match=r"the loss became inf at train_on_batch"):
        model.train_on_batch(x[:8], y[:8], on_nan="raise")


def course_like() -> tuple[cl.Sequential, np.ndarray, np.ndarray]:
    model = cl.Sequential([cl.layers.Conv2D(2, 3, input_shape=(6, 6, 1)), cl.layers.Flatten(), cl.layers.Dense(3)])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    rng = np.random.default_rng(0)
    return model, rng.standard_normal((8, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 8)


def test_fit_refuses_non_finite_data_before_training() -> None:
    model, x, y = course_like()
    before = [w.copy() for w in model.get_weights()]
    x[3, 2, 1, 0] = np.nan
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "fit: `x` holds 1 NaN or infinite value(s), the first at index (3, 2, 1, 0) (np.float32(nan)); "
            "training on them turns every weight into NaN. Clean the data first."
        ),
    ):
        model.fit(x, y, verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"callbacks": cl.callbacks.History()},
            ConfigTypeError,
            "fit: `callbacks` must be a list of Callback instances, got a single History; wrap it: callbacks=[...].",
        ),
        (
            {"callbacks": [None]},
            ConfigTypeError,
            "fit: every item of `callbacks` must be a Callback instance, got None.",
        ),
        ({"verbose": None}, ConfigError, "fit: `verbose` must be 'auto', 0, 1 or 2, got None."),
        ({"validation_split": float("nan")}, ConfigError, "fit: `validation_split` must be a finite number, got nan."),
        ({"shuffle": "no"}, ConfigTypeError, "fit: `shuffle` must be True, False or 'batch', got 'no'."),
        ({"initial_epoch": -1}, ConfigError, "fit: `initial_epoch` must be an integer >= 0, got -1."),
        ({"on_nan": "ignore"}, ConfigError, "fit: `on_nan` must be one of 'stop', 'raise', 'continue', got 'ignore'."),
        (
            {"validation_data": "val"},
            ConfigTypeError,
            "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), got 'val'.",
        ),
    ],
)
def test_fit_arguments_are_checked_before_anything_trains(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    model, x, y = course_like()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(error, match=re.escape(message) + "$"):
        model.fit(x, y, epochs=1, **{"verbose": 0, **kwargs})
    assert model.optimizer.iterations == 0
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: cl.optimizers.Adam(learning_rate=float("nan")), r"^Adam 'adam': `learning_rate` must be a finite"),
        (lambda: cl.optimizers.SGD(momentum=float("inf")), r"^SGD 'SGD': `momentum` must be a finite number"),
        (lambda: cl.layers.BatchNormalization(epsilon=float("nan")), r"`epsilon` must be a finite number, got nan"),
        (lambda: cl.layers.Dropout(rate=float("nan")), r"`rate` must be a finite number, got nan"),
        (lambda: cl.layers.Dense(3, use_bias="no"), r"`use_bias` must be True or False, got 'no'"),
        (lambda: cl.optimizers.Adam(amsgrad=2), r"`amsgrad` must be True or False, got 2"),
    ],
)
def test_non_finite_hyper_parameters_and_truthy_flags_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_weight_decay_cannot_overshoot_zero() -> None:
    optimizer = cl.optimizers.SGD(learning_rate=1.0, weight_decay=2.0)
    w = np.ones(3, np.float32)
    with pytest.raises(
        ConfigError, match=re.escape("SGD 'SGD': `weight_decay` * `learning_rate` must be <= 1, got 2.0.")
    ):
        optimizer.apply([w], [np.zeros(3, np.float32)])
    np.testing.assert_array_equal(w, np.ones(3))


def test_gradients_too_large_to_square_stop_training_with_a_finite_loss() -> None:
    # A finite loss (2.25e38 < float32's 3.4e38) whose kernel gradient (~3e19) Adam would square to inf.
    model = cl.Sequential([cl.layers.Dense(1, kernel_initializer="ones", input_shape=(3,))])
    model.compile("adam", "mse")
    x, y = np.ones((1, 3), np.float32), np.full((1, 1), 1.5e19, np.float32)  # one sample: no overflowing mean
    with pytest.warns(
        NonFiniteLossWarning,
        match=r"the gradients overflowed \(\|gradient\| up to 3e\+19, too large to square in float32\) at epoch 1, "
        r"batch 1; training stopped",
    ):
        model.fit(x, y, batch_size=1, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[0], np.ones((3, 1)))


def test_gradients_whose_squares_fit_are_not_flagged_even_when_their_sum_overflows() -> None:
    # diverged() first sums the squares in one pass; only when that overflows does it look at the largest one.
    from convlens.training import diverged

    big = np.full(10, 1e19, np.float32)  # each square 1e38 < 3.4e38, their sum overflows float32
    assert diverged(1.0, [big, np.zeros(0, np.float32)]) is None
    assert diverged(1.0, [big * 2]) == (
        "the gradients overflowed (|gradient| up to 2e+19, too large to square in float32)"
    )
    assert diverged(1.0, [np.array([0.0, np.nan], np.float32)]) is not None
    assert diverged(float("inf"), [big]) == "the loss became inf"
