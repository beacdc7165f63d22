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


def test_one_thread_here_runs_parallel_kernels_alone_and_restores() -> None:
    """Inside one_thread_here a thread launches parallel kernels itself (no launch lock) on one Numba thread."""
    from tests.conftest import require

    require("numba")
    import numba

    from convlens.ops import jit

    assert jit.threadsafe_launches() in (True, False)
    before = numba.get_num_threads()
    with jit.launch_lock, jit.one_thread_here():  # the lock is held: a launch that waited for it would hang
        assert numba.get_num_threads() == 1
        assert parallel.num_threads() == 1  # nothing inside splits over the pool again
        seen: list[tuple[int, int]] = []
        parallel.parallel_ranges(lambda lo, hi: seen.append((lo, hi)), 10, 1 << 30)
        assert seen == [(0, 10)]
        a = np.zeros(5)
        jit.launch(jit._probe(), a)
        np.testing.assert_array_equal(a, np.arange(5.0))
    assert numba.get_num_threads() == before
    assert not parallel.alone_here()
