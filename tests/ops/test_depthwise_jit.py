"""The compiled depthwise kernels against their NumPy twin (ops/depthwise.py): the same bits where the sums run
in the same order (forward; input gradient with one filter per channel), rounding for the kernel gradient.

(The forced-algorithm tests against the loop reference and PyTorch are in test_conv_algorithms.py.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.ops import depthwise_jit
from convlens.ops.conv_plan import Conv2DPlan
from tests.conftest import require
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)

require("numba")


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    channels = draw(st.integers(1, 5))
    return {
        "x_shape": (draw(st.integers(1, 3)), draw(st.integers(5, 9)), draw(st.integers(5, 9)), channels),
        "kernel_shape": (draw(st.integers(1, 3)), draw(st.integers(1, 3)), 1, channels * draw(st.integers(1, 2))),
        "strides": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        "dilation_rate": draw(st.sampled_from([1, (1, 2)])),
        "padding": draw(st.sampled_from(["same", "valid", 1])),
        "groups": channels,
    }


def _run(problem: dict[str, Any], algorithm: str, dtype: Any, seed: int, compute: Any = None) -> list[np.ndarray]:
    """Forward and backward on random data of ``dtype``, computed in ``compute`` (default: ``dtype``)."""
    rng = np.random.default_rng(seed)
    compute = dtype if compute is None else compute
    plan = Conv2DPlan(dtype=compute, algorithm=algorithm, **problem)
    x = rng.standard_normal(plan.x_shape).astype(dtype).astype(compute)
    kernel = rng.standard_normal(plan.kernel_shape).astype(dtype).astype(compute)
    bias = rng.standard_normal(plan.kernel_shape[3]).astype(dtype).astype(compute)
    grad = rng.standard_normal(plan.output_shape).astype(dtype).astype(compute)
    out = plan.forward(x, kernel, bias)
    grads = plan.backward(grad, x, kernel)
    return [out, grads.x, grads.kernel, grads.bias]  # type: ignore[list-item]


def _compare(problem: dict[str, Any], dtype: Any) -> None:
    ours = _run(problem, "depthwise_compiled", dtype, 0)
    numpy = _run(problem, "depthwise", dtype, 0)
    for a, b in zip(ours, numpy, strict=True):
        assert a.dtype == dtype
        assert a.shape == b.shape
    np.testing.assert_array_equal(ours[0], numpy[0])
    if problem["kernel_shape"][3] == problem["x_shape"][3]:  # one filter per channel: the same sums in order
        np.testing.assert_array_equal(ours[1], numpy[1])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(ours[1:], numpy[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@settings(max_examples=25)
@given(problem=problems())
def test_kernels_match_the_numpy_twin(problem: dict[str, Any]) -> None:
    _compare(problem, np.float32)


@pytest.mark.float64_kernels
@settings(max_examples=15)
@given(problem=problems())
def test_kernels_match_the_numpy_twin_float64(problem: dict[str, Any]) -> None:
    _compare(problem, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
def test_results_do_not_depend_on_the_thread_count(dtype: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    problem = {"x_shape": (16, 20, 20, 32), "kernel_shape": (3, 3, 1, 32), "padding": "same", "groups": 32}
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        results.append(_run(problem, "depthwise_compiled", dtype, 1))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("nine_taps", [True, False])
@pytest.mark.parametrize(
    ("strides", "dilation_rate", "padding"),
    [
        (1, 1, "same"),
        ((2, 1), (2, 3), "same"),
        (1, (1, 2), "valid"),
        ((1, 1), 1, 2),
        ((2, 1), (2, 1), "valid"),
        ((2, 1), 1, "same"),  # (row stride 2, row dilation 1: one output row at a time)
        ((3, 1), (3, 1), 1),  # (four rows at a time at a row stride of 3)
    ],
)
def test_row_span_kernels_match_the_per_column_kernels(
    strides: Any, dilation_rate: Any, padding: Any, nine_taps: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stride 1 along the width, one filter per channel: the row-span kernels run (a 3x3 kernel's forward, kernel
    gradient and, at stride 1, input gradient with its nine taps in one loop, unless switched off here), with the
    per-column kernels' forward and input-gradient bits and their kernel gradient to rounding."""
    problem = {
        "x_shape": (5, 14, 17, 24),
        "kernel_shape": (3, 3, 1, 24),
        "strides": strides,
        "dilation_rate": dilation_rate,
        "padding": padding,
        "groups": 24,
    }
    used: list[bool] = []
    by_rows = depthwise_jit.by_rows
    monkeypatch.setattr(depthwise_jit, "by_rows", lambda *a: used.append(by_rows(*a)) or used[-1])
    ran: dict[str, list[bool]] = {"by_rows": [], "input_grad": []}
    for role in ran:
        decide = getattr(depthwise_jit, f"nine_taps_{role}")

        def spy(*args: Any, _decide: Any = decide, _role: str = role) -> bool:
            ran[_role].append(nine_taps and _decide(*args))
            return ran[_role][-1]

        monkeypatch.setattr(depthwise_jit, f"nine_taps_{role}", spy)
    rows = _run(problem, "depthwise_compiled", np.float32, 2)
    assert used
    assert all(used)
    enough = depthwise_jit.TAPS3X3_INPUT_GRAD_MAX_CELLS * rows[0].shape[1] * rows[0].shape[2] >= 14 * 17
    input_grad = nine_taps and strides in (1, (1, 1)) and enough
    assert ran == {"by_rows": [nine_taps, nine_taps], "input_grad": [input_grad]}  # (forward, kernel gradient)
    monkeypatch.setattr(depthwise_jit, "by_rows", lambda *a: False)
    columns = _run(problem, "depthwise_compiled", np.float32, 2)
    np.testing.assert_array_equal(rows[0], columns[0])
    np.testing.assert_array_equal(rows[1], columns[1])
    exact = _run(problem, "depthwise", np.float32, 2, np.float64)  # the same data summed in float64
    for a, b, c in zip(rows[2:], columns[2:], exact[2:], strict=True):
        scale = np.abs(c).max()  # (sums of ~1000 terms of either sign: compared at their own size)
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * scale)
        assert np.abs(a - c).max() <= 2 * max(np.abs(b - c).max(), 1e-7 * scale)  # no less accurate


