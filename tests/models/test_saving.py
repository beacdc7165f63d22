"""``save`` / ``load_model`` / ``save_weights`` / ``load_weights``: one plain ``.npz`` file, written atomically."""

from __future__ import annotations

import gc
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import DataError, ShapeError
from convlens.layers import LAYER_REGISTRY
from convlens.saving import FORMAT
from convlens.utils import set_random_seed

L = cl.layers


def course_model(seed: int = 0) -> cl.Sequential:
    set_random_seed(seed)
    model = cl.course.build_course_model(filters=4, input_shape=(10, 10, 1))
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return model


def data(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 10, 10, 1), dtype=np.float32), rng.integers(0, 10, n)


def test_round_trip_predictions_config_history(tmp_path: Path) -> None:
    model = course_model()
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = cl.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_config() == model.get_config()
    assert loaded.name == model.name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.count_params() == model.count_params()
    assert loaded.compiled
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.loss.name == "sparse_categorical_crossentropy"
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert loaded.history is not None
    assert model.history is not None
    assert loaded.history.history == model.history.history
    assert loaded.history.epoch == [0, 1]
    for w in loaded.get_weights():
        assert w.dtype == np.float32


def test_training_resumes_exactly_after_load(tmp_path: Path) -> None:
    """Adam's moments and step count are saved: continuing after a reload equals never stopping."""
    x, y = data()
    model = course_model()
    for lo in range(0, 24, 8):
        model.train_on_batch(x[lo : lo + 8], y[lo : lo + 8])
    model.save(tmp_path / "m.npz")
    loaded = cl.load_model(tmp_path / "m.npz")
    assert loaded.optimizer.iterations == model.optimizer.iterations == 3
    for m in (model, loaded):
        m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Without the optimizer state the continuation differs (the check above can fail).
    fresh = course_model()
    fresh.set_weights(cl.load_model(tmp_path / "m.npz").get_weights())
    fresh.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert not np.array_equal(fresh.get_weights()[0], model.get_weights()[0])


def test_the_file_is_a_plain_npz(tmp_path: Path) -> None:
    model = course_model()
    model.train_on_batch(*data(8))
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        config = json.loads(archive["__config__"].tobytes().decode("utf-8"))
        kernel = archive["layer_0/0"]
        assert archive["__config__"].dtype == np.uint8
    assert config["format"] == FORMAT
    assert [entry["class_name"] for entry in config["model"]["layers"]] == [
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    assert {"layer_0/0", "layer_0/1", "layer_3/0", "layer_3/1"} <= names
    assert any(name.startswith("optimizer/") for name in names)
    np.testing.assert_array_equal(kernel, model.get_weights()[0])


def test_uncompiled_and_lazily_built_models(tmp_path: Path) -> None:
    model = cl.Sequential([L.Conv2D(2, 3), L.Flatten(), L.Dense(3)])
    x = np.random.default_rng(0).random((2, 5, 5, 1), dtype=np.float32)
    expected = model.predict(x, verbose=0)  # builds from the data
    model.save(tmp_path / "lazy.npz")
    loaded = cl.load_model(tmp_path / "lazy.npz")
    assert loaded.built
    assert not loaded.compiled
    assert loaded.input_shape == (None, 5, 5, 1)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)


def test_atomic_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = course_model()
    path = tmp_path / "m.npz"
    model.save(path)
    old = path.read_bytes()
    model.train_on_batch(*data(8))

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(tmp_path / "w.npz")
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left


def test_bad_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match=r"load_model: no such file: '.*missing\.npz'"):
        cl.load_model(missing)

    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(DataError, match=r"is not a convlens model file"):
        cl.load_model(text)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(DataError, match=r"has no __config__ entry; it was not written by convlens"):
        cl.load_model(foreign)

    def with_config(name: str, payload: bytes) -> Path:
        path = tmp_path / name
        np.savez(path, __config__=np.frombuffer(payload, dtype=np.uint8))
        return path

    formats = r"\['convlens.model/1', 'convlens.model/2'\]"
    with pytest.raises(DataError, match=r"has format 'keras/3', expected one of " + formats):
        cl.load_model(with_config("other.npz", json.dumps({"format": "keras/3"}).encode()))
    with pytest.raises(DataError, match=r"has a __config__ that is a JSON list, expected an object"):
        cl.load_model(with_config("list.npz", b"[1, 2]"))
    with pytest.raises(DataError, match=r"has a corrupt __config__"):
        cl.load_model(with_config("corrupt.npz", b"{not json"))
    legacy = "convlens.model/1"  # no checksums: the structural checks still apply
    layers = [{"class_name": "Lambda", "config": {}}]
    unknown = {"format": legacy, "model": {"name": "m", "input_shape": [3], "layers": layers}}
    with pytest.raises(DataError, match=r"layer 0 names an unknown layer class 'Lambda'"):
        cl.load_model(with_config("unknown.npz", json.dumps(unknown).encode()))

    model = course_model()
    model.save(tmp_path / "full.npz")
    with np.load(tmp_path / "full.npz") as archive:
        arrays = {k: archive[k] for k in archive.files if k != "layer_3/0"}
    np.savez(tmp_path / "truncated.npz", **arrays)
    with pytest.raises(DataError, match=r"lacks array\(s\) layer_3/0 listed in its checksums"):
        cl.load_model(tmp_path / "truncated.npz")


