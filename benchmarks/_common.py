"""Shared helpers for the benchmark scripts: timing, peers in subprocesses, tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_peer(
    script: str, args: dict[str, Any], env_extra: dict[str, str] | None = None, python: str | None = None
) -> dict[str, Any]:
    """Run ``script`` (a file in benchmarks/) in a fresh interpreter; it prints one JSON line."""
    env = dict(os.environ)
    env.update(env_extra or {})
    path = os.path.join(os.path.dirname(__file__), script)
    out = subprocess.run(
        [python or sys.executable, path, json.dumps(args)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 GEMM rate through NumPy's BLAS (GFLOP/s)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    t = median_time(lambda: a @ b, repeats=repeats)
    return 2 * n**3 / t / 1e9


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def machine() -> str:
    """One line describing the CPU."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, NumPy {np.__version__}"
