"""Keras 3 (torch backend) as the oracle for the Keras-API tests: import it, copy weights, measure differences.

``import_keras()`` sets ``KERAS_BACKEND=torch`` before the first import (the light backend; torch is in the test
extra) and skips locally / fails under CI=true when keras is missing. ``rel_diff`` is the measure every test
asserts on: ``max |a - b| / max(max |b|, 1e-12)`` (relative to the largest reference value, so a value that
should be 0 does not divide by 0). With ``CONVLENS_PARITY_LOG=path`` set, ``check`` appends each comparison
(feature, difference) as a JSON line, which the report's table is made from.
"""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.interop.helpers import need

TOLERANCE = 1e-5

# Keras 3.15's torch backend hands NumPy an __array__ without the copy keyword (NumPy 2 deprecation).
KERAS_WARNINGS = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def import_keras() -> ModuleType:
    """Keras 3 with the torch backend."""
    os.environ["KERAS_BACKEND"] = "torch"
    need("torch")
    keras = need("keras")
    if keras.backend.backend() != "torch":  # pragma: no cover - another test imported keras first
        pytest.fail(f"keras runs on {keras.backend.backend()!r}; these tests expect the torch backend")
    return keras


def numpy(x: Any) -> np.ndarray:
    """A Keras/torch tensor (or anything array-like) as a float64 NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def rel_diff(ours: Any, theirs: Any) -> float:
    """``max |ours - theirs| / max |theirs|`` over (lists of) arrays."""
    if isinstance(theirs, (list, tuple)):
        return max((rel_diff(a, b) for a, b in zip(ours, theirs, strict=True)), default=0.0)
    a, b = numpy(ours), numpy(theirs)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1e-12))


def check(feature: str, ours: Any, theirs: Any, tolerance: float = TOLERANCE) -> float:
    """Assert ``rel_diff(ours, theirs) <= tolerance`` and log it (see the module docstring)."""
    diff = rel_diff(ours, theirs)
    log = os.environ.get("CONVLENS_PARITY_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"feature": feature, "rel_diff": diff}) + "\n")
    assert diff <= tolerance, f"{feature}: relative difference {diff:.3g} > {tolerance:g}"
    return diff


def copy_weights(ours: Any, theirs: Any) -> None:
    """Give the Keras model the convlens model's weights (same architecture, Keras layouts on both sides)."""
    theirs.set_weights([np.asarray(w, np.float32) for w in ours.get_weights()])
