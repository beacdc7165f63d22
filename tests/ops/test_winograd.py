"""Winograd F(2x2, 3x3): its tile transforms, compiled and NumPy, against each other, the loop reference,
PyTorch and finite differences (the forced-algorithm tests in test_conv_algorithms.py cover its domain).

The compiled (Numba) transforms and the NumPy ones (``CONVLENS_JIT=0``) must agree bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens.ops import winograd_jit
from convlens.ops.conv import Conv2DPlan
from convlens.ops.jit import compiled_for
from tests.conftest import require
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


def winograd_plan(x: np.ndarray, k: np.ndarray, padding: Any) -> Conv2DPlan:
    plan = Conv2DPlan(x.shape, k.shape, padding=padding, algorithm="winograd", dtype=x.dtype)
    assert plan.algorithms == ("winograd", "winograd", "winograd")
    return plan


@pytest.fixture(params=["jit", "numpy"])
def transforms(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a float32 test once with the compiled transforms and once with the NumPy ones."""
    monkeypatch.setenv("CONVLENS_JIT", "0" if request.param == "numpy" else "1")
    if request.param == "jit":
        require("numba")
        assert compiled_for(np.float32)
    return str(request.param)


@pytest.mark.parametrize("padding", PADDINGS)
def test_winograd_matches_loop_reference(padding: Any, transforms: str) -> None:
    # float32 (the compiled transforms' dtype in the default tier) against the float64 loops.
    x, k, b = arrays((2, 5, 6), 16, 17, np.float32)
    pads = explicit_pads(padding, (5, 6), (3, 3), (1, 1), (1, 1))
    plan = winograd_plan(x, k, padding)
    x64, k64, b64 = (a.astype(np.float64) for a in (x, k, b))
    expected = conv2d_reference(x64, k64, b64, (1, 1), pads, (1, 1), 1)
    g = np.random.default_rng(3).standard_normal(expected.shape)
    reference = [expected, *conv2d_backward_reference(g, x64, k64, (1, 1), pads, (1, 1), 1)]
    for ours, theirs in zip(run(plan, x, k, b, g.astype(np.float32)), reference, strict=True):
        assert ours.dtype == np.float32
        close(ours, theirs, 2e-5)


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.float64_kernels)])
def test_jit_and_numpy_transforms_agree(dtype: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    require("numba")
    calls = []
    transform = winograd_jit.input_transform

    def counting(*args: Any) -> bool:
        ran = transform(*args)
        calls.append(ran)
        return ran

    monkeypatch.setattr(winograd_jit, "input_transform", counting)
    x, k, b = arrays((3, 9, 7), 16, 20, dtype, seed=5)
    g = np.random.default_rng(6).standard_normal((3, 9, 7, 20)).astype(dtype)
    results = []
    for jit in ("1", "0"):
        monkeypatch.setenv("CONVLENS_JIT", jit)
        results.append(run(winograd_plan(x, k, "same"), x, k, b, g))
    assert calls == [True, False]  # compiled in the first run, NumPy in the second
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
    monkeypatch.setattr(winograd_jit, "_KERNELS", (boom, boom, boom, boom))
    x, k, b = arrays((1, 6, 6), 16, 16, np.float32)
    plan = winograd_plan(x, k, "same")
    run(plan, x, k, b, np.ones(plan.output_shape, np.float32))
    monkeypatch.setenv("CONVLENS_JIT", "1")
    if compiled_for(np.float32):
        with pytest.raises(AssertionError, match="compiled kernel called"):
            run(plan, x, k, b, np.ones(plan.output_shape, np.float32))


def test_winograd_matches_torch(transforms: str, torch: Any) -> None:
    dtype = np.float32
    x, k, b = arrays((4, 14, 13), 32, 24, dtype, seed=11)
    plan = winograd_plan(x, k, "same")
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
    for a, c in zip(ours, theirs, strict=True):
        assert a.dtype == dtype
        close(a, c.astype(np.float64), 1e-4)


def test_winograd_kernel_gradient_by_finite_differences() -> None:
    x, k, b = arrays((1, 4, 5), 16, 16, np.float64, seed=2)
    plan = winograd_plan(x, k, "same")
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
    plan = winograd_plan(x, k, "same")
    g = np.ones(plan.output_shape)
    plan.forward(x, k, b)
    _, expected, _ = conv2d_backward_reference(g, other, k, (1, 1), ((1, 1), (1, 1)))
    close(plan.backward(g, other, k).kernel, expected, 1e-12)
