"""The float32 tanh (Eigen's interpolant): compiled kernel and NumPy twin bit for bit, accuracy against float64
tanh, the special values, and which of the two runs."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.ops import activations
from convlens.ops import tanh_float32 as tf32
from tests.conftest import require
from tests.support.kernels import compiled_kernels_on  # noqa: F401 (an autouse fixture)

# Every 127th float32 bit pattern from +0 up to 10.5 (all exponents, ~8.6 M values), then the negatives.
_TOP = int(np.float32(10.5).view(np.uint32))


def _sample() -> np.ndarray:
    positive = np.arange(0, _TOP, 127, dtype=np.uint32).view(np.float32)
    return np.concatenate([positive, -positive])


def _both(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    require("numba")
    compiled, twin = np.empty_like(x), np.empty_like(x)
    tf32._kernels()[0](x, compiled)
    tf32.tanh_float32_numpy(x, twin)
    return compiled, twin


def test_compiled_kernel_and_numpy_twin_give_the_same_bits() -> None:
    x = _sample()
    compiled, twin = _both(x)
    np.testing.assert_array_equal(compiled.view(np.uint32), twin.view(np.uint32))


def test_within_seven_ulp_of_tanh_odd_and_inside_minus_one_one() -> None:
    x = _sample()
    y = np.empty_like(x)
    tf32.tanh_float32_numpy(x, y)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert (np.abs(y - exact) / ulp).max() <= 7
    half = x.size // 2
    np.testing.assert_array_equal(y[half:], -y[:half])
    assert np.abs(y).max() == 1.0
    # monotone to within 4.8e-7 between neighbouring sampled values
    assert np.diff(y[:half].astype(np.float64)).min() >= -4.8e-7


@pytest.mark.parametrize("block", [3, 16384])
def test_special_values(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tf32, "BLOCK", block)  # (blocks smaller than the array, and one block)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3e-4, 9.0, 9.5, -30.0, 3e38], np.float32)
    compiled, twin = _both(x)
    for y in (compiled, twin):
        np.testing.assert_array_equal(y[1:3], [1, -1])
        assert np.isnan(y[0])
        assert not np.signbit(y[3])
        assert np.signbit(y[4])
        np.testing.assert_array_equal(y[3:8], x[3:8])  # tanh(x) = x in float32 below 4e-4
        np.testing.assert_array_equal(y[8:], [1, 1, -1, 1])
    np.testing.assert_array_equal(compiled.view(np.uint32), twin.view(np.uint32))


def test_the_activation_runs_the_kernel_with_the_jit_and_the_twin_without(monkeypatch: pytest.MonkeyPatch) -> None:
    require("numba")
    x = np.random.default_rng(0).standard_normal((3, 50, 7)).astype(np.float32)[:, ::2]  # not contiguous
    ran: list[str] = []
    twin = tf32.tanh_float32_numpy
    monkeypatch.setattr(tf32, "tanh_float32_numpy", lambda *a: ran.append("twin") or twin(*a))
    results = []
    for jit in ("1", "0"):
        monkeypatch.setenv("CONVLENS_JIT", jit)
        results.append(activations.tanh(x))
    assert ran == ["twin"]
    np.testing.assert_array_equal(results[0], results[1])
    assert results[0].dtype == np.float32
    np.testing.assert_allclose(results[0], np.tanh(x.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_float64_keeps_numpys_tanh() -> None:
    x = np.random.default_rng(1).standard_normal(1000) * 4
    np.testing.assert_array_equal(activations.tanh(x), np.tanh(x))
