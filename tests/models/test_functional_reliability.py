"""The reliability work on Functional models too (it was written against Sequential ones): argument checks before
anything trains, the on_nan guard and TerminateOnNaN, non-finite data refused, empty batches, the per-batch memory
check, checksummed files whose damages never load as something else, BackupAndRestore, and the notebook reprs."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.callbacks import TerminateOnNaN
from convlens.errors import (
    ConfigError,
    ConfigTypeError,
    DataError,
    ResourceError,
    ShapeError,
    StateError,
)
from convlens.inference import piece_rows
from convlens.training import NonFiniteLossWarning
from tests.reliability.test_model_files import refused_or_identical
from tests.support import damaged_models as dmg


def diverging(kind: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """A regression whose second batch overflows float32 (SGD's first step multiplies the weights by ~1e20)."""
    if kind == "sequential":
        model = cl.Sequential([cl.layers.Dense(1, kernel_initializer="ones", input_shape=(3,))])
    else:
        inputs = cl.Input((3,))
        model = cl.Model(inputs, cl.layers.Dense(1, kernel_initializer="ones")(inputs))
    model.compile(cl.optimizers.SGD(learning_rate=1e20), "mse")
    return model, np.ones((40, 3), np.float32), np.ones((40, 1), np.float32)


def residual(seed: int = 0) -> Any:
    """A small Functional model with two branches joined by Add, compiled and trained one epoch."""
    cl.utils.set_random_seed(seed)
    inputs = cl.Input((6, 6, 1), name="image")
    x = cl.layers.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inputs)
    y = cl.layers.Conv2D(3, 3, padding="same", name="c2")(x)
    x = cl.layers.Add(name="add")([x, y])
    x = cl.layers.BatchNormalization(name="bn")(x)
    outputs = cl.layers.Dense(4, activation="softmax", name="out")(cl.layers.GlobalAveragePooling2D(name="gap")(x))
    model = cl.Model(inputs, outputs, name="res")
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    rng = np.random.default_rng(seed)
    model.fit(rng.standard_normal((16, 6, 6, 1)), rng.integers(0, 4, 16), epochs=1, batch_size=8, verbose=0)
    return model


def test_the_guard_stops_a_functional_model_as_it_stops_a_sequential_one() -> None:
    weights = {}
    for kind, owner in (("sequential", "Sequential"), ("functional", "Model")):
        model, x, y = diverging(kind)
        with pytest.warns(NonFiniteLossWarning, match=rf"^{owner} '\w+': the loss became inf at epoch 1, batch 2; "):
            history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        assert history.epoch == [0]
        weights[kind] = model.get_weights()
        assert all(np.all(np.isfinite(w)) for w in weights[kind])
    for a, b in zip(weights["sequential"], weights["functional"], strict=True):
        np.testing.assert_array_equal(a, b)  # the same one finite step, the diverged one not applied


def test_on_nan_raise_and_train_on_batch_on_a_functional_model() -> None:
    model, x, y = diverging("functional")
    with pytest.raises(StateError, match=r"^Model '\w+': the loss became inf at epoch 1, batch 2; training stopped"):
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, on_nan="raise")
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(StateError, match=r"the loss became inf at train_on_batch; the update was not applied"):
        model.train_on_batch(x[:8], y[:8], on_nan="raise")
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # 'continue' applies the inf step
def test_terminate_on_nan_ends_a_functional_fit(capsys: pytest.CaptureFixture[str]) -> None:
    model, x, y = diverging("functional")
    history = model.fit(
        x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, on_nan="continue", callbacks=[TerminateOnNaN()]
    )
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"
    assert history.epoch == [0]


