"""`import convlens` shortens OpenBLAS's idle spinning when it can (before NumPy loads), never overriding the user."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PRINT = "import os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"


def run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize(
    ("code", "env", "expected"),
    [
        (f"import convlens; {PRINT}", {}, "12"),
        (f"import numpy, convlens; {PRINT}", {}, "None"),  # too late: OpenBLAS has read its environment
        (f"import convlens; {PRINT}", {"OPENBLAS_THREAD_TIMEOUT": "20"}, "20"),
    ],
    ids=["convlens-first", "numpy-first", "user-setting"],
)
def test_openblas_thread_timeout(code: str, env: dict[str, str], expected: str) -> None:
    assert run(code, **env) == expected
