"""Every convolution algorithm on its own, forced, against the loop reference and PyTorch; the selection table.

Each algorithm runs on problems drawn from its own domain (``DOMAIN``), so no test compares an algorithm
with itself: the expected values come from tests/support (loops) or from torch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convlens.errors import ConfigError
from convlens.layers import Conv2D
from convlens.ops import conv_algorithms
from convlens.ops.conv_algorithms import ConvProblem
from convlens.ops.conv_plan import Conv2DPlan
from convlens.ops.conv_selection import (
    CHANNELS_FIRST_IM2COL_MAX as CF_MAX,
)
from convlens.ops.conv_selection import (
    CONV_REGISTRY,
    CONV_ROLES,
    CONV_RULES,
    FEW_CHANNELS,
    TRANSPOSED_MIN_CHANNELS,
    WINOGRAD4_MAX_MULTIPLIES,
    WINOGRAD4_MIN_CHANNELS,
    WINOGRAD_MIN_CHANNELS,
    winograd4_multiplies,
)
from convlens.ops.conv_selection import (
    DIRECT_FILTERS_MAX_CHANNELS as DF_MAX,
)
from convlens.ops.jit import compiled_for
from tests.conftest import require
from tests.support.conv_cases import Case, cases, close, make_case, torch_conv2d

# The problems that reach each algorithm (a new algorithm must say where it applies). Algorithms that exist only
# as compiled kernels ("compiled") run in float32 in the default tier and in float64 where CI compiles float64
# kernels (the float64_kernels tests).
DOMAIN: dict[str, dict[str, Any]] = {
    "im2col": {"shape": "one_group"},
    "im2col_blocked": {"shape": "one_group"},
    "im2col_channels_first": {"shape": "one_group"},
    "pointwise": {"shape": "pointwise"},
    "pointwise_compiled": {"shape": "pointwise_blocks", "compiled": True},
    "grouped_gemm": {"shape": "any"},
    "depthwise": {"shape": "depthwise"},
    "depthwise_compiled": {"shape": "depthwise", "compiled": True},
    "winograd_blocked": {"shape": "winograd", "wide": True, "compiled": True},
    "winograd4_blocked": {"shape": "winograd", "wide": True, "compiled": True},
    "direct_compiled": {"shape": "stride1", "compiled": True},
    "direct_filters": {"shape": "filter_blocks", "compiled": True},
    "winograd": {"shape": "winograd", "wide": True},
    "transposed": {"shape": "stride1", "wide": True},
    "col2im": {"shape": "one_group"},
    "col2im_channels_first": {"shape": "one_group"},
    "col2im_blocked": {"shape": "one_group", "compiled": True},
    "transposed_direct": {"shape": "stride1", "compiled": True},
}
ALGORITHMS = conv_algorithms()


def _compiled(name: str) -> bool:
    return bool(DOMAIN[name].get("compiled"))


def _dtype_params(names: Any, dtypes: Any) -> list[Any]:
    """(name, dtype) pairs; a compiled algorithm's float64 pairs are float64_kernels tests."""
    return [
        pytest.param(name, dtype, marks=pytest.mark.float64_kernels)
        if _compiled(name) and dtype == np.float64
        else pytest.param(name, dtype)
        for name in names
        for dtype in dtypes
    ]


@contextlib.contextmanager
def _compiled_on(name: str) -> Iterator[None]:
    """Compiled kernels on for an algorithm that exists only as kernels (even in CI's CONVLENS_JIT=0 pass)."""
    with pytest.MonkeyPatch.context() as patch:
        if _compiled(name):
            require("numba")
            patch.setenv("CONVLENS_JIT", "1")
        yield


def _arrays(case: Case, seed: int, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, kernel, bias = case.arrays(seed=seed)  # float64 draws, rounded to dtype: the reference sees the same values
    return x.astype(dtype), kernel.astype(dtype), bias.astype(dtype)


def problem(case: Case, dtype: Any = np.float64) -> ConvProblem:
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs())
    return ConvProblem(plan.x_shape, plan.kernel_shape, plan.geometry, plan.groups, np.dtype(dtype))  # type: ignore[arg-type]


def applies(name: str, case: Case, dtype: Any = np.float64) -> bool:
    return CONV_REGISTRY.strategies[name].applies(problem(case, dtype)) is None


