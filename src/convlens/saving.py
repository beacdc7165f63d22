"""Saving and loading models: one ``.npz`` file holding a JSON config plus named arrays.

The file is a plain NumPy archive (``allow_pickle=False`` on load), so loading never runs code:

* ``__config__``: UTF-8 JSON (as a uint8 array) with the architecture, compile settings, history;
* ``layer_<i>/<weight>``: each layer's weights in Keras layouts;
* ``optimizer/<slot>``: the optimizer's state (so training resumes where it stopped).

Files are written atomically: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convlens.errors import DataError

if TYPE_CHECKING:
    from convlens.models import Model

__all__ = ["FORMAT", "load_checkpoint", "load_model", "load_weights", "save_checkpoint", "save_model", "save_weights"]

FORMAT = "convlens.model/1"


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_array(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def _weight_arrays(model: Model) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(model.layers):
        for j, weight in enumerate(layer.get_weights()):
            arrays[f"layer_{i}/{j}"] = weight
    return arrays


def _metric_names(ids: list[Any]) -> list[Any]:
    """Names as given, metric objects as ``{"class_name", "config"}`` (``metrics.get`` reads both)."""
    return [m if isinstance(m, str) else {"class_name": type(m).__name__, "config": m.get_config()} for m in ids]


def save_model(model: Model, path: Any) -> None:
    """Write ``model`` (architecture, weights, compile settings, optimizer state, history) to ``path``."""
    model._require_built("save")
    path = Path(path)
    config: dict[str, Any] = {"format": FORMAT, "model": model.get_config()}
    arrays = _weight_arrays(model)
    if model.compiled:
        config["compile"] = {
            "optimizer": {
                "class_name": type(model.optimizer).__name__,
                "config": model.optimizer.get_config(),
            },
            "loss": _loss_config(model.loss),
            "metrics": _metric_names(model._metric_ids),
            "weighted_metrics": _metric_names(model._weighted_metric_ids),
            "iterations": int(model.optimizer.iterations),
        }
        for key, value in model.optimizer.get_state().items():
            arrays[f"optimizer/{key}"] = value
    if model.history is not None:
        config["history"] = {
            "history": {k: [float(v) for v in vs] for k, vs in model.history.history.items()},
            "epoch": [int(e) for e in model.history.epoch],
        }
    arrays["__config__"] = _json_array(config)
    _atomic_savez(path, arrays)


def _loss_config(loss: Any) -> Any:
    """The loss's Keras name when it has default settings (files stay readable by older convlens), else its config."""
    from convlens import losses

    config = losses.serialize(loss)
    default = losses.get(loss.function_name)
    return loss.function_name if config == losses.serialize(default) else config


def save_weights(model: Model, path: Any) -> None:
    """Write only the weights (plus a minimal header) to ``path``."""
    model._require_built("save_weights")
    arrays = _weight_arrays(model)
    arrays["__config__"] = _json_array({"format": FORMAT, "weights_only": True})
    _atomic_savez(Path(path), arrays)


def _read(path: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_model: no such file: '{path}'.")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DataError(f"load_model: '{path}' is not a convlens model file (.npz): {exc}.") from exc
    if "__config__" not in arrays:
        raise DataError(f"load_model: '{path}' has no __config__ entry; it was not written by convlens.")
    try:
        config = json.loads(arrays.pop("__config__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"load_model: '{path}' has a corrupt __config__: {exc}.") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise DataError(f"load_model: '{path}' has format {found!r}, expected {FORMAT!r}.")
    return config, arrays


def _assign_weights(model: Model, arrays: dict[str, np.ndarray], path: Any) -> None:
    weights = []
    for i, layer in enumerate(model.layers):
        n = len(layer.get_weights())
        for j in range(n):
            key = f"layer_{i}/{j}"
            if key not in arrays:
                raise DataError(f"load: '{path}' lacks weight {key} for {layer!r}.")
            weights.append(arrays[key])
    model.set_weights(weights)


def load_model(path: Any) -> Model:
    """Rebuild a model saved by :meth:`Model.save` (Sequential or Functional; compiled again if it was compiled)."""
    config, arrays = _read(path)
    if config.get("weights_only"):
        raise DataError(f"load_model: '{path}' holds only weights; build the model and call load_weights.")
    model = _architecture(config["model"], path)
    _assign_weights(model, arrays, path)
    compile_config = config.get("compile")
    if compile_config:
        from convlens import optimizers

        model.compile(
            optimizer=optimizers.get(compile_config["optimizer"]),
            loss=compile_config["loss"],
            metrics=compile_config["metrics"],
            weighted_metrics=compile_config.get("weighted_metrics"),
        )
        state = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        if state:
            model.optimizer.set_state(state)
        model.optimizer.iterations = int(compile_config.get("iterations", 0))
    if config.get("history"):
        from convlens.callbacks import History

        history = History()
        history.history = {k: list(v) for k, v in config["history"]["history"].items()}
        history.epoch = list(config["history"]["epoch"])
        model.history = history
    return model


def _architecture(model_config: dict[str, Any], path: Any) -> Model:
    from convlens.errors import ConfigError
    from convlens.layers import LAYER_REGISTRY
    from convlens.models import Sequential

    if model_config.get("class_name") == "Functional":
        from convlens.functional import Functional

        try:
            return Functional.from_config(model_config, LAYER_REGISTRY)
        except ConfigError as exc:
            raise DataError(f"load_model: '{path}' has a model graph convlens cannot rebuild: {exc}") from exc
    layers = []
    for entry in model_config["layers"]:
        cls = LAYER_REGISTRY.get(entry.get("class_name"))
        if cls is None:
            raise DataError(f"load_model: '{path}' names an unknown layer class {entry.get('class_name')!r}.")
        layers.append(cls.from_config(entry["config"]))
    model = Sequential(name=model_config.get("name"))
    for layer in layers:
        model.add(layer)
    if not model.built and model_config.get("input_shape") is not None:
        model.build((None, *model_config["input_shape"]))
    return model


def load_weights(model: Model, path: Any) -> None:
    """Load weights from a file written by ``save`` or ``save_weights`` into a built ``model``."""
    model._require_built("load_weights")
    _, arrays = _read(path)
    _assign_weights(model, arrays, path)


def save_checkpoint(model: Model, path: Any, metadata: dict[str, Any]) -> None:
    """Write the training state (weights, the optimizer's slots and step count) and JSON ``metadata`` to ``path``
    (what ``BackupAndRestore`` keeps)."""
    arrays = _weight_arrays(model)
    if model.optimizer is not None:
        for key, value in model.optimizer.get_state().items():
            arrays[f"optimizer/{key}"] = value
    arrays["__config__"] = _json_array({"format": FORMAT, "weights_only": True, "checkpoint": metadata})
    _atomic_savez(Path(path), arrays)


def load_checkpoint(model: Model, path: Any) -> dict[str, Any]:
    """Restore what :func:`save_checkpoint` wrote into ``model`` (its optimizer too); returns the metadata.

    Raises:
        DataError: a file that is not a convlens checkpoint, or weights that do not fit the model.
    """
    config, arrays = _read(path)
    if "checkpoint" not in config:
        raise DataError(f"load_checkpoint: '{path}' is not a convlens training checkpoint.")
    _assign_weights(model, arrays, path)
    state = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")}
    if state and model.optimizer is not None:
        model.optimizer.set_state(state)
    return dict(config["checkpoint"])
