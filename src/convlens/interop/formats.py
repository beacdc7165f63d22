"""Model files by suffix: the dispatch behind ``cl.load_model``, ``model.save``, ``model.export``.

=================  =====================================  ==========================================
suffix             read (``cl.load_model``)               write
=================  =====================================  ==========================================
``.npz``           convlens's own file (:mod:`convlens.saving`)  ``model.save`` (everything: optimizer, history)
``.keras``         Keras 3 archive (Sequential)           ``model.save`` (Keras 3 archive)
``.onnx``          ONNX graph                             ``model.export`` (``model.save`` refers you there)
``.weights.h5``    Keras weights, ``architecture=`` needed  ``model.save_weights``
``.safetensors``   torch state dict, ``architecture=``    ``convlens.interop.torch.save_state_dict``
``.pt``, ``.pth``  torch state dict, ``architecture=``    ``convlens.interop.torch.save_state_dict``
=================  =====================================  ==========================================

Any other suffix is a :class:`~convlens.errors.ConfigError`: nothing is written in a format the name
does not say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convlens.errors import ConfigError
from convlens.models import Model, Sequential

__all__ = ["WEIGHT_SUFFIXES", "export_model", "load_model", "save_model", "save_weights", "suffix"]

MODEL_SUFFIXES = (".npz", ".keras", ".onnx")
WEIGHT_SUFFIXES = (".weights.h5", ".safetensors", ".pt", ".pth")


def suffix(path: Any) -> str:
    """The format suffix of ``path`` (``.weights.h5`` counts as one).

    >>> suffix("runs/m.weights.h5"), suffix("M.NPZ")
    ('.weights.h5', '.npz')

    Raises:
        ConfigTypeError: when ``path`` is not a path (None, a number, '').
    """
    from convlens.files import as_path

    name = as_path(path, owner="model file").name.lower()
    return ".weights.h5" if name.endswith(".weights.h5") else Path(name).suffix


def _sequential_only(model: Any, what: str, path: Any) -> Sequential:
    """``model`` if it is Sequential: Keras, ONNX and torch conversions handle those; a Functional model saves
    as .npz."""
    if not isinstance(model, Sequential):
        raise ConfigError(
            f"{what}: '{Path(path).name}': only Sequential models convert to Keras, ONNX or torch files; save "
            f"{model!r} as .npz (convlens's own format keeps Functional graphs)."
        )
    return model


def _unknown(path: Any, what: str, choices: tuple[str, ...]) -> ConfigError:
    return ConfigError(f"{what}: unknown file type '{Path(path).name}'; use one of {', '.join(choices)}.")


def load_model(path: Any, architecture: Model | None = None) -> Model:
    """Load a model from ``path``, by its suffix (see the module table).

    Args:
        path: a ``.npz``, ``.keras`` or ``.onnx`` model, or a weight file (``.weights.h5``, ``.safetensors``,
            ``.pt``/``.pth``) together with ``architecture``.
        architecture: a built convlens model whose weights the weight file sets (returned).

    Raises:
        ConfigError: for an unknown suffix, or a weight file without ``architecture``.
        DataError: for a file that is not what its suffix says.
    """
    kind = suffix(path)
    if architecture is not None:
        if kind not in WEIGHT_SUFFIXES and kind != ".npz":
            raise ConfigError(
                f"load_model: `architecture` goes with a weight file ({', '.join(WEIGHT_SUFFIXES)}, .npz), "
                f"got '{Path(path).name}'."
            )
        if not isinstance(architecture, Model):
            raise ConfigError(
                f"load_model: `architecture` must be a convlens model, got {type(architecture).__name__}."
            )
        load_weights(architecture, path)
        return architecture
    if kind == ".npz":
        from convlens import saving

        return saving.load_model(path)
    if kind == ".keras":
        from convlens.interop import keras

        return keras.load_model(path)
    if kind == ".onnx":
        from convlens.interop import onnx

        return onnx.load(path)
    if kind in WEIGHT_SUFFIXES:
        raise ConfigError(
            f"load_model: '{Path(path).name}' holds weights only; pass the model they belong to: "
            "cl.load_model(path, architecture=model)."
        )
    raise _unknown(path, "load_model", MODEL_SUFFIXES + WEIGHT_SUFFIXES)


def save_model(model: Model, path: Any) -> None:
    """``model.save``: ``.npz`` (convlens, everything) or ``.keras`` (Keras 3 archive)."""
    kind = suffix(path)
    if kind == ".npz":
        from convlens import saving

        saving.save_model(model, path)
    elif kind == ".keras":
        from convlens.interop import keras

        keras.save_model(_sequential_only(model, "save", path), path)
    elif kind == ".onnx":
        raise ConfigError(f"save: ONNX is an export format; use model.export('{Path(path).name}').")
    else:
        raise _unknown(path, "save", (".npz", ".keras"))


def save_weights(model: Model, path: Any) -> None:
    """``model.save_weights``: ``.npz`` (convlens), ``.weights.h5`` (Keras), ``.safetensors``/``.pt`` (torch)."""
    kind = suffix(path)
    if kind == ".npz":
        from convlens import saving

        saving.save_weights(model, path)
    elif kind == ".weights.h5":
        from convlens.interop import keras

        keras.save_weights(_sequential_only(model, "save_weights", path), path)
    elif kind in (".safetensors", ".pt", ".pth"):
        from convlens.interop import torch

        torch.save_state_dict(_sequential_only(model, "save_weights", path), path)
    else:
        raise _unknown(path, "save_weights", (".npz", *WEIGHT_SUFFIXES))


def load_weights(model: Model, path: Any) -> None:
    """``model.load_weights``: the inverse of :func:`save_weights`, by suffix."""
    kind = suffix(path)
    if kind == ".npz":
        from convlens import saving

        saving.load_weights(model, path)
    elif kind == ".weights.h5":
        from convlens.interop import keras

        keras.load_weights(_sequential_only(model, "load_weights", path), path)
    elif kind in (".safetensors", ".pt", ".pth"):
        from convlens.interop import torch

        torch.load_state_dict(_sequential_only(model, "load_weights", path), path)
    else:
        raise _unknown(path, "load_weights", (".npz", *WEIGHT_SUFFIXES))


def export_model(model: Model, path: Any, format: str | None = None) -> None:
    """``model.export``: ``format='onnx'`` (or a ``.onnx`` path), as Keras's ``model.export(path, format=...)``."""
    fmt = format or suffix(path).lstrip(".")
    if fmt != "onnx":
        raise ConfigError(f"export: `format` must be 'onnx' (or a .onnx path), got {format or Path(path).name!r}.")
    from convlens.interop import onnx

    onnx.export(_sequential_only(model, "export", path), path)