def forced_plan(name: str, case: Case, dtype: Any) -> Conv2DPlan:
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs(), algorithm=name, dtype=dtype)
    for role in CONV_REGISTRY.strategies[name].roles:
        assert getattr(plan.algorithms, role) == name
    return plan


def run(plan: Conv2DPlan, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, grad_out: np.ndarray) -> list[Any]:
    out = plan.forward(x, kernel, bias)
    grads = plan.backward(grad_out, x, kernel)
    return [out, grads.x, grads.kernel, grads.bias]


def test_every_algorithm_has_a_domain() -> None:
    assert set(DOMAIN) == set(ALGORITHMS)
    assert len(ALGORITHMS) == len(set(ALGORITHMS))


@pytest.mark.parametrize(
    ("name", "dtype"),
    [*_dtype_params([n for n in ALGORITHMS if not _compiled(n)], [np.float64]),
     *_dtype_params([n for n in ALGORITHMS if _compiled(n)], [np.float32, np.float64])],
)  # fmt: skip
@settings(max_examples=10)
@given(data=st.data())
def test_forced_algorithm_matches_loop_reference(name: str, dtype: Any, data: st.DataObject) -> None:
    with _compiled_on(name):
        _forced_matches_loop_reference(name, dtype, data)


def _forced_matches_loop_reference(name: str, dtype: Any, data: st.DataObject) -> None:
    case = data.draw(cases(**{k: v for k, v in DOMAIN[name].items() if k != "compiled"}), label="case")
    assume(applies(name, case, dtype))
    x, kernel, bias = _arrays(case, 3, dtype)
    plan = forced_plan(name, case, dtype)
    expected = case.reference(x, kernel, bias)
    grad_out = np.random.default_rng(4).standard_normal(expected.shape).astype(dtype)
    reference = [expected, *case.reference_backward(grad_out, x, kernel)]
    for ours, theirs in zip(run(plan, x, kernel, bias, grad_out), reference, strict=True):
        assert ours.dtype == dtype
        close(ours, theirs, 1e-10 if dtype == np.float64 else 2e-5)


@pytest.mark.parametrize(("name", "dtype"), _dtype_params(ALGORITHMS, [np.float32, np.float64]))
@settings(max_examples=6)
@given(data=st.data())
def test_forced_algorithm_matches_torch(name: str, dtype: Any, data: st.DataObject, torch: Any) -> None:
    with _compiled_on(name):
        _forced_matches_torch(name, dtype, data, torch)


def _forced_matches_torch(name: str, dtype: Any, data: st.DataObject, torch: Any) -> None:
    case = data.draw(cases(**{k: v for k, v in DOMAIN[name].items() if k != "compiled"}), label="case")
    assume(applies(name, case, dtype))
    x, kernel, bias = case.arrays(seed=5, dtype=dtype)
    plan = forced_plan(name, case, dtype)
    grad_out = np.random.default_rng(6).standard_normal(plan.output_shape).astype(dtype)
    theirs = torch_conv2d(torch, case, x, kernel, bias, grad_out)
    for ours, expected in zip(run(plan, x, kernel, bias, grad_out), theirs, strict=True):
        assert ours.dtype == dtype
        close(ours, expected.astype(np.float64), 2e-5 if dtype == np.float32 else 1e-10)


#: In the selection rows below: ``im2col_blocked`` where the compiled kernels run, else ``im2col``.
GEMM = "im2col or im2col_blocked"
POINTWISE = "pointwise (compiled when kernels run)"

