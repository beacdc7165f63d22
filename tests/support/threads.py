"""What this machine's thread set-up allows (for tests of the whole-model and data-parallel splits)."""

from __future__ import annotations

from typing import Any


def expected_split_threads() -> int:
    """2 where BLAS's thread count can be set; else 1 (see :func:`convlens.inference.split_threads`)."""
    from convlens import blas_threads

    return 2 if blas_threads.can_limit() else 1


def record_block_splits(monkeypatch: Any) -> list[tuple[int, int]]:
    """Split any work over the threads (no size threshold) and record ``(pieces, bytes)`` of every split of
    :func:`convlens.ops.parallel.over_blocks` (not the kernels' own splits inside it): the list fills as the
    code under test runs."""
    from convlens.ops import parallel

    splits: list[tuple[int, int]] = []
    real = parallel.parallel_ranges

    def counted(work: Any, total: int, nbytes: int) -> None:
        if "over_blocks" in work.__qualname__:
            splits.append((total, nbytes))
        real(work, total, nbytes)

    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    monkeypatch.setattr(parallel, "parallel_ranges", counted)
    return splits