@pytest.mark.parametrize(
    ("strides", "dilation_rate", "padding"),
    [((1, 2), 1, "valid"), (2, 1, "same"), ((2, 3), (1, 2), "same"), ((3, 2), (2, 1), 2), ((1, 3), (1, 3), "valid")],
)
def test_pixel_kernels_match_the_per_column_kernels(
    strides: Any, dilation_rate: Any, padding: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A width stride above 1 runs the 3x3 forward and kernel gradient pixel by pixel with the nine taps in one
    loop (windows in the padding tap by tap): the per-column kernels' bits, forward and gradients."""
    problem = {
        "x_shape": (6, 13, 17, 16),
        "kernel_shape": (3, 3, 1, 16),
        "strides": strides,
        "dilation_rate": dilation_rate,
        "padding": padding,
        "groups": 16,
    }
    ran: list[bool] = []
    decide = depthwise_jit.nine_taps_by_pixel
    monkeypatch.setattr(depthwise_jit, "nine_taps_by_pixel", lambda *a: ran.append(decide(*a)) or ran[-1])
    pixels = _run(problem, "depthwise_compiled", np.float32, 3)
    assert ran == [True, True]  # (forward, kernel gradient)
    monkeypatch.setattr(depthwise_jit, "nine_taps_by_pixel", lambda *a: False)
    columns = _run(problem, "depthwise_compiled", np.float32, 3)
    for a, b in zip(pixels, columns, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pixel_kernels_only_at_width_strides() -> None:
    from convlens.geometry import WindowGeometry

    for strides, expected in (((1, 2), True), ((2, 1), False), (1, False)):
        geometry = WindowGeometry.resolve((9, 9), (3, 3), strides, "same")
        assert depthwise_jit.nine_taps_by_pixel(geometry, 4, 4) is expected
    wide = WindowGeometry.resolve((9, 9), (3, 3), 2, "same")
    assert not depthwise_jit.nine_taps_by_pixel(wide, 4, 8)  # (two filters per channel: the per-column kernels)
    five = WindowGeometry.resolve((9, 9), (5, 5), 2, "same")
    assert not depthwise_jit.nine_taps_by_pixel(five, 4, 4)


def test_nine_taps_input_gradient_needs_enough_output() -> None:
    """Small 'valid' images (7x7 -> 5x5: 1.96x the output's cells) keep the tap-by-tap input gradient."""
    from convlens.geometry import WindowGeometry

    for size, expected in ((7, False), (15, True)):
        geometry = WindowGeometry.resolve((size, size), 3, 1, "valid")
        out = (2, size - 2, size - 2, 8)
        assert depthwise_jit.nine_taps_input_grad(geometry, (2, size, size, 8), out) is expected
    same = WindowGeometry.resolve((7, 7), 3, 1, "same")
    assert depthwise_jit.nine_taps_input_grad(same, (2, 7, 7, 8), (2, 7, 7, 8))
    over = WindowGeometry.resolve((7, 7), 3, 1, ((3, 3), (1, 1)))  # (pads beyond the kernel's reach)
    assert not depthwise_jit.nine_taps_input_grad(over, (2, 7, 7, 8), (2, 11, 7, 8))


@pytest.mark.parametrize(("strides", "multiplier"), [((1, 2), 1), (1, 2)])
def test_per_column_kernels_run_for_width_strides_and_depth_multipliers(strides: Any, multiplier: int) -> None:
    from convlens.geometry import WindowGeometry

    geometry = WindowGeometry.resolve((9, 9), (3, 3), strides, "same")
    assert not depthwise_jit.by_rows(geometry, 4, 4 * multiplier)
