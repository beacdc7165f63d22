"""Split large memory-bound array work (copies, strided adds) over the machine's cores.

NumPy's copies and element-wise ops run on one core and release the GIL, so splitting a large
im2col copy or col2im add along the batch axis over a small thread pool uses the other cores,
which BLAS already uses for the GEMMs. Small arrays run inline (threads would cost more than
they save). ``CONVLENS_NUM_THREADS`` caps the pool (1 turns it off).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from convlens import switches

__all__ = ["MIN_PARALLEL_BYTES", "batch_slices", "num_threads", "parallel_over_batch"]

MIN_PARALLEL_BYTES = 8 << 20

_POOL: ThreadPoolExecutor | None = None


def num_threads() -> int:
    """Threads used for large copies: ``CONVLENS_NUM_THREADS`` or the number of cores (at most 8)."""
    env = switches.NUM_THREADS.value()
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(8, os.cpu_count() or 1))


def batch_slices(batch: int, parts: int) -> list[slice]:
    """``parts`` contiguous, nearly equal slices of ``range(batch)`` (fewer when batch is small).

    >>> batch_slices(5, 2)
    [slice(0, 2, None), slice(2, 5, None)]
    """
    parts = max(1, min(parts, batch))
    bounds = [batch * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def parallel_over_batch(work: Callable[[slice], object], batch: int, nbytes: int) -> None:
    """Run ``work(batch_slice)`` over disjoint batch slices, in parallel when ``nbytes`` is large."""
    global _POOL
    threads = num_threads()
    if threads == 1 or nbytes < MIN_PARALLEL_BYTES or batch < 2:
        work(slice(0, batch))
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="convlens")
    futures = [_POOL.submit(work, part) for part in batch_slices(batch, threads)]
    for future in futures:
        future.result()
