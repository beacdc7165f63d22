"""Saving and loading models: one ``.npz`` file holding a JSON config plus named arrays.

The file is a plain NumPy archive written by :mod:`convlens.archive`, so loading never runs code:

* ``__config__``: UTF-8 JSON (as a uint8 array) with the architecture, compile settings, history and the
  SHA-256, dtype and shape of every array; ``__checksum__``: the SHA-256 of the config itself;
* ``layer_<i>/<j>``: each layer's weights in Keras layouts;
* ``optimizer/<slot>``: the optimizer's state (so training resumes where it stopped).

Files are written atomically (a temporary beside the target, then ``os.replace``; a save killed half-way
leaves a ``.NAME.convlens-PID-....tmp`` that the next save or load of that file removes). Loading checks
everything before it allocates: the config's structure, every layer's arguments, each array's dtype and
shape against the model the config describes, and (format 2) every checksum; any mismatch is a
:class:`~convlens.errors.DataError` naming the file and the array.

Format versions: ``convlens.model/2`` (written now) carries the checksums; ``convlens.model/1`` (written
before) is still read, with all the structural checks but no checksums (re-save it to add them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from convlens.archive import ArchiveReader, write_archive
from convlens.errors import (
    ConfigError,
    ConfigTypeError,
    ConvlensError,
    DataError,
    ResourceError,
    ShapeError,
    short_repr,
)

if TYPE_CHECKING:
    from convlens.models import Sequential

__all__ = ["FORMAT", "FORMATS", "load_model", "load_weights", "save_model", "save_weights"]

FORMAT = "convlens.model/2"
FORMATS = ("convlens.model/1", FORMAT)  # readable
_MAX_LAYERS = 10_000


def _check_model(model: Any, what: str) -> None:
    from convlens.models import Sequential

    if not isinstance(model, Sequential):
        raise ConfigTypeError(f"{what}: expected a Sequential model, got {short_repr(model)}.")
    model._require_built(what)


def _weight_arrays(model: Sequential) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(model.layers):
        for j, weight in enumerate(layer.get_weights()):
            arrays[f"layer_{i}/{j}"] = weight
    return arrays


def save_model(model: Sequential, path: Any) -> None:
    """Write ``model`` (architecture, weights, compile settings, optimizer state, history) to ``path``."""
    _check_model(model, "save")
    config: dict[str, Any] = {"format": FORMAT, "model": model.get_config()}
    arrays = _weight_arrays(model)
    if model.compiled:
        config["compile"] = {
            "optimizer": {
                "class_name": type(model.optimizer).__name__,
                "config": model.optimizer.get_config(),
            },
            "loss": model.loss.name,
            "metrics": [m if isinstance(m, str) else getattr(m, "name", str(m)) for m in model._metric_ids],
            "iterations": int(model.optimizer.iterations),
        }
        for key, value in model.optimizer.get_state().items():
            arrays[f"optimizer/{key}"] = value
    if model.history is not None:
        config["history"] = {
            "history": {k: [float(v) for v in vs] for k, vs in model.history.history.items()},
            "epoch": [int(e) for e in model.history.epoch],
        }
    write_archive(path, config, arrays, owner="save")


def save_weights(model: Sequential, path: Any) -> None:
    """Write only the weights (plus a minimal header) to ``path``."""
    _check_model(model, "save_weights")
    write_archive(path, {"format": FORMAT, "weights_only": True}, _weight_arrays(model), owner="save_weights")


# ----- loading -----------------------------------------------------------------------------------------
def _open(path: Any, owner: str) -> tuple[ArchiveReader, dict[str, Any]]:
    archive = ArchiveReader(path, owner=owner)
    try:
        config = archive.config()
        if config.get("format") not in FORMATS:
            raise DataError(
                f"{archive.label} has format {short_repr(config.get('format'))}, expected one of {list(FORMATS)}."
            )
        if config.get("format") == FORMAT and not archive.has_checksums:
            raise DataError(f"{archive.label} is format 2 but carries no checksums.")
    except BaseException:
        archive.close()
        raise
    return archive, config


def _field(config: Any, key: str, kind: type | tuple[type, ...], where: str, label: str) -> Any:
    value = config.get(key) if isinstance(config, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise DataError(f"{label}: `{where}{key}` in the config must be a {_type_name(kind)}, got {short_repr(value)}.")
    return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {dict: "JSON object", list: "list", str: "string", int: "integer"}.get(k, k.__name__) for k in kinds
    )


def _build(config: dict[str, Any], label: str) -> Sequential:
    """The model the config describes (every layer argument checked by the layer itself)."""
    from convlens.layers import LAYER_REGISTRY
    from convlens.models import Sequential

    model_config = _field(config, "model", dict, "", label)
    entries = _field(model_config, "layers", list, "model.", label)
    if len(entries) > _MAX_LAYERS:
        raise DataError(f"{label}: the config lists {len(entries)} layers, more than {_MAX_LAYERS}.")
    layers = []
    for i, entry in enumerate(entries):
        where = f"model.layers[{i}]."
        class_name = _field(entry, "class_name", str, where, label)
        layer_config = _field(entry, "config", dict, where, label)
        cls = LAYER_REGISTRY.get(class_name)
        if cls is None:
            raise DataError(f"{label}: layer {i} names an unknown layer class {short_repr(class_name)}.")
        if not all(isinstance(key, str) and key.isidentifier() and not key.startswith("_") for key in layer_config):
            raise DataError(f"{label}: layer {i} ({class_name}) has a config key that is not an argument name.")
        try:
            layers.append(cls.from_config(layer_config))
        except ResourceError:
            raise
        except (ConvlensError, TypeError, ValueError) as exc:
            raise DataError(f"{label}: layer {i} ({class_name}) cannot be rebuilt: {exc}") from None
    name = model_config.get("name")
    input_shape = model_config.get("input_shape")
    try:
        model = Sequential(name=name if isinstance(name, str) and name else None)
        for layer in layers:
            model.add(layer)
        if not model.built and input_shape is not None:
            if not isinstance(input_shape, list):
                raise ConfigError(f"`input_shape` must be a list, got {short_repr(input_shape)}")
            model.build((None, *input_shape))
    except ResourceError:
        raise
    except ConvlensError as exc:
        raise DataError(f"{label}: the model in it cannot be rebuilt: {exc}") from None
    return model


def _assign_weights(model: Sequential, archive: ArchiveReader, *, other_model: bool) -> None:
    """Read every weight with the shape its layer expects and put it in place (no second copy).

    ``other_model``: the model was not built from this file (``load_weights``), so a shape mismatch is the
    model's (a ``ShapeError`` naming the layer), not the file's.
    """
    names = set(archive.names())
    for i, layer in enumerate(model.layers):
        for j, (weight, current) in enumerate(layer._weight_arrays()):
            key = f"layer_{i}/{j}"
            if key not in names:
                raise DataError(f"{archive.label} lacks weight {key} for {layer!r}.")
            if other_model and archive.declared_shape(key) != current.shape:
                raise ShapeError(
                    f"{layer!r}: weight '{weight}' must have shape {current.shape}, got "
                    f"{archive.declared_shape(key)} in {archive.label.split(': ', 1)[1]}."
                )
            current[...] = archive.array(key, shape=current.shape)


def _restore_compile(model: Sequential, config: dict[str, Any], archive: ArchiveReader) -> None:
    from convlens import optimizers

    label = archive.label
    compile_config = _field(config, "compile", dict, "", label)
    optimizer_config = _field(compile_config, "optimizer", dict, "compile.", label)
    loss = _field(compile_config, "loss", str, "compile.", label)
    metrics = _field(compile_config, "metrics", list, "compile.", label)
    iterations = compile_config.get("iterations", 0)
    if not isinstance(iterations, int) or isinstance(iterations, bool) or not 0 <= iterations < 2**62:
        raise DataError(f"{label}: `compile.iterations` must be an integer >= 0, got {short_repr(iterations)}.")
    try:
        model.compile(optimizer=optimizers.get(optimizer_config), loss=loss, metrics=metrics)
    except ConvlensError as exc:
        raise DataError(f"{label}: its compile settings are invalid: {exc}") from None
    params, _ = model._trainable()
    state: dict[str, np.ndarray] = {}
    for name in archive.names():
        if not name.startswith("optimizer/"):
            continue
        key = name.split("/", 1)[1]
        if key == "iterations":
            state[key] = archive.array(name, shape=(), kinds="iu")
            continue
        index = key.rpartition("_")[2]
        if not index.isdigit() or int(index) >= len(params):
            raise DataError(f"{label}: optimizer state '{key}' does not belong to any of the {len(params)} weights.")
        state[key] = archive.array(name, shape=params[int(index)].shape)
    try:
        if state:
            model.optimizer.set_state(state)
    except ConvlensError as exc:
        raise DataError(f"{label}: its optimizer state is invalid: {exc}") from None
    model.optimizer.iterations = iterations


def _restore_history(model: Sequential, config: dict[str, Any], label: str) -> None:
    from convlens.callbacks import History

    record = _field(config, "history", dict, "", label)
    values = _field(record, "history", dict, "history.", label)
    epochs = _field(record, "epoch", list, "history.", label)
    if not all(isinstance(e, int) and not isinstance(e, bool) for e in epochs):
        raise DataError(f"{label}: `history.epoch` must list integers.")
    history = History()
    for key, series in values.items():
        if not isinstance(series, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in series
        ):
            raise DataError(f"{label}: `history.history.{short_repr(key, 30)}` must list numbers.")
        history.history[str(key)] = [float(v) for v in series]
    history.epoch = list(epochs)
    model.history = history


def load_model(path: Any) -> Sequential:
    """Rebuild a model saved by :meth:`Sequential.save` (compiled again if it was compiled).

    Raises:
        MissingFileError: no file at ``path``.
        DataError: anything wrong with the file (naming the file and the array or setting).
        ResourceError: a model too large for the memory available.
    """
    archive, config = _open(path, "load_model")
    with archive:
        if config.get("weights_only"):
            raise DataError(f"{archive.label} holds only weights; build the model and call load_weights.")
        model = _build(config, archive.label)
        if not model.built:
            raise DataError(f"{archive.label}: the config gives no input shape, so the weights cannot be placed.")
        _assign_weights(model, archive, other_model=False)
        if config.get("compile") is not None:
            _restore_compile(model, config, archive)
        if config.get("history") is not None:
            _restore_history(model, config, archive.label)
    return model


def load_weights(model: Sequential, path: Any) -> None:
    """Load weights from a file written by ``save`` or ``save_weights`` into a built ``model``."""
    _check_model(model, "load_weights")
    archive, _ = _open(path, "load_weights")
    with archive:
        _assign_weights(model, archive, other_model=True)
