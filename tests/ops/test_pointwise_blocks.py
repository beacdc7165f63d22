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