def test_corrupt_zip_is_reported_and_closed(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match=r"load_model: '.*garbage\.npz' is not a convlens model file \(\.npz\)"):
            cl.load_model(garbage)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_save_and_load_weights(tmp_path: Path) -> None:
    source = course_model(seed=1)
    source.train_on_batch(*data(8))
    source.save_weights(tmp_path / "w.npz")
    source.save(tmp_path / "full.npz")
    x, _ = data()
    for name in ("w.npz", "full.npz"):
        target = course_model(seed=2)
        assert not np.array_equal(target.predict(x, verbose=0), source.predict(x, verbose=0))
        target.load_weights(tmp_path / name)
        np.testing.assert_array_equal(target.predict(x, verbose=0), source.predict(x, verbose=0))
    with pytest.raises(DataError, match=r"holds only weights; build the model and call load_weights"):
        cl.load_model(tmp_path / "w.npz")
    other = cl.course.build_course_model(filters=5, input_shape=(10, 10, 1))
    with pytest.raises(ShapeError, match=r"weight 'kernel' must have shape \(3, 3, 1, 5\), got \(3, 3, 1, 4\)"):
        other.load_weights(tmp_path / "w.npz")


def _models_with_every_layer() -> list[tuple[cl.Sequential, np.ndarray]]:
    rng = np.random.default_rng(0)
    specs: list[tuple[tuple[int, ...], list[Any]]] = [
        (
            (8, 8, 2),
            [
                L.ZeroPadding2D(1),
                L.Conv2D(4, 3, activation="relu", kernel_initializer="he_normal"),
                L.BatchNormalization(),
                L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
                L.MaxPooling2D(2),
                L.AveragePooling2D(2, padding="same"),
                L.Activation("tanh"),
                L.ReLU(max_value=6.0, negative_slope=0.1),
                L.Dropout(0.3, seed=1),
                L.Flatten(),
                L.Dense(5, use_bias=False),
                L.Softmax(),
            ],
        ),
        (
            (6, 6, 3),
            [L.Conv2D(4, 3, strides=2, padding=((1, 0), (0, 1)), groups=1), L.GlobalAveragePooling2D(), L.Dense(2)],
        ),
        ((6, 6, 3), [L.Conv2D(6, 3, groups=3, dilation_rate=1), L.GlobalMaxPooling2D(keepdims=True), L.Flatten()]),
        (
            (12, 3),
            [
                L.ZeroPadding1D(2),
                L.Conv1D(4, 3, padding="causal", activation="sigmoid"),
                L.MaxPooling1D(2),
                L.AveragePooling1D(2),
                L.GlobalMaxPooling1D(),
                L.Dense(2),
            ],
        ),
        ((12, 3), [L.Conv1D(2, 3, dilation_rate=2), L.GlobalAveragePooling1D(), L.Dense(2)]),
        (
            (6, 6, 2),
            [
                L.Rescaling(0.5, offset=0.1),
                L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1, kernel_regularizer="l2"),
                L.SeparableConv2D(4, 3, depth_multiplier=2, pointwise_constraint="max_norm"),
                L.LayerNormalization(axis=[1, 2]),
                L.UpSampling2D(2, interpolation="bilinear"),
                L.Cropping2D(((1, 2), (0, 1))),
                L.Flatten(),
                L.Dense(2, activity_regularizer=cl.regularizers.L1L2(0.01, 0.02)),
            ],
        ),
        (
            (6, 6, 2),
            [
                L.RandomFlip("horizontal", seed=1),
                L.RandomTranslation(0.2, 0.1, seed=2),
                L.SpatialDropout2D(0.3),
                L.Flatten(),
            ],
        ),
    ]
    models = []
    for shape, layers in specs:
        set_random_seed(0)
        model = cl.Sequential([L.Input(shape), *layers])
        model.compile("adam", "mse")
        x = rng.standard_normal((4, *shape)).astype(np.float32)
        target = rng.standard_normal((4, *model.output_shape[1:])).astype(np.float32)
        model.train_on_batch(x, target)  # non-trivial weights, BN statistics, Adam moments
        model.train_on_batch(x, target)
        models.append((model, x))
    models.append(_functional_with_every_merge(rng))
    return models


def _functional_with_every_merge(rng: np.random.Generator) -> tuple[cl.Model, np.ndarray]:
    """The merge layers exist only in Functional models: one graph with each of them."""
    set_random_seed(0)
    inputs = L.Input((5, 5, 2))
    a = L.Conv2D(3, 3, padding="same")(inputs)
    b = L.Conv2D(3, 1, activation="tanh")(inputs)
    merged = L.Concatenate()([L.Add()([a, b]), L.Subtract()([a, b]), L.Multiply()([a, b]), L.Average()([a, b, a])])
    model = cl.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(merged)))
    model.compile("adam", "mse")
    x = rng.standard_normal((4, 5, 5, 2)).astype(np.float32)
    model.train_on_batch(x, rng.standard_normal((4, 2)).astype(np.float32))
    return model, x


def test_every_layer_class_round_trips(tmp_path: Path) -> None:
    models = _models_with_every_layer()
    covered = {type(layer).__name__ for model, _ in models for layer in model.layers} | {"Input"}
    assert covered == set(LAYER_REGISTRY)
    for i, (model, x) in enumerate(models):
        path = tmp_path / f"m{i}.npz"
        model.save(path)
        loaded = cl.load_model(path)
        assert loaded.get_config() == model.get_config()
        assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
        for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
        if any(hasattr(layer, "rng") for layer in model.layers):
            continue  # random layers: the generator's position is not saved (nor is it by Keras)
        # Training continues identically (optimizer state restored for every weight).
        target = np.ones((4, *model.output_shape[1:]), np.float32)
        assert loaded.train_on_batch(x, target) == model.train_on_batch(x, target)
        for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
