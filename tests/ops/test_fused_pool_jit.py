"""The compiled element-wise passes of the fused stage's GEMM path equal the NumPy passes bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.geometry import WindowGeometry
from convlens.ops import fused_algorithms, fused_pool_jit
from convlens.ops.activations import get_activation
from convlens.ops.fused import ConvMaxPoolPlan
from tests.conftest import require
from tests.support.kernels import compiled_kernels_on  # noqa: F401 (an autouse fixture)

require("numba")
DTYPES = [np.float32, pytest.param(np.float64, marks=pytest.mark.float64_kernels)]


SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 2.5])


def numpy_pool(slabs: np.ndarray, bias: np.ndarray | None, relu: bool) -> tuple[np.ndarray, np.ndarray]:
    """The NumPy path's operations, in its order."""
    window_max = slabs[0].copy()
    winner = np.zeros(window_max.shape, np.uint8)
    for s in range(1, len(slabs)):
        newer = slabs[s] > window_max
        np.maximum(winner, newer * np.uint8(s), out=winner)
        np.maximum(window_max, slabs[s], out=window_max)
    pooled = window_max + bias if bias is not None else window_max.copy()
    if relu:
        np.maximum(pooled, 0, out=pooled)
    return pooled, winner


@pytest.mark.parametrize("dtype", DTYPES)
@given(
    n_slabs=st.integers(2, 9),
    rows=st.sampled_from([1, 3, 257, 1030]),
    filters=st.sampled_from([1, 7, 32]),
    use_bias=st.booleans(),
    relu=st.booleans(),
    seed=st.integers(0, 50),
)
def test_pool_slabs_equals_numpy(
    n_slabs: int, rows: int, filters: int, dtype: Any, use_bias: bool, relu: bool, seed: int
) -> None:
    gen = np.random.default_rng(seed)
    # Mostly special values and small integers: ties, signed zeros, NaN and infinities everywhere.
    slabs = gen.choice(np.concatenate([SPECIALS, np.arange(-2.0, 3.0)]), (n_slabs, rows, filters)).astype(dtype)
    bias = gen.choice(SPECIALS[:4], filters).astype(dtype) if use_bias else None
    pooled = np.empty((rows, filters), dtype)
    winner = np.empty((rows, filters), np.uint8)
    assert fused_pool_jit.pool_slabs_jit(slabs, bias, relu, pooled, winner)
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN in both paths
        expected, expected_winner = numpy_pool(slabs, bias, relu)
    np.testing.assert_array_equal(pooled.view(np.uint8), expected.view(np.uint8))  # bits, incl. -0.0 and NaN
    np.testing.assert_array_equal(winner, expected_winner)
    inference = np.empty((rows, filters), dtype)
    assert fused_pool_jit.pool_slabs_jit(slabs, bias, relu, inference, None)
    np.testing.assert_array_equal(inference.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
@given(
    n_slabs=st.integers(2, 9),
    rows=st.sampled_from([1, 5, 300]),
    filters=st.sampled_from([3, 32]),
    relu=st.booleans(),
    seed=st.integers(0, 50),
)
def test_route_gradient_equals_numpy(n_slabs: int, rows: int, filters: int, dtype: Any, relu: bool, seed: int) -> None:
    gen = np.random.default_rng(seed)
    grad = gen.choice(SPECIALS, (rows, filters)).astype(dtype)
    out = gen.choice(SPECIALS, (rows, filters)).astype(dtype)
    winner = gen.integers(0, n_slabs, (rows, filters)).astype(np.uint8)
    masked = np.empty_like(grad)
    routed = np.empty((n_slabs, rows, filters), dtype)
    assert fused_pool_jit.route_gradient_jit(grad, out, winner, relu, masked, routed)
    with np.errstate(invalid="ignore"):  # inf * 0 is NaN in both paths
        g = np.multiply(grad, out > 0, dtype=dtype) if relu else grad
        expected = [np.multiply(g, winner == s) for s in range(n_slabs)]
    if relu:
        np.testing.assert_array_equal(masked.view(np.uint8), g.view(np.uint8))
    for s in range(n_slabs):
        np.testing.assert_array_equal(routed[s].view(np.uint8), expected[s].view(np.uint8))


@pytest.mark.parametrize("channels", [1, 8])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("blocks", ["one", "several"])
def test_fused_stage_gemm_path_same_bits_with_and_without_jit(
    channels: int, activation: str, dtype: Any, blocks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if blocks == "several":  # blocks of 256 rows over 16 * 6 * 5 = 480 rows: a full and a partial block
        monkeypatch.setattr(fused_algorithms, "_SLAB_BLOCK_BYTES", 1)
    gen = np.random.default_rng(channels)
    # Integer-valued data: many exact ties (and all-zero windows after the ReLU).
    x = gen.integers(-2, 3, (16, 12, 10, channels)).astype(dtype)
    kernel = gen.integers(-1, 2, (3, 3, channels, 16)).astype(dtype)
    bias = gen.integers(-1, 2, 16).astype(dtype)
    geometry = WindowGeometry.resolve((12, 10), (3, 3), 1, "same")
    ran = []
    pool_slabs = fused_algorithms.pool_slabs_jit
    monkeypatch.setattr(fused_algorithms, "pool_slabs_jit", lambda *a: ran.append(pool_slabs(*a)))
    results = []
    for jit in ("1", "0"):
        monkeypatch.setenv("CONVLENS_JIT", jit)
        plan = ConvMaxPoolPlan(
            x.shape, kernel.shape, geometry, (2, 2), get_activation(activation), algorithm="conv_pool_gemm"
        )
        out = plan.forward(x, kernel, bias, training=True, compute_grad_x=False)
        winner = plan.winner.copy()
        grad = gen.standard_normal(out.shape).astype(dtype) if jit == "1" else results[0][-1]
        grads = plan.backward(grad, kernel, compute_grad_x=True)
        results.append((out, winner, grads.x, grads.kernel, grads.bias, grad))
    assert ran  # the compiled pass ran in the first run (and only there: NumPy in the second)
    assert all(ran)
    for a, b in zip(*results, strict=True):
        assert a is not None
        assert b is not None
        np.testing.assert_array_equal(a, b)


def test_numpy_path_does_not_call_the_compiled_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> None:
        raise AssertionError("compiled pass called with CONVLENS_JIT=0")

    monkeypatch.setattr(fused_pool_jit, "_KERNELS", (boom, boom))
    geometry = WindowGeometry.resolve((6, 6), (3, 3), 1, "same")
    x = np.ones((2, 6, 6, 1), np.float32)
    kernel = np.ones((3, 3, 1, 4), np.float32)
    relu = get_activation("relu")
    plan = ConvMaxPoolPlan(x.shape, kernel.shape, geometry, (2, 2), relu, algorithm="conv_pool_gemm")
    monkeypatch.setenv("CONVLENS_JIT", "0")
    out = plan.forward(x, kernel, None, training=True, compute_grad_x=False)
    plan.backward(np.ones_like(out), kernel, compute_grad_x=False)
    monkeypatch.setenv("CONVLENS_JIT", "1")
    with pytest.raises(AssertionError, match="compiled pass called"):
        plan.forward(x, kernel, None, training=True, compute_grad_x=False)
