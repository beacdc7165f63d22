"""The pointwise convolution's forward in blocks of rows (large outputs): the loop reference's values, the bias
in every block, the same bits on one thread or two, and the plain product below the threshold. Below it, with a
bias, the input beside a ones column: the kernel gradient reuses the forward's copy only for the same input."""

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


def _backward_reference(x: np.ndarray, kernel: np.ndarray, grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x64 = x.reshape(-1, x.shape[-1]).astype(np.float64)
    g64 = grad_out.reshape(-1, grad_out.shape[-1]).astype(np.float64)
    return (x64.T @ g64).reshape(kernel.shape), g64.sum(axis=0)


@pytest.mark.parametrize("reuse_buffers", [True, False])
def test_ones_column_gives_the_bias_and_its_gradient(reuse_buffers: bool) -> None:
    plan = Conv2DPlan(CASE.x_shape, CASE.kernel_shape, algorithm="pointwise", reuse_buffers=reuse_buffers)
    x, kernel, b = CASE.arrays(seed=2)
    products: list[tuple[int, ...]] = []
    original = conv_algorithms.matmul_tn

    def spy(a: np.ndarray, g: np.ndarray) -> np.ndarray:
        products.append(a.shape)
        return original(a, g)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_algorithms, "matmul_tn", spy)
        for step in range(2):  # (the second step reuses the workspace's buffer and its ones column)
            out = plan.forward(x, kernel, b)
            close(out, CASE.reference(x, kernel, b), 1e-12)
            grad_out = np.random.default_rng(step).standard_normal(out.shape)
            grads = plan.backward(grad_out, x, kernel)
            expected_kernel, expected_bias = _backward_reference(x, kernel, grad_out)
            close(grads.kernel, expected_kernel, 1e-12)
            close(grads.bias, expected_bias, 1e-12)
            close(grads.x, CASE.reference_backward(grad_out, x, kernel)[0], 1e-12)
    assert products == [(105, 7), (105, 7)]  # x beside its ones column: the kernel and bias gradient in one GEMM


def test_kernel_gradient_of_another_input_does_not_use_the_forwards_copy() -> None:
    plan = Conv2DPlan(CASE.x_shape, CASE.kernel_shape, algorithm="pointwise")
    x, kernel, b = CASE.arrays(seed=2)
    other = np.random.default_rng(9).standard_normal(x.shape)
    out = plan.forward(x, kernel, b)
    grad_out = np.random.default_rng(3).standard_normal(out.shape)
    grads = plan.backward(grad_out, other, kernel)
    expected_kernel, expected_bias = _backward_reference(other, kernel, grad_out)
    close(grads.kernel, expected_kernel, 1e-12)
    close(grads.bias, expected_bias, 1e-12)
    plan.forward(x, kernel, b)
    plan.forward(other, kernel, b)  # (the workspace's copy now holds `other`)
    grads = plan.backward(grad_out, x, kernel)
    close(grads.kernel, _backward_reference(x, kernel, grad_out)[0], 1e-12)
