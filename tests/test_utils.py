"""Seeding: one call makes every random source repeatable."""

from __future__ import annotations

import random

import numpy as np
import pytest

from convlens import rng as rng_module
from convlens import utils
from convlens.errors import ConfigError


def draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), utils.get_rng().normal(size=3).tolist()  # noqa: NPY002


def test_set_random_seed_makes_all_sources_repeatable():
    utils.set_random_seed(42)
    first = draws()
    utils.set_random_seed(42)
    assert draws() == first
    utils.set_random_seed(43)
    assert draws() != first


def test_seeded_generator_is_numpy_default_rng_of_the_seed():
    utils.set_random_seed(5)
    np.testing.assert_array_equal(utils.get_rng().random(4), np.random.default_rng(5).random(4))


def test_get_rng_returns_the_same_generator_until_reseeded():
    rng = utils.get_rng()
    assert utils.get_rng() is rng
    utils.set_random_seed(1)
    assert utils.get_rng() is not rng


def test_unseeded_generator_is_created_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(rng_module, "_rng", None)
    rng = utils.get_rng()
    assert isinstance(rng, np.random.Generator)
    assert utils.get_rng() is rng


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (1.5, r"set_random_seed: `seed` must be an integer, got 1.5"),
        (True, r"set_random_seed: `seed` must be an integer, got True"),
        (-1, r"set_random_seed: `seed` must be in \[0, 4294967295\], got -1"),
        (2**32, r"set_random_seed: `seed` must be in \[0, 4294967295\], got 4294967296"),
    ],
)
def test_bad_seed(seed, message):
    with pytest.raises(ConfigError, match=message):
        utils.set_random_seed(seed)
