"""matmul_tn equals a.T @ b for every shape, chunked or not."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from convlens.ops.linalg import matmul_tn


@given(
    rows=st.integers(1, 20000),
    k=st.integers(1, 40),
    n=st.integers(1, 40),
    chunk=st.sampled_from([16, 100, 1024]),
)
def test_matches_plain_product(rows: int, k: int, n: int, chunk: int) -> None:
    rng = np.random.default_rng(rows)
    a = rng.standard_normal((rows, k))
    b = rng.standard_normal((rows, n))
    np.testing.assert_allclose(matmul_tn(a, b, chunk_rows=chunk), a.T @ b, rtol=1e-10, atol=1e-9)


def test_float32_stays_float32_and_is_accurate() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((100_000, 9)).astype(np.float32)
    b = rng.standard_normal((100_000, 32)).astype(np.float32)
    out = matmul_tn(a, b)
    assert out.dtype == np.float32
    exact = a.astype(np.float64).T @ b.astype(np.float64)
    np.testing.assert_allclose(out, exact, rtol=1e-4, atol=1e-3 * np.abs(exact).max())
