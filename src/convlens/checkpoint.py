"""The arrays of a model file, read and written with their checks: every layer's weights
(``layer_<i>/<j>``) and the optimizer's state (``optimizer/<slot>``), in the checksummed archive of
:mod:`convlens.archive`; and the training checkpoint built from them (``save_checkpoint``/``load_checkpoint``:
what ``BackupAndRestore`` keeps). :mod:`convlens.saving` adds the architecture and compile settings.

These take any built convlens model (Sequential or Functional) and import no model class, so the callbacks
can use them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from convlens.archive import ArchiveReader, write_archive
from convlens.errors import ConfigTypeError, ConvlensError, DataError, ShapeError, short_repr

__all__ = [
    "FORMAT",
    "FORMATS",
    "assign_weights",
    "load_checkpoint",
    "open_model_file",
    "restore_optimizer_state",
    "save_checkpoint",
    "weight_arrays",
]

FORMAT = "convlens.model/2"
FORMATS = ("convlens.model/1", FORMAT)  # readable
_ARRAY_NAME = re.compile(r"layer_\d+/\d+|optimizer/(iterations|[a-z][a-z_]*_\d+)")  # what weight_arrays etc. write


def _check_built_model(model: Any, what: str) -> None:
    if not callable(getattr(model, "_trainable", None)) or not isinstance(getattr(model, "layers", None), list):
        raise ConfigTypeError(f"{what}: expected a convlens model (Sequential or Functional), got {short_repr(model)}.")
    model._require_built(what)


def weight_arrays(model: Any) -> dict[str, np.ndarray]:
    """Every layer's weights as ``layer_<i>/<j>`` (Keras layouts)."""
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(model.layers):
        for j, weight in enumerate(layer.get_weights()):
            arrays[f"layer_{i}/{j}"] = weight
    return arrays


def open_model_file(path: Any, owner: str) -> tuple[ArchiveReader, dict[str, Any]]:
    """The archive at ``path`` and its config, once its format is one convlens reads (the caller closes it)."""
    archive = ArchiveReader(path, owner=owner)
    try:
        config = archive.config()
        if config.get("format") not in FORMATS:
            raise DataError(
                f"{archive.label} has format {short_repr(config.get('format'))}, expected one of {list(FORMATS)}."
            )
        if config.get("format") == FORMAT and not archive.has_checksums:
            raise DataError(f"{archive.label} is format 2 but carries no checksums.")
        unknown = [name for name in archive.names() if not _ARRAY_NAME.fullmatch(name)]
        if unknown:  # (a flipped byte in a member's name would otherwise drop that array silently)
            raise DataError(f"{archive.label} has an array {short_repr(unknown[0], 60)} that no model file holds.")
    except BaseException:
        archive.close()
        raise
    return archive, config


def assign_weights(model: Any, archive: ArchiveReader, *, other_model: bool) -> None:
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


def restore_optimizer_state(model: Any, archive: ArchiveReader) -> None:
    """Put the ``optimizer/<slot>`` arrays back into ``model.optimizer``, each checked against its weight."""
    label = archive.label
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


def save_checkpoint(model: Any, path: Any, metadata: dict[str, Any]) -> None:
    """Write the training state (weights, the optimizer's slots and step count) and JSON ``metadata`` to ``path``
    (what ``BackupAndRestore`` keeps)."""
    _check_built_model(model, "save_checkpoint")
    arrays = weight_arrays(model)
    if model.optimizer is not None:
        for key, value in model.optimizer.get_state().items():
            arrays[f"optimizer/{key}"] = value
    config = {"format": FORMAT, "weights_only": True, "checkpoint": metadata}
    write_archive(path, config, arrays, owner="save_checkpoint")


def load_checkpoint(model: Any, path: Any) -> dict[str, Any]:
    """Restore what :func:`save_checkpoint` wrote into ``model`` (its optimizer too); returns the metadata.

    Raises:
        DataError: a file that is not a convlens checkpoint, or weights that do not fit the model.
    """
    _check_built_model(model, "load_checkpoint")
    archive, config = open_model_file(path, "load_checkpoint")
    with archive:
        if not isinstance(config.get("checkpoint"), dict):
            raise DataError(f"{archive.label} is not a convlens training checkpoint.")
        try:
            assign_weights(model, archive, other_model=True)
        except ShapeError as exc:
            raise DataError(f"{archive.label} holds weights for another model: {exc}") from None
        if model.optimizer is not None:
            restore_optimizer_state(model, archive)
    return dict(config["checkpoint"])