# One case per algorithm where it applies (wide enough for Winograd and the transposed gradient).
PINNED = {
    "im2col": make_case((2, 7, 6, 3), (3, 2, 3, 4), strides=2, padding="same", dilation=(1, 2)),
    "im2col_blocked": make_case((3, 7, 6, 5), (3, 2, 5, 4), strides=(1, 2), padding="same", dilation=(2, 1)),
    "im2col_channels_first": make_case((2, 7, 6, 3), (3, 2, 3, 4), strides=(1, 2), padding="same", dilation=(2, 1)),
    "pointwise": make_case((2, 7, 6, 3), (1, 1, 3, 5), padding="same"),
    "pointwise_compiled": make_case((2, 7, 6, 3), (1, 1, 3, 48), padding="same"),
    "grouped_gemm": make_case((2, 7, 6, 6), (3, 3, 2, 6), strides=(2, 1), padding="same", groups=3),
    "depthwise": make_case((2, 7, 6, 4), (3, 3, 1, 8), padding="same", groups=4),
    "depthwise_compiled": make_case((3, 7, 6, 4), (3, 2, 1, 4), strides=(2, 1), padding="same", groups=4),
    "winograd_blocked": make_case((3, 7, 6, 16), (3, 3, 16, 17), padding=((2, 0), (1, 2))),
    "winograd4_blocked": make_case((3, 9, 7, 32), (3, 3, 32, 33), padding=((2, 0), (1, 2))),
    # pads wider than the kernel's reach (3 > 2 - 1) and a dilated column tap
    "direct_compiled": make_case((3, 7, 6, 2), (2, 3, 2, 5), padding=((3, 0), (1, 3)), dilation=(1, 2)),
    # 3 + 3 + 1 output columns (a block that reaches past the row), two blocks of filters, a dilated row tap
    "direct_filters": make_case((3, 9, 11, 3), (3, 2, 3, 64), (1, 2), padding=((2, 0), (1, 2)), dilation=(2, 1)),
    "winograd": make_case((2, 7, 6, 16), (3, 3, 16, 17), padding=((2, 0), (1, 2))),
    "transposed": make_case((2, 7, 6, 16), (3, 2, 16, 20), padding="same", dilation=(2, 1)),
    "col2im": make_case((2, 7, 6, 3), (2, 3, 3, 4), strides=(1, 2), padding=1),
    "col2im_channels_first": make_case((2, 7, 6, 3), (3, 3, 3, 5), strides=2, padding="valid"),
    "col2im_blocked": make_case((3, 7, 6, 3), (2, 3, 3, 4), strides=(1, 2), padding=1),
    # uneven pads (full-convolution pads 0/1 and 2/1) and a dilated row tap
    "transposed_direct": make_case((3, 7, 6, 2), (2, 3, 2, 5), padding=((1, 0), (0, 1)), dilation=(2, 1)),
}


@pytest.mark.parametrize("name", ALGORITHMS)
def test_forced_algorithm_runs_its_own_code(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if _compiled(name):
        require("numba")
        monkeypatch.setenv("CONVLENS_JIT", "1")
    # The plan records the name; this checks that the algorithm's own methods did the work.
    strategy = CONV_REGISTRY.strategies[name]
    calls: list[str] = []
    for role in strategy.roles:
        original = getattr(strategy, role)

        def spy(self: Any, *args: Any, _role: str = role, _original: Any = original) -> Any:
            calls.append(_role)
            return _original(self, *args)

        monkeypatch.setattr(strategy, role, spy)
    case = PINNED[name]
    dtype = np.float32 if _compiled(name) else np.float64
    x, kernel, bias = _arrays(case, 7, dtype)
    plan = forced_plan(name, case, dtype)
    out, grad_x, grad_kernel, grad_bias = run(plan, x, kernel, bias, np.ones(plan.output_shape, dtype))
    assert sorted(calls) == sorted(strategy.roles)
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    close(out, case.reference(x, kernel, bias), rtol)
    expected = case.reference_backward(np.ones(out.shape), x, kernel)
    for ours, theirs in zip([grad_x, grad_kernel, grad_bias], expected, strict=True):
        close(ours, theirs, rtol)


# ----------------------------------------------------------------------------- the selection table
def auto(case: Case, dtype: Any = np.float32) -> Any:
    return Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs(), dtype=dtype).algorithms


def test_every_role_ends_with_a_rule_that_always_decides() -> None:
    for role in CONV_ROLES:
        last = [rule for rule in CONV_RULES if rule.role == role][-1]
        assert last.algorithm == "grouped_gemm"
        assert last.when(None, {})


@settings(max_examples=20)
@given(case=cases())
def test_grouped_gemm_applies_to_every_convolution(case: Case) -> None:
    assert applies("grouped_gemm", case)
    assert set(auto(case)) <= set(ALGORITHMS)


