"""The blocked Winograd over several blocks (and a shorter last one) against the loop reference and the
whole-batch Winograd. (The forced-algorithm tests against PyTorch are in test_conv_algorithms.py.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.ops.windows import Workspace
from convlens.ops.winograd import WinogradConv
from convlens.ops.winograd_blocked import WinogradBlockedConv, block_bytes_for, cache_sizes
from tests.conftest import require
from tests.support.conv_cases import close, make_case
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)
from tests.support.threads import record_block_splits

require("numba")


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
@pytest.mark.parametrize(("images", "padding"), [(1, "same"), (2, "valid"), (3, ((2, 0), (1, 2)))])
def test_blocks_match_the_loop_reference_and_the_whole_batch(images: int, padding: Any, dtype: Any) -> None:
    case = make_case((5, 7, 6, 16), (3, 3, 16, 17), padding=padding)
    x, kernel, bias = (a.astype(dtype) for a in case.arrays(seed=11))
    geometry = WindowGeometry.resolve(x.shape[1:3], 3, 1, padding)
    per_image = 16 * np.prod(geometry.winograd_tiles(2)[0].output_size) * (16 + 17) * 4
    blocked = WinogradBlockedConv(x.shape, 17, geometry, Workspace(), block_bytes=int(images * per_image))
    assert blocked.block == images
    assert len(blocked.blocks) == -(-5 // images)
    out = blocked.forward(x, kernel, bias)
    grad_out = np.random.default_rng(12).standard_normal(out.shape).astype(dtype)
    grad_kernel, grad_x = blocked.backward(grad_out, x, kernel, True)
    assert blocked.backward(grad_out, x, kernel, False)[1] is None
    expected = [case.reference(x, kernel, bias), *case.reference_backward(grad_out, x, kernel)[:2]]
    rtol = 2e-5 if dtype == np.float32 else 1e-10
    for ours, theirs in zip([out, grad_x, grad_kernel], expected, strict=True):
        assert ours.dtype == dtype
        close(ours, theirs, rtol)
    whole = WinogradConv(x.shape, 17, geometry, Workspace())
    np.testing.assert_array_equal(out, whole.forward(x, kernel, bias))
    np.testing.assert_allclose(grad_kernel, whole.kernel_gradient(grad_out, x), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(grad_x, whole.input_gradient(grad_out, kernel))


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
def test_blocks_split_over_threads_give_the_same_bits(dtype: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With two threads each takes half the blocks (one BLAS thread, its kernels alone): the same results as one
    thread, bit for bit (the kernel gradient sums fixed groups of blocks in order, whatever the threads)."""

    case = make_case((7, 6, 6, 16), (3, 3, 16, 17), padding="same")
    x, kernel, bias = (a.astype(dtype) for a in case.arrays(seed=3))
    geometry = WindowGeometry.resolve(x.shape[1:3], 3, 1, "same")
    per_image = 16 * np.prod(geometry.winograd_tiles(2)[0].output_size) * (16 + 17) * 4
    grad_out = np.random.default_rng(4).standard_normal((7, 6, 6, 17)).astype(dtype)
    results = {}
    splits = record_block_splits(monkeypatch)
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        blocked = WinogradBlockedConv(x.shape, 17, geometry, Workspace(), block_bytes=int(per_image))
        out = blocked.forward(x, kernel, bias)
        results[threads] = (out, *blocked.backward(grad_out, x, kernel, True))
    assert len(splits) == 2  # the forward and the backward with two threads; none with one
    for one, two in zip(results["1"], results["2"], strict=True):
        np.testing.assert_array_equal(one, two)
    close(results["2"][0], case.reference(x, kernel, bias), 2e-5 if dtype == np.float32 else 1e-10)


def _fake_cache(root: Any, entries: list[tuple[str, str, str]]) -> str:
    for i, (kind, level, size) in enumerate(entries):
        folder = root / f"index{i}"
        folder.mkdir()
        (folder / "type").write_text(kind + "\n")
        (folder / "level").write_text(level + "\n")
        (folder / "size").write_text(size + "\n")
    return str(root)


def test_cache_sizes_reads_sysfs_and_skips_instruction_caches(tmp_path: Any) -> None:
    root = _fake_cache(
        tmp_path,
        [("Data", "1", "32K"), ("Instruction", "1", "64K"), ("Unified", "2", "512K"), ("Unified", "3", "32M")],
    )
    assert cache_sizes(root) == {1: 32 << 10, 2: 512 << 10, 3: 32 << 20}
    assert cache_sizes(str(tmp_path / "missing")) == {}
    (tmp_path / "index0" / "size").write_text("garbage\n")
    assert cache_sizes(root) == {2: 512 << 10, 3: 32 << 20}


@pytest.mark.parametrize(
    ("caches", "expected_mb"),
    [
        ({2: 2 << 20, 3: 32 << 20}, 2),  # Intel Xeon: the block in L2
        ({2: 512 << 10, 3: 32 << 20}, 8),  # AMD EPYC: a quarter of L3, at most 8 MB
        ({2: 512 << 10, 3: 4 << 20}, 2),  # a small L3: at least 2 MB
        ({2: 256 << 10, 3: 16 << 20}, 4),
        ({}, 2),
    ],
)
def test_block_bytes_follow_the_caches(caches: dict[int, int], expected_mb: int) -> None:
    assert block_bytes_for(caches) == expected_mb << 20
