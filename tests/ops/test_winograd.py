"""Winograd F(2x2, 3x3): against the im2col path, the loop reference, PyTorch and finite differences.

Both transform implementations run: the compiled (Numba) kernels and the NumPy reference
(``CONVLENS_JIT=0``); they must agree bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.errors import ConfigError
from convlens.geometry import WindowGeometry
from convlens.ops import winograd_jit
from convlens.ops.conv import Conv2DPlan
from convlens.ops.winograd import winograd_applies
from tests.support.reference import conv2d_backward_reference, conv2d_reference, explicit_pads

PADDINGS: list[Any] = ["valid", "same", 1, ((2, 0), (1, 2)), ((0, 1), (0, 0))]


def run(plan: Conv2DPlan, x: np.ndarray, k: np.ndarray, b: np.ndarray | None, g: np.ndarray) -> list[np.ndarray]:
    out = plan.forward(x, k, b)
    grads = plan.backward(g, x, k)
    assert grads.x is not None
    return [out, grads.x, grads.kernel, grads.bias]


def arrays(shape: tuple[int, ...], c: int, f: int, dtype: Any, seed: int = 0) -> tuple[np.ndarray, ...]:
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((*shape, c)).astype(dtype)
    k = gen.standard_normal((3, 3, c, f)).astype(dtype)
    b = gen.standard_normal(f).astype(dtype)
    return x, k, b


def close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    assert actual.shape == expected.shape
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


@pytest.fixture(params=["jit", "numpy"])
def transforms(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with the compiled transforms and once with the NumPy ones."""
    if request.param == "numpy":
        monkeypatch.setenv("CONVLENS_JIT", "0")
    elif winograd_jit.kernels() is None:
        pytest.skip("numba is not installed (pip install 'convlens[fast]')")
    return str(request.param)


