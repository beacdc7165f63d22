"""ONNX in and out: ``export(model, "m.onnx")`` and ``load("m.onnx")`` (needs ``pip install 'convlens[interop]'``).

* Export (:mod:`convlens.interop.onnx_export`): every convlens layer, opset 17, explicit ``pads``; the
  graph takes the model's channels-last input and gives its output (one Transpose at the boundary).
* Import (:mod:`convlens.interop.onnx_import`): chains of CNN operators, as ``torch.onnx.export`` writes
  them; a channel-first input (N, C, H, W) becomes convlens's (N, H, W, C).

The file is parsed, never executed. A file that is not ONNX raises :class:`~convlens.errors.DataError`.

Shapes:
    exported graph: input (N, *input_shape) -> output (N, *output_shape), both as the convlens model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convlens.errors import ConfigError, DataError
from convlens.interop.layout import atomic_write_bytes
from convlens.interop.onnx_export import EXPORTED_LAYERS, OPSET, to_onnx
from convlens.interop.onnx_import import IMPORTED_OPS, from_onnx
from convlens.models import Sequential

__all__ = ["EXPORTED_LAYERS", "IMPORTED_OPS", "OPSET", "export", "from_onnx", "load", "to_onnx"]


def require(package: str) -> Any:
    """Import an optional dependency of the ``interop`` extra, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ConfigError(
            f"convlens.interop: this conversion needs the '{package}' package; install it with "
            "pip install 'convlens[interop]'."
        ) from exc


def export(model: Sequential, path: Any, *, opset: int = OPSET) -> Path:
    """Write ``model`` as an ONNX file (atomically) and return its path.

    Raises:
        ConfigError: for a layer without an ONNX form (naming it and listing the supported layers).
    """
    require("onnx")
    proto = to_onnx(model, opset=opset)
    return atomic_write_bytes(path, proto.SerializeToString())


def load(path: Any) -> Sequential:
    """Read an ONNX file into a convlens model (nothing in the file is executed).

    Raises:
        DataError: for a missing, truncated or non-ONNX file.
        ConfigError: for an operator or attribute convlens cannot express (naming the node).
    """
    onnx = require("onnx")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ONNX load: no such file: '{path}'.")
    source = f"ONNX file '{path}'"
    try:
        proto = onnx.load(str(path))  # tensors stored beside the file (external data) are read from its folder
    except Exception as exc:  # protobuf's DecodeError, a missing external-data file: not a usable ONNX file
        raise DataError(f"{source} is not a valid ONNX model: {type(exc).__name__}: {exc}.") from None
    if not proto.graph.node:
        raise DataError(f"{source} has no graph nodes; is it an ONNX model?")
    return from_onnx(proto, source)