@pytest.mark.parametrize(
    ("channels", "filters", "expected"),
    [
        (WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_CHANNELS, "winograd"),
        (WINOGRAD_MIN_CHANNELS - 1, 64, "im2col"),
        (64, WINOGRAD_MIN_CHANNELS - 1, "im2col"),
    ],
)
def test_winograd_threshold(channels: int, filters: int, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from convlens.ops.jit import compiled_for

    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    if expected == "winograd" and compiled_for(np.float32):
        expected = "winograd_blocked"
    if expected == "im2col" and compiled_for(np.float32):
        expected = "im2col_blocked"
    chosen = auto(make_case((2, 8, 8, channels), (3, 3, channels, filters), padding="same"))
    assert chosen.forward == chosen.kernel_grad == expected
    assert chosen.input_grad == (expected if expected.startswith("winograd") else chosen.input_grad)


@pytest.mark.parametrize(
    ("case", "forward"),
    [
        (make_case((1, 8, 8, 64), (3, 3, 64, 64), strides=2, padding="same"), GEMM),  # strided
        (make_case((1, 8, 8, 64), (5, 5, 64, 64), padding="same"), GEMM),  # 5x5
        (make_case((1, 8, 8, 64), (3, 3, 64, 64), padding="same", dilation=2), "im2col"),  # dilated
        (make_case((1, 8, 8, 64), (3, 3, 64, 64), padding="same", dilation=(2, 1)), GEMM),  # dilated in height
        (make_case((1, 8, 8, 64), (3, 3, 32, 64), padding="same", groups=2), "grouped_gemm"),
        (make_case((1, 8, 8, 64), (1, 1, 64, 32), padding="same"), POINTWISE),
        (make_case((1, 8, 8, 64), (1, 1, 64, 24)), "pointwise"),  # (no register block of filters)
        (make_case((1, 8, 8, CF_MAX), (5, 5, CF_MAX, 24), padding="same"), "im2col_channels_first"),
        (make_case((1, 8, 8, CF_MAX + 1), (5, 5, CF_MAX + 1, 24), padding="same"), GEMM),
        (make_case((1, 8, 8, 64), (1, 1, 64, 32), strides=2), GEMM),  # strided 1x1
        (make_case((1, 8, 8, 64), (1, 1, 64, 32), padding=1), GEMM),  # padded 1x1
    ],
)
@pytest.mark.parametrize("jit", ["1", "0"])
def test_forward_rows(case: Case, forward: str, jit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", jit)
    if forward == GEMM:  # blocks with the compiled im2col, else the whole batch at once
        forward = "im2col_blocked" if compiled_for(np.float32) else "im2col"
    if forward == POINTWISE:  # the register-blocked forward with compiled kernels
        forward = "pointwise_compiled" if compiled_for(np.float32) else "pointwise"
    chosen = auto(case)
    assert chosen.forward == forward
    if forward.startswith("im2col"):
        assert chosen.kernel_grad == forward
    if forward.startswith("pointwise"):
        assert chosen.kernel_grad == chosen.input_grad == forward
    if forward == "pointwise_compiled":
        assert auto(case, np.float64).forward == "pointwise"  # (measured for float32)


@pytest.mark.parametrize(
    ("channels", "filters", "strides", "expected"),
    [
        (3, 32, 2, ("direct_filters", "direct_filters")),  # a first layer: RGB in, stride 2
        (1, 64, 1, ("direct_filters", "direct_filters")),  # (window rows of 3 floats: one run of 3 taps)
        (CF_MAX, 32, 1, ("direct_filters", "direct_filters")),
        (DF_MAX, 32, 1, ("direct_filters", "direct_filters")),
        (DF_MAX + 1, 32, 1, ("im2col_blocked", "im2col_blocked")),
        (3, 48, 1, ("direct_filters", "direct_filters")),  # blocks of 16 filters: rows of 9 floats in 12 (0.25)
        (3, 16, 1, ("direct_filters", "direct_filters")),
        (6, 16, 1, ("direct_filters", "direct_filters")),  # 18 floats: three runs of 6 taps
        (1, 16, 1, ("direct_filters", "im2col_channels_first")),  # 3 floats in a run of 6: half the work wasted
        (3, 24, 1, ("im2col_channels_first", "im2col_channels_first")),  # no block of filters
    ],
)
def test_direct_filters_rows(
    channels: int, filters: int, strides: int, expected: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require("numba")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    case = make_case((2, 9, 9, channels), (3, 3, channels, filters), strides=strides, padding="same")
    assert auto(case)[:2] == expected
    assert auto(case, np.float64).forward != "direct_filters"  # (measured for float32 only)
    assert auto(make_case((2, 9, 9, channels), (3, 3, channels, filters), dilation=(1, 2))).forward != "direct_filters"
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert auto(case).forward != "direct_filters"


@pytest.mark.parametrize(
    ("size", "channels", "filters", "forward"),
    [
        (8, WINOGRAD4_MIN_CHANNELS, WINOGRAD4_MIN_CHANNELS, "winograd4_blocked"),  # 4x4 tiles cover 8x8 exactly
        (13, 64, 32, "winograd4_blocked"),  # 'valid': 11x11, 3x3 tiles of 4 against 6x6 of 2 (0.56)
        (14, 32, 64, "winograd_blocked"),  # 14x14: 4x4 tiles cover 16x16, 0.73 of F(2x2)'s multiplies
        (8, WINOGRAD4_MIN_CHANNELS - 1, 64, "winograd_blocked"),
        (8, 64, WINOGRAD4_MIN_CHANNELS - 1, "winograd_blocked"),
    ],
)
def test_winograd4_rows(size: int, channels: int, filters: int, forward: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "1")
    padding = "valid" if size == 13 else "same"
    case = make_case((2, size, size, channels), (3, 3, channels, filters), padding=padding)
    if not compiled_for(np.float32):
        assert auto(case) == ("winograd",) * 3  # (no F(4x4) without its compiled transforms)
        return
    # F(4x4) is a forward only: the gradients come from F(2x2), which recomputes its own transformed input.
    assert auto(case) == (forward, "winograd_blocked", "winograd_blocked")
    monkeypatch.setenv("CONVLENS_WINOGRAD", "0")
    assert "winograd4_blocked" not in auto(case)


def test_winograd4_multiplies_count_the_tiles() -> None:
    def share(size: int) -> float:
        return winograd4_multiplies(problem(make_case((1, size, size, 32), (3, 3, 32, 32), padding="same")))

    assert share(8) == share(32) == 36 * 4 / (16 * 16)
    assert share(7) == 36 * 4 / (16 * 16)  # 2x2 tiles of 4 against 4x4 of 2: the same 8x8 covered
    assert share(14) == 36 * 16 / (16 * 49) > WINOGRAD4_MAX_MULTIPLIES


@pytest.mark.parametrize(
    ("threads", "jit", "expected"),
    [("1", "1", "winograd_blocked"), ("1", "0", "winograd"), ("2", "1", "winograd_blocked"), ("2", "0", "winograd")],
)
def test_winograd_blocked_rows(threads: str, jit: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from convlens.ops.jit import compiled_for

    monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
    monkeypatch.setenv("CONVLENS_JIT", jit)
    if not compiled_for(np.float32):
        expected = "winograd"
    assert auto(make_case((2, 8, 8, 16), (3, 3, 16, 16), padding="same")) == (expected,) * 3


@pytest.mark.parametrize(
    ("case", "compiled", "numpy"),
    [
        (make_case((2, 12, 12, 1), (5, 5, 1, 6), padding="same"), "direct_compiled", "im2col_channels_first"),
        (make_case((2, 12, 12, 3), (3, 3, 3, 8), padding="valid"), "direct_compiled", "im2col_channels_first"),
        (make_case((2, 12, 12, 1), (5, 5, 1, 9), padding="same"), "im2col_channels_first", "im2col_channels_first"),
        (make_case((2, 12, 12, 1), (5, 5, 1, 6), strides=2), "im2col_channels_first", "im2col_channels_first"),
        (make_case((2, 12, 12, 5), (3, 3, 5, 6), padding="same"), "im2col_blocked", "im2col"),
    ],
)
@pytest.mark.parametrize("jit", ["1", "0"])
def test_direct_rows(case: Case, compiled: str, numpy: str, jit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Few channels and at most 8 filters, stride 1: the direct forward and kernel gradient, and the input gradient
    as the direct kernel's full convolution."""
    monkeypatch.setenv("CONVLENS_JIT", jit)
    chosen = auto(case)
    expected = compiled if compiled_for(np.float32) else numpy
    assert chosen.forward == expected
    assert chosen.kernel_grad == expected
    if expected == "direct_compiled":
        assert chosen.input_grad == "transposed_direct"
    else:
        assert chosen.input_grad != "transposed_direct"


def test_over_padded_direct_convolution_falls_back_to_col2im() -> None:
    """Pads beyond the kernel's reach have no full convolution: the direct forward's input gradient is col2im's."""
    require("numba")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_JIT", "1")
        case = make_case((2, 7, 6, 2), (2, 3, 2, 5), padding=((3, 0), (1, 3)))
        chosen = auto(case)
        assert chosen.forward == "direct_compiled"
        assert chosen.input_grad == "col2im_blocked"
        assert not applies("transposed_direct", case, np.float32)


@pytest.mark.parametrize(("jit", "expected"), [("1", "depthwise_compiled"), ("0", "depthwise")])
def test_depthwise_rows(jit: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from convlens.ops.jit import compiled_for

    monkeypatch.setenv("CONVLENS_JIT", jit)
    if not compiled_for(np.float32):
        expected = "depthwise"
    case = make_case((1, 8, 8, 64), (3, 3, 1, 128), padding="same", groups=64)
    assert auto(case) == (expected,) * 3
    assert auto(case, np.float16) == ("depthwise",) * 3


@pytest.mark.parametrize(
    ("channels", "filters", "strides", "expected"),
    [
        (TRANSPOSED_MIN_CHANNELS, 2 * TRANSPOSED_MIN_CHANNELS, 1, "transposed"),
        (TRANSPOSED_MIN_CHANNELS, 2 * TRANSPOSED_MIN_CHANNELS + 1, 1, "col2im"),  # 2C < F
        (TRANSPOSED_MIN_CHANNELS - 1, 16, 1, "col2im"),
        (TRANSPOSED_MIN_CHANNELS, 16, 2, "col2im"),  # strided: no full convolution
    ],
)
def test_transposed_threshold(channels: int, filters: int, strides: int, expected: str, monkeypatch: Any) -> None:
    # 5x5 kernels: Winograd does not apply, so the input-gradient rows below it decide. Without compiled
    # kernels (the compiled col2im beats the transposed gradient at every width measured).
    monkeypatch.setenv("CONVLENS_JIT", "0")
    case = make_case((2, 9, 9, channels), (5, 5, channels, filters), strides=strides, padding="same")
    assert auto(case).input_grad == expected
    monkeypatch.setenv("CONVLENS_JIT", "1")
    if expected == "transposed" and compiled_for(np.float32):
        assert auto(case).input_grad == "col2im_blocked"


def test_over_padded_convolution_cannot_use_the_transposed_gradient() -> None:
    case = make_case((1, 6, 6, 16), (3, 3, 16, 16), padding=((3, 0), (0, 0)))
    assert not applies("transposed", case)
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs(), algorithm="im2col")
    assert plan.algorithms.input_grad == ("col2im_blocked" if compiled_for(np.float32) else "col2im")
    with pytest.raises(ConfigError, match=r"transposed needs forward pads at most the dilated extent - 1"):
        Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs(), algorithm="transposed")


@pytest.mark.parametrize(("channels", "jit", "expected"), [(FEW_CHANNELS - 1, "0", "col2im_channels_first"),
                                                           (FEW_CHANNELS, "0", "col2im"),
                                                           (FEW_CHANNELS - 1, "1", None)])  # fmt: skip
def test_few_channel_input_gradient(channels: int, jit: str, expected: str | None, monkeypatch: Any) -> None:
    from convlens.ops.jit import compiled_for

    monkeypatch.setenv("CONVLENS_JIT", jit)
    if expected is None:  # with the compiled col2im the plain layout runs, a block of images at a time
        expected = "col2im_blocked" if compiled_for(np.float32) else "col2im_channels_first"
    case = make_case((2, 6, 6, channels), (3, 3, channels, 4), strides=2, padding="same")
    assert auto(case).input_grad == expected


def test_forcing_an_algorithm_that_does_not_apply_says_why() -> None:
    with pytest.raises(
        ConfigError,
        match=r"conv2d: algorithm='winograd' cannot run here: winograd needs stride 1 and no dilation, "
        r"got strides \(2, 2\), dilation \(1, 1\)\.",
    ):
        Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), strides=2, algorithm="winograd")
    with pytest.raises(ConfigError, match=r"winograd needs a 3x3 kernel, got 5x5"):
        Conv2DPlan((1, 8, 8, 16), (5, 5, 16, 16), algorithm="winograd")
    with pytest.raises(ConfigError, match=r"depthwise needs one input channel per group"):
        Conv2DPlan((1, 8, 8, 4), (3, 3, 2, 4), groups=2, algorithm="depthwise")
    with pytest.raises(ConfigError, match=r"im2col computes one group, got groups=2"):
        Conv2DPlan((1, 8, 8, 4), (3, 3, 2, 4), groups=2, algorithm="im2col")


def test_algorithm_argument_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"conv2d: algorithm='fft' must name a conv2d algorithm \(im2col, im2col_channels_first, "
        r"pointwise, grouped_gemm, depthwise, winograd, im2col_blocked, transposed, col2im, col2im_channels_first, "
        r"col2im_blocked, depthwise_compiled, pointwise_compiled, winograd_blocked, direct_compiled, "
        r"winograd4_blocked, direct_filters, transposed_direct\) "
        r"or 'auto', got 'fft'\.",
    ):
        Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), algorithm="fft")
    with pytest.raises(ConfigError, match=r"asks 'transposed' for forward, but it only computes input_grad"):
        Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), algorithm={"forward": "transposed"})
    with pytest.raises(ConfigError, match=r"names role 'backward'; the roles are forward, kernel_grad, input_grad"):
        Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), algorithm={"backward": "im2col"})


