"""Activations: loop reference, torch oracle, finite differences, stability, registry."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convlens.errors import ConfigError
from convlens.ops import activations as act_ops
from convlens.ops.tanh_float32 import tanh_float32_numpy
from tests.conftest import require
from tests.support import reference_core as ref

NAMES = sorted(ref.SCALAR_ACTIVATIONS)


def _inputs(rng: np.random.Generator, shape: tuple[int, ...] = (4, 7), dtype: type = np.float64) -> np.ndarray:
    """Values in about [-6, 8], kept off the kinks at 0 and 6."""
    x = rng.standard_normal(shape) * 3.0 + 1.0
    for kink in (0.0, 6.0):
        near = np.abs(x - kink) < 0.05
        x[near] = kink + 0.1
    return x.astype(dtype)


def _torch_fn(name: str):  # type: ignore[no-untyped-def]
    torch = require("torch")
    f = torch.nn.functional
    return {
        "linear": lambda t: t,
        "relu": f.relu,
        "relu6": f.relu6,
        "leaky_relu": lambda t: f.leaky_relu(t, 0.2),
        "elu": f.elu,
        "selu": f.selu,
        "gelu": f.gelu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softplus": f.softplus,
        "silu": f.silu,
        "softmax": lambda t: torch.softmax(t, dim=-1),
    }[name]


@pytest.mark.parametrize("name", NAMES)
def test_matches_loop_reference(name: str, rng: np.random.Generator) -> None:
    x = _inputs(rng)
    got = act_ops.get_activation(name).forward(x)
    np.testing.assert_allclose(got, ref.elementwise(ref.SCALAR_ACTIVATIONS[name], x), rtol=1e-12, atol=1e-14)


def test_softmax_matches_loop_reference(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4, 5)) * 5
    np.testing.assert_allclose(act_ops.softmax(x), ref.softmax_rows(x), rtol=1e-13)
    moved = np.moveaxis(ref.softmax_rows(np.moveaxis(x, 1, -1)), -1, 1)
    np.testing.assert_allclose(act_ops.softmax(x, axis=1), moved, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", [*NAMES, "softmax"])
def test_matches_torch_forward_and_gradient(name: str, dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    x = _inputs(rng, dtype=dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    act = act_ops.get_activation(name)
    y = act.forward(x)
    grad = act.backward(g, x, y)
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_fn(name)(xt)
    yt.backward(torch.tensor(g))
    assert y.dtype == dtype
    assert grad.dtype == dtype
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (1e-4, 1e-6)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_tanh_approximation_matches_torch(dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    x = _inputs(rng, dtype=dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.gelu(xt, approximate="tanh")
    yt.backward(torch.tensor(g))
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(act_ops.gelu(x, approximate=True), yt.detach().numpy(), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(act_ops.gelu_backward(g, x, approximate=True), xt.grad.numpy(), rtol=rtol, atol=1e-6)


def test_gelu_float32_within_1e6_of_torch() -> None:
    torch = require("torch")
    x = np.linspace(-5, 5, 20001, dtype=np.float32)
    expected = torch.nn.functional.gelu(torch.tensor(x)).numpy()
    np.testing.assert_allclose(act_ops.gelu(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", [*NAMES, "softmax"])
def test_backward_matches_finite_differences(name: str, rng: np.random.Generator) -> None:
    act = act_ops.get_activation(name)
    x = _inputs(rng, shape=(3, 5))
    w = rng.standard_normal(x.shape)
    analytic = act.backward(w, x, act.forward(x))
    numeric = ref.numeric_grad(lambda: float(np.sum(act.forward(x) * w)), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_gelu_approximate_backward_matches_finite_differences(rng: np.random.Generator) -> None:
    x = _inputs(rng, shape=(2, 6))
    w = rng.standard_normal(x.shape)
    numeric = ref.numeric_grad(lambda: float(np.sum(act_ops.gelu(x, approximate=True) * w)), x)
    np.testing.assert_allclose(act_ops.gelu_backward(w, x, approximate=True), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [*NAMES, "softmax"])
def test_huge_inputs_stay_finite_without_warnings(name: str, dtype: type) -> None:
    # filterwarnings=error turns any overflow RuntimeWarning into a failure.
    x = np.array([[-1e4, -50.0, 0.5, 50.0, 1e4]], dtype)
    act = act_ops.get_activation(name)
    y = act.forward(x)
    grad = act.backward(np.ones_like(x), x, y)
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(grad))
    assert y.dtype == dtype


def test_sigmoid_and_softmax_saturate_exactly() -> None:
    for dtype in (np.float32, np.float64):
        np.testing.assert_array_equal(act_ops.sigmoid(np.array([-1e4, 1e4], dtype)), [0.0, 1.0])
        np.testing.assert_array_equal(act_ops.softmax(np.array([[1e4, -1e4, 0.0]], dtype)), [[1.0, 0.0, 0.0]])
    assert float(act_ops.softplus(np.array(1e4))) == 1e4


def test_relu_gradient_at_zero_is_zero_and_out_works_in_place() -> None:
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    y = act_ops.relu(x)
    np.testing.assert_array_equal(act_ops.relu_backward(np.ones(3, np.float32), y), [0.0, 0.0, 1.0])
    assert act_ops.relu(x, out=x) is x
    np.testing.assert_array_equal(x, [0.0, 0.0, 2.0])


def test_linear_returns_its_input_itself() -> None:
    x = np.ones(3, np.float32)
    assert act_ops.get_activation(None).forward(x) is x
    assert act_ops.get_activation("linear").forward(x) is x


def test_erf_matches_math_erf() -> None:
    x = np.linspace(-8, 8, 4001)
    np.testing.assert_allclose(act_ops.erf(x), [math.erf(v) for v in x], rtol=0, atol=4e-16)
    tail = np.linspace(0, 25, 1001)
    np.testing.assert_allclose(act_ops.erfc(tail), [math.erfc(v) for v in tail], rtol=5e-15)
    assert act_ops.erf(np.float32(0.3) * np.ones(2, np.float32)).dtype == np.float32


def test_registry_lookup() -> None:
    assert act_ops.get_activation("ReLU").name == "relu"
    assert act_ops.get_activation("swish").name == "silu"
    act = act_ops.get_activation("tanh")
    assert act_ops.get_activation(act) is act
    assert act_ops.get_activation(None).is_identity


def test_unknown_activation_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"Dense 'd': unknown `activation` 'rleu'; choose one of .*'relu'"):
        act_ops.get_activation("rleu", owner="Dense 'd'")
    with pytest.raises(ConfigError, match=r"unknown `activation` 3"):
        act_ops.get_activation(3)


@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
        elements=st.floats(-1e4, 1e4),
    )
)
def test_softmax_and_sigmoid_properties(x: np.ndarray) -> None:
    y = act_ops.softmax(x)
    assert np.all(y >= 0)
    np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=1e-12)
    s = act_ops.sigmoid(x)
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(s + act_ops.sigmoid(-x), 1.0, rtol=1e-12)


def test_tanh_split_over_threads_gives_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large arrays go through the float32 tanh in pieces, one per thread: element-wise, so the same bits."""
    from convlens.ops import activations, parallel

    calls: list[int] = []
    real = parallel.parallel_ranges

    def counted(work: Any, total: int, nbytes: int) -> None:
        calls.append(total)
        real(work, total, nbytes)

    monkeypatch.setattr(activations, "parallel_ranges", counted)
    x = np.random.default_rng(0).standard_normal((64, 40, 40, 2)).astype(np.float32)  # 800 KB
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        y = activations.tanh(x)
        results[threads] = (y, activations.tanh_backward(g, y))
    assert calls == [x.size, x.size]  # only with two threads
    for one, two in zip(results["1"], results["2"], strict=True):
        assert one.dtype == two.dtype == np.float32
        np.testing.assert_array_equal(one.view(np.uint32), two.view(np.uint32))
    whole = np.empty_like(x)
    tanh_float32_numpy(x.reshape(-1), whole.reshape(-1))  # (the same bits as the compiled kernel)
    np.testing.assert_array_equal(results["2"][0], whole)
    np.testing.assert_array_equal(results["2"][1], g * (1 - results["2"][0] ** 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1000, 70_000])  # below and above ZEROS_MIN_BYTES
