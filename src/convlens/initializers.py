"""Weight initialisers with Keras's names and formulas.

``fan_in``/``fan_out`` follow Keras: for a kernel of shape (*receptive, in, out),
fan_in = prod(receptive) * in and fan_out = prod(receptive) * out.

>>> import numpy as np
>>> w = get("glorot_uniform")((3, 3, 1, 32), np.random.default_rng(0))
>>> w.shape, w.dtype, bool(np.abs(w).max() <= np.sqrt(6 / (9 + 288)))
((3, 3, 1, 32), dtype('float32'), True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convlens.errors import ConfigError

__all__ = ["Initializer", "compute_fans", "get"]

Initializer = Callable[[tuple[int, ...], np.random.Generator], np.ndarray]


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's fan computation for a weight of ``shape``."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def _uniform(scale_fn: Callable[[int, int], float]) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        limit = np.sqrt(scale_fn(*compute_fans(shape)))
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)

    return init


def _truncated_normal(scale_fn: Callable[[int, int], float]) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        # Keras: truncated at 2 std, std corrected by 0.87962566103423978.
        std = np.sqrt(scale_fn(*compute_fans(shape))) / 0.87962566103423978
        values = rng.standard_normal(size=shape)
        bad = np.abs(values) > 2
        while bad.any():
            values[bad] = rng.standard_normal(size=int(bad.sum()))
            bad = np.abs(values) > 2
        return (values * std).astype(np.float32)

    return init


_INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": _uniform(lambda fi, fo: 6.0 / (fi + fo)),
    "glorot_normal": _truncated_normal(lambda fi, fo: 2.0 / (fi + fo)),
    "he_uniform": _uniform(lambda fi, fo: 6.0 / fi),
    "he_normal": _truncated_normal(lambda fi, fo: 2.0 / fi),
    "lecun_uniform": _uniform(lambda fi, fo: 3.0 / fi),
    "lecun_normal": _truncated_normal(lambda fi, fo: 1.0 / fi),
    "zeros": lambda shape, rng: np.zeros(shape, np.float32),
    "ones": lambda shape, rng: np.ones(shape, np.float32),
}


def get(identifier: Any, *, owner: str | None = None, name: str = "initializer") -> Initializer:
    """Look up an initialiser by Keras name (or pass a callable ``(shape, rng) -> array`` through)."""
    if callable(identifier):
        return identifier  # type: ignore[no-any-return]
    if isinstance(identifier, str) and identifier.lower() in _INITIALIZERS:
        return _INITIALIZERS[identifier.lower()]
    prefix = f"{owner}: " if owner else ""
    raise ConfigError(f"{prefix}unknown `{name}` {identifier!r}; choose one of {', '.join(sorted(_INITIALIZERS))}.")