def test_forcing_one_role_keeps_the_table_for_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = "winograd_blocked" if compiled_for(np.float32) else "winograd"
    plan = Conv2DPlan((2, 8, 8, 16), (3, 3, 16, 16), padding="same", algorithm={"input_grad": "col2im"})
    assert plan.algorithms == (wide, wide, "col2im")
    plan = Conv2DPlan((2, 8, 8, 16), (3, 3, 16, 16), padding="same", algorithm="im2col")
    assert plan.algorithms == ("im2col", "im2col", "col2im_blocked" if compiled_for(np.float32) else "transposed")


def test_environment_variable_forces_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_CONV_ALGORITHM", "grouped_gemm")
    assert Conv2DPlan((1, 6, 6, 2), (3, 3, 2, 4)).algorithms == ("grouped_gemm",) * 3
    # an explicit keyword wins over the environment
    assert Conv2DPlan((1, 6, 6, 2), (3, 3, 2, 4), algorithm="im2col").algorithms.forward == "im2col"
    monkeypatch.setenv("CONVLENS_CONV_ALGORITHM", "winograd")
    with pytest.raises(ConfigError, match=r"CONVLENS_CONV_ALGORITHM cannot run here: winograd needs a 3x3 kernel"):
        Conv2DPlan((1, 6, 6, 2), (1, 1, 2, 4))
    monkeypatch.setenv("CONVLENS_CONV_ALGORITHM", "nope")
    with pytest.raises(ConfigError, match=r"CONVLENS_CONV_ALGORITHM must name a conv2d algorithm"):
        Conv2DPlan((1, 6, 6, 2), (1, 1, 2, 4))


