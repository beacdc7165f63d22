"""The blocked im2col algorithm: several blocks against one and against the loop reference, compiled rows and
NumPy rows, the same bits whatever the thread count.

(The forced-algorithm tests over its whole domain, in float64 and NumPy, are in test_conv_algorithms.py.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens.ops import conv_blocked, conv_input_grads, windows_jit
from convlens.ops.conv_plan import Conv2DPlan
from tests.conftest import require
from tests.support.conv_cases import close, make_case
from tests.support.kernels import compiled_kernels_on  # noqa: F401 (an autouse fixture)
from tests.support.threads import record_block_splits

CASES = {
    "lenet": make_case((5, 14, 14, 6), (5, 5, 6, 16), padding="valid"),
    "strided_same": make_case((4, 9, 8, 5), (3, 3, 5, 7), strides=2, padding="same"),
    "dilated_height_padded": make_case((3, 8, 9, 6), (3, 2, 6, 4), strides=(1, 2), padding=1, dilation=(2, 1)),
    "dilated_width": make_case((3, 8, 9, 6), (2, 3, 6, 4), padding="same", dilation=(1, 2)),  # NumPy rows
}


def _run(case: Any, seed: int = 0) -> list[np.ndarray]:
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs(), algorithm="im2col_blocked", dtype=np.float32)
    assert plan.algorithms[:2] == ("im2col_blocked", "im2col_blocked")
    x, kernel, bias = (a.astype(np.float32) for a in case.arrays(seed=seed))
    grad = np.random.default_rng(seed + 1).standard_normal(plan.output_shape).astype(np.float32)
    out = plan.forward(x, kernel, bias)
    grads = plan.backward(grad, x, kernel)
    return [out, grads.kernel, grads.bias, grads.x]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("block_bytes", [1, 3000, 1 << 30])  # one image a block, a few, the whole batch
def test_blocks_match_the_loop_reference(name: str, block_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    require("numba")
    case = CASES[name]
    monkeypatch.setattr(conv_blocked, "BLOCKED_COLS_BYTES", block_bytes)
    rows_used = []
    rows = windows_jit.im2col_rows_jit
    monkeypatch.setattr(conv_blocked, "im2col_rows_jit", lambda *a: rows_used.append(rows(*a)) or rows_used[-1])
    out, grad_kernel, grad_bias, grad_x = _run(case)
    x, kernel, bias = (a.astype(np.float32) for a in case.arrays(seed=0))
    grad = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    close(out, case.reference(x, kernel, bias), 2e-5)
    for ours, theirs in zip([grad_x, grad_kernel, grad_bias], case.reference_backward(grad, x, kernel), strict=True):
        close(ours, theirs, 2e-5)
    blocks = case.x_shape[0] if block_bytes == 1 else (1 if block_bytes > 1e6 else None)
    if blocks is not None:
        assert len(rows_used) == 2 * blocks  # the forward's blocks, then the kernel gradient's again
    assert all(rows_used) == (name != "dilated_width")


@pytest.mark.parametrize("name", ["lenet", "strided_same"])
@pytest.mark.parametrize("groups", [2, 8])  # kernel-gradient groups of several blocks, of one block each
def test_same_bits_with_one_or_two_threads(name: str, groups: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads take whole blocks (forward, kernel gradient by groups, col2im input gradient): the same bits
    as one thread, and the loop reference's values."""
    require("numba")
    monkeypatch.setattr(conv_blocked, "BLOCKED_COLS_BYTES", 3000)  # one image a block
    monkeypatch.setattr(conv_input_grads, "COL2IM_BLOCK_BYTES", 3000)
    monkeypatch.setattr(conv_blocked, "KERNEL_GRAD_GROUPS", groups)
    splits = record_block_splits(monkeypatch)
    case = CASES[name]
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        splits.clear()
        results[threads] = _run(case, seed=3)
        images = case.x_shape[0]
        assert [total for total, _ in splits] == ([] if threads == "1" else [images, min(groups, images), images])
    for a, b in zip(results["1"], results["2"], strict=True):
        np.testing.assert_array_equal(a, b)
    x, kernel, bias = (a.astype(np.float32) for a in case.arrays(seed=3))
    grad = np.random.default_rng(4).standard_normal(results["1"][0].shape).astype(np.float32)
    out, grad_kernel, grad_bias, grad_x = results["2"]
    close(out, case.reference(x, kernel, bias), 2e-5)
    for ours, theirs in zip([grad_x, grad_kernel, grad_bias], case.reference_backward(grad, x, kernel), strict=True):
        close(ours, theirs, 2e-5)


