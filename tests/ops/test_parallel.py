"""The threaded split of im2col / col2im gives the same arrays as the single-threaded path."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.ops import parallel
from convlens.ops.windows import col2im, im2col


@pytest.mark.parametrize("channels", [1, 3, 8, 16])
@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_threads_do_not_change_results(monkeypatch, channels, threads):
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((5, 9, 8, channels))
    geometry = WindowGeometry.resolve((9, 8), 3, (2, 1), "same", 2)
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "1")
    cols_ref = im2col(x, geometry).copy()
    grad = rng.standard_normal(cols_ref.shape)
    back_ref = col2im(grad, geometry).copy()
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
    np.testing.assert_array_equal(im2col(x, geometry), cols_ref)
    np.testing.assert_array_equal(col2im(grad, geometry), back_ref)


def test_batch_slices_cover_the_batch_once():
    for batch in range(1, 12):
        for parts in range(1, 6):
            slices = parallel.batch_slices(batch, parts)
            covered = np.concatenate([np.arange(batch)[s] for s in slices])
            np.testing.assert_array_equal(covered, np.arange(batch))
            assert len(slices) == min(parts, batch)


def test_this_thread_alone_runs_serial_kernels_inline_and_restores() -> None:
    """Inside this_thread_alone a thread's split work runs on it in one piece (no nested hand-off to the pool)."""
    with parallel.this_thread_alone():
        assert parallel.alone_here()
        assert parallel.num_threads() == 1
        seen: list[tuple[int, int]] = []
        parallel.serial_kernel_over(lambda lo, hi: seen.append((lo, hi)), 10, 1 << 30)
        assert seen == [(0, 10)]
    assert not parallel.alone_here()


def test_num_threads_reads_the_core_count_once(monkeypatch) -> None:
    """The core count (capped at 8) is read once, not on every split; the environment switch is read every call."""
    calls: list[int] = []

    def cpu_count() -> int:
        calls.append(1)
        return 12

    monkeypatch.delenv("CONVLENS_NUM_THREADS", raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", cpu_count)
    parallel._cores.cache_clear()
    try:
        assert [parallel.num_threads() for _ in range(5)] == [8] * 5
        assert len(calls) == 1
        monkeypatch.setenv("CONVLENS_NUM_THREADS", "3")
        assert parallel.num_threads() == 3
    finally:
        parallel._cores.cache_clear()


def test_over_blocks_one_blas_thread_limits_blas_on_any_thread_count_but_not_when_alone(monkeypatch) -> None:
    """BLAS is held to one thread with one thread or two (the same GEMM bits); inside this_thread_alone the work
    runs inline without taking the BLAS limit (its lock belongs to whoever split the work)."""
    import contextlib

    entered: list[int] = []

    @contextlib.contextmanager
    def limit():  # type: ignore[no-untyped-def]
        entered.append(1)
        yield True

    monkeypatch.setattr(parallel, "one_blas_thread", limit)
    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    for threads, pieces in (("1", [(0, 6)]), ("2", [(0, 3), (3, 6)])):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        seen: list[tuple[int, int]] = []
        entered.clear()
        parallel.over_blocks_one_blas_thread(lambda lo, hi, seen=seen: seen.append((lo, hi)), 6, 1 << 20)
        assert sorted(seen) == pieces
        assert len(entered) == (1 if threads == "1" else 2)  # (over_blocks takes the limit again, re-entrant)
    entered.clear()
    with parallel.this_thread_alone():
        seen = []
        parallel.over_blocks_one_blas_thread(lambda lo, hi: seen.append((lo, hi)), 6, 1 << 20)
    assert seen == [(0, 6)]
    assert entered == []
