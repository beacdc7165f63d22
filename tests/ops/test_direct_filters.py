"""The register-blocked direct convolution (``direct_filters``): its generated kernel, its blocks, threads and the
SLP compilation it depends on. (The forced-algorithm tests against the loops and PyTorch over its whole domain,
and the selection rows, are in test_conv_algorithms.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.ops import _direct_filters_kernel, direct_filters_jit, parallel
from convlens.ops.direct_filters_jit import BLOCK_FILTERS, blocked_weights, direct_filters_forward_jit, kernel_source
from convlens.ops.jit import compile_kernel
from tests.conftest import require
from tests.support.conv_cases import close, make_case
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)

require("numba")


def _run(case: Any, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, kernel, bias = (a.astype(dtype) for a in case.arrays(seed=seed))
    geometry = WindowGeometry.resolve(x.shape[1:3], kernel.shape[:2], case.strides, case.padding, case.dilation)
    return direct_filters_forward_jit(x, kernel, bias, geometry), case.reference(x, kernel, bias)


def test_the_checked_in_kernel_is_what_the_generator_writes() -> None:
    assert Path(_direct_filters_kernel.__file__).read_text() == kernel_source()


def test_the_generated_kernel_keeps_a_block_of_sums() -> None:
    source = kernel_source()
    sums = set(re.findall(r"\bs(\d+)_(\d+) \+= v\1 \* w\2\b", source))
    pixels, filters = direct_filters_jit.BLOCK_PIXELS, BLOCK_FILTERS
    assert sums == {(str(p), str(f)) for p in range(pixels) for f in range(filters)}


def test_the_weights_are_blocked_32_filters_at_a_time() -> None:
    kernel = np.arange(2 * 3 * 2 * 64, dtype=np.float32).reshape(2, 3, 2, 64)
    blocks = blocked_weights(kernel)
    assert blocks.shape == (2, 2, 6, 32)
    assert blocks.flags.c_contiguous
    # block g, kernel row i, window offset t = j * C + c, filter f of the block: kernel[i, j, c, 32 g + f]
    assert blocks[1, 1, 5, 7] == kernel[1, 2, 1, 39]
    assert blocks[0, 0, 2, 31] == kernel[0, 1, 0, 31]


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
@pytest.mark.parametrize(
    "case",
    [
        make_case((2, 32, 32, 3), (3, 3, 3, 32), strides=2),  # a first layer: 15 columns, five whole blocks
        make_case((2, 9, 8, 3), (3, 3, 3, 64), padding="same"),  # 8 columns: a block of 3 reaches one past the row
        make_case((1, 4, 2, 1), (3, 2, 1, 32), padding="same"),  # one column: a block of one
        make_case((2, 7, 10, 2), (2, 4, 2, 32), strides=(2, 3), padding=((0, 3), (4, 1)), dilation=(2, 1)),
        make_case((1, 5, 5, 8), (5, 5, 8, 96), padding="valid"),  # one output pixel, three filter blocks
    ],
    ids=str,
)
def test_blocks_and_pads_against_the_loops(case: Any, dtype: Any) -> None:
    out, expected = _run(case, dtype)
    assert out.dtype == dtype
    assert out.flags.c_contiguous
    close(out, expected, 2e-6 if dtype == np.float32 else 1e-12)


def test_threads_split_the_images_and_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case((6, 12, 12, 3), (3, 3, 3, 32), padding="same")
    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    ranges: list[tuple[int, int]] = []
    real = parallel.parallel_ranges

    def recorded(work: Any, total: int, nbytes: int) -> None:
        def piece(lo: int, hi: int) -> None:
            ranges.append((lo, hi))
            work(lo, hi)

        real(piece, total, nbytes)

    monkeypatch.setattr(parallel, "parallel_ranges", recorded)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        results[threads], expected = _run(case, np.float32, seed=3)
    assert sorted(ranges) == [(0, 3), (0, 6), (3, 6)]  # one thread took all six images; two took three each
    np.testing.assert_array_equal(results["1"], results["2"])
    close(results["2"], expected, 2e-6)


def test_the_slp_compiler_vectorises_the_block_and_leaves_numbas_switch_alone() -> None:
    from numba.core import config

    before = config.SLP_VECTORIZE
    vectorised = compile_kernel(_direct_filters_kernel._forward, {"slp": True, "fastmath": {"contract"}}, cache=False)
    scalar = compile_kernel(_direct_filters_kernel._forward, {"noalias": True, "fastmath": {"contract"}}, cache=False)
    case = make_case((1, 6, 6, 3), (3, 3, 3, 32))
    x, kernel, bias = (a.astype(np.float32) for a in case.arrays())
    weights = blocked_weights(kernel)
    outs = []
    for compiled in (vectorised, scalar):
        out = np.empty((1, 4, 4, 32), np.float32)
        compiled(x.reshape(1, 6, 18), weights, bias, out, 0, 1, 3, 1, 1, 1, 0, 0)
        outs.append(out)
    close(outs[0], case.reference(x, kernel, bias), 2e-6)
    close(outs[1], outs[0], 2e-6)
    assert before == config.SLP_VECTORIZE  # (switched on only while the kernel compiled)

    def vector_multiply_adds(dispatcher: Any) -> int:
        ir = "\n".join(dispatcher.inspect_llvm().values())
        return len(re.findall(r"<\d+ x float>.*@llvm\.fma|fmul contract <\d+ x float>|fadd contract <\d+ x float>", ir))

    assert vector_multiply_adds(vectorised) > 0
    assert vector_multiply_adds(scalar) == 0  # (Numba's default: the block of sums stays scalar)
