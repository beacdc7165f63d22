"""Extension points: what the model floor offers and the package root says who provides."""

from __future__ import annotations

import pytest

import convlens  # noqa: F401  - the root declares the providers
from convlens import extensions
from convlens.errors import StateError


def test_every_declared_provider_resolves() -> None:
    declared = extensions.providers()
    names = {"summary.render", "explain.html", "model.save", "model.save_weights", "model.load_weights", "model.export"}
    assert names <= set(declared)
    for name in sorted(names):
        target = declared[name]
        provider = extensions.provider(name)
        assert callable(provider)
        assert f"{provider.__module__}:{provider.__qualname__}" == target
        assert provider.__module__.startswith(("convlens.lab.", "convlens.interop."))  # an upper floor


def test_unknown_extension_point() -> None:
    with pytest.raises(StateError, match=r"convlens: no provider for 'nope'; the package's __init__ declares them\."):
        extensions.provider("nope")
