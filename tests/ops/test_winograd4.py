"""Winograd F(4x4, 3x3): its NumPy statement against the loop reference, the compiled transforms against that
statement, blocks and threads. (The forced-algorithm tests against the loops and PyTorch, and the selection
rows, are in test_conv_algorithms.py.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.ops import winograd4
from convlens.ops.windows import Workspace, pad
from convlens.ops.winograd4 import (
    Winograd4Conv,
    input_transform_reference,
    kernel_transform,
    output_transform_reference,
)
from tests.conftest import require
from tests.support.conv_cases import close, make_case
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)
from tests.support.threads import record_block_splits

require("numba")

#: float32 tolerance (relative to the largest expected magnitude): F(4x4)'s transforms hold 4, 5 and 8, so its
#: float32 rounding is ~10x F(2x2)'s (the module's docstring); float64: 1e-10 as everywhere.
RTOL32 = 1e-4

# Odd sizes (partial last tiles along both axes), 'same', 'valid' and uneven pads.
SHAPES = [
    ((2, 9, 7, 3), "same"),
    ((1, 8, 8, 4), "valid"),
    ((2, 6, 11, 2), ((2, 0), (1, 2))),
    ((1, 4, 4, 1), "same"),
]


def _problem(x_shape: tuple[int, int, int, int], filters: int, padding: Any, dtype: Any, seed: int = 0) -> Any:
    case = make_case(x_shape, (3, 3, x_shape[3], filters), padding=padding)
    x, kernel, bias = (a.astype(dtype) for a in case.arrays(seed=seed))
    geometry = WindowGeometry.resolve(x.shape[1:3], 3, 1, padding)
    return case, x, kernel, bias, geometry


@pytest.mark.parametrize(("x_shape", "padding"), SHAPES)
def test_the_numpy_statement_is_the_convolution(x_shape: Any, padding: Any) -> None:
    case, x, kernel, bias, geometry = _problem(x_shape, 5, padding, np.float64)
    tiles, _ = geometry.winograd_tiles(4)
    v = input_transform_reference(pad(x, tiles), tiles.output_size)
    m = np.matmul(v.reshape(36, -1, x.shape[3]), kernel_transform(kernel)).reshape(*v.shape[:4], 5)
    out = output_transform_reference(m, bias, geometry.output_size)
    close(out, case.reference(x, kernel, bias), 1e-12)


def test_the_transform_matrices_are_lavins() -> None:
    # The defining identity of F(4, 3) in one dimension: A^T [(G g) * (B^T d)] is the correlation of d (6) with g (3).
    rng = np.random.default_rng(1)
    d, g = rng.standard_normal(6), rng.standard_normal(3)
    expected = np.array([d[i : i + 3] @ g for i in range(4)])
    np.testing.assert_allclose(winograd4.AT @ ((winograd4.G @ g) * (winograd4.BT @ d)), expected, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
@pytest.mark.parametrize(("x_shape", "padding"), SHAPES)
def test_compiled_transforms_match_the_numpy_statement(x_shape: Any, padding: Any, dtype: Any) -> None:
    _, x, _, bias, geometry = _problem(x_shape, 6, padding, dtype, seed=2)
    tiles, _ = geometry.winograd_tiles(4)
    th, tw = tiles.output_size
    padded = pad(x, tiles)
    compiled = winograd4.kernels()
    assert compiled is not None
    v = np.empty((36, x.shape[0], th, tw, x.shape[3]), dtype)
    compiled[0](padded, v, 0, x.shape[0] * th)
    expected_v = input_transform_reference(padded, (th, tw))
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    close(v, expected_v, rtol)
    m = np.random.default_rng(3).standard_normal((36, x.shape[0], th, tw, 6)).astype(dtype)
    out = np.full((x.shape[0], *geometry.output_size, 6), np.nan, dtype)
    compiled[1](m, bias, out, 0, x.shape[0] * th)
    close(out, output_transform_reference(m, bias, geometry.output_size), rtol)


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
@pytest.mark.parametrize("images", [1, 2, 5])
def test_blocks_compute_the_convolution(images: int, dtype: Any) -> None:
    # (Not bit-equal across block sizes: OpenBLAS's GEMMs round differently for other row counts, and F(4x4)'s
    # cancellations turn that into differences of the tolerance's order.)
    case, x, kernel, bias, geometry = _problem((5, 9, 10, 32), 33, "same", dtype, seed=4)
    tiles, _ = geometry.winograd_tiles(4)
    per_image = 36 * int(np.prod(tiles.output_size)) * (32 + 33) * 4
    blocked = Winograd4Conv(x.shape, 33, geometry, Workspace(), block_bytes=images * per_image)
    assert len(blocked.blocks) == -(-5 // images)
    out = blocked.forward(x, kernel, bias)
    assert out.dtype == dtype
    close(out, case.reference(x, kernel, bias), RTOL32 if dtype == np.float32 else 1e-10)


def test_blocks_are_of_nearly_one_size() -> None:
    geometry = WindowGeometry.resolve((13, 13), 3, 1, "valid")
    per_image = 36 * 3 * 3 * (32 + 64) * 4
    conv = Winograd4Conv((44, 13, 13, 32), 64, geometry, Workspace(), block_bytes=37 * per_image)
    assert [part.stop - part.start for part in conv.blocks] == [22, 22]


def test_threads_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:

    _, x, kernel, bias, geometry = _problem((6, 8, 8, 32), 32, "same", np.float32, seed=5)
    per_image = 36 * 2 * 2 * 64 * 4
    splits = record_block_splits(monkeypatch)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        results[threads] = Winograd4Conv(x.shape, 32, geometry, Workspace(), block_bytes=per_image).forward(
            x, kernel, bias
        )
    assert [total for total, _ in splits] == [
        6
    ]  # two threads took the six one-image blocks between them; one thread ran them alone
    np.testing.assert_array_equal(results["1"], results["2"])


def test_float32_rounding_stays_within_a_few_millionths() -> None:
    # The documented price of F(4x4): float32 results within ~1e-5 of the largest output (VGG-like weights).
    case, x, kernel, bias, geometry = _problem((4, 16, 16, 64), 64, "same", np.float32, seed=6)
    kernel = (kernel / np.sqrt(9 * 64)).astype(np.float32)
    out = Winograd4Conv(x.shape, 64, geometry, Workspace()).forward(x, kernel, bias)
    exact = case.reference(x.astype(np.float64), kernel.astype(np.float64), bias.astype(np.float64))
    error = np.abs(out - exact).max() / np.abs(exact).max()
    assert error < 2e-5


def test_without_compiled_kernels_it_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    _, x, kernel, bias, geometry = _problem((1, 8, 8, 32), 32, "same", np.float32)
    conv = Winograd4Conv(x.shape, 32, geometry, Workspace())
    monkeypatch.setenv("CONVLENS_JIT", "0")
    with pytest.raises(RuntimeError, match="compiled transforms for float32"):
        conv.forward(x, kernel, bias)
