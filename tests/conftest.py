"""Shared test configuration: hypothesis profiles, optional dependencies, the compiled-kernel tier."""

from __future__ import annotations

import importlib
import os
import time

# One BLAS thread (before NumPy loads): the tests' arrays are small, so a second thread saves little on a quiet
# machine, and on a shared one OpenBLAS's threads spin-wait for each other (an epoch of the small MNIST test:
# 1.56 s with two threads against 0.21 s with one, measured on the shared 2-core development machine).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tests.support.browser import browser, watch  # one Chromium per session, for every browser test

__all__ = ["browser", "rng", "watch"]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The default tier compiles the Numba kernels for float32 only (about 20 s on a fresh clone instead of about
# 45 s for both dtypes): float64 tests run the NumPy twins, which the float32 bit-identity tests tie to the
# kernels. CI also runs the op and layer tests with CONVLENS_JIT_DTYPES=float32,float64 (.ci/run).
os.environ.setdefault("CONVLENS_JIT_DTYPES", "float32")

KERNEL_CACHE = Path(__file__).resolve().parents[1] / "src" / "convlens" / "ops" / "__pycache__"


def require(module: str) -> ModuleType:
    """Import an optional test dependency (torch, numba, ...).

    Without it the test is skipped, except under ``CI=true``, where a missing dependency must fail
    the run instead of letting every oracle test pass by skipping.
    """
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            pytest.fail(f"{module} is required under CI=true (pip install -e '.[test]'): {exc}")
    return pytest.importorskip(module)


@pytest.fixture(scope="session")
def torch() -> Any:
    """PyTorch 2.13, the oracle (see :func:`require`)."""
    return require("torch")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator per test."""
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) the float64 kernel twins when float64 kernels are not compiled in this run."""
    if "float64" in os.environ.get("CONVLENS_JIT_DTYPES", ""):
        return
    dropped = [item for item in items if item.get_closest_marker("float64_kernels") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.get_closest_marker("float64_kernels") is None]


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say up front when the run will pause to compile the Numba kernels."""
    if not any(KERNEL_CACHE.glob("*.nbi")):
        return "convlens: no compiled kernels cached yet: they compile once, first (about 20 s)."
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    """On a fresh checkout, compile every kernel once before the tests, with a line per step.

    Otherwise the first test to use a kernel compiles it silently, and subprocess tests (CLI, sweep
    workers) compile the same kernels again in parallel before the cache has them.
    """
    if any(KERNEL_CACHE.glob("*.nbi")) or len(session.items) < 100:
        return
    from convlens.ops.jit import jit_enabled

    if not jit_enabled():
        return
    from convlens.ops.precompile import precompile

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    write("convlens: compiling the Numba kernels (cached in src/convlens/ops/__pycache__ afterwards)")
    # In two processes (the kernels of one step compile in one of them): about half the wall time on 2 cores.
    processes = min(2, os.cpu_count() or 1)
    started = time.perf_counter()
    precompile(["float32", "float64"], report=lambda line: write(f"  {line}"), processes=processes)
    write(f"convlens: kernels compiled in {time.perf_counter() - started:.1f} s (wall clock, {processes} processes)")
