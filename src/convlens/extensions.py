"""Extension points: what the model floor offers and an upper floor (the lab, interop) provides.

``Sequential.summary(detail=True)`` renders with the lab, ``model.save``/``load_weights``/``export``
pick a file format in interop. The model floor must not import those floors (imports point down only),
so it asks for a provider by name here, and the composition root, ``convlens/__init__.py`` (above every
floor), says once which module provides each name. A provider is imported on first use, so
``import convlens`` stays fast and a model without the lab installed still trains.

>>> provide("example.double", lambda x: 2 * x)
>>> provider("example.double")(21)
42
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from convlens.errors import StateError

__all__ = ["provide", "provider", "providers"]

_TARGETS: dict[str, str | Callable[..., Any]] = {}


def provide(name: str, target: str | Callable[..., Any]) -> None:
    """Declare who provides extension point ``name``: a callable, or ``'module:attribute'`` imported on first use."""
    _TARGETS[name] = target


def provider(name: str) -> Callable[..., Any]:
    """The callable that provides ``name`` (importing its module on the first call).

    Raises:
        StateError: nobody provides ``name``.
    """
    target = _TARGETS.get(name)
    if target is None:
        raise StateError(f"convlens: no provider for {name!r}; the package's __init__ declares them.")
    if isinstance(target, str):
        module, _, attribute = target.partition(":")
        target = _TARGETS[name] = getattr(importlib.import_module(module), attribute)
    return target


def providers() -> dict[str, str]:
    """Every extension point and its provider, as ``'module:attribute'`` (or the callable's name)."""
    return {
        name: target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
        for name, target in _TARGETS.items()
    }
