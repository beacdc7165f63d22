"""The batch-norm statistics kernel (a generated, register-blocked kernel): the checked-in file is the
generator's, and its sums have the bits of the plain row-by-row loop for any channel count and row pieces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convlens.ops import _batch_norm_statistics_kernel, batch_norm_jit
from convlens.ops.jit import compile_kernel
from convlens.ops.parallel import chunk_bounds
from tests.conftest import require


def _row_by_row(x: Any, shift: Any, bounds: Any, t0: int, t1: int, s1: Any, s2: Any) -> None:  # pragma: no cover
    channels = x.shape[1]
    for t in range(t0, t1):
        s1[t] = 0.0
        s2[t] = 0.0
        for r in range(bounds[t], bounds[t + 1]):
            for c in range(channels):
                d = np.float64(x[r, c]) - shift[c]
                s1[t, c] += d
                s2[t, c] += d * d


def test_the_checked_in_kernel_is_the_generators() -> None:
    assert Path(_batch_norm_statistics_kernel.__file__).read_text() == batch_norm_jit.statistics_source()


def test_the_blocks_keep_their_sums_in_local_variables() -> None:
    source = batch_norm_jit.statistics_source()
    block = batch_norm_jit.STATISTICS_BLOCK
    assert sum(f"    a{c} += d{c}" in source for c in range(block)) == block
    assert f"a{block} " not in source


@pytest.mark.parametrize("channels", [16, 32, 64, 8, 37, 1])  # blocks; below a block; blocks and more; one
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_as_the_row_by_row_loop(channels: int, dtype: Any) -> None:
    require("numba")
    rng = np.random.default_rng(channels)
    x = (rng.standard_normal((203, channels)) * 3 + 5).astype(dtype)
    x[7, 0] = np.nan if channels == 37 else x[7, 0]  # (a NaN stays in its channel's sums)
    shift = x[0].astype(np.float64)
    bounds = chunk_bounds(x.shape[0], 5)  # uneven pieces
    ours = [np.full((5, channels), 7.0) for _ in range(2)]  # (whatever was there is overwritten)
    theirs = [np.empty((5, channels)) for _ in range(2)]
    batch_norm_jit._kernels()[0](x, shift, bounds, 0, 5, *ours)
    compile_kernel(_row_by_row, cache=False)(x, shift, bounds, 0, 5, *theirs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    mean, var = batch_norm_jit.bn_moments(*ours, shift, x.shape[0])
    finite = ~np.isnan(mean)
    np.testing.assert_allclose(mean[finite], x[:, finite].astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var[finite], x[:, finite].astype(np.float64).var(axis=0), rtol=1e-9)
