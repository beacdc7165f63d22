"""convlens.ops.jit: noalias serial kernels (vectorised like Numba's parallel ones) and the overlap guard."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from convlens.ops import jit, winograd_jit
from tests.conftest import require


def _packed_float_ops(kernel) -> int:
    asm = "".join(kernel.inspect_asm().values())
    return len(re.findall(r"\bv?(?:add|sub)ps\b", asm))


def test_noalias_kernels_are_vectorised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Winograd input transform stores 16 planes per channel: LLVM vectorises that loop only when the arrays
    are marked noalias ("too many memory checks needed" otherwise; 6x slower on the AMD EPYC)."""
    require("numba")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    padded = np.ones((2, 6, 6, 8), np.float32)
    v = np.empty((16, 2, 2, 2, 8), np.float32)
    marked = jit.compile_kernel(winograd_jit._input_transform, {"noalias": True}, cache=False)
    plain = jit.compile_kernel(winograd_jit._input_transform, cache=False)
    for kernel in (marked, plain):
        kernel(padded, v, 0, 4)
    assert _packed_float_ops(marked) >= 16
    assert _packed_float_ops(plain) < _packed_float_ops(marked)


def test_a_kernel_never_writes_over_an_array_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """noalias kernels promise LLVM disjoint arrays: an output that overlaps an input is refused, not computed."""
    require("numba")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    buffer = np.zeros(16 * 2 * 2 * 2 * 8 + 2 * 6 * 6 * 8, np.float32)
    v = buffer[: 16 * 2 * 2 * 2 * 8].reshape(16, 2, 2, 2, 8)
    padded = buffer[-2 * 6 * 6 * 8 :].reshape(2, 6, 6, 8)
    assert winograd_jit.input_transform(padded, v)  # (disjoint views of one buffer are fine)
    with pytest.raises(ValueError, match=r"output 0, shape \(16, 2, 2, 2, 8\), overlaps"):
        winograd_jit.input_transform(buffer[:576].reshape(2, 6, 6, 8), v)


def test_check_disjoint_compares_every_written_array() -> None:
    a = np.zeros(10)
    jit.check_disjoint([a[:5], a[5:]], [np.zeros(3)])
    with pytest.raises(ValueError, match="output 0"):
        jit.check_disjoint([a[:6], a[5:]], [])
    with pytest.raises(ValueError, match="output 1"):
        jit.check_disjoint([np.zeros(2), a[5:]], [a[:6]])
    jit.check_disjoint([a[:0]], [a])  # (empty arrays overlap nothing)


def _winograd_in_child(queue: Any) -> None:
    from convlens.ops.conv_plan import Conv2DPlan

    x, kernel = _fork_case()
    plan = Conv2DPlan(x.shape, kernel.shape, padding="same", algorithm="winograd", dtype=np.float32)
    queue.put(plan.forward(x, kernel, None))


def _fork_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.standard_normal((64, 12, 12, 16), np.float32), rng.standard_normal((3, 3, 16, 16), np.float32)


def test_kernels_run_in_a_child_forked_after_they_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kernel starts OpenMP threads (all are serial, split over convlens's own threads; GNU OpenMP's do not
    survive fork()), so a process forked after running them runs them again."""
    require("numba")
    import multiprocessing

    from convlens.ops.conv_plan import Conv2DPlan

    monkeypatch.setenv("CONVLENS_JIT", "1")
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    x, kernel = _fork_case()
    plan = Conv2DPlan(x.shape, kernel.shape, padding="same", algorithm="winograd", dtype=np.float32)
    expected = plan.forward(x, kernel, None)  # (its kernels ran here, over two threads: 4.7 MB of tiles)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_winograd_in_child, args=(queue,))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, expected)
