"""Shared by the compiled-kernel test modules: the kernels switched on for a whole module, and the float64 param.

A module imports ``compiled_kernels_on`` (an autouse fixture: importing it is what applies it) and, where it
parametrises over dtypes, ``FLOAT64_KERNELS``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

#: float64, run only where the float64 kernels are compiled (the marker tests/conftest.py deselects otherwise).
FLOAT64_KERNELS = pytest.param(np.float64, marks=pytest.mark.float64_kernels)


@pytest.fixture(autouse=True, scope="module")
def compiled_kernels_on() -> Iterator[None]:
    """These tests are about the compiled kernels: on even in CI's CONVLENS_JIT=0 pass (tests may turn them off)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_JIT", "1")
        yield
