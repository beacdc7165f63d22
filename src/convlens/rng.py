"""convlens's random number generator: every random number (weight init, shuffling, dropout) comes from one
global :class:`numpy.random.Generator` (:func:`get_rng`); :func:`set_random_seed` replaces it with a freshly
seeded one and also seeds Python's :mod:`random` and NumPy's legacy global RNG, like
``keras.utils.set_random_seed``. On the bottom floor, so layers (symbolic calls build weights) can draw from it;
:mod:`convlens.utils` is its public home.

>>> set_random_seed(7)
>>> a = get_rng().random(3)
>>> set_random_seed(7)
>>> bool((get_rng().random(3) == a).all())
True
"""

from __future__ import annotations

import random

import numpy as np

from convlens.errors import ConfigError

__all__ = ["get_rng", "set_random_seed"]

_MAX_SEED = 2**32 - 1  # NumPy's legacy ``np.random.seed`` takes 0 <= seed < 2**32
_rng: np.random.Generator | None = None


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global RNG and convlens's generator.

    Args:
        seed: an integer in [0, 2**32 - 1].

    Raises:
        ConfigError: when ``seed`` is not an integer in that range.

    Shapes:
        no arrays.
    """
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"set_random_seed: `seed` must be an integer, got {seed!r}.")
    seed = int(seed)
    if not 0 <= seed <= _MAX_SEED:
        raise ConfigError(f"set_random_seed: `seed` must be in [0, {_MAX_SEED}], got {seed}.")
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (seeding the legacy global RNG is the point)
    _rng = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    """Return convlens's current global generator.

    Before any :func:`set_random_seed` call it is seeded once from OS entropy; after
    ``set_random_seed(n)`` the sequence of draws from it is fully repeatable.

    Shapes:
        no arrays.
    """
    global _rng
    if _rng is None:
        _rng = np.random.default_rng()
    return _rng
