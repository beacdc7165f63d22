"""The blocked Winograd over several blocks (and a shorter last one) against the loop reference and the
whole-batch Winograd. (The forced-algorithm tests against PyTorch are in test_conv_algorithms.py.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.ops.windows import Workspace
from convlens.ops.winograd import WinogradConv
from convlens.ops.winograd_blocked import WinogradBlockedConv
from tests.conftest import require
from tests.support.conv_cases import close, make_case
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)

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
