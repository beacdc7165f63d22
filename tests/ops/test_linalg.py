"""matmul_tn and matmul_nn_long equal the plain products for every shape, chunked or not, on one thread or two."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.ops import parallel
from convlens.ops.linalg import add_row, gemm_grads, matmul_nn_long, matmul_tn


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


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_chunk_products_split_over_threads(monkeypatch: pytest.MonkeyPatch, threads: str) -> None:
    """The chunks' products go to the threads (every chunk once, added in order) and give the plain product."""
    rng = np.random.default_rng(int(threads))
    a = rng.standard_normal((10 * 64 + 7, 5))  # ten chunks of 64 rows and a tail
    b = rng.standard_normal((10 * 64 + 7, 6))
    monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    pieces: list[tuple[int, int]] = []
    real = parallel.parallel_ranges

    def spy(work, total, nbytes):  # type: ignore[no-untyped-def]
        real(lambda lo, hi: (pieces.append((lo, hi)), work(lo, hi)), total, nbytes)

    monkeypatch.setattr(parallel, "parallel_ranges", spy)
    np.testing.assert_allclose(matmul_tn(a, b, chunk_rows=64), a.T @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        matmul_nn_long(np.ascontiguousarray(a.T), b, chunk_rows=64), a.T @ b, rtol=1e-12, atol=1e-12
    )
    expected = (
        [] if threads == "1" else [(10 * i // int(threads), 10 * (i + 1) // int(threads)) for i in range(int(threads))]
    )
    assert sorted(pieces) == sorted(expected * 2)


@given(
    rows=st.integers(1, 3000),
    k=st.integers(1, 12),
    n=st.integers(1, 12),
    chunk=st.sampled_from([16, 100, 1024]),
)
def test_gemm_grads_are_the_three_products(rows: int, k: int, n: int, chunk: int) -> None:
    """``(a.T @ g, g's column sums, g @ w.T)``, chunked (with a tail) or not."""
    rng = np.random.default_rng(rows + k)
    a, g, w = rng.standard_normal((rows, k)), rng.standard_normal((rows, n)), rng.standard_normal((k, n))
    grad_w, grad_bias, grad_a = gemm_grads(a, g, w, chunk_rows=chunk)
    np.testing.assert_allclose(grad_w, a.T @ g, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(grad_bias, g.sum(axis=0), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(grad_a, g @ w.T, rtol=1e-10, atol=1e-9)
    if rows // chunk >= 8:  # (the one-pass path: its kernel gradient is matmul_tn's, bit for bit)
        np.testing.assert_array_equal(grad_w, matmul_tn(a, g, chunk_rows=chunk))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_grads_give_the_same_bits_on_one_thread_or_three(monkeypatch: pytest.MonkeyPatch, dtype: type) -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((20 * 64 + 13, 7)).astype(dtype)
    g = rng.standard_normal((20 * 64 + 13, 9)).astype(dtype)
    w = rng.standard_normal((7, 9)).astype(dtype)
    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    results = []
    for threads in ("1", "3"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        results.append(gemm_grads(a, g, w, chunk_rows=64))
    for one, three in zip(*results, strict=True):
        assert one.dtype == dtype
        np.testing.assert_array_equal(one, three)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_add_row_adds_to_every_row(monkeypatch: pytest.MonkeyPatch, threads: str) -> None:
    monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    out = np.arange(35.0).reshape(7, 5)
    expected = out + np.arange(5.0)
    add_row(out, np.arange(5.0))
    np.testing.assert_array_equal(out, expected)
