"""Random seeding (one call makes weight init, shuffling and dropout repeatable), and your own images.

convlens draws every random number it needs from one global :class:`numpy.random.Generator`
(returned by :func:`get_rng`). :func:`set_random_seed` replaces it with a freshly seeded one
and also seeds Python's :mod:`random` and NumPy's legacy global RNG, like
``keras.utils.set_random_seed``.

>>> set_random_seed(7)
>>> a = get_rng().random(3)
>>> set_random_seed(7)
>>> bool((get_rng().random(3) == a).all())
True

``image_dataset_from_directory`` (Keras's function of that name) lives in
:mod:`convlens.datasets.image_directory` and is loaded on first use.
"""

from __future__ import annotations

from typing import Any

from convlens.rng import get_rng, set_random_seed

__all__ = ["get_rng", "set_random_seed"]  # and image_dataset_from_directory, loaded on first use


def __getattr__(name: str) -> Any:
    if name == "image_dataset_from_directory":
        from convlens.datasets.image_directory import image_dataset_from_directory

        return image_dataset_from_directory
    raise AttributeError(f"module 'convlens.utils' has no attribute {name!r}")
