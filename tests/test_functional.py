"""Functional models (Input, layer calls on symbolic tensors, Model(inputs, outputs), merge layers) and the Model
API around them (get_layer, shapes, symbolic input/output, trainable, summary, save/load): convlens against
Keras 3 itself on the same weights and data, plus the errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError, ShapeError, StateError
from tests.support.keras_twin import KERAS_WARNINGS, check, import_keras

keras = import_keras()
pytestmark = KERAS_WARNINGS


def residual(lib: Any) -> Any:
    """A small residual block with a concatenation; named layers so weights can be matched by name."""
    layers = lib.layers
    inputs = lib.Input((6, 6, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    y = layers.Conv2D(4, 3, padding="same", name="c2")(x)
    y = layers.BatchNormalization(name="bn")(y)
    z = layers.Activation("relu", name="act")(layers.Add(name="add")([x, y]))
    z = layers.Concatenate(name="cat")([z, x])
    z = layers.MaxPooling2D(name="pool")(z)
    outputs = layers.Dense(3, activation="softmax", name="head")(layers.GlobalAveragePooling2D(name="gap")(z))
    return lib.Model(inputs, outputs, name="residual")


def merges(lib: Any) -> Any:
    layers = lib.layers
    inputs = lib.Input((5,), name="x")
    a = layers.Dense(4, activation="tanh", name="a")(inputs)
    b = layers.Dense(4, name="b")(inputs)
    c = layers.Dense(1, name="c")(inputs)  # broadcasts against the 4 units
    merged = layers.Concatenate(name="cat")(
        [
            layers.Multiply(name="mul")([a, b]),
            layers.Subtract(name="sub")([a, b]),
            layers.Average(name="avg")([a, b, c]),
            layers.Add(name="add")([b, c]),
        ]
    )
    return lib.Model(inputs, layers.Dense(2, name="out")(merged), name="merges")


def twins(build: Any, seed: int = 0) -> tuple[Any, Any]:
    cl.utils.set_random_seed(seed)
    ours, theirs = build(cl), build(keras)
    rng = np.random.default_rng(seed)
    for layer in ours.layers:
        for store in (layer.params, layer.state):
            for name, value in store.items():
                value[...] = (
                    rng.uniform(0.5, 1.5, value.shape) if "variance" in name else rng.normal(0, 0.5, value.shape)
                )
        if layer.get_weights():
            theirs.get_layer(layer.name).set_weights(layer.get_weights())
    return ours, theirs


def images(n: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6, 6, 3)).astype(np.float32), rng.integers(0, 3, n)


def test_residual_block_predicts_and_trains_like_keras() -> None:
    model, twin = twins(residual)
    assert isinstance(model, cl.Model)
    assert model.layers[0].name == "image"
    assert model.count_params() == twin.count_params()
    x, y = images()
    check("functional: predict", model.predict(x, verbose=0), twin.predict(x, verbose=0))
    for lib, m in ((cl, model), (keras, twin)):
        m.compile(lib.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    theirs = twin.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    check("functional: fit loss", ours.history["loss"], theirs.history["loss"])
    for layer in model.layers:
        if layer.get_weights():
            check(f"functional: weights {layer.name}", layer.get_weights(), twin.get_layer(layer.name).get_weights())
    check("functional: evaluate", model.evaluate(x, y, verbose=0), twin.evaluate(x, y, verbose=0))


def test_merge_layers_broadcast_and_train_like_keras() -> None:
    model, twin = twins(merges)
    x = np.random.default_rng(2).normal(size=(8, 5)).astype(np.float32)
    target = np.random.default_rng(3).normal(size=(8, 2)).astype(np.float32)
    check("merges: predict", model.predict(x, verbose=0), twin.predict(x, verbose=0))
    model.compile(cl.optimizers.Adam(0.002), "mse")
    twin.compile(keras.optimizers.Adam(0.002), "mse")
    ours = model.fit(x, target, batch_size=4, epochs=2, shuffle=False, verbose=0)
    theirs = twin.fit(x, target, batch_size=4, epochs=2, shuffle=False, verbose=0)
    check("merges: fit loss", ours.history["loss"], theirs.history["loss"])
    for layer in model.layers:
        if layer.get_weights():
            check(f"merges: weights {layer.name}", layer.get_weights(), twin.get_layer(layer.name).get_weights())


def test_feature_extractor_from_a_sequential_model() -> None:
    cl.utils.set_random_seed(0)
    seq = cl.Sequential(
        [cl.Input((6, 6, 3)), cl.layers.Conv2D(4, 3, name="c"), cl.layers.Flatten(), cl.layers.Dense(2)]
    )
    twin = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    twin.set_weights(seq.get_weights())
    assert seq.layers[0].output.shape == tuple(twin.layers[0].output.shape) == (None, 4, 4, 4)
    assert seq.layers[1].input.shape == tuple(twin.layers[1].input.shape)
    assert seq.layers[0].output_shape == (None, 4, 4, 4)
    assert seq.layers[0].input_shape == (None, 6, 6, 3)
    features = cl.Model(seq.inputs, [seq.layers[0].output, seq.output])
    keras_features = keras.Model(twin.inputs, [twin.layers[0].output, twin.outputs[0]])
    x, _ = images()
    check("feature extractor: predict", features.predict(x, verbose=0), keras_features.predict(x, verbose=0))
    maps, logits = features(x)
    np.testing.assert_array_equal(logits, seq.predict(x, verbose=0))
    assert maps.shape == (8, 4, 4, 4)


def test_get_layer_pop_trainable_and_counts_like_keras() -> None:
    model, twin = twins(residual)
    assert model.get_layer("c2") is model.layers[2] is model.get_layer(index=2) is model.get_layer(2)
    assert model.get_layer(index=-1).name == twin.get_layer(index=-1).name == "head"
    model.get_layer("c1").trainable = False
    twin.get_layer("c1").trainable = False
    assert len(model.trainable_weights) == len(twin.trainable_weights)
    assert len(model.non_trainable_weights) == len(twin.non_trainable_weights)
    text = model.summary_text()
    frozen = 3 * 3 * 3 * 4 + 4 + 2 * 4  # c1 + BatchNormalization's moving statistics
    assert f"Non-trainable params: {frozen:,}" in text
    assert f"Trainable params: {model.count_params() - frozen:,}" in text
    for part in ("add (Add)", "c1[0][0], bn[0][0]", "Connected to"):
        assert part in text
    assert "image (InputLayer)" in text
    seq = cl.Sequential([cl.Input((3,)), cl.layers.Dense(2), cl.layers.Dense(4)])
    last = seq.pop()
    assert last.units == 4
    assert seq.output_shape == (None, 2)
    assert len(seq.layers) == 1
    with pytest.raises(ConfigError, match=r"no layer named 'nope'; the layers are 'image', 'c1'"):
        model.get_layer("nope")
    with pytest.raises(ConfigError, match=r"get_layer index 42 is out of range for 10 layers"):
        model.get_layer(index=42)
    with pytest.raises(ConfigError, match=r"get_layer needs a layer `name` or an `index`, not both or neither"):
        model.get_layer()


def test_functional_save_load_continues_training(tmp_path: Path) -> None:
    model, _ = twins(residual)
    model.compile(cl.optimizers.Adam(0.01), cl.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    x, y = images()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = cl.load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.train_on_batch(x, y) == model.train_on_batch(x, y)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match=r"only Sequential models convert to Keras, ONNX or torch files"):
        model.save(tmp_path / "m.keras")


def test_several_outputs_and_inputs_predict() -> None:
    a, b = cl.Input((3,)), cl.Input((2,))
    joined = cl.layers.Concatenate()([cl.layers.Dense(2)(a), b])
    model = cl.Model([a, b], [joined, cl.layers.Dense(1)(joined)])
    xa, xb = np.ones((5, 3), np.float32), np.zeros((5, 2), np.float32)
    first, second = model.predict([xa, xb], batch_size=2, verbose=0)
    assert (first.shape, second.shape) == ((5, 4), (5, 1))
    assert model.input_shape == [(None, 3), (None, 2)]
    with pytest.raises(ConfigError, match=r"compile needs a model with one input and one output, this one has 2 and 2"):
        model.compile("sgd", "mse")


def test_functional_errors() -> None:
    inputs = cl.Input((4,))
    dense = cl.layers.Dense(3)
    out = dense(inputs)
    with pytest.raises(ConfigError, match=r"the graph is disconnected: 'input_layer\w*' comes from an Input"):
        cl.Model(cl.Input((4,)), out)
    with pytest.raises(ConfigError, match=r"a layer is called twice in this graph; shared layers are not supported"):
        cl.Model(inputs, dense(cl.layers.Dense(4)(out)))  # `dense` runs twice
    with pytest.raises(ConfigError, match=r"subclassing Model with a call\(\) method is not supported"):
        cl.Model()
    with pytest.raises(ConfigError, match=r"Add 'add\w*': expects a list of tensors, got one tensor"):
        cl.layers.Add()(out)
    with pytest.raises(ConfigError, match=r"Dense 'dense\w*': expects one tensor, got a list"):
        cl.layers.Dense(2)([out, out])
    with pytest.raises(ShapeError, match=r"Add 'add\w*': input shapes \[\(None, 3\), \(None, 4\)\] do not broadcast"):
        cl.layers.Add()([out, cl.layers.Dense(4)(inputs)])
    with pytest.raises(ShapeError, match=r"expected input of shape \(None, 4\), got \(2, 5\)"):
        cl.Model(inputs, out).predict(np.zeros((2, 5)), verbose=0)
    with pytest.raises(ConfigError, match=r"Input: `sparse` is not supported by convlens, got sparse=True"):
        cl.Input((3,), sparse=True)
    with pytest.raises(StateError, match=r"`output` needs exactly one symbolic call, but the layer has never been"):
        _ = cl.layers.Dense(2).output
    with pytest.raises(ConfigError, match=r"the lab's detailed summary covers Sequential models"):
        cl.Model(inputs, out).summary(detail=True)