def test_winograd_switch_only_changes_the_automatic_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_WINOGRAD", "0")
    gemm = "im2col_blocked" if compiled_for(np.float32) else "im2col"
    assert Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), padding="same").algorithms.forward == gemm
    assert Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), padding="same", algorithm="winograd").algorithms.forward == (
        "winograd"
    )


def test_explain_names_every_role_the_winner_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "0")  # the few-channel rule depends on the compiled col2im
    plan = Conv2DPlan((128, 14, 14, 32), (3, 3, 32, 64), padding="same")
    explanation = plan.explain()
    text = str(explanation)
    assert text.splitlines()[0].startswith("conv2d: x (128, 14, 14, 32) * kernel (3, 3, 32, 64) -> (128, 14, 14, 64)")
    assert "forward: winograd  (rule: C >= 16 and F >= 16)" in text
    assert "input_grad: winograd  (rule: forward is winograd)" in text
    assert "cannot run: depthwise needs one input channel per group (groups == channels), got 32" in text
    assert "also applicable: grouped_gemm, transposed, col2im, col2im_channels_first" in text
    data = json.loads(json.dumps(explanation.to_dict()))
    assert [c["role"] for c in data["choices"]] == list(CONV_ROLES)
    assert data["choices"][2]["applicable"] == ["grouped_gemm", "winograd", "transposed", "col2im",
                                                "col2im_channels_first"]  # fmt: skip
    course = str(Conv2DPlan((128, 28, 28, 1), (3, 3, 1, 32), padding="same").explain())
    assert f"forward: im2col_channels_first  (rule: C <= {CF_MAX})" in course
    assert (
        "rules before it that did not hold: depthwise (groups > 1 and one input channel per group); winograd " in course
    )
    assert "cannot run: pointwise needs a 1x1 kernel, stride 1 and no padding, got 3x3" in course
    assert f"input_grad: col2im_channels_first  (rule: C < {FEW_CHANNELS} and no compiled col2im)" in course
    assert "forward=winograd, kernel_grad=winograd, input_grad=winograd" in repr(plan)


