"""conv2d_transpose: the loop reference (Keras's JAX-backend placement), PyTorch 2.13 (forward and every gradient,
float64 and float32), float64 finite differences, hypothesis over shapes, strides, padding, output_padding and
dilation, and the errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.errors import ConfigError, ShapeError
from convlens.geometry import WindowGeometry
from convlens.ops.conv_transpose import conv2d_transpose, conv2d_transpose_backward
from tests.support import reference_keras_layers as ref
from tests.support.reference_core import numeric_grad

torch = pytest.importorskip("torch")

CASES = [
    # (input H, W, kernel, stride, padding, output_padding, dilation)
    ((3, 4), 3, 1, "valid", None, 1),
    ((3, 4), 3, 2, "same", None, 1),
    ((4, 3), 2, 2, "same", None, 1),
    ((3, 3), 4, 2, "same", 1, 1),
    ((3, 4), 3, 3, "valid", 2, 1),
    ((2, 3), 1, 3, "valid", None, 1),  # stride larger than the kernel: zero rows between
    ((3, 3), 3, 2, "same", None, 2),
    ((4, 4), 5, 1, "same", 0, 1),
]
IDS = [f"{hw}-k{k}-s{s}-{p}-q{q}-d{d}" for hw, k, s, p, q, d in CASES]


def _data(
    hw: tuple[int, int], k: int, rng: np.random.Generator, dtype: Any = np.float64, batch: int = 2, channels: int = 3
) -> tuple[np.ndarray, ...]:
    x = rng.standard_normal((batch, *hw, channels)).astype(dtype)
    kernel = rng.standard_normal((k, k, 2, channels)).astype(dtype)
    bias = rng.standard_normal(2).astype(dtype)
    return x, kernel, bias


def _keywords(s: int, p: str, q: int | None, d: int) -> dict[str, Any]:
    return {"strides": s, "padding": p, "output_padding": q, "dilation_rate": d}


@pytest.mark.parametrize(("hw", "k", "s", "p", "q", "d"), CASES, ids=IDS)
def test_matches_loop_reference(hw: Any, k: int, s: int, p: str, q: Any, d: int, rng: np.random.Generator) -> None:
    x, kernel, bias = _data(hw, k, rng)
    expected = ref.conv2d_transpose(x, kernel, bias, s, p, q, d)
    np.testing.assert_allclose(
        conv2d_transpose(x, kernel, bias, **_keywords(s, p, q, d)), expected, rtol=1e-12, atol=1e-12
    )


def _torch(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, s: int, p: str, q: Any, d: int) -> tuple[Any, ...]:
    """PyTorch's transposed convolution (no padding), cropped where Keras's JAX rule places the output."""
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    wt = torch.tensor(kernel.transpose(3, 2, 0, 1), requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    full = torch.nn.functional.conv_transpose2d(xt, wt, stride=s, dilation=d)
    sizes, tops = [], []
    for size, k in zip(x.shape[1:3], kernel.shape[:2], strict=True):
        e = (k - 1) * d + 1
        if q is None:
            sizes.append(size * s + max(e - s, 0) if p == "valid" else size * s)
        else:
            sizes.append((size - 1) * s + e - 2 * (e // 2 if p == "same" else 0) + q)
        tops.append(e - 1 - ref.keras_left_pad(k, s, d, p, q))
    grow = [max(0, tops[0] + sizes[0] - full.shape[2]), max(0, tops[1] + sizes[1] - full.shape[3])]
    full = torch.nn.functional.pad(full, (0, grow[1], 0, grow[0]))
    out = full[:, :, tops[0] : tops[0] + sizes[0], tops[1] : tops[1] + sizes[1]] + bt[None, :, None, None]
    return xt, wt, bt, out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("hw", "k", "s", "p", "q", "d"), CASES, ids=IDS)
def test_forward_and_gradients_match_torch(
    hw: Any, k: int, s: int, p: str, q: Any, d: int, dtype: Any, rng: np.random.Generator
) -> None:
    x, kernel, bias = _data(hw, k, rng, dtype)
    xt, wt, bt, out = _torch(x, kernel, bias, s, p, q, d)
    y = conv2d_transpose(x, kernel, bias, **_keywords(s, p, q, d))
    assert y.dtype == dtype
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(y, out.detach().numpy().transpose(0, 2, 3, 1), **tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    out.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    grads = conv2d_transpose_backward(g, x, kernel, **_keywords(s, p, q, d))
    np.testing.assert_allclose(grads.x, xt.grad.numpy().transpose(0, 2, 3, 1), **tol)
    np.testing.assert_allclose(grads.kernel, wt.grad.numpy().transpose(2, 3, 1, 0), **tol)
    np.testing.assert_allclose(grads.bias, bt.grad.numpy(), **tol)


@pytest.mark.parametrize(("hw", "k", "s", "p", "q", "d"), CASES[:4], ids=IDS[:4])
def test_gradients_match_finite_differences(
    hw: Any, k: int, s: int, p: str, q: Any, d: int, rng: np.random.Generator
) -> None:
    x, kernel, bias = _data(hw, k, rng)
    keywords = _keywords(s, p, q, d)
    w = rng.standard_normal(conv2d_transpose(x, kernel, bias, **keywords).shape)
    grads = conv2d_transpose_backward(w, x, kernel, **keywords)
    for name, value, analytic in (("x", x, grads.x), ("kernel", kernel, grads.kernel), ("bias", bias, grads.bias)):
        numeric = numeric_grad(lambda: float(np.sum(conv2d_transpose(x, kernel, bias, **keywords) * w)), value)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@settings(max_examples=20)
@given(
    height=st.integers(1, 5),
    width=st.integers(1, 5),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    p=st.sampled_from(["valid", "same"]),
    q=st.one_of(st.none(), st.integers(0, 2)),
)
def test_hypothesis_against_torch(height: int, width: int, k: int, s: int, d: int, p: str, q: Any) -> None:
    if q is not None and q >= s:
        return
    rng = np.random.default_rng(height * 100 + width * 10 + k)
    x, kernel, bias = _data((height, width), k, rng)
    try:
        WindowGeometry.resolve_transpose((height, width), k, s, p, q, d)
    except ShapeError:
        assert (p, q, ((k - 1) * d + 1) % 2) == ("same", 0, 0)  # even extent, no output padding
        return
    _, _, _, out = _torch(x, kernel, bias, s, p, q, d)
    y = conv2d_transpose(x, kernel, bias, **_keywords(s, p, q, d))
    np.testing.assert_allclose(y, out.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-10)


def test_output_sizes_follow_keras() -> None:
    g = WindowGeometry.resolve_transpose
    assert g((7, 7), 3, 2, "same").input_size == (14, 14)  # H * s
    assert g((7, 7), 3, 2, "valid").input_size == (15, 15)  # H * s + max(e - s, 0)
    assert g((7, 7), 1, 3, "valid").input_size == (21, 21)
    assert g((7, 7), 3, 2, "same", output_padding=0).input_size == (13, 13)  # (H - 1) * s + e - 2 * (e // 2) + q
    assert g((7, 7), 3, 2, "valid", output_padding=1, dilation_rate=2).input_size == (18, 18)


def test_errors() -> None:
    x = np.zeros((1, 3, 3, 2))
    with pytest.raises(ConfigError, match=r"`output_padding` \(2, 2\) must be smaller than `strides` \(2, 2\)"):
        conv2d_transpose(x, np.zeros((3, 3, 1, 2)), strides=2, output_padding=2)
    with pytest.raises(ConfigError, match=r"`padding` must be 'valid' or 'same' for a transposed convolution"):
        conv2d_transpose(x, np.zeros((3, 3, 1, 2)), padding=1)
    with pytest.raises(ShapeError, match=r"kernel \(3, 3, 1, 4\) expects 4 input channels \(its last axis\), got an"):
        conv2d_transpose(x, np.zeros((3, 3, 1, 4)))
    with pytest.raises(ShapeError, match=r"a 'same' transposed convolution with kernel 2x2, stride 2x2 and output_pa"):
        conv2d_transpose(x, np.zeros((2, 2, 1, 2)), strides=2, padding="same", output_padding=0)
