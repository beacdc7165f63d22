"""`import convlens` shortens OpenBLAS's idle spinning whatever the import order, never overriding the user."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PRINT = "import os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
# What the loaded OpenBLAS itself uses (its exported getter of the variable it read).
LOADED = (
    "import ctypes, numpy; numpy.ones((64, 64)) @ numpy.ones((64, 64)); from convlens.blas_threads import "
    "loaded_openblas; print(ctypes.CDLL(loaded_openblas()).openblas_thread_timeout())"
)


def run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize(
    ("code", "env", "expected"),
    [
        (f"import convlens; {PRINT}", {}, "12"),
        (f"import numpy, convlens; {PRINT}", {}, "12"),  # OpenBLAS loaded first: made to read it again
        (f"import convlens; {PRINT}", {"OPENBLAS_THREAD_TIMEOUT": "20"}, "20"),
        (f"import convlens; {LOADED}", {}, "12"),
        (f"import numpy, convlens; {LOADED}", {}, "12"),
        (f"import numpy, convlens; {LOADED}", {"OPENBLAS_THREAD_TIMEOUT": "20"}, "20"),
    ],
    ids=["convlens-first", "numpy-first", "user-setting", "loaded", "loaded-numpy-first", "loaded-user-setting"],
)
def test_openblas_thread_timeout(code: str, env: dict[str, str], expected: str) -> None:
    assert run(code, **env) == expected


def test_one_blas_thread_sets_one_and_restores() -> None:
    import numpy as np

    from convlens.blas_threads import _thread_controls, one_blas_thread

    np.ones((64, 64)) @ np.ones((64, 64))  # OpenBLAS loaded and started
    controls = _thread_controls()
    assert controls is not None, "NumPy's OpenBLAS exports openblas_set/get_num_threads under one of the names"
    before = controls[1]()
    with one_blas_thread() as limited:
        assert limited
        assert controls[1]() == 1
        np.testing.assert_array_equal(np.ones((64, 64)) @ np.ones((64, 64)), np.full((64, 64), 64.0))
    assert controls[1]() == before
