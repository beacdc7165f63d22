"""conv2d / conv1d and their backwards (the automatic algorithm choice): loop reference, torch, finite differences.

Each algorithm on its own, forced, is tested in test_conv_algorithms.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.ops.conv import Conv2DPlan, conv1d, conv1d_backward, conv2d, conv2d_backward
from tests.support.conv_cases import Case, cases, close, make_case, torch_conv2d
from tests.support.reference import (
    conv1d_backward_reference,
    conv1d_reference,
    conv2d_backward_reference,
    conv2d_reference,
    explicit_pads,
)

RTOL = 1e-10


def as_channels_first(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


# ----------------------------------------------------------------------------- loop reference
@given(case=cases(), channels_first=st.booleans(), use_bias=st.booleans())
def test_conv2d_matches_reference(case: Case, channels_first: bool, use_bias: bool) -> None:
    x, kernel, bias = case.arrays()
    b = bias if use_bias else None
    expected = case.reference(x, kernel, b)
    grad_out = np.random.default_rng(1).standard_normal(expected.shape)
    gx, gk, gb = conv2d_backward_reference(grad_out, x, kernel, case.strides, case.pads, case.dilation, case.groups)
    if channels_first:
        out = conv2d(as_channels_first(x), kernel, b, data_format="channels_first", **case.kwargs())
        close(out, as_channels_first(expected))
        grads = conv2d_backward(
            as_channels_first(grad_out),
            as_channels_first(x),
            kernel,
            data_format="channels_first",
            **case.kwargs(),
        )
        close(grads.x, as_channels_first(gx))
    else:
        close(conv2d(x, kernel, b, **case.kwargs()), expected)
        grads = conv2d_backward(grad_out, x, kernel, **case.kwargs())
        close(grads.x, gx)
    close(grads.kernel, gk)
    close(grads.bias, gb)


PINNED = [
    make_case((2, 4, 5, 3), (1, 1, 3, 2)),  # 1x1 kernel
    make_case((1, 4, 5, 2), (4, 5, 2, 3)),  # kernel == input size
    make_case((1, 7, 7, 2), (2, 2, 2, 2), strides=3),  # stride > kernel (skips pixels)
    make_case((1, 7, 7, 1), (3, 3, 1, 2), strides=2, padding="same"),  # odd size, pads (1, 1)
    make_case((1, 6, 6, 1), (3, 3, 1, 2), strides=2, padding="same"),  # even size, pads (0, 1)
    make_case((1, 6, 5, 2), (2, 2, 2, 1), strides=1, padding="same"),  # even kernel, (0, 1)
    make_case((1, 6, 7, 2), (3, 2, 2, 2), padding="same", dilation=(2, 3)),  # dilated 'same'
    make_case((1, 5, 5, 4), (3, 3, 1, 8), padding="same", groups=4),  # depthwise, multiplier 2
    make_case((1, 3, 3, 1), (1, 1, 1, 1), strides=2, padding=((2, 0), (0, 3))),  # windows in padding only
    make_case((2, 9, 9, 8), (3, 3, 4, 4), strides=2, padding="same", groups=2),  # the >= 8 channel copy
]
PINNED_IDS = [f"{c.x_shape}-{c.kernel_shape}-s{c.strides}-{c.padding}-d{c.dilation}-g{c.groups}" for c in PINNED]


@pytest.mark.parametrize("case", PINNED, ids=PINNED_IDS)
def test_conv2d_pinned_cases(case: Case) -> None:
    x, kernel, bias = case.arrays(3)
    expected = case.reference(x, kernel, bias)
    close(conv2d(x, kernel, bias, **case.kwargs()), expected)
    grad_out = np.random.default_rng(4).standard_normal(expected.shape)
    gx, gk, gb = conv2d_backward_reference(grad_out, x, kernel, case.strides, case.pads, case.dilation, case.groups)
    grads = conv2d_backward(grad_out, x, kernel, **case.kwargs())
    close(grads.x, gx)
    close(grads.kernel, gk)
    close(grads.bias, gb)


def test_same_stride_2_output_sizes_and_pads() -> None:
    # The TensorFlow rule: 28 -> 14 with the odd padded pixel at the bottom/right only.
    x = np.ones((1, 28, 28, 1))
    out = conv2d(x, np.ones((3, 3, 1, 1)), strides=2, padding="same")
    assert out.shape == (1, 14, 14, 1)
    assert out[0, 0, 0, 0] == 9.0  # pads (0, 1): the top-left window sees no padding
    assert out[0, 0, -1, 0] == 6.0  # last column window: columns 26, 27 and one padded column
    assert out[0, -1, -1, 0] == 4.0  # bottom-right: 2x2 real pixels


@st.composite
def cases_1d(draw: st.DrawFn) -> tuple[tuple[int, int, int], tuple[int, int, int], int, Any, int, int]:
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same", "causal", 1, (2,), (0, 2), ((1, 0),)]))
    extent = (k - 1) * d + 1
    length = draw(st.integers(extent, extent + 4))
    return (draw(st.integers(1, 2)), length, groups * cg), (k, cg, groups * fg), s, padding, d, groups


@given(case=cases_1d(), channels_first=st.booleans())
def test_conv1d_matches_reference(case: tuple[Any, ...], channels_first: bool) -> None:
    x_shape, k_shape, s, padding, d, groups = case
    gen = np.random.default_rng(5)
    x, kernel = gen.standard_normal(x_shape), gen.standard_normal(k_shape)
    bias = gen.standard_normal(k_shape[2])
    (pads,) = explicit_pads(padding, (x_shape[1],), (k_shape[0],), (s,), (d,))
    expected = conv1d_reference(x, kernel, bias, s, pads, d, groups)
    grad_out = gen.standard_normal(expected.shape)
    gx, gk, gb = conv1d_backward_reference(grad_out, x, kernel, s, pads, d, groups)
    kw = {"strides": s, "padding": padding, "dilation_rate": d, "groups": groups}
    if channels_first:
        t = lambda a: np.ascontiguousarray(a.transpose(0, 2, 1))  # noqa: E731
        close(conv1d(t(x), kernel, bias, data_format="channels_first", **kw), t(expected))
        grads = conv1d_backward(t(grad_out), t(x), kernel, data_format="channels_first", **kw)
        close(grads.x, t(gx))
    else:
        close(conv1d(x, kernel, bias, **kw), expected)
        grads = conv1d_backward(grad_out, x, kernel, **kw)
        close(grads.x, gx)
    close(grads.kernel, gk)
    close(grads.bias, gb)


@pytest.mark.parametrize(("strides", "dilation"), [(1, 1), (1, 2), (2, 3)])
def test_causal_conv1d_equals_left_padded_valid(strides: int, dilation: int) -> None:
    gen = np.random.default_rng(6)
    x, kernel = gen.standard_normal((2, 9, 3)), gen.standard_normal((3, 3, 4))
    left = 2 * dilation
    padded = np.pad(x, ((0, 0), (left, 0), (0, 0)))
    kw = {"strides": strides, "dilation_rate": dilation}
    out = conv1d(x, kernel, padding="causal", **kw)
    close(out, conv1d(padded, kernel, padding="valid", **kw))
    assert out.shape[1] == (9 - 1) // strides + 1
    grad_out = gen.standard_normal(out.shape)
    causal = conv1d_backward(grad_out, x, kernel, padding="causal", **kw)
    valid = conv1d_backward(grad_out, padded, kernel, padding="valid", **kw)
    assert valid.x is not None
    close(causal.x, valid.x[:, left:])
    close(causal.kernel, valid.kernel)
    # Causality: changing the future never changes the past.
    later = x.copy()
    later[:, 5:] += 1.0
    np.testing.assert_array_equal(
        conv1d(later, kernel, padding="causal", **kw)[:, : 5 // strides], out[:, : 5 // strides]
    )


# ----------------------------------------------------------------------------- torch oracle
def check_against_torch(torch: Any, case: Case, dtype: Any, rtol: float, seed: int = 0) -> None:
    x, kernel, bias = case.arrays(seed, dtype)
    out = conv2d(x, kernel, bias, **case.kwargs())
    grad_out = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype)
    t_out, t_gx, t_gk, t_gb = torch_conv2d(torch, case, x, kernel, bias, grad_out)
    grads = conv2d_backward(grad_out, x, kernel, **case.kwargs())
    for ours, theirs in [(out, t_out), (grads.x, t_gx), (grads.kernel, t_gk), (grads.bias, t_gb)]:
        assert ours is not None
        assert ours.dtype == dtype
        close(ours, theirs.astype(np.float64), rtol)


@given(case=cases())
def test_conv2d_matches_torch_float64(case: Case, torch: Any) -> None:
    check_against_torch(torch, case, np.float64, 1e-9)


@pytest.mark.parametrize("case", PINNED, ids=PINNED_IDS)
def test_conv2d_pinned_cases_match_torch_float64(case: Case, torch: Any) -> None:
    check_against_torch(torch, case, np.float64, 1e-9, seed=22)


@pytest.mark.parametrize(
    "case",
    [
        make_case((1, 28, 28, 1), (3, 3, 1, 32), strides=2, padding="same"),
        make_case((2, 11, 10, 8), (3, 3, 4, 6), strides=(2, 1), padding="same", dilation=(1, 2), groups=2),
        make_case((2, 9, 8, 6), (2, 3, 1, 6), strides=2, padding=((1, 0), (0, 2)), groups=6),
    ],
    ids=["course-28-same-s2", "grouped-dilated", "depthwise-asym"],
)
def test_conv2d_matches_torch_float32(case: Case, torch: Any) -> None:
    check_against_torch(torch, case, np.float32, 1e-4, seed=7)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@pytest.mark.parametrize(("kernel", "dilation"), [((2, 4), (1, 1)), ((3, 2), (2, 1)), ((4, 3), (1, 3))])
def test_same_stride_1_matches_torch_same_values(
    kernel: tuple[int, int], dilation: tuple[int, int], torch: Any
) -> None:
    # torch's own 'same' (stride 1) also puts the odd padded pixel after: an independent check of placement.
    gen = np.random.default_rng(8)
    x, k = gen.standard_normal((2, 7, 6, 3)), gen.standard_normal((*kernel, 3, 2))
    expected = torch.nn.functional.conv2d(
        torch.tensor(np.moveaxis(x, -1, 1)),
        torch.tensor(k.transpose(3, 2, 0, 1)),
        padding="same",
        dilation=dilation,
    )
    ours = conv2d(x, k, padding="same", dilation_rate=dilation)
    close(ours, expected.numpy().transpose(0, 2, 3, 1), 1e-9)


def test_conv1d_matches_torch(torch: Any) -> None:
    functional = torch.nn.functional
    gen = np.random.default_rng(9)
    x, kernel, bias = gen.standard_normal((2, 11, 4)), gen.standard_normal((3, 2, 6)), gen.standard_normal(6)
    kw = {"strides": 2, "padding": "causal", "dilation_rate": 2, "groups": 2}
    out = conv1d(x, kernel, bias, **kw)
    grad_out = gen.standard_normal(out.shape)
    xt = torch.tensor(np.ascontiguousarray(x.transpose(0, 2, 1)), requires_grad=True)
    kt = torch.tensor(np.ascontiguousarray(kernel.transpose(2, 1, 0)), requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    t_out = functional.conv1d(functional.pad(xt, (4, 0)), kt, bt, stride=2, dilation=2, groups=2)
    t_out.backward(torch.tensor(grad_out.transpose(0, 2, 1)))
    grads = conv1d_backward(grad_out, x, kernel, **kw)
    close(out, t_out.detach().numpy().transpose(0, 2, 1), 1e-9)
    close(grads.x, xt.grad.numpy().transpose(0, 2, 1), 1e-9)
    close(grads.kernel, kt.grad.numpy().transpose(2, 1, 0), 1e-9)
    close(grads.bias, bt.grad.numpy(), 1e-9)


# ----------------------------------------------------------------------------- finite differences
def numeric_grad(loss: Any, value: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        saved = value[index]
        value[index] = saved + eps
        up = loss()
        value[index] = saved - eps
        down = loss()
        value[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "case",
    [
        make_case((2, 5, 4, 2), (3, 2, 2, 3), strides=2, padding="same"),
        make_case((1, 6, 6, 4), (2, 2, 2, 2), strides=(1, 2), padding=((0, 1), (2, 0)), dilation=2, groups=2),
    ],
    ids=["same-s2", "grouped-dilated-asym"],
)
def test_conv2d_gradients_by_central_differences(case: Case) -> None:
    x, kernel, bias = case.arrays(10)
    weights = np.random.default_rng(11).standard_normal(conv2d(x, kernel, bias, **case.kwargs()).shape)

    def loss() -> float:
        return float(np.sum(conv2d(x, kernel, bias, **case.kwargs()) * weights))

    grads = conv2d_backward(weights, x, kernel, **case.kwargs())
    np.testing.assert_allclose(grads.x, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)  # type: ignore[arg-type]
    np.testing.assert_allclose(grads.kernel, numeric_grad(loss, kernel), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grads.bias, numeric_grad(loss, bias), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_dtype_is_preserved(dtype: Any, padding: str) -> None:
    case = make_case((2, 6, 6, 3), (3, 3, 3, 4), strides=2, padding=padding)
    x, kernel, bias = case.arrays(12, dtype)
    out = conv2d(x, kernel, bias, **case.kwargs())
    assert out.dtype == dtype
    grads = conv2d_backward(np.ones_like(out), x, kernel, **case.kwargs())
    assert grads.x is not None
    assert (grads.x.dtype, grads.kernel.dtype, grads.bias.dtype) == (dtype, dtype, dtype)
    out1 = conv1d(x[:, 0], kernel[0], bias, padding=padding)
    assert out1.dtype == dtype
    grads1 = conv1d_backward(np.ones_like(out1), x[:, 0], kernel[0], padding=padding)
    assert grads1.x is not None
    assert (grads1.x.dtype, grads1.kernel.dtype, grads1.bias.dtype) == (dtype, dtype, dtype)


def test_integer_and_list_inputs_become_float32() -> None:
    x = np.arange(2 * 4 * 4, dtype=np.int64).reshape(2, 4, 4, 1)
    kernel = np.ones((2, 2, 1, 1), dtype=np.int32)
    out = conv2d(x, kernel)
    assert out.dtype == np.float32
    close(out, conv2d_reference(x.astype(np.float64), kernel.astype(np.float64)))
    assert conv2d(x.tolist(), kernel.tolist()).dtype == np.float32


# ----------------------------------------------------------------------------- plans and flags
def test_compute_grad_x_false_returns_none() -> None:
    case = make_case((2, 5, 5, 4), (3, 3, 2, 4), padding="same", groups=2)
    x, kernel, _ = case.arrays(13)
    grad_out = np.random.default_rng(14).standard_normal((2, 5, 5, 4))
    full = conv2d_backward(grad_out, x, kernel, **case.kwargs())
    partial = conv2d_backward(grad_out, x, kernel, compute_grad_x=False, **case.kwargs())
    assert partial.x is None
    np.testing.assert_array_equal(partial.kernel, full.kernel)
    np.testing.assert_array_equal(partial.bias, full.bias)
    partial1 = conv1d_backward(grad_out[:, 0], x[:, 0], kernel[0], compute_grad_x=False, padding="same", groups=2)
    assert partial1.x is None


@pytest.mark.parametrize(
    "case",
    [
        make_case((2, 6, 6, 3), (3, 3, 3, 4), strides=2, padding="same"),  # padded, narrow-channel copy
        make_case((2, 5, 5, 8), (3, 3, 4, 4), padding="valid", groups=2),  # unpadded, wide copy, grouped
    ],
    ids=["same-c3", "valid-c8-g2"],
)
def test_plan_reuse_does_not_corrupt_earlier_results(case: Case) -> None:
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs())
    x1, kernel, bias = case.arrays(15)
    x2 = np.random.default_rng(16).standard_normal(case.x_shape)
    out1 = plan.forward(x1, kernel, bias)
    g1 = np.random.default_rng(17).standard_normal(out1.shape)
    grads1 = plan.backward(g1, x1, kernel)
    kept = [out1.copy(), grads1.x.copy(), grads1.kernel.copy(), grads1.bias.copy()]  # type: ignore[union-attr]
    out2 = plan.forward(x2, kernel, bias)
    g2 = np.random.default_rng(18).standard_normal(out2.shape)
    grads2 = plan.backward(g2, x2, kernel)
    for before, after in zip(kept, [out1, grads1.x, grads1.kernel, grads1.bias], strict=True):
        np.testing.assert_array_equal(after, before)
    close(out1, case.reference(x1, kernel, bias))
    close(out2, case.reference(x2, kernel, bias))
    gx, gk, gb = conv2d_backward_reference(g2, x2, kernel, case.strides, case.pads, case.dilation, case.groups)
    close(grads2.x, gx)
    close(grads2.kernel, gk)
    close(grads2.bias, gb)
    assert plan.output_shape == out1.shape


def test_plan_backward_without_forward_recomputes() -> None:
    case = make_case((1, 5, 5, 2), (2, 2, 2, 3), padding="same")
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs())
    x, kernel, _ = case.arrays(19)
    grad_out = np.random.default_rng(20).standard_normal(plan.output_shape)
    gx, gk, _ = conv2d_backward_reference(grad_out, x, kernel, case.strides, case.pads, case.dilation, 1)
    grads = plan.backward(grad_out, x, kernel)
    close(grads.x, gx)
    close(grads.kernel, gk)


def test_plan_backward_uses_the_x_it_is_given() -> None:
    case = make_case((1, 5, 5, 2), (2, 2, 2, 3))
    plan = Conv2DPlan(case.x_shape, case.kernel_shape, **case.kwargs())
    x1, kernel, _ = case.arrays(21)
    x2 = x1 + 1.0
    plan.forward(x1, kernel)
    grad_out = np.ones(plan.output_shape)
    _, gk, _ = conv2d_backward_reference(grad_out, x2, kernel)
    close(plan.backward(grad_out, x2, kernel).kernel, gk)
