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
from convlens.ops import direct_filters_jit, parallel
from convlens.ops.direct_filters_jit import (
    BLOCKS,
    blocked_weights,
    direct_filters_forward_jit,
    direct_filters_kernel_grad_jit,
    generated_module,
    kernel_sources,
    pointwise_jit,
)
from convlens.ops.direct_jit import CHUNKS
from convlens.ops.jit import compile_kernel
from tests.conftest import require
from tests.support.conv_cases import close, make_case
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)

require("numba")


def _geometry(case: Any) -> WindowGeometry:
    return WindowGeometry.resolve(case.x_shape[1:3], case.kernel_shape[:2], case.strides, case.padding, case.dilation)


def _record_ranges(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[tuple[int, int]]:
    """Split any work over the threads (no size threshold) through ``module.parallel_ranges``, recording the
    ``(lo, hi)`` ranges the threads get."""
    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    ranges: list[tuple[int, int]] = []
    real = parallel.parallel_ranges

    def recorded(work: Any, total: int, nbytes: int) -> None:
        def piece(lo: int, hi: int) -> None:
            ranges.append((lo, hi))
            work(lo, hi)

        real(piece, total, nbytes)

    monkeypatch.setattr(module, "parallel_ranges", recorded)
    return ranges


def _run(case: Any, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, kernel, bias = (a.astype(dtype) for a in case.arrays(seed=seed))
    return direct_filters_forward_jit(x, kernel, bias, _geometry(case)), case.reference(x, kernel, bias)


def _run_grad(case: Any, dtype: Any, seed: int = 0) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The kernel and bias gradients, and the loop reference's."""
    x, kernel, _ = (a.astype(dtype) for a in case.arrays(seed=seed))
    geometry = _geometry(case)
    grad_out = np.random.default_rng(seed).standard_normal((x.shape[0], *geometry.output_size, kernel.shape[3]))
    grad_out = grad_out.astype(dtype)
    _, grad_kernel, grad_bias = case.reference_backward(grad_out, x, kernel)
    return direct_filters_kernel_grad_jit(x, grad_out, geometry, kernel.shape), (grad_kernel, grad_bias)


def test_the_checked_in_kernel_is_what_the_generator_writes() -> None:
    sources = kernel_sources()
    assert set(sources) == set(direct_filters_jit.KERNEL_NAMES)
    for name, text in sources.items():
        assert Path(generated_module(name).__file__).read_text() == text, name
    folder = Path(generated_module("forward_32").__file__).parent
    assert {path.stem for path in folder.glob("*.py")} == {"__init__", *sources}  # (no stale module)


@pytest.mark.parametrize(("filters", "pixels"), list(BLOCKS.items()))
def test_each_generated_kernel_keeps_a_block_of_sums(filters: int, pixels: int) -> None:
    source = kernel_sources()[f"forward_{filters}"]
    sums = set(re.findall(r"\bs(\d+)_(\d+) \+= v\1 \* w\2\b", source))
    assert sums == {(str(p), str(f)) for p in range(pixels) for f in range(filters)}
    # each pixel's input comes from its own view of the row, indexed by the loop counter alone
    assert {int(p) for p in re.findall(r"\bv(\d+) = r\1\[t\]", source)} == set(range(pixels))
    grad = kernel_sources()[f"kernel_grad_{filters}"]
    sums = set(re.findall(r"\bs(\d+)_(\d+) \+= v\1 \* w\2\b", grad))
    assert sums == {(str(p), str(f)) for p in range(pixels) for f in range(filters)}  # (taps x filters)
    assert "q = np.uint64(t)" in grad  # (the unsigned column: no wrap-around select on the loads)


def test_blocks_of_32_filters_where_32_divides_them_else_16() -> None:
    assert [direct_filters_jit.block_filters(f) for f in (32, 64, 96, 16, 48, 80, 8, 6, 24)] == [
        32,
        32,
        32,
        16,
        16,
        16,
        None,
        None,
        None,
    ]


@pytest.mark.parametrize("block", [32, 16])
def test_the_weights_are_blocked_a_block_of_filters_at_a_time(block: int) -> None:
    kernel = np.arange(2 * 3 * 2 * 64, dtype=np.float32).reshape(2, 3, 2, 64)
    blocks = blocked_weights(kernel, block)
    assert blocks.shape == (64 // block, 2, 6, block)
    assert blocks.flags.c_contiguous
    # block g, kernel row i, window offset t = j * C + c, filter f of the block: kernel[i, j, c, block g + f]
    assert blocks[1, 1, 5, 7] == kernel[1, 2, 1, block + 7]
    assert blocks[0, 0, 2, block - 1] == kernel[0, 1, 0, block - 1]


CASES = [
    make_case((2, 32, 32, 3), (3, 3, 3, 32), strides=2),  # a first layer: 15 columns, five whole blocks
    make_case((2, 9, 8, 3), (3, 3, 3, 64), padding="same"),  # 8 columns: a block of 3 reaches one past the row
    make_case((1, 4, 2, 1), (3, 2, 1, 32), padding="same"),  # one column: a block of one
    make_case((2, 7, 10, 2), (2, 4, 2, 32), strides=(2, 3), padding=((0, 3), (4, 1)), dilation=(2, 1)),
    make_case((1, 5, 5, 8), (5, 5, 8, 96), padding="valid"),  # one output pixel, three filter blocks
    make_case((2, 14, 14, 6), (5, 5, 6, 16), padding="valid"),  # LeNet-5's 6 -> 16: 6 x 16 blocks, 10 columns
    make_case((2, 9, 13, 3), (3, 3, 3, 48), strides=(1, 2), padding="same"),  # three 16-blocks; 7 columns
    make_case((1, 3, 3, 2), (3, 3, 2, 16), padding="same"),  # 3 columns: one block of 6 reaching 3 past
    make_case((3, 8, 9, 1), (3, 3, 1, 16), strides=(2, 1), padding="same"),  # rows of 3 taps in a run of 6
    make_case((2, 9, 8, 2), (2, 3, 2, 16), strides=(1, 2), padding=((1, 2), (0, 1)), dilation=(2, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_blocks_and_pads_against_the_loops(case: Any, dtype: Any) -> None:
    out, expected = _run(case, dtype)
    assert out.dtype == dtype
    assert out.flags.c_contiguous
    close(out, expected, 2e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_kernel_gradient_blocks_and_pads_against_the_loops(case: Any, dtype: Any) -> None:
    (grad_kernel, grad_bias), (expected_kernel, expected_bias) = _run_grad(case, dtype)
    assert grad_kernel.shape == case.kernel_shape
    assert grad_kernel.dtype == grad_bias.dtype == dtype
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    close(grad_kernel, expected_kernel, tolerance)
    close(grad_bias, expected_bias, tolerance)


@pytest.mark.parametrize("batch", [3, 2 * CHUNKS + 3])
def test_kernel_gradient_bits_do_not_depend_on_threads(batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """One partial sum per fixed batch chunk, added in order: 1 and 2 threads give the same bits."""
    case = make_case((batch, 10, 10, 6), (5, 5, 6, 16))
    monkeypatch.setattr(parallel, "MIN_SPLIT_BYTES", 0)
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        results.append(_run_grad(case, np.float32, seed=batch))
    for one, two in zip(results[0][0], results[1][0], strict=True):
        np.testing.assert_array_equal(one, two)
    close(results[0][0][0], results[0][1][0], 2e-5)


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
@pytest.mark.parametrize(("channels", "filters"), [(1, 16), (5, 48), (32, 64), (64, 128), (3, 96)])
@pytest.mark.parametrize("rows", [1, 2, 5, 7, 100, 1001])
def test_pointwise_against_numpy(rows: int, channels: int, filters: int, dtype: Any) -> None:
    """Every row count (whole blocks of rows and leftovers), both blocks of filters, several blocks a row."""
    rng = np.random.default_rng(rows + channels)
    x, kernel, bias = (
        rng.standard_normal(shape).astype(dtype) for shape in ((rows, channels), (channels, filters), filters)
    )
    out = pointwise_jit(x, kernel, bias)
    assert out.shape == (rows, filters)
    assert out.dtype == dtype
    close(out, x.astype(np.float64) @ kernel + bias, 2e-6 if dtype == np.float32 else 1e-12)
    close(pointwise_jit(x, kernel, None), x.astype(np.float64) @ kernel, 2e-6 if dtype == np.float32 else 1e-12)


def test_pointwise_rows_split_over_threads_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    x, kernel, bias = (rng.standard_normal(shape).astype(np.float32) for shape in ((301, 32), (32, 64), 64))
    ranges = _record_ranges(monkeypatch, direct_filters_jit)
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        results.append(pointwise_jit(x, kernel, bias))
    assert sorted(ranges) == [(0, 50), (0, 101), (50, 101)]  # blocks of 3 rows (101: the last one has one row)
    np.testing.assert_array_equal(results[0], results[1])


def test_threads_split_the_images_and_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case((6, 12, 12, 3), (3, 3, 3, 32), padding="same")
    ranges = _record_ranges(monkeypatch, parallel)
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
    forward = generated_module("forward_32")._forward_32
    vectorised = compile_kernel(forward, {"slp": True, "fastmath": {"contract"}}, cache=False)
    scalar = compile_kernel(forward, {"noalias": True, "fastmath": {"contract"}}, cache=False)
    case = make_case((1, 6, 6, 3), (3, 3, 3, 32))
    x, kernel, bias = (a.astype(np.float32) for a in case.arrays())
    weights = blocked_weights(kernel, 32)
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
