"""convlens: convolutional neural networks from first principles, in NumPy.

Submodules load on first use so ``import convlens`` stays fast::

    import convlens as cl
    model = cl.Sequential([cl.layers.Conv2D(32, 3, padding="same", activation="relu",
                                            input_shape=(28, 28, 1))])
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

if "numpy" not in sys.modules:
    # OpenBLAS's idle worker threads spin for about 2^28 cycles after every GEMM and compete with the compiled
    # kernels that run between GEMMs (Winograd transforms, pooling): a GEMM + kernel pair measured 3.3 ms
    # against 2.1 ms for the two apart. 2^12 cycles of spinning removes that without slowing GEMMs. OpenBLAS
    # reads the variable when it loads; a user's own setting wins. (See README, Performance.)
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "12")
else:  # NumPy (and its OpenBLAS) came first: make the loaded OpenBLAS read the variable again
    from convlens.blas_threads import retime_loaded_openblas

    retime_loaded_openblas()

from convlens import extensions as _extensions

__version__ = "0.1.0"

# The composition root: the lab and interop (upper floors) provide what the model floor offers
# (convlens.extensions). Nothing is imported until first use.
_extensions.provide("summary.render", "convlens.lab.summary:render")
_extensions.provide("explain.html", "convlens.lab.explain_html:explain_html")
_extensions.provide("model.save", "convlens.interop.formats:save_model")
_extensions.provide("model.save_weights", "convlens.interop.formats:save_weights")
_extensions.provide("model.load_weights", "convlens.interop.formats:load_weights")
_extensions.provide("model.export", "convlens.interop.formats:export_model")

_SUBMODULES = {
    "activations",
    "callbacks",
    "constraints",
    "course",
    "datasets",
    "errors",
    "geometry",
    "initializers",
    "interop",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "regularizers",
    "saving",
    "utils",
}
# Lab modules reachable at the top level: ``convlens.explain.convolution(...)``, ``convlens.viz``.
_ALIASES = {
    "explain": "convlens.lab.explain",
    "viz": "convlens.lab.viz",
}
_ATTRIBUTES = {
    "Sequential": ("convlens.models", "Sequential"),
    "Model": ("convlens.models", "Model"),
    "Input": ("convlens.layers.core", "Input"),
    "load_model": ("convlens.interop.formats", "load_model"),
    "WindowGeometry": ("convlens.geometry", "WindowGeometry"),
}

__all__ = sorted([*_SUBMODULES, *_ALIASES, *_ATTRIBUTES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"convlens.{name}")
    if name in _ALIASES:
        return importlib.import_module(_ALIASES[name])
    if name in _ATTRIBUTES:
        module, attr = _ATTRIBUTES[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'convlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
