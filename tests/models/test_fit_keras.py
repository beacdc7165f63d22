"""fit/evaluate arguments, regularizers, constraints, loss and metric objects, optimizers: convlens against Keras 3
itself (torch backend) on the same weights and data, float32, shuffle off. Every comparison is a relative
difference <= 1e-5 (tests/support/keras_twin.py)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError, ShapeError
from tests.support.keras_twin import KERAS_WARNINGS, check, copy_weights, import_keras

keras = import_keras()
pytestmark = KERAS_WARNINGS
L, KL = cl.layers, keras.layers


def data(n: int = 12, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, classes, n)


def pair(
    ours: Callable[[], list[Any]],
    theirs: Callable[[], list[Any]],
    input_shape: tuple[int, ...] = (6,),
) -> tuple[cl.Sequential, Any]:
    """The same stack in both libraries, Keras's weights copied from convlens's."""
    cl.utils.set_random_seed(0)
    model = cl.Sequential([L.Input(input_shape), *ours()])
    twin = keras.Sequential([keras.Input(input_shape), *theirs()])
    copy_weights(model, twin)
    return model, twin


def mlp(**dense_kwargs: Any) -> tuple[cl.Sequential, Any]:
    return pair(
        lambda: [L.Dense(5, activation="relu", **dense_kwargs), L.Dense(3, activation="softmax")],
        lambda: [KL.Dense(5, activation="relu", **dense_kwargs), KL.Dense(3, activation="softmax")],
    )


def compile_both(model: Any, twin: Any, optimizer: Callable[[Any], Any] | None = None, **kwargs: Any) -> None:
    make = optimizer or (lambda lib: lib.optimizers.SGD(0.1))
    model.compile(optimizer=make(cl), **kwargs)
    twin.compile(optimizer=make(keras), **kwargs)


def compare_fit(feature: str, model: Any, twin: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    kwargs = {"batch_size": 4, "shuffle": False, "verbose": 0, **kwargs}
    ours = model.fit(*args, **kwargs)
    theirs = twin.fit(*args, **kwargs)
    assert ours.epoch == theirs.epoch
    assert sorted(ours.history) == sorted(theirs.history)
    for key in theirs.history:
        check(f"{feature}: history {key}", ours.history[key], theirs.history[key])
    check(f"{feature}: weights", model.get_weights(), twin.get_weights())
    return ours, theirs


# ----- fit's arguments ------------------------------------------------------------------------------------
def test_sample_weight_in_fit_and_evaluate() -> None:
    model, twin = mlp()
    compile_both(
        model, twin, loss="sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"]
    )
    x, y = data()
    weights = np.linspace(0.0, 2.0, 12).astype(np.float32)
    compare_fit("sample_weight", model, twin, x, y, epochs=2, sample_weight=weights)
    ours = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    theirs = twin.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    assert set(ours) == set(theirs) == {"loss", "accuracy", "weighted_accuracy"}
    for key in theirs:
        check(f"evaluate(sample_weight) {key}", ours[key], theirs[key])
    assert model.metrics_names == ["loss", "accuracy", "weighted_accuracy"]
    listed = model.evaluate(x, y, sample_weight=weights, verbose=0)
    assert dict(zip(model.metrics_names, listed, strict=True)) == ours


def test_class_weight() -> None:
    model, twin = mlp()
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    x, y = data()
    compare_fit("class_weight", model, twin, x, y, epochs=2, class_weight={0: 0.5, 1: 2.0}, validation_split=0.25)


def test_class_weight_with_one_hot_labels() -> None:
    model, twin = mlp()
    compile_both(model, twin, loss="categorical_crossentropy")
    x, y = data()
    compare_fit("class_weight one-hot", model, twin, x, np.eye(3)[y], epochs=1, class_weight={2: 3.0})


def test_validation_freq_initial_epoch_and_validation_data_weights() -> None:
    model, twin = mlp()
    compile_both(model, twin, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data()
    xv, yv = data(seed=1)
    wv = np.arange(12, dtype=np.float32)
    ours, _ = compare_fit(
        "validation_freq", model, twin, x, y, epochs=4, initial_epoch=1, validation_freq=2, validation_data=(xv, yv, wv)
    )
    assert ours.epoch == [1, 2, 3]
    assert len(ours.history["val_loss"]) == 2  # epochs 2 and 4 (1-based)
    ours, _ = compare_fit(
        "validation_freq list", model, twin, x, y, epochs=3, validation_freq=[1, 3], validation_data=(xv, yv)
    )
    assert len(ours.history["val_accuracy"]) == 2


def test_steps_per_epoch_carries_on_through_the_data() -> None:
    model, twin = mlp()
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    x, y = data()  # 3 batches of 4: epochs take 2, then the 1 left (and warn), then 2 ...
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compare_fit("steps_per_epoch", model, twin, x, y, epochs=3, steps_per_epoch=2)
    ran_out = [w for w in caught if "ran out of data" in str(w.message)]
    assert len(ran_out) == 2  # once from each library
    model, twin = mlp()
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    compare_fit("steps_per_epoch without batch_size", model, twin, x, y, epochs=2, steps_per_epoch=3, batch_size=None)


def test_shuffle_batch_changes_no_update() -> None:
    model, twin = mlp()
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    x, y = data()
    ours = model.fit(x, y, batch_size=4, epochs=2, shuffle="batch", verbose=0)
    theirs = twin.fit(x, y, batch_size=4, epochs=2, shuffle="batch", verbose=0)
    check("shuffle='batch'", ours.history["loss"], theirs.history["loss"])


def test_fit_argument_errors() -> None:
    model, _ = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = data()
    with pytest.raises(ConfigError, match=r"fit got unexpected keyword argument\(s\): max_queue_size\. Either Keras"):
        model.fit(x, y, max_queue_size=3, verbose=0)
    with pytest.raises(ConfigError, match=r"give `sample_weight` or `class_weight`, not both"):
        model.fit(x, y, sample_weight=np.ones(12), class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ConfigError, match=r"`class_weight` must be a dict \{class index: weight\}, got \[1, 2\]"):
        model.fit(x, y, class_weight=[1, 2], verbose=0)
    with pytest.raises(ShapeError, match=r"`sample_weight` must have one weight per sample \(12\), got shape \(5,\)"):
        model.fit(x, y, sample_weight=np.ones(5), verbose=0)
    with pytest.raises(ConfigError, match=r"`validation_freq` must be a positive int or a list of epochs, got 0"):
        model.fit(x, y, validation_freq=0, verbose=0)
    with pytest.raises(ConfigError, match=r"`shuffle` must be True, False or 'batch', got 'yes'"):
        model.fit(x, y, shuffle="yes", verbose=0)
    with pytest.raises(ConfigError, match=r"evaluate got unexpected keyword argument\(s\): workers"):
        model.evaluate(x, y, workers=2)
    with pytest.raises(ConfigError, match=r"`loss_weights` is not supported"):
        model.compile("sgd", "mse", loss_weights=[1.0])


# ----- regularizers and constraints -------------------------------------------------------------------------
REGULARIZED = [
    ("l2 kernel", {"kernel_regularizer": "l2"}),
    ("l1 kernel + bias", {"kernel_regularizer": "l1", "bias_regularizer": "l1"}),
    ("L1L2 object", {"kernel_regularizer": "L1L2"}),  # the class default: 0 and 0, as Keras
    ("activity l2", {"activity_regularizer": "l2"}),
]


@pytest.mark.parametrize(("feature", "kwargs"), REGULARIZED, ids=[r[0] for r in REGULARIZED])
def test_regularized_dense_loss_is_keras_loss(feature: str, kwargs: dict[str, Any]) -> None:
    model, twin = mlp(**kwargs)
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    x, y = data()
    compare_fit(f"regularizer {feature}", model, twin, x, y, epochs=2)
    check(f"regularizer {feature}: evaluate", model.evaluate(x, y, verbose=0), twin.evaluate(x, y, verbose=0))


def test_l1_l2_string_is_the_documented_l1_l2() -> None:
    model, twin = pair(
        lambda: [L.Dense(3, activation="softmax", kernel_regularizer="l1_l2")],
        lambda: [KL.Dense(3, activation="softmax", kernel_regularizer=keras.regularizers.L1L2(0.01, 0.01))],
    )
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    compare_fit("regularizer 'l1_l2'", model, twin, *data(), epochs=2)


def test_regularized_conv_with_objects() -> None:
    def ours() -> list[Any]:
        reg = cl.regularizers
        return [
            L.Conv2D(3, 3, activation="relu", kernel_regularizer=reg.L2(0.05), bias_regularizer=reg.L1(0.02)),
            L.Flatten(),
            L.Dense(2, activation="softmax", kernel_regularizer=reg.l1_l2(l1=0.01, l2=0.03)),
        ]

    def theirs() -> list[Any]:
        reg = keras.regularizers
        return [
            KL.Conv2D(3, 3, activation="relu", kernel_regularizer=reg.L2(0.05), bias_regularizer=reg.L1(0.02)),
            KL.Flatten(),
            KL.Dense(2, activation="softmax", kernel_regularizer=reg.l1_l2(l1=0.01, l2=0.03)),
        ]

    model, twin = pair(ours, theirs, (5, 5, 2))
    compile_both(model, twin, loss="sparse_categorical_crossentropy", optimizer=lambda lib: lib.optimizers.Adam(0.002))
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 5, 5, 2)).astype(np.float32), rng.integers(0, 2, 8)
    compare_fit("regularizers on Conv2D", model, twin, x, y, epochs=2)


CONSTRAINED = [
    ("max_norm", lambda lib: {"kernel_constraint": lib.constraints.MaxNorm(0.5)}),
    ("non_neg", lambda lib: {"kernel_constraint": "non_neg", "bias_constraint": "non_neg"}),
    ("unit_norm", lambda lib: {"kernel_constraint": lib.constraints.UnitNorm(axis=0)}),
    ("min_max_norm", lambda lib: {"kernel_constraint": lib.constraints.MinMaxNorm(0.2, 0.6, rate=0.5)}),
]


@pytest.mark.parametrize(("feature", "kwargs"), CONSTRAINED, ids=[c[0] for c in CONSTRAINED])
def test_constraints_after_each_step(feature: str, kwargs: Callable[[Any], dict[str, Any]]) -> None:
    model, twin = pair(
        lambda: [L.Dense(4, activation="tanh", **kwargs(cl)), L.Dense(3, activation="softmax")],
        lambda: [KL.Dense(4, activation="tanh", **kwargs(keras)), KL.Dense(3, activation="softmax")],
    )
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    compare_fit(f"constraint {feature}", model, twin, *data(), epochs=2)


def test_frozen_layer_stays_and_regularizer_is_not_counted() -> None:
    model, twin = pair(
        lambda: [L.Dense(5, activation="relu", kernel_regularizer="l2"), L.Dense(3, activation="softmax")],
        lambda: [KL.Dense(5, activation="relu", kernel_regularizer="l2"), KL.Dense(3, activation="softmax")],
    )
    model.layers[0].trainable = False
    twin.layers[0].trainable = False
    frozen = model.layers[0].get_weights()
    compile_both(model, twin, loss="sparse_categorical_crossentropy")
    compare_fit("trainable=False", model, twin, *data(), epochs=2)
    for a, b in zip(model.layers[0].get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(model.trainable_weights) == len(twin.trainable_weights) == 2
    assert len(model.non_trainable_weights) == len(twin.non_trainable_weights) == 2


# ----- loss and metric objects ------------------------------------------------------------------------------
LOSS_CASES = [
    (
        "SparseCategoricalCrossentropy(from_logits)",
        None,
        lambda lib: lib.losses.SparseCategoricalCrossentropy(from_logits=True),
        False,
    ),
    (
        "CategoricalCrossentropy(label_smoothing)",
        "softmax",
        lambda lib: lib.losses.CategoricalCrossentropy(label_smoothing=0.2),
        True,
    ),
    (
        "CategoricalCrossentropy(from_logits, reduction=sum)",
        None,
        lambda lib: lib.losses.CategoricalCrossentropy(from_logits=True, reduction="sum"),
        True,
    ),
    (
        "MeanSquaredError(mean_with_sample_weight)",
        "tanh",
        lambda lib: lib.losses.MeanSquaredError(reduction="mean_with_sample_weight"),
        True,
    ),
]


@pytest.mark.parametrize(("feature", "activation", "loss", "one_hot"), LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_objects_in_fit(feature: str, activation: str | None, loss: Callable[[Any], Any], one_hot: bool) -> None:
    model, twin = pair(
        lambda: [L.Dense(5, activation="relu"), L.Dense(3, activation=activation)],
        lambda: [KL.Dense(5, activation="relu"), KL.Dense(3, activation=activation)],
    )
    model.compile(cl.optimizers.SGD(0.05), loss(cl))
    twin.compile(keras.optimizers.SGD(0.05), loss(keras))
    x, y = data()
    target = np.eye(3, dtype=np.float32)[y] if one_hot else y
    compare_fit(f"loss {feature}", model, twin, x, target, epochs=2, sample_weight=np.linspace(0.5, 1.5, 12))


def test_binary_crossentropy_from_logits_and_metric_objects() -> None:
    model, twin = pair(
        lambda: [L.Dense(4, activation="relu"), L.Dense(1)], lambda: [KL.Dense(4, activation="relu"), KL.Dense(1)]
    )

    def metrics(lib: Any) -> list[Any]:
        return [lib.metrics.BinaryAccuracy(threshold=0.0), lib.metrics.BinaryCrossentropy(from_logits=True)]

    model.compile(cl.optimizers.SGD(0.1), cl.losses.BinaryCrossentropy(from_logits=True), metrics=metrics(cl))
    twin.compile(keras.optimizers.SGD(0.1), keras.losses.BinaryCrossentropy(from_logits=True), metrics=metrics(keras))
    x, y = data(classes=2)
    compare_fit(
        "BinaryCrossentropy(from_logits) + metric objects", model, twin, x, y[:, None].astype(np.float32), epochs=2
    )


def test_top_k_metrics_in_fit() -> None:
    model, twin = pair(lambda: [L.Dense(6, activation="softmax")], lambda: [KL.Dense(6, activation="softmax")])

    def metrics(lib: Any) -> list[Any]:
        return [lib.metrics.SparseTopKCategoricalAccuracy(k=2), lib.metrics.SparseCategoricalCrossentropy()]

    model.compile(cl.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=metrics(cl))
    twin.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=metrics(keras))
    x, y = data(n=16, classes=6)
    compare_fit("SparseTopKCategoricalAccuracy + crossentropy metric", model, twin, x, y, epochs=2)


# ----- optimizers -------------------------------------------------------------------------------------------
OPTIMIZERS = [
    ("AdamW", lambda lib: lib.optimizers.AdamW(0.002, weight_decay=0.5)),
    ("SGD weight_decay", lambda lib: lib.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.05)),
    ("Adam clipnorm", lambda lib: lib.optimizers.Adam(0.002, clipnorm=0.05)),
    ("RMSprop clipvalue", lambda lib: lib.optimizers.RMSprop(0.01, clipvalue=0.01)),
    ("SGD global_clipnorm", lambda lib: lib.optimizers.SGD(0.5, global_clipnorm=0.1)),
    ("ExponentialDecay", lambda lib: lib.optimizers.SGD(lib.optimizers.schedules.ExponentialDecay(0.3, 2, 0.5))),
    (
        "CosineDecay warmup",
        lambda lib: lib.optimizers.Adam(
            lib.optimizers.schedules.CosineDecay(0.0, 4, 0.1, warmup_target=0.01, warmup_steps=2)
        ),
    ),
    (
        "PiecewiseConstantDecay",
        lambda lib: lib.optimizers.SGD(lib.optimizers.schedules.PiecewiseConstantDecay([1, 3], [0.3, 0.1, 0.02])),
    ),
]


@pytest.mark.parametrize(("feature", "optimizer"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizers_and_schedules(feature: str, optimizer: Callable[[Any], Any]) -> None:
    model, twin = mlp()
    compile_both(model, twin, optimizer=optimizer, loss="sparse_categorical_crossentropy")
    compare_fit(f"optimizer {feature}", model, twin, *data(), epochs=2)
    check(f"optimizer {feature}: learning_rate", model.optimizer.learning_rate, float(twin.optimizer.learning_rate))


def test_freezing_between_fits_keeps_each_weights_optimizer_state() -> None:
    model, twin = mlp()
    compile_both(model, twin, optimizer=lambda lib: lib.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x, y = data()
    compare_fit("freeze between fits: first fit", model, twin, x, y, epochs=1)
    model.layers[0].trainable = False
    twin.layers[0].trainable = False
    compare_fit("freeze between fits: frozen first layer", model, twin, x, y, epochs=2)