@given(
    batch=st.integers(1, 2),
    height=st.integers(3, 8),
    width=st.integers(3, 8),
    channels=st.integers(16, 18),
    filters=st.integers(16, 18),
    padding=st.sampled_from(PADDINGS),
    use_bias=st.booleans(),
)
def test_winograd_equals_im2col(
    batch: int, height: int, width: int, channels: int, filters: int, padding: Any, use_bias: bool
) -> None:
    # Odd and even output sizes (partial edge tiles), every padding form, with and without bias.
    x, k, b = arrays((batch, height, width), channels, filters, np.float64, seed=height * 10 + width)
    wino = Conv2DPlan(x.shape, k.shape, padding=padding)
    direct = Conv2DPlan(x.shape, k.shape, padding=padding, algorithm="im2col")
    assert (wino.algorithm, direct.algorithm) == ("winograd", "im2col")
    g = np.random.default_rng(1).standard_normal(wino.output_shape)
    bias = b if use_bias else None
    for ours, theirs in zip(run(wino, x, k, bias, g), run(direct, x, k, bias, g), strict=True):
        close(ours, theirs, 1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
def test_winograd_matches_loop_reference(padding: Any, transforms: str) -> None:
    x, k, b = arrays((2, 5, 6), 16, 17, np.float64)
    pads = explicit_pads(padding, (5, 6), (3, 3), (1, 1), (1, 1))
    plan = Conv2DPlan(x.shape, k.shape, padding=padding)
    assert plan.algorithm == "winograd"
    expected = conv2d_reference(x, k, b, (1, 1), pads, (1, 1), 1)
    g = np.random.default_rng(3).standard_normal(expected.shape)
    reference = [expected, *conv2d_backward_reference(g, x, k, (1, 1), pads, (1, 1), 1)]
    for ours, theirs in zip(run(plan, x, k, b, g), reference, strict=True):
        close(ours, theirs, 1e-12)


def test_jit_and_numpy_transforms_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    if winograd_jit.kernels() is None:
        pytest.skip("numba is not installed")
    for dtype in (np.float32, np.float64):
        x, k, b = arrays((3, 9, 7), 16, 20, dtype, seed=5)
        g = np.random.default_rng(6).standard_normal((3, 9, 7, 20)).astype(dtype)
        results = []
        for jit in ("1", "0"):
            monkeypatch.setenv("CONVLENS_JIT", jit)
            results.append(run(Conv2DPlan(x.shape, k.shape, padding="same"), x, k, b, g))
        for name, a, c in zip(["out", "grad_x", "grad_kernel", "grad_bias"], *results, strict=True):
            assert a.dtype == dtype
            if name == "grad_x":
                # The compiled adjoint adds the overlapping tiles in tile order, NumPy in tap order.
                close(a, c, 1e-6 if dtype == np.float32 else 1e-14)
            else:
                np.testing.assert_array_equal(a, c)


def test_numpy_fallback_does_not_call_the_compiled_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> bool:
        raise AssertionError("compiled kernel called with CONVLENS_JIT=0")

    monkeypatch.setenv("CONVLENS_JIT", "0")
    monkeypatch.setattr(winograd_jit, "_KERNELS", (boom, boom, boom))
    x, k, b = arrays((1, 6, 6), 16, 16, np.float64)
    plan = Conv2DPlan(x.shape, k.shape, padding="same")
    run(plan, x, k, b, np.ones(plan.output_shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_matches_torch(dtype: Any, transforms: str) -> None:
    torch = pytest.importorskip("torch")
    x, k, b = arrays((4, 14, 13), 32, 24, dtype, seed=11)
    plan = Conv2DPlan(x.shape, k.shape, padding="same")
    assert plan.algorithm == "winograd"
    g = np.random.default_rng(12).standard_normal(plan.output_shape).astype(dtype)
    ours = run(plan, x, k, b, g)
    xt = torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)
    kt = torch.tensor(np.ascontiguousarray(k.transpose(3, 2, 0, 1)), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, kt, bt, padding=1)
    yt.backward(torch.tensor(np.ascontiguousarray(g.transpose(0, 3, 1, 2))))
    theirs = [
        yt.detach().numpy().transpose(0, 2, 3, 1),
        xt.grad.numpy().transpose(0, 2, 3, 1),
        kt.grad.numpy().transpose(2, 3, 1, 0),
        bt.grad.numpy(),
    ]
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for a, c in zip(ours, theirs, strict=True):
        assert a.dtype == dtype
        close(a, c.astype(np.float64), rtol)


def test_winograd_kernel_gradient_by_finite_differences() -> None:
    x, k, b = arrays((1, 4, 5), 16, 16, np.float64, seed=2)
    plan = Conv2DPlan(x.shape, k.shape, padding="same")
    g = np.random.default_rng(4).standard_normal(plan.output_shape)
    plan.forward(x, k, b)
    grads = plan.backward(g, x, k)
    assert grads.x is not None
    gen = np.random.default_rng(9)
    eps = 1e-6
    for _ in range(6):
        idx = tuple(int(gen.integers(0, s)) for s in k.shape)
        kp, km = k.copy(), k.copy()
        kp[idx] += eps
        km[idx] -= eps
        numeric = (np.sum(plan.forward(x, kp, b) * g) - np.sum(plan.forward(x, km, b) * g)) / (2 * eps)
        assert numeric == pytest.approx(grads.kernel[idx], rel=1e-6, abs=1e-8)
        jdx = tuple(int(gen.integers(0, s)) for s in x.shape)
        xp, xm = x.copy(), x.copy()
        xp[jdx] += eps
        xm[jdx] -= eps
        numeric = (np.sum(plan.forward(xp, k, b) * g) - np.sum(plan.forward(xm, k, b) * g)) / (2 * eps)
        assert numeric == pytest.approx(grads.x[jdx], rel=1e-6, abs=1e-8)


def test_backward_recomputes_the_transform_for_another_input() -> None:
    # The transformed input V is kept from forward; a backward for a different x must not use it.
    x, k, b = arrays((2, 6, 6), 16, 16, np.float64)
    other = x[::-1].copy()
    plan = Conv2DPlan(x.shape, k.shape, padding="same")
    direct = Conv2DPlan(x.shape, k.shape, padding="same", algorithm="im2col")
    g = np.ones(plan.output_shape)
    plan.forward(x, k, b)
    close(plan.backward(g, other, k).kernel, direct.backward(g, other, k).kernel, 1e-12)


def test_which_convolutions_use_winograd(monkeypatch: pytest.MonkeyPatch) -> None:
    def applies(kernel: tuple[int, int], strides: int, dilation: int, c: int, f: int, groups: int = 1) -> bool:
        geometry = WindowGeometry.resolve((8, 8), kernel, strides, "same", dilation)
        return winograd_applies(geometry, (*kernel, c // groups, f), groups)

    assert applies((3, 3), 1, 1, 16, 16)
    assert not applies((3, 3), 2, 1, 64, 64)  # strided
    assert not applies((5, 5), 1, 1, 64, 64)  # other kernel sizes
    assert not applies((3, 3), 1, 2, 64, 64)  # dilated
    assert not applies((3, 3), 1, 1, 64, 64, groups=2)
    assert not applies((3, 3), 1, 1, 8, 64)  # few channels: im2col is faster
    assert not applies((3, 3), 1, 1, 64, 8)
    monkeypatch.setenv("CONVLENS_WINOGRAD", "0")
    assert not applies((3, 3), 1, 1, 16, 16)
    assert Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), padding="same").algorithm == "im2col"


def test_algorithm_argument_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"conv2d: `algorithm` must be one of 'auto', 'im2col', 'winograd', got 'fft'\."
    ):
        Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), algorithm="fft")
    with pytest.raises(
        ConfigError,
        match=r"conv2d: algorithm='winograd' needs a 3x3 kernel, stride 1, no dilation, groups=1 and at least 16 "
        r"input channels and filters, got kernel \(3, 3, 16, 16\), strides \(2, 2\), dilation \(1, 1\), groups=1\.",
    ):
        Conv2DPlan((1, 8, 8, 16), (3, 3, 16, 16), strides=2, algorithm="winograd")
