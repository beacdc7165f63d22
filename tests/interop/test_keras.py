"""Keras 3 archives and weight files, checked with Keras 3 itself (torch backend)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: the light backend (torch is in the test extra)

import convlens as cl
from convlens.errors import ConfigError, DataError
from tests.interop.helpers import max_diff, need, randomize

need("torch")
need("h5py")
keras = need("keras")
ck = cl.interop.keras
L = cl.layers
# Keras 3.15's torch backend hands NumPy an __array__ without the copy keyword (NumPy 2 deprecation).
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def convlens_model() -> cl.Sequential:
    """Every layer Keras has; explicit conv padding (written as ZeroPadding2D); Flatten of 3 channels, 3x2."""
    return randomize(
        cl.Sequential(
            [
                L.Conv2D(4, 3, strides=2, padding="same", activation="relu", input_shape=(9, 8, 2)),
                L.BatchNormalization(),
                L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="tanh"),
                L.Conv2D(3, 2, padding=((0, 1), (1, 1)), groups=1),
                L.MaxPooling2D(2, padding="same"),
                L.AveragePooling2D(2, strides=1, padding="same"),
                L.ZeroPadding2D(((1, 0), (0, 0))),
                L.ReLU(negative_slope=0.1),
                L.Flatten(),
                L.Dropout(0.2),
                L.Dense(6, activation="gelu"),
                L.Dense(3),
                L.Softmax(),
            ]
        )
    )


def keras_model() -> Any:
    """Built in Keras: BatchNormalization, DepthwiseConv2D, LeakyReLU, Flatten of 8 channels on 2x4."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 10, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    bn = model.layers[1]
    rng = np.random.default_rng(5)
    bn.set_weights([rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)])
    return model


def test_convlens_keras_archive_predicts_the_same_in_keras(tmp_path: Path) -> None:
    model = convlens_model()
    path = tmp_path / "m.keras"
    model.save(path)
    assert sorted(zipfile.ZipFile(path).namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(5, 9, 8, 2)).astype(np.float32)
    assert max_diff(np.asarray(loaded.predict(x, verbose=0)), model.predict(x, verbose=0)) < 1e-5
    assert loaded.count_params() == model.count_params()
    # and convlens reads its own archive back exactly
    again = cl.load_model(path)
    assert max_diff(again.predict(x, verbose=0), model.predict(x, verbose=0)) == 0.0


def test_keras_built_model_loads_into_convlens(tmp_path: Path) -> None:
    model = keras_model()
    model.save(tmp_path / "k.keras")
    ours = cl.load_model(tmp_path / "k.keras")
    x = np.random.default_rng(1).normal(size=(4, 6, 10, 2)).astype(np.float32)
    assert max_diff(ours.predict(x, verbose=0), np.asarray(model.predict(x, verbose=0))) < 1e-5
    assert ours.count_params() == model.count_params()
    assert [type(layer).__name__ for layer in ours.layers][:4] == [
        "Conv2D",
        "BatchNormalization",
        "DepthwiseConv2D",
        "ReLU",
    ]


def test_weights_files_both_ways(tmp_path: Path) -> None:
    model = keras_model()
    model.save_weights(tmp_path / "k.weights.h5")
    model.save(tmp_path / "k.keras")
    ours = randomize(cl.load_model(tmp_path / "k.keras"), seed=3)
    x = np.random.default_rng(2).normal(size=(3, 6, 10, 2)).astype(np.float32)
    expected = np.asarray(model.predict(x, verbose=0))
    assert max_diff(ours.predict(x, verbose=0), expected) > 1e-3
    ck.load_weights(ours, tmp_path / "k.weights.h5")
    assert max_diff(ours.predict(x, verbose=0), expected) < 1e-5
    # convlens -> Keras weights
    ours.layers[0].params["bias"][...] += 0.25
    ours.save_weights(tmp_path / "c.weights.h5")
    model.load_weights(tmp_path / "c.weights.h5")
    assert max_diff(np.asarray(model.predict(x, verbose=0)), ours.predict(x, verbose=0)) < 1e-5


def test_lambda_and_custom_layers_are_refused(tmp_path: Path) -> None:
    model = convlens_model()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    config["config"]["layers"][2] = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"name": "boom", "function": "os.system"},
    }
    with zipfile.ZipFile(tmp_path / "lambda.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights)
    with pytest.raises(ConfigError, match=r"layer 'boom' \(Lambda\) holds Python code; convlens never executes code"):
        cl.load_model(tmp_path / "lambda.keras")
    config["config"]["layers"][2] = {
        "module": None,
        "class_name": "MyLayer",
        "config": {"name": "mine"},
        "registered_name": "pkg>MyLayer",
    }
    with zipfile.ZipFile(tmp_path / "custom.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    with pytest.raises(
        ConfigError, match=r"layer 'mine' \(MyLayer\) is not supported; convlens reads these Keras layers: Activation"
    ):
        cl.load_model(tmp_path / "custom.keras")


def test_functional_and_malformed_files(tmp_path: Path) -> None:
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "f.keras")
    with pytest.raises(ConfigError, match=r"holds a 'Functional' model; convlens reads Keras Sequential models"):
        cl.load_model(tmp_path / "f.keras")
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"Keras file 'bad.keras' is not a Keras 3 archive"):
        cl.load_model(tmp_path / "bad.keras")
    with zipfile.ZipFile(tmp_path / "noh5.keras", "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        archive.writestr("model.weights.h5", b"not hdf5")
    with pytest.raises(DataError, match=r"model.weights.h5 is not an HDF5 file|has no input shape"):
        cl.load_model(tmp_path / "noh5.keras")
    (tmp_path / "bad.weights.h5").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"Keras weights 'bad.weights.h5' is not an HDF5 weight file"):
        ck.load_weights(cl.Sequential([L.Dense(2, input_shape=(3,))]), tmp_path / "bad.weights.h5")