def test_layers_choose_once_per_input_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    select = CONV_REGISTRY.select

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return select(*args, **kwargs)

    monkeypatch.setattr(CONV_REGISTRY, "select", counting)
    layer = Conv2D(4, 3, padding="same")
    layer.build((None, 6, 6, 3), np.random.default_rng(0))
    x = np.ones((2, 6, 6, 3), np.float32)
    for _ in range(3):
        y = layer.forward(x, training=True)
        layer.backward(np.ones_like(y))
    assert len(calls) == 1
    layer.forward(np.ones((3, 6, 6, 3), np.float32))  # a new batch size: a new plan
    assert len(calls) == 2


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 6, 7, 9])
def test_direct_compiled_groups_every_kernel_width(width: int) -> None:
    """The direct kernel takes a row's taps five, three, two or one at a time: every width's grouping (a dilated
    one too) against the loop reference."""
    require("numba")
    with _compiled_on("direct_compiled"):
        for dilation in (1, 2):
            case = make_case((2, 9, 21, 2), (2, width, 2, 3), padding="same", dilation=(1, dilation))
            x, kernel, bias = _arrays(case, width, np.float32)
            plan = forced_plan("direct_compiled", case, np.float32)
            expected = case.reference(x, kernel, bias)
            close(plan.forward(x, kernel, bias), expected, 2e-5)
            grad_out = np.random.default_rng(width).standard_normal(expected.shape).astype(np.float32)
            grads = plan.backward(grad_out, x, kernel)
            _, grad_kernel, grad_bias = case.reference_backward(grad_out, x, kernel)
            close(grads.kernel, grad_kernel, 2e-5)
            close(grads.bias, grad_bias, 2e-5)