@pytest.fixture(scope="module")
def trained() -> Any:
    return residual()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"callbacks": cl.callbacks.History()}, ConfigTypeError, "fit: `callbacks` must be a list of Callback"),
        ({"verbose": None}, ConfigError, "fit: `verbose` must be 'auto', 0, 1 or 2, got None."),
        ({"shuffle": "no"}, ConfigTypeError, "fit: `shuffle` must be True, False or 'batch', got 'no'."),
        ({"on_nan": "ignore"}, ConfigError, "fit: `on_nan` must be one of 'stop', 'raise', 'continue', got 'ignore'."),
        ({"class_weight": [1, 2]}, ConfigTypeError, "`class_weight` must be a dict {class index: weight}, got [1, 2]."),
        ({"batch_size": 0}, ConfigError, "fit: `batch_size` must be an integer >= 1, got 0."),
        ({"x": np.full((4, 6, 6, 1), np.inf)}, ConfigError, "fit: `x` holds 144 NaN or infinite value(s)"),
        ({"sample_weight": np.array([1, np.nan, 1, 1])}, ConfigError, "`sample_weight` holds 1 NaN or infinite"),
        (
            {"x": np.zeros((4, 6, 6))},
            ShapeError,
            "expected input of shape (None, 6, 6, 1), got (4, 6, 6). Add a channel",
        ),
    ],
)
def test_fit_arguments_of_a_functional_model_are_checked_before_anything_trains(
    trained: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = [w.copy() for w in trained.get_weights()]
    iterations = trained.optimizer.iterations
    arguments = {"x": np.zeros((4, 6, 6, 1)), "y": np.zeros(4), "epochs": 1, "verbose": 0, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        trained.fit(**arguments)
    assert trained.optimizer.iterations == iterations
    for a, b in zip(before, trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_empty_batches_of_functional_models(trained: Any) -> None:
    x0 = np.zeros((0, 6, 6, 1), np.float32)
    assert trained(x0).shape == (0, 4)
    assert trained.predict(x0, verbose=0).shape == (0, 4)
    with pytest.raises(ConfigError, match=r"^Model 'res': evaluate needs at least one sample, got an empty x\.$"):
        trained.evaluate(x0, np.zeros(0), verbose=0)
    a, b = cl.Input((3,)), cl.Input((2,))
    joined = cl.layers.Concatenate()([a, b])
    two = cl.Model([a, b], [cl.layers.Dense(2)(joined), cl.layers.Dense(1)(joined)])
    outputs = two.predict([np.zeros((0, 3)), np.zeros((0, 2))], verbose=0)
    assert [o.shape for o in outputs] == [(0, 2), (0, 1)]
    assert [o.shape for o in two([np.zeros((0, 3)), np.zeros((0, 2))])] == [(0, 2), (0, 1)]
    with pytest.raises(ConfigTypeError, match=r"`training` must be True or False, got 'yes'"):
        two([np.zeros((1, 3)), np.zeros((1, 2))], training="yes")


def test_a_functional_batch_is_checked_before_any_layer_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = cl.Input((28, 28, 1))
    wide = cl.layers.Conv2D(1000, 3, padding="same")(inputs)
    model = cl.Model(inputs, cl.layers.Dense(10)(cl.layers.GlobalMaxPooling2D()(wide)))
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.zeros((1000, 28, 28, 1), np.float32)
    monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", "1G")
    # (predict runs in pieces of chunk_rows(model) rows: its check is for one piece)
    assert piece_rows(model, 1000) < 1000
    with pytest.raises(
        ResourceError,
        match=r"^Model '\w+': call: this call needs about [\d.]+ GiB \(the output of Conv2D '\w+' of shape "
        r"\(1000, 28, 28, 1000\) alone is 2\.9 GiB\)",
    ):
        model(x)
    with pytest.raises(ResourceError, match=r"^Model '\w+': fit: "):
        model.fit(x, np.zeros(1000), batch_size=256, verbose=0)
    assert model.predict(x[:8], batch_size=8, verbose=0).shape == (8, 10)


def test_a_functional_file_is_checksummed_and_its_damages_never_load_as_something_else(
    trained: Any, tmp_path: Path
) -> None:
    path = tmp_path / "res.npz"
    trained.save(path)
    base = path.read_bytes()
    config = dmg.config_of(dmg.read_members(base))
    assert config["format"] == "convlens.model/2"
    assert config["model"]["class_name"] == "Functional"
    loaded = cl.load_model(path)
    assert type(loaded).__name__ == "Functional"
    x = np.random.default_rng(1).standard_normal((3, 6, 6, 1))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), trained.predict(x, verbose=0))
    graph_edits = [
        lambda c: c["model"]["layers"][2].update(inbound=["nowhere"]),
        lambda c: c["model"]["layers"][2].update(inbound="c1"),
        lambda c: c["model"].update(output_layers=["ghost"]),
        lambda c: c["model"].update(input_layers=None),
        lambda c: c["model"]["layers"].reverse(),
    ]
    legacy = dmg.read_members(dmg.legacy_model_bytes(base))  # no checksums: the graph checks themselves answer
    damages = []
    for i, edit in enumerate(graph_edits):
        damaged = dmg.config_of(legacy)
        edit(damaged)
        damages.append((f"graph_{i}", dmg.with_config(legacy, damaged)))
    for label, members in damages:
        target = tmp_path / f"{label}.npz"
        target.write_bytes(dmg.write_members(members))
        with pytest.raises(DataError, match=r"^load_model: .*(cannot be rebuilt|must list layer names|must be a list)"):
            cl.load_model(target)
    damages = dmg.model_damages(base, random.Random(5), 30)
    assert refused_or_identical(damages, trained, tmp_path)["refused"] > 0


def test_backup_and_restore_resumes_a_functional_model(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((16, 6, 6, 1)).astype(np.float32)
    y = np.arange(16) % 4
    model = residual()
    backup = cl.callbacks.BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[backup])
    resumed = residual(seed=1)  # other weights: the backup must replace them
    seen: list[list[np.ndarray]] = []
    watch = cl.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(resumed.get_weights()))
    history = resumed.fit(
        x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cl.callbacks.BackupAndRestore(tmp_path / "b"), watch]
    )
    assert history.epoch == [2]
    for a, b in zip(seen[0], model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.optimizer.iterations == model.optimizer.iterations + 2
    assert not (tmp_path / "b").exists()


def test_notebook_reprs_of_a_functional_model(trained: Any) -> None:
    bundle = trained._repr_mimebundle_()
    assert bundle["text/plain"] == "<Functional name=res, built=True>"
    assert bundle["text/html"].startswith("<pre>")
    assert "add (Add)" in bundle["text/html"]
    with pytest.raises(ConfigError, match=r"the lab's detailed summary covers Sequential models"):
        trained.summary(detail=True)