def test_without_the_jit_the_numpy_im2col_fills_the_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES["lenet"]
    monkeypatch.setattr(conv_blocked, "BLOCKED_COLS_BYTES", 3000)
    compiled = _run(case)
    monkeypatch.setenv("CONVLENS_JIT", "0")
    monkeypatch.setattr(windows_jit, "_KERNELS", None)  # (nothing compiled may run: see the spy below)
    monkeypatch.setattr(conv_blocked, "im2col_rows_jit", lambda *a: False)
    numpy = _run(case)
    for a, b in zip(compiled, numpy, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("block_bytes", [1, 3000, 1 << 30])  # one image a block, a few, the whole batch
def test_col2im_blocks_match_the_loop_reference(name: str, block_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    require("numba")
    monkeypatch.setattr(conv_input_grads, "COL2IM_BLOCK_BYTES", block_bytes)
    case = CASES[name]
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs(), algorithm="col2im_blocked", dtype=np.float32)
    x, kernel, _ = (a.astype(np.float32) for a in case.arrays(seed=4))
    grad = np.random.default_rng(5).standard_normal(plan.output_shape).astype(np.float32)
    grad_x = plan.backward(grad, x, kernel).x
    close(grad_x, case.reference_backward(grad, x, kernel)[0], 2e-6)
    again = plan.backward(grad, x, kernel).x  # (the block buffer is reused: nothing left over from the last call)
    np.testing.assert_array_equal(again, grad_x)


def test_a_plan_whose_blocks_grow_grows_its_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread's block buffers are kept between calls: larger blocks later (a changed block size) get larger
    buffers, not a short view."""
    require("numba")
    case = CASES["lenet"]
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs(), algorithm="im2col_blocked", dtype=np.float32)
    x, kernel, bias = (a.astype(np.float32) for a in case.arrays(seed=6))
    grad = np.random.default_rng(7).standard_normal(plan.output_shape).astype(np.float32)
    expected = [case.reference(x, kernel, bias), *case.reference_backward(grad, x, kernel)]
    for block_bytes in (3000, 1 << 30):  # one image a block, then the whole batch
        monkeypatch.setattr(conv_blocked, "BLOCKED_COLS_BYTES", block_bytes)
        monkeypatch.setattr(conv_input_grads, "COL2IM_BLOCK_BYTES", block_bytes)
        out = plan.forward(x, kernel, bias)
        grads = plan.backward(grad, x, kernel)
        for ours, theirs in zip([out, grads.x, grads.kernel, grads.bias], expected, strict=True):
            close(ours, theirs, 2e-5)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_kernel_gradient_in_chunks_of_rows(threads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block's kernel-gradient product runs in chunks of rows (matmul_tn; 16-row chunks here, so LeNet's
    blocks of 500 rows have 31): the loop reference's gradients, the same bits on one thread or two."""
    require("numba")
    monkeypatch.setattr(conv_blocked, "CHUNK", 16)
    monkeypatch.setattr(conv_blocked, "BLOCKED_COLS_BYTES", 1 << 30)  # (one block: all 5 images, 500 rows)
    chunked: list[int] = []
    real = conv_blocked.matmul_tn
    monkeypatch.setattr(
        conv_blocked,
        "matmul_tn",
        lambda a, b, chunk_rows: (chunked.append(a.shape[0] // chunk_rows), real(a, b, chunk_rows=chunk_rows))[1],
    )
    case = CASES["lenet"]
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "1")
    one = _run(case, seed=5)
    monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
    again = _run(case, seed=5)
    assert chunked == [31, 31]
    for a, b in zip(one, again, strict=True):
        np.testing.assert_array_equal(a, b)
    x, kernel, _ = (a.astype(np.float32) for a in case.arrays(seed=5))
    grad = np.random.default_rng(6).standard_normal(one[0].shape).astype(np.float32)
    for ours, theirs in zip([one[3], one[1], one[2]], case.reference_backward(grad, x, kernel), strict=True):
        close(ours, theirs, 2e-5)