def test_relu_inplace_is_np_maximum_bit_for_bit(dtype: Any, size: int) -> None:
    from convlens.ops.activations import relu, relu_inplace

    special = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, -1e-45, 1e-45, np.finfo(dtype).min, np.finfo(dtype).max]
    x = np.concatenate([np.array(special, dtype), np.random.default_rng(0).standard_normal(size).astype(dtype)])
    x = x.reshape(2, -1)
    expected = np.maximum(x, 0)
    y = x.copy()
    assert relu_inplace(y) is y
    assert y.tobytes() == expected.tobytes()  # (NaN stays NaN with its sign, -0 becomes +0, as np.maximum)
    z = x.copy()
    assert relu(z, out=z) is z
    assert z.tobytes() == expected.tobytes()
    strided = x.copy()[:, ::2]  # not contiguous: np.maximum as it is
    np.testing.assert_array_equal(relu_inplace(strided), expected[:, ::2])


def test_relu_inplace_reads_shared_zeros_that_nothing_writes() -> None:
    from convlens.ops import activations

    big = np.full((300, 1000), -1.0, np.float32)
    activations.relu_inplace(big)
    assert not big.any()
    zeros = activations._zeros_like(big)
    assert zeros.shape == big.shape
    assert not zeros.flags.writeable
    assert not zeros.any()
    smaller = activations._zeros_like(big[:10])
    assert np.shares_memory(smaller, zeros)  # (one mapping serves every smaller array)
