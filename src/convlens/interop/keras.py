"""Keras 3 files without Keras: ``.keras`` archives and ``.weights.h5`` weight files, read and written.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (Keras's serialisation of the
``Sequential``) and ``model.weights.h5`` (HDF5: ``layers/<snake_case class>[_k]/vars/<i>``, each layer's
weights in ``get_weights`` order, as Keras 3's saving library writes them). convlens writes the same
layout with h5py (atomically), so ``keras.saving.load_model`` opens it; reading parses JSON and HDF5
only: nothing in the file is executed (``Lambda`` layers are refused).

>>> from convlens.interop.keras import KERAS_LAYERS
>>> "Conv2D" in KERAS_LAYERS
True

Shapes:
    identical in Keras and convlens (channels-last inputs, kernels (KH, KW, C / G, F), Flatten (H, W, C)).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConfigError, DataError, ShapeError
from convlens.interop.keras_config import KERAS_LAYERS, from_keras_layer, h5_paths, to_keras_layers
from convlens.interop.layout import atomic_write_bytes
from convlens.layers.base import Layer
from convlens.models import Sequential

__all__ = ["KERAS_LAYERS", "load_model", "load_weights", "save_model", "save_weights"]

# The Keras release whose files this writer was checked against (keras.saving.load_model opens them).
KERAS_VERSION = "3.15.1"


def _h5py() -> Any:
    from convlens.interop.onnx import require

    return require("h5py")


def _weights_h5(model: Sequential) -> bytes:
    """The HDF5 weight file of ``model`` in Keras 3's layout, as bytes."""
    h5py = _h5py()
    entries = to_keras_layers(model.layers)
    paths = h5_paths([entry["class_name"] for entry, _ in entries])
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_group("layers")
        for (entry, layer), path in zip(entries, paths, strict=True):
            group = handle.create_group(path).create_group("vars")
            group.attrs["name"] = entry["config"]["name"]
            for i, weight in enumerate(layer.get_weights() if layer is not None else []):
                group.create_dataset(str(i), data=np.asarray(weight, dtype=np.float32))
        handle.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def _model_config(model: Sequential) -> dict[str, Any]:
    input_shape = [None, *(int(s) for s in model.input_shape[1:])]  # type: ignore[index, union-attr, arg-type]
    layers = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": input_shape, "dtype": "float32", "sparse": False, "name": "input_layer"},
            "registered_name": None,
        },
        *(entry for entry, _ in to_keras_layers(model.layers)),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": model.name, "trainable": True, "layers": layers, "build_input_shape": input_shape},
        "registered_name": None,
        "build_config": {"input_shape": input_shape},
    }


def save_model(model: Sequential, path: Any) -> Path:
    """Write ``model`` as a Keras 3 ``.keras`` archive (atomically); returns the path.

    Raises:
        ConfigError: for a layer without a Keras equivalent.
    """
    model._require_built("save")
    from convlens import __version__

    metadata = {
        "keras_version": KERAS_VERSION,
        "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
        "saved_by": f"convlens {__version__}",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(_model_config(model)))
        archive.writestr("model.weights.h5", _weights_h5(model))
    return atomic_write_bytes(path, buffer.getvalue())


def save_weights(model: Sequential, path: Any) -> Path:
    """Write the weights as a Keras 3 ``.weights.h5`` file (``keras_model.load_weights`` reads it)."""
    model._require_built("save_weights")
    if not str(path).endswith(".weights.h5"):
        raise ConfigError(f"save_weights: a Keras weight file name must end in .weights.h5, got '{Path(path).name}'.")
    return atomic_write_bytes(path, _weights_h5(model))


def _read_weights(handle: Any, pairs: list[tuple[Layer | None, str]], source: str) -> None:
    """Set each layer's weights from group ``<path>/vars`` of an open Keras weight file."""
    for layer, path in pairs:
        if layer is None or not layer.get_weights():
            continue
        expected = len(layer.get_weights())
        group = handle.get(f"{path}/vars")
        if group is None:
            raise DataError(f"{source}: no weights for {layer!r} (expected group '{path}/vars').")
        if len(group) != expected:
            raise ShapeError(f"{source}: '{path}/vars' holds {len(group)} arrays, {layer!r} has {expected} weights.")
        try:
            layer.set_weights([np.asarray(group[str(i)]) for i in range(expected)])
        except ShapeError as exc:
            raise ShapeError(f"{source}: '{path}': {exc}") from None


def _convlens_paths(model: Sequential) -> list[tuple[Layer | None, str]]:
    entries = to_keras_layers(model.layers)
    return list(zip([layer for _, layer in entries], h5_paths([e["class_name"] for e, _ in entries]), strict=True))


def load_weights(model: Sequential, path: Any) -> Sequential:
    """Load a Keras 3 ``.weights.h5`` file (from ``keras_model.save_weights``) into a built ``model``.

    The layers are matched as Keras matches them: by class and position (``layers/conv2d_1``).

    Raises:
        DataError: for a missing or malformed file; ShapeError when a weight does not fit its layer.
    """
    model._require_built("load_weights")
    h5py = _h5py()
    source = f"Keras weights '{Path(path).name}'"
    if not Path(path).is_file():
        raise DataError(f"{source}: no such file: '{path}'.")
    try:
        with h5py.File(str(path), "r") as handle:
            _read_weights(handle, _convlens_paths(model), source)
    except OSError as exc:
        raise DataError(f"{source} is not an HDF5 weight file: {exc}.") from None
    return model


def load_model(path: Any) -> Sequential:
    """Read a Keras 3 ``.keras`` archive of a ``Sequential`` into a convlens model (no code runs).

    Raises:
        DataError: for a file that is not a readable ``.keras`` archive.
        ConfigError: for a layer convlens does not have (naming it and listing the supported ones).
    """
    path = Path(path)
    source = f"Keras file '{path.name}'"
    if not path.is_file():
        raise DataError(f"{source}: no such file: '{path}'.")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json").decode("utf-8"))
            weights = archive.read("model.weights.h5") if "model.weights.h5" in archive.namelist() else None
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
        raise DataError(f"{source} is not a Keras 3 archive (zip with config.json): {exc}.") from None
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        found = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ConfigError(
            f"{source}: holds a {found!r} model; convlens reads Keras Sequential models. Hint: rebuild it as "
            "keras.Sequential([...]) with the same layers."
        )
    entries = config.get("config", {}).get("layers", [])
    model = Sequential(name=config.get("config", {}).get("name"))
    from convlens.layers import Input

    class_names = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("class_name") == "InputLayer":
            layer_config = entry.get("config", {})
            shape = layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
            model.add(Input(shape=tuple(shape[1:])))
            continue
        layer = from_keras_layer(entry, source)
        if not model.layers and model.input_shape is None:
            build = entry.get("build_config", {}).get("input_shape") or config.get("build_config", {}).get(
                "input_shape"
            )
            if build:
                model.add(Input(shape=tuple(build[1:])))
        model.add(layer)
        class_names.append(str(entry["class_name"]))
    if not model.built:
        raise DataError(f"{source}: the model has no input shape (no InputLayer or build_config); convlens needs one.")
    if weights is None:
        raise DataError(f"{source} has no model.weights.h5.")
    h5py = _h5py()
    try:
        with h5py.File(io.BytesIO(weights), "r") as handle:
            pairs: list[tuple[Layer | None, str]] = list(zip(model.layers, h5_paths(class_names), strict=True))
            _read_weights(handle, pairs, source)
    except OSError as exc:
        raise DataError(f"{source}: model.weights.h5 is not an HDF5 file: {exc}.") from None
    return model
