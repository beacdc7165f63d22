"""fit/evaluate/predict take an ImageDataset as x, as Keras takes a dataset: same results as the arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convlens as cl
from convlens.errors import ConfigError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for label, name in enumerate(["bright", "dark"]):
        for i in range(7):
            base = 180 if label == 0 else 60
            pixels = np.clip(base + rng.integers(-40, 40, (6, 6)), 0, 255).astype(np.uint8)
            (tmp_path / name).mkdir(exist_ok=True)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    return tmp_path


def _model(kind: str = "sequential") -> cl.Model:
    cl.utils.set_random_seed(0)
    layers = [cl.layers.Conv2D(2, 3, activation="relu"), cl.layers.Flatten(), cl.layers.Dense(2, activation="softmax")]
    if kind == "sequential":
        model = cl.Sequential([cl.Input((6, 6, 1)), *layers])
    else:  # the same stack as a Functional model
        x = inputs = cl.Input((6, 6, 1))
        for layer in layers:
            x = layer(x)
        model = cl.Model(inputs, x)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _dataset(folder: Path, **kwargs):
    options = {"color_mode": "grayscale", "image_size": 6, "batch_size": 4, "verbose": False, "seed": 1}
    return cl.utils.image_dataset_from_directory(folder, **{**options, **kwargs})


@pytest.mark.parametrize("kind", ["sequential", "functional"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_evaluate_predict_equal_the_arrays(folder, shuffle, kind):
    ds = _dataset(folder, shuffle=shuffle)
    x, y = ds.to_arrays()
    by_dataset, by_arrays = _model(kind), _model(kind)
    history = by_dataset.fit(ds, epochs=2, verbose=0)
    expected = by_arrays.fit(x, y, batch_size=4, epochs=2, shuffle=shuffle, verbose=0)
    assert history.history == expected.history
    for got, want in zip(by_dataset.get_weights(), by_arrays.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert by_dataset.evaluate(ds, verbose=0) == by_arrays.evaluate(x, y, batch_size=4, verbose=0)
    np.testing.assert_array_equal(by_dataset.predict(ds, verbose=0), by_arrays.predict(x, verbose=0))


def test_validation_data_may_be_a_dataset(folder):
    training, validation = _dataset(folder, validation_split=0.3, subset="both")
    vx, vy = validation.to_arrays()
    history = _model().fit(training, epochs=1, validation_data=validation, verbose=0).history
    expected = _model().fit(*training.to_arrays(), batch_size=4, epochs=1, validation_data=(vx, vy), verbose=0)
    assert history == expected.history
    assert "val_accuracy" in history


def test_predict_takes_an_unlabelled_dataset(folder):
    ds = _dataset(folder, labels=None, shuffle=False)
    model = _model()
    np.testing.assert_array_equal(model.predict(ds, verbose=0), model.predict(ds.to_arrays(), verbose=0))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m, ds: m.fit(ds, np.zeros(14), verbose=0), r"fit: `y` must not be given when `x` is an ImageDataset"),
        (lambda m, ds: m.fit(ds, batch_size=8, verbose=0), r"fit: `batch_size` must not be given when `x` is an "),
        (lambda m, ds: m.fit(ds, validation_split=0.2, verbose=0), r"fit: `validation_split` must not be given"),
        (lambda m, ds: m.evaluate(ds, batch_size=8, verbose=0), r"evaluate: `batch_size` must not be given"),
        (lambda m, ds: m.predict(ds, 8, verbose=0), r"predict: `batch_size` must not be given"),
    ],
)
def test_keras_rules_for_dataset_inputs(folder, call, match):
    with pytest.raises(ConfigError, match=rf"^Sequential 'sequential(_\d+)?': {match}"):
        call(_model(), _dataset(folder))


def test_fit_needs_labels(folder):
    with pytest.raises(
        ConfigError,
        match=r"^Sequential '.*': fit: the ImageDataset has no labels \(made with labels=None or label_mode=None\)\.$",
    ):
        _model().fit(_dataset(folder, label_mode=None), verbose=0)
