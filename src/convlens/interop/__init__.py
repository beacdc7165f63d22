"""Bring your own model: ONNX, Keras 3 and PyTorch in and out (``pip install 'convlens[interop]'``).

* :mod:`convlens.interop.onnx`: ``export(model, "m.onnx")``, ``load("m.onnx")``;
* :mod:`convlens.interop.keras`: ``.keras`` archives and ``.weights.h5`` files, read and written without Keras;
* :mod:`convlens.interop.torch`: ``from_module``/``to_module``, state dicts (also as safetensors);
* :mod:`convlens.interop.formats`: ``load_model``/``save_model`` by file suffix (``cl.load_model``, ``model.save``).

Layout conversions (channels-last <-> channel-first, Flatten order) live here and nowhere else
(:mod:`convlens.interop.layout`). Submodules load on first use; torch, onnx, h5py and keras are
imported inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["chain", "formats", "keras", "layout", "onnx", "torch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"convlens.interop.{name}")
    raise AttributeError(f"module 'convlens.interop' has no attribute {name!r}")
