"""The pointwise convolution's forward in blocks of rows (large outputs): the loop reference's values, the bias
in every block, the same bits on one thread or two, and the plain product below the threshold."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from convlens.ops.conv_plan import Conv2DPlan
from tests.support.conv_cases import close, make_case
from tests.support.threads import record_block_splits

conv_algorithms = importlib.import_module("convlens.ops.conv_algorithms")  # (convlens.ops.conv_algorithms is
# also a function of convlens.ops)
CASE = make_case((3, 7, 5, 6), (1, 1, 6, 4))  # 105 rows of 4 outputs


def _forward(bias: bool, dtype: Any = np.float32) -> np.ndarray:
    plan = Conv2DPlan(CASE.x_shape, CASE.kernel_shape, algorithm="pointwise", dtype=dtype)
    x, kernel, b = (a.astype(dtype) for a in CASE.arrays(seed=2))
    out = plan.forward(x, kernel, b if bias else None)
    close(out, CASE.reference(x, kernel, b if bias else None), 2e-6 if dtype == np.float32 else 1e-12)
    return out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_on_one_thread_or_two_give_the_reference_and_the_same_bits(
    monkeypatch: pytest.MonkeyPatch, bias: bool, dtype: Any
) -> None:
    monkeypatch.setattr(conv_algorithms, "POINTWISE_BLOCKED_MIN_BYTES", 0)
    monkeypatch.setattr(conv_algorithms, "POINTWISE_BLOCK_BYTES", 10 * 4 * np.dtype(dtype).itemsize)  # 10 rows
    splits = record_block_splits(monkeypatch)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        splits.clear()
        results[threads] = _forward(bias, dtype)
        assert [total for total, _ in splits] == (
            [] if threads == "1" else [11]
        )  # 105 rows: ten blocks of 10 and one of 5
    np.testing.assert_array_equal(results["1"], results["2"])


def test_below_the_threshold_one_product(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conv_algorithms, "POINTWISE_BLOCK_BYTES", 16)
    blocks: list[int] = []
    monkeypatch.setattr(conv_algorithms, "over_blocks_one_blas_thread", lambda work, total, nbytes: blocks.append(1))
    _forward(True)  # (105 x 4 floats: far below 16 MB)
    assert blocks == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_one_pass_backward_gives_the_references_gradients(monkeypatch: pytest.MonkeyPatch, dtype: Any) -> None:
    """With the input gradient wanted, the kernel gradient's pass computes it too (linalg.gemm_grads, 2048 +
    rows): the loop reference's three gradients, the same bits on one thread or two; without it, no input
    gradient is computed, and the kernel gradient has the same bits."""
    case = make_case((2, 64, 65, 6), (1, 1, 6, 5))  # 8320 rows: 32 chunks of 256 and a tail
    x, kernel, _ = (a.astype(dtype) for a in case.arrays(seed=4))
    grad = np.random.default_rng(6).standard_normal((2, 64, 65, 5)).astype(dtype)
    ref_x, ref_kernel, ref_bias = case.reference_backward(grad, x, kernel)
    tol = 2e-5 if dtype == np.float32 else 1e-11
    calls: list[int] = []
    real = conv_algorithms.gemm_grads
    monkeypatch.setattr(conv_algorithms, "gemm_grads", lambda *a: (calls.append(1), real(*a))[1])
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        plan = Conv2DPlan(case.x_shape, case.kernel_shape, algorithm="pointwise", dtype=dtype)
        grads = plan.backward(grad, x, kernel)
        close(grads.x, ref_x, tol)
        close(grads.kernel, ref_kernel, tol)
        close(grads.bias, ref_bias, tol)
        results.append(grads)
    assert calls == [1, 1]
    for name in ("x", "kernel", "bias"):
        np.testing.assert_array_equal(getattr(results[0], name), getattr(results[1], name))
    without = plan.backward(grad, x, kernel, compute_grad_x=False)
    assert without.x is None
    assert calls == [1, 1]
    np.testing.assert_array_equal(without.kernel, results[1].kernel)


def test_a_kept_input_gradient_serves_only_its_own_grad_out() -> None:
    """The input gradient kept by the one-pass kernel gradient is returned only for that same ``grad_out``."""
    case = make_case((2, 64, 65, 6), (1, 1, 6, 5))
    x, kernel, _ = case.arrays(seed=4)
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, algorithm="pointwise", dtype=np.float64)
    strategy = plan._selected(np.dtype(np.float64)).kernel_grad
    rng = np.random.default_rng(8)
    first, second = (rng.standard_normal((2, 64, 65, 5)) for _ in range(2))
    strategy.input_grad_follows = True
    strategy.kernel_grad(first, x, kernel)
    close(strategy.input_grad(second, x, kernel), case.reference_backward(second, x, kernel)[0], 1e-11)
