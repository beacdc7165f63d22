"""``Sequential``: the model API a Keras user relies on (structure, compile, fit, evaluate, predict, errors)."""

from __future__ import annotations

import csv
import re
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.callbacks import CSVLogger, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint
from convlens.errors import ConfigError, ShapeError, StateError
from convlens.layers.base import reset_name_counters
from convlens.utils import get_rng, set_random_seed

L = cl.layers
COURSE_PARAMS = (3 * 3 * 1 * 32 + 32) + (14 * 14 * 32 * 10 + 10)


def small_model(seed: int = 0, lr: float | None = None, optimizer: str = "adam") -> cl.Sequential:
    """Conv -> MaxPool -> Flatten -> Dense(3, softmax) on 6x6x1, compiled."""
    set_random_seed(seed)
    model = cl.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(6, 6, 1)),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    opt: Any = optimizer if lr is None else cl.optimizers.get(optimizer)
    if lr is not None:
        opt.learning_rate = lr
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, n)


def manual_loss_acc(model: cl.Sequential, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Cross-entropy and accuracy computed here from one big forward pass."""
    p = model(x).astype(np.float64)
    loss = float(-np.mean(np.log(p[np.arange(len(y)), y])))
    return loss, float(np.mean(p.argmax(axis=1) == y))


# ----- structure ------------------------------------------------------------------------------


def test_course_model_structure() -> None:
    model = cl.course.build_course_model()
    assert model.built
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)
    assert model.count_params() == COURSE_PARAMS == 63_050
    assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]


def test_build_from_input_layer_on_call_and_explicitly() -> None:
    with_input = cl.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3), L.Flatten()])
    assert with_input.built
    assert len(with_input.layers) == 2  # Input is a marker, not a layer
    assert with_input.output_shape == (None, 4 * 4 * 2)

    lazy = cl.Sequential([L.Conv2D(2, 3), L.Flatten()])
    assert not lazy.built
    with pytest.raises(StateError, match=r"count_params needs a built model; give the first layer input_shape"):
        lazy.count_params()
    out = lazy(np.zeros((3, 6, 6, 1), np.float32))
    assert lazy.built
    assert out.shape == (3, 32)
    assert lazy.count_params() == 3 * 3 * 1 * 2 + 2

    explicit = cl.Sequential([L.Conv2D(2, 3), L.Flatten()])
    explicit.build((None, 5, 5, 3))
    assert explicit.output_shape == (None, 3 * 3 * 2)
    assert explicit.count_params() == 3 * 3 * 3 * 2 + 2

    with pytest.raises(StateError, match=r"cannot build without an input shape"):
        cl.Sequential([L.Dense(2)]).build()


def test_add_and_pop() -> None:
    model = cl.Sequential([L.Input((4,))])
    model.add(L.Dense(5))
    model.add(L.Dense(2))
    assert model.output_shape == (None, 2)
    assert model.count_params() == (4 * 5 + 5) + (5 * 2 + 2)
    popped = model.pop()
    assert isinstance(popped, L.Dense)
    assert popped.units == 2
    assert len(model.layers) == 1
    model.add(L.Dense(7))
    assert model.output_shape == (None, 7)
    with pytest.raises(StateError, match=r"Sequential.pop: the model has no layers"):
        cl.Sequential().pop()
    with pytest.raises(TypeError, match=r"Sequential.add: expected a convlens layer, got int"):
        cl.Sequential().add(3)  # type: ignore[arg-type]


def test_pop_keeps_the_model_built() -> None:
    model = cl.Sequential([L.Input((4,)), L.Dense(5), L.Dense(2)])
    model.pop()
    assert model.built
    assert model.output_shape == (None, 5)
    assert model.count_params() == 4 * 5 + 5


def test_layers_is_a_copy() -> None:
    model = cl.Sequential([L.Input((4,)), L.Dense(2)])
    model.layers.clear()
    assert len(model.layers) == 1


# ----- compile --------------------------------------------------------------------------------


def test_compile_with_strings_and_objects() -> None:
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert isinstance(model.optimizer, cl.optimizers.SGD)
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    adam = cl.optimizers.Adam(learning_rate=0.005)
    accuracy = cl.metrics.SparseCategoricalAccuracy("acc")
    model.compile(optimizer=adam, loss=cl.ops.losses.get_loss("sparse_categorical_crossentropy"), metrics=[accuracy])
    assert model.optimizer is adam
    assert model.metrics == [accuracy]
    x, y = data()
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "acc"}
    with pytest.raises(ConfigError, match=r"compile needs a `loss`"):
        model.compile(optimizer="adam")
    with pytest.raises(ConfigError, match=r"`metrics` must be a list such as \['accuracy'\], got 'accuracy'"):
        model.compile(optimizer="adam", loss="mse", metrics="accuracy")
    with pytest.raises(ConfigError, match=r"unknown optimizer 'adagrad'"):
        model.compile(optimizer="adagrad", loss="mse")


# ----- fit ------------------------------------------------------------------------------------


def test_fit_history_and_epochs() -> None:
    model = small_model()
    x, y = data()
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0)
    assert isinstance(history, History)
    assert model.history is history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == [0, 1, 2]
    assert all(len(v) == 3 for v in history.history.values())
    again = model.fit(x, y, epochs=3, initial_epoch=1, batch_size=8, verbose=0)
    assert again.epoch == [1, 2]
    assert set(again.history) == {"loss", "accuracy"}


@pytest.mark.parametrize("shuffle", [True, False])
def test_validation_split_takes_the_last_fraction(shuffle: bool) -> None:
    """With a learning rate of 0 the weights never move, so the logged numbers are plain evaluations."""
    model = small_model(lr=0.0, optimizer="sgd")
    x, y = data(20)
    x[15:] += 3.0  # the last quarter differs from the rest
    history = model.fit(x, y, epochs=1, batch_size=4, validation_split=0.25, shuffle=shuffle, verbose=0)
    val_loss, val_acc = manual_loss_acc(model, x[15:], y[15:])
    train_loss, train_acc = manual_loss_acc(model, x[:15], y[:15])
    assert abs(val_loss - manual_loss_acc(model, x[:5], y[:5])[0]) > 1e-3  # the check can tell
    assert history.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-5)
    assert history.history["val_accuracy"][0] == pytest.approx(val_acc)
    assert history.history["loss"][0] == pytest.approx(train_loss, rel=1e-5)
    assert history.history["accuracy"][0] == pytest.approx(train_acc)


def test_validation_data() -> None:
    model = small_model(lr=0.0, optimizer="sgd")
    x, y = data(12)
    xv, yv = data(7, seed=1)
    history = model.fit(x, y, epochs=2, batch_size=5, validation_data=(xv, yv), verbose=0)
    val_loss, val_acc = manual_loss_acc(model, xv, yv)
    assert history.history["val_loss"] == pytest.approx([val_loss, val_loss], rel=1e-5)
    assert history.history["val_accuracy"] == pytest.approx([val_acc, val_acc])
    with pytest.raises(ConfigError, match=r"`validation_data` must be a tuple \(x_val, y_val\)"):
        model.fit(x, y, validation_data=xv, verbose=0)


def test_shuffle_false_is_consecutive_batches() -> None:
    """fit(shuffle=False) equals train_on_batch over consecutive slices, whatever the global RNG did."""
    x, y = data(20)
    fitted = small_model(seed=3)
    get_rng().random(10)  # disturb the global generator: must not matter without shuffling
    fitted.fit(x, y, epochs=2, batch_size=6, shuffle=False, verbose=0)
    manual = small_model(seed=3)
    for _ in range(2):
        for lo in range(0, 20, 6):
            manual.train_on_batch(x[lo : lo + 6], y[lo : lo + 6])
    for a, b in zip(fitted.get_weights(), manual.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    shuffled = small_model(seed=3)
    shuffled.fit(x, y, epochs=2, batch_size=6, shuffle=True, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(fitted.get_weights(), shuffled.get_weights(), strict=True))


def test_set_random_seed_makes_fit_repeatable() -> None:
    x, y = data(30)
    runs = []
    for _ in range(2):
        model = small_model(seed=11)
        history = model.fit(x, y, epochs=2, batch_size=7, validation_split=0.2, verbose=0)
        runs.append((model.get_weights(), history.history))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


def test_early_stopping_stops() -> None:
    model = small_model(lr=0.0, optimizer="sgd")  # the loss never improves
    x, y = data()
    stopper = EarlyStopping(monitor="loss", patience=2)
    history = model.fit(x, y, epochs=10, shuffle=False, callbacks=[stopper], verbose=0)
    # Keras: best at epoch 0, then it stops after `patience` epochs without improvement.
    assert len(history.history["loss"]) == 3
    assert model.stop_training


def test_model_checkpoint_writes_loadable_files(tmp_path: Any) -> None:
    model = small_model()
    x, y = data()
    pattern = str(tmp_path / "ckpt-{epoch:02d}.npz")
    model.fit(x, y, epochs=2, callbacks=[ModelCheckpoint(pattern)], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-01.npz", "ckpt-02.npz"]
    loaded = cl.load_model(tmp_path / "ckpt-02.npz")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_csv_logger_rows(tmp_path: Any) -> None:
    model = small_model()
    x, y = data()
    path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=3, validation_split=0.2, callbacks=[CSVLogger(path)], verbose=0)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert [float(r[2]) for r in rows[1:]] == pytest.approx(history.history["loss"])


def test_learning_rate_scheduler_sets_the_optimizer_rate() -> None:
    model = small_model(optimizer="sgd", lr=0.5)
    x, y = data()
    seen = []

    def schedule(epoch: int, lr: float) -> float:
        seen.append(lr)
        return 0.1 * (epoch + 1)

    history = model.fit(x, y, epochs=3, callbacks=[LearningRateScheduler(schedule)], verbose=0)
    assert seen == pytest.approx([0.5, 0.1, 0.2])
    assert model.optimizer.learning_rate == pytest.approx(0.3)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.2, 0.3])
    # A zero rate really freezes the weights.
    before = model.get_weights()
    model.fit(x, y, epochs=1, callbacks=[LearningRateScheduler(lambda epoch: 0.0)], verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# ----- evaluate / predict / batch methods ------------------------------------------------------


def test_evaluate_matches_a_manual_computation() -> None:
    model = small_model()
    x, y = data(23)
    loss, acc = manual_loss_acc(model, x, y)
    result = model.evaluate(x, y, batch_size=5, verbose=0)
    assert isinstance(result, list)
    assert result == pytest.approx([loss, acc], rel=1e-5)
    as_dict = model.evaluate(x, y, batch_size=23, verbose=0, return_dict=True)
    assert as_dict == pytest.approx({"loss": loss, "accuracy": acc}, rel=1e-5)
    model.compile("adam", "sparse_categorical_crossentropy")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(loss, rel=1e-5)


def test_predict_batches_equal_one_forward() -> None:
    model = small_model()
    x, _ = data(23)
    whole = model(x)
    for batch_size in (1, 5, 23, 64):
        np.testing.assert_allclose(model.predict(x, batch_size=batch_size, verbose=0), whole, rtol=1e-6, atol=1e-7)
    assert model.predict(x.astype(np.float64), verbose=0).dtype == np.float32
    np.testing.assert_allclose(model.predict_on_batch(x), whole, rtol=1e-6, atol=1e-7)


def test_train_test_on_batch() -> None:
    model = small_model()
    x, y = data(10)
    loss, acc = manual_loss_acc(model, x, y)
    before = model.get_weights()
    assert model.test_on_batch(x, y) == pytest.approx([loss, acc], rel=1e-5)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs == pytest.approx({"loss": loss, "accuracy": acc}, rel=1e-5)  # measured before the step
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert model.optimizer.iterations == 1


def test_get_set_weights_round_trip() -> None:
    source = small_model(seed=1)
    target = small_model(seed=2)
    x, _ = data()
    assert not np.array_equal(source.predict(x, verbose=0), target.predict(x, verbose=0))
    weights = source.get_weights()
    assert [w.shape for w in weights] == [(3, 3, 1, 4), (4,), (3 * 3 * 4, 3), (3,)]
    target.set_weights(weights)
    np.testing.assert_array_equal(source.predict(x, verbose=0), target.predict(x, verbose=0))
    weights[0][...] = 0.0  # get_weights returns copies
    assert np.any(source.get_weights()[0] != 0)
    with pytest.raises(ShapeError, match=r"set_weights expects 4 arrays, got 3"):
        target.set_weights(weights[:3])
    with pytest.raises(ShapeError, match=r"weight 'kernel' must have shape \(3, 3, 1, 4\), got \(3, 3, 1, 5\)"):
        target.set_weights([np.zeros((3, 3, 1, 5)), *weights[1:]])


# ----- summary and printing --------------------------------------------------------------------


def test_summary_text() -> None:
    reset_name_counters()
    model = cl.course.build_course_model()
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert re.search(r'Model: "sequential(_\d+)?"', text)
    rows = [
        ("conv2d (Conv2D)", "(None, 28, 28, 32)", f"{3 * 3 * 1 * 32 + 32:,}"),
        ("max_pooling2d (MaxPooling2D)", "(None, 14, 14, 32)", "0"),
        ("flatten (Flatten)", f"(None, {14 * 14 * 32})", "0"),
        ("dense (Dense)", "(None, 10)", f"{14 * 14 * 32 * 10 + 10:,}"),
    ]
    for name, shape, params in rows:
        assert re.search(rf"│ {re.escape(name)}\s+│ {re.escape(shape)}\s+│\s+{params} │", text), name
    kilobytes = COURSE_PARAMS * 4 / 1024
    assert f"Total params: {COURSE_PARAMS:,} ({kilobytes:.2f} KB)" in text
    assert f"Trainable params: {COURSE_PARAMS:,} ({kilobytes:.2f} KB)" in text
    assert "Non-trainable params: 0 (0.00 B)" in text
    assert model.summary_text() == text


def test_verbose_0_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    model = small_model()
    x, y = data()
    model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_verbose_1_on_a_pipe_prints_one_line_per_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    model = small_model()
    x, y = data(20)
    model.fit(x, y, epochs=2, batch_size=8, validation_split=0.2, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[0] == "Epoch 1/2"
    assert lines[2] == "Epoch 2/2"
    for line in (lines[1], lines[3]):  # 16 training samples / 8 = 2 steps
        assert re.match(
            r"2/2 ━{20} \S+ \S+/step - accuracy: \d\.\d{4} - loss: \d\.\d{4} - val_accuracy: \d\.\d{4} "
            r"- val_loss: \d\.\d{4}$",
            line,
        ), line


# ----- bad input ------------------------------------------------------------------------------


def test_fit_before_compile() -> None:
    model = cl.course.build_course_model()
    with pytest.raises(StateError, match=r"call compile\(optimizer, loss, metrics\) before fit"):
        model.fit(np.zeros((2, 28, 28, 1)), np.zeros(2, int))
    with pytest.raises(StateError, match=r"before evaluate"):
        model.evaluate(np.zeros((2, 28, 28, 1)), np.zeros(2, int))
    with pytest.raises(StateError, match=r"before train_on_batch"):
        model.train_on_batch(np.zeros((2, 28, 28, 1)), np.zeros(2, int))


def _compiled_course() -> cl.Sequential:
    model = cl.course.build_course_model()
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return model


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_missing_channel_axis_hint(method: str) -> None:
    model = _compiled_course()
    x = np.zeros((4, 28, 28), np.float32)
    args: tuple[Any, ...] = (x,) if method == "predict" else (x, np.zeros(4, int))
    with pytest.raises(
        ShapeError,
        match=r"expected input of shape \(None, 28, 28, 1\), got \(4, 28, 28\)\. Add a channel axis: x\[\.\.\., None\]",
    ):
        getattr(model, method)(*args, verbose=0)


def test_wrong_input_shape() -> None:
    with pytest.raises(ShapeError, match=r"expected input of shape \(None, 28, 28, 1\), got \(2, 28, 28, 3\)\.$"):
        _compiled_course().predict(np.zeros((2, 28, 28, 3)), verbose=0)


def test_bad_fit_arguments() -> None:
    model = _compiled_course()
    x = np.zeros((10, 28, 28, 1), np.float32)
    y = np.arange(10) % 10
    with pytest.raises(ShapeError, match=r"x and y must have the same number of samples, got 10 and 5"):
        model.fit(x, y[:5], verbose=0)
    with pytest.raises(ConfigError, match=r"label 10 is out of range for 10 classes.*labels must be in \[0, 10\)"):
        model.fit(x, y + 1, verbose=0)
    with pytest.raises(ConfigError, match=r"label -1 is out of range"):
        model.evaluate(x, y - 1, verbose=0)
    with pytest.raises(ConfigError, match=r"fit: `batch_size` must be an integer >= 1, got 0"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ConfigError, match=r"fit: `batch_size` must be an integer, got 2.5"):
        model.fit(x, y, batch_size=2.5, verbose=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"predict: `batch_size` must be an integer >= 1, got -1"):
        model.predict(x, batch_size=-1, verbose=0)
    with pytest.raises(ConfigError, match=r"fit: `validation_split` must be < 1.0, got 1.0"):
        model.fit(x, y, validation_split=1.0, verbose=0)
    with pytest.raises(ConfigError, match=r"validation_split=0.95 leaves an empty training or validation set for 10"):
        model.fit(x, y, validation_split=0.95, verbose=0)
    with pytest.raises(TypeError, match=r"`x` must hold numbers, got dtype <U1"):
        model.fit(np.full((10, 28, 28, 1), "a"), y, verbose=0)
    with pytest.raises(TypeError, match=r"`x` must hold numbers, got dtype object"):
        model.predict(np.array([None, 1.0], dtype=object), verbose=0)
    with pytest.raises(ConfigError, match=r"fit needs x and y"):
        model.fit(x, verbose=0)


def test_bad_structure() -> None:
    with pytest.raises(ConfigError, match=r"Sequential.add: an Input layer must come first, got it after Dense"):
        cl.Sequential([L.Dense(2, input_shape=(3,)), L.Input((3,))])
    with pytest.raises(ConfigError, match=r"Sequential.add: the model already has a layer named 'twin'"):
        cl.Sequential([L.Dense(2, input_shape=(3,), name="twin"), L.Dense(2, name="twin")])
    model = cl.Sequential([L.Dense(2, input_shape=(3,))])
    with pytest.raises(ShapeError, match=r"was built for input \(None, 3\), cannot take \(None, 4\)"):
        model.build((None, 4))


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_empty_data_is_refused(method: str) -> None:
    model = small_model()
    x, y = data(0)
    with pytest.raises(ValueError, match=r"(?i)empty|no samples|at least one sample"):
        getattr(model, method)(x, y, verbose=0)


def test_predict_progress_bar_follows_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    model = small_model()
    x, _ = data(n=70)
    model.predict(x, batch_size=32, verbose=0)
    assert capsys.readouterr().out == ""
    model.predict(x, batch_size=32)  # 'auto' = 1: one final line when not a terminal
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].lstrip().startswith("3/3 ")
