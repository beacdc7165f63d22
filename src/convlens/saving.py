"""Saving and loading models: one ``.npz`` file holding a JSON config plus named arrays.

The file is a plain NumPy archive written by :mod:`convlens.archive`, so loading never runs code:

* ``__config__``: UTF-8 JSON (as a uint8 array) with the architecture, compile settings, history and the
  SHA-256, dtype and shape of every array; ``__checksum__``: the SHA-256 of the config itself;
* ``layer_<i>/<j>``: each layer's weights in Keras layouts;
* ``optimizer/<slot>``: the optimizer's state (so training resumes where it stopped).

The architecture is a Sequential stack or a Functional graph (each layer with the names of the layers
feeding it). ``save_checkpoint``/``load_checkpoint`` (what ``BackupAndRestore`` keeps) write the same kind of
file with the weights, the optimizer's state and a small JSON record (the epoch reached).

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

from convlens.archive import ArchiveReader, write_archive
from convlens.checkpoint import (
    FORMAT,
    FORMATS,
    assign_weights,
    load_checkpoint,
    open_model_file,
    restore_optimizer_state,
    save_checkpoint,
    weight_arrays,
)
from convlens.errors import (
    ConfigError,
    ConfigTypeError,
    ConvlensError,
    DataError,
    ResourceError,
    short_repr,
)

if TYPE_CHECKING:
    from convlens.layers.base import Layer
    from convlens.models import Model

__all__ = [
    "FORMAT",
    "FORMATS",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "save_checkpoint",
    "save_model",
    "save_weights",
]

_MAX_LAYERS = 10_000


def _check_model(model: Any, what: str) -> None:
    from convlens.models import Model

    if not isinstance(model, Model):
        raise ConfigTypeError(f"{what}: expected a convlens model (Sequential or Functional), got {short_repr(model)}.")
    model._require_built(what)


def _metric_names(ids: list[Any]) -> list[Any]:
    """Names as given, metric objects as ``{"class_name", "config"}`` (``metrics.get`` reads both)."""
    return [m if isinstance(m, str) else {"class_name": type(m).__name__, "config": m.get_config()} for m in ids]


def save_model(model: Model, path: Any) -> None:
    """Write ``model`` (architecture, weights, compile settings, optimizer state, history) to ``path``."""
    _check_model(model, "save")
    config: dict[str, Any] = {"format": FORMAT, "model": model.get_config()}
    arrays = weight_arrays(model)
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
    write_archive(path, config, arrays, owner="save")


def _loss_config(loss: Any) -> Any:
    """The loss's Keras name when it has default settings (files stay readable by older convlens), else its config."""
    from convlens import losses

    config = losses.serialize(loss)
    default = losses.get(loss.function_name)
    return loss.function_name if config == losses.serialize(default) else config


def save_weights(model: Model, path: Any) -> None:
    """Write only the weights (plus a minimal header) to ``path``."""
    _check_model(model, "save_weights")
    write_archive(path, {"format": FORMAT, "weights_only": True}, weight_arrays(model), owner="save_weights")


# ----- loading -----------------------------------------------------------------------------------------
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


def _layers(entries: list[Any], label: str) -> list[Layer]:
    """The layers the config lists (every layer argument checked by the layer itself)."""
    from convlens.layers import LAYER_REGISTRY

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
        inbound = entry.get("inbound", [])
        if not isinstance(inbound, list) or not all(isinstance(name, str) for name in inbound):
            raise DataError(f"{label}: `{where}inbound` in the config must list layer names.")
        try:
            layers.append(cls.from_config(layer_config))
        except ResourceError:
            raise
        except (ConvlensError, TypeError, ValueError) as exc:
            raise DataError(f"{label}: layer {i} ({class_name}) cannot be rebuilt: {exc}") from None
    return layers


def _build(config: dict[str, Any], label: str) -> Model:
    """The model (Sequential or Functional) the config describes."""
    from convlens.functional import Functional
    from convlens.sequential import Sequential

    model_config = _field(config, "model", dict, "", label)
    entries = _field(model_config, "layers", list, "model.", label)
    functional = model_config.get("class_name") == "Functional"
    if functional:
        for key in ("input_layers", "output_layers"):
            if not all(isinstance(n, str) for n in _field(model_config, key, list, "model.", label)):
                raise DataError(f"{label}: `model.{key}` in the config must list layer names.")
    layers = _layers(entries, label)
    name = model_config.get("name")
    input_shape = model_config.get("input_shape")
    model: Model
    try:
        if functional:
            return Functional.from_layers(model_config, layers)
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


def _restore_compile(model: Model, config: dict[str, Any], archive: ArchiveReader) -> None:
    from convlens import optimizers

    label = archive.label
    compile_config = _field(config, "compile", dict, "", label)
    optimizer_config = _field(compile_config, "optimizer", dict, "compile.", label)
    loss = _field(compile_config, "loss", (str, dict), "compile.", label)
    metrics = _field(compile_config, "metrics", list, "compile.", label)
    weighted = compile_config.get("weighted_metrics")
    if weighted is not None and not isinstance(weighted, list):
        raise DataError(
            f"{label}: `compile.weighted_metrics` in the config must be a list, got {short_repr(weighted)}."
        )
    iterations = compile_config.get("iterations", 0)
    if not isinstance(iterations, int) or isinstance(iterations, bool) or not 0 <= iterations < 2**62:
        raise DataError(f"{label}: `compile.iterations` must be an integer >= 0, got {short_repr(iterations)}.")
    try:
        model.compile(optimizer=optimizers.get(optimizer_config), loss=loss, metrics=metrics, weighted_metrics=weighted)
    except ConvlensError as exc:
        raise DataError(f"{label}: its compile settings are invalid: {exc}") from None
    restore_optimizer_state(model, archive)
    model.optimizer.iterations = iterations


def _restore_history(model: Model, config: dict[str, Any], label: str) -> None:
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


def load_model(path: Any) -> Model:
    """Rebuild a model saved by :meth:`Model.save` (Sequential or Functional; compiled again if it was compiled).

    Raises:
        MissingFileError: no file at ``path``.
        DataError: anything wrong with the file (naming the file and the array or setting).
        ResourceError: a model too large for the memory available.
    """
    archive, config = open_model_file(path, "load_model")
    with archive:
        if config.get("weights_only"):
            raise DataError(f"{archive.label} holds only weights; build the model and call load_weights.")
        model = _build(config, archive.label)
        if not model.built:
            raise DataError(f"{archive.label}: the config gives no input shape, so the weights cannot be placed.")
        assign_weights(model, archive, other_model=False)
        if config.get("compile") is not None:
            _restore_compile(model, config, archive)
        if config.get("history") is not None:
            _restore_history(model, config, archive.label)
    return model


def load_weights(model: Model, path: Any) -> None:
    """Load weights from a file written by ``save`` or ``save_weights`` into a built ``model``."""
    _check_model(model, "load_weights")
    archive, _ = open_model_file(path, "load_weights")
    with archive:
        assign_weights(model, archive, other_model=True)