@pytest.mark.parametrize("filters", [1, 2, 5, 8])
def test_direct_compiled_kernel_grad_bits_do_not_depend_on_threads(
    filters: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel gradient adds one partial sum per fixed batch chunk in order: 1 and 2 threads give the same
    bits; every filter count (pairs and a lone last filter) and a batch smaller than the chunks agree with the
    loop reference."""
    require("numba")
    from convlens.ops import parallel
    from convlens.ops.direct_jit import CHUNKS, direct_kernel_grad_jit

    pieces: list[tuple[int, int]] = []
    split = parallel.parallel_ranges

    def spy(work: Any, total: int, nbytes: int) -> None:
        def piece(lo: int, hi: int) -> None:
            pieces.append((lo, hi))
            work(lo, hi)

        split(piece, total, nbytes)

    monkeypatch.setattr(parallel, "parallel_ranges", spy)  # (what kernel_grad_over_chunks calls)
    with _compiled_on("direct_compiled"):
        for batch in (3, 2 * CHUNKS + 3):
            case = make_case((batch, 11, 10, 2), (5, 5, 2, filters), padding="same")
            x, kernel, _ = _arrays(case, filters, np.float32)
            plan = forced_plan("direct_compiled", case, np.float32)
            grad_out = np.random.default_rng(batch).standard_normal(plan.output_shape).astype(np.float32)
            results = []
            for threads in ("1", "2"):
                monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
                monkeypatch.setattr("convlens.ops.parallel.MIN_SPLIT_BYTES", 0)
                pieces.clear()
                results.append(direct_kernel_grad_jit(x, grad_out, plan.geometry, case.kernel_shape))
                assert len(pieces) == min(int(threads), batch, CHUNKS)
            for one, two in zip(*results, strict=True):
                np.testing.assert_array_equal(one, two)
            _, grad_kernel, grad_bias = case.reference_backward(grad_out, x, kernel)
            close(results[0][0], grad_kernel, 2e-5)
            close(results[0][1], grad_bias, 2e-5)
