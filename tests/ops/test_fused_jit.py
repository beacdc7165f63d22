"""The fused stage's two algorithms: the compiled direct convolution (conv_pool_direct) gives the results of
the im2col + GEMM one (conv_pool_gemm) to rounding, winner maps exactly; and the table that picks them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlens as cl
from convlens.errors import ConfigError, ShapeError
from convlens.geometry import WindowGeometry
from convlens.ops import fused, fused_algorithms
from convlens.ops.activations import get_activation
from convlens.ops.fused import ConvMaxPoolPlan
from tests.conftest import require
from tests.support.kernels import compiled_kernels_on  # noqa: F401 (an autouse fixture)

require("numba")


def run(algorithm, x, kernel, bias, grad, *, strides, padding, dilation, pool, activation, grad_x=True):
    """(out, winner, grads) of one training forward + backward with the algorithm forced."""
    geometry = WindowGeometry.resolve(x.shape[1:3], kernel.shape[:2], strides, padding, dilation)
    plan = ConvMaxPoolPlan(
        x.shape, kernel.shape, geometry, pool, get_activation(activation), algorithm=algorithm, dtype=x.dtype
    )
    assert plan.algorithms == algorithm
    out = plan.forward(x, kernel, bias, training=True)
    winner = plan.winner.copy()
    grads = plan.backward(grad, kernel, compute_grad_x=grad_x)
    return out, winner, grads


def compare(x, kernel, bias, grad, *, rtol, **kw):
    jit_out, jit_winner, jit_grads = run("conv_pool_direct", x, kernel, bias, grad, **kw)
    np_out, np_winner, np_grads = run("conv_pool_gemm", x, kernel, bias, grad, **kw)
    assert jit_out.dtype == np_out.dtype == x.dtype
    assert jit_winner.dtype == np.uint8
    np.testing.assert_array_equal(jit_winner, np_winner)
    np.testing.assert_allclose(jit_out, np_out, rtol=rtol, atol=rtol * 1e-3)
    for name in ("kernel", "bias", "x"):
        a, b = getattr(jit_grads, name), getattr(np_grads, name)
        if b is None:
            assert a is None
            continue
        assert a.dtype == b.dtype == x.dtype
        assert a.shape == b.shape
        scale = max(np.abs(b).max(), 1.0)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)
    return jit_winner, jit_grads


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.float64_kernels)])
@given(
    batch=st.integers(1, 3),
    size=st.tuples(st.integers(3, 10), st.integers(3, 10)),
    channels=st.integers(1, 4),
    filters=st.integers(1, 6),
    kernel_size=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    dilation=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid", 1, ((0, 2), (1, 0))]),
    pool=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    activation=st.sampled_from(sorted(fused.MONOTONIC_ACTIVATIONS)),
    data=st.sampled_from(["normal", "integers", "zeros"]),
    grad_x=st.booleans(),
)
def test_direct_equals_gemm(
    dtype, batch, size, channels, filters, kernel_size, strides, dilation, padding, pool, activation, data, grad_x,
):  # fmt: skip
    if dtype == np.float32 and data == "normal":
        data = "integers"  # float32 sums in another order may swap near-tied winners; integer sums are exact
    rng = np.random.default_rng(batch * 7919 + size[0] * 31 + size[1] + channels * 3 + filters)
    x = rng.standard_normal((batch, *size, channels))
    kernel = rng.standard_normal((*kernel_size, channels, filters))
    if data == "integers":  # exact sums, many equal conv values: the winner maps must agree
        x, kernel = np.round(x.clip(-1, 1)), np.round(kernel)
    elif data == "zeros":  # every window a tie: offset 0 wins
        x = np.zeros_like(x)
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    kw = {"strides": strides, "padding": padding, "dilation": dilation, "pool": pool, "activation": activation}
    try:
        geometry = WindowGeometry.resolve(size, kernel_size, strides, padding, dilation)
        ConvMaxPoolPlan(x.shape, kernel.shape, geometry, pool, get_activation(activation))
    except ShapeError:
        return
    qh, qw = geometry.output_size[0] // pool[0], geometry.output_size[1] // pool[1]
    grad = rng.standard_normal((batch, qh, qw, filters)).astype(dtype)
    winner, _ = compare(x, kernel, bias, grad, rtol=1e-12 if dtype == np.float64 else 1e-5, grad_x=grad_x, **kw)
    if data == "zeros":
        assert not winner.any()


@pytest.mark.parametrize("channels", [1, 3])
def test_direct_equals_gemm_float32(channels) -> None:
    rng = np.random.default_rng(channels)
    x = rng.random((4, 12, 11, channels), dtype=np.float32)
    kernel = (rng.random((3, 3, channels, 16), dtype=np.float32) - 0.5) / 3
    bias = rng.standard_normal(16).astype(np.float32)
    grad = rng.standard_normal((4, 6, 5, 16)).astype(np.float32)
    kw = {"strides": 1, "padding": "same", "dilation": 1, "pool": (2, 2), "activation": "relu"}
    _, grads = compare(x, kernel, bias, grad, rtol=1e-5, **kw)
    assert grads.x is not None
    assert grads.x.shape == x.shape


@pytest.mark.parametrize("algorithm", fused.CONV_POOL_REGISTRY.names())
def test_ties_pick_the_first_maximum(algorithm: str) -> None:
    # One channel, a 1x1 all-ones kernel: the conv values are the input itself. Window (2x2) values
    # [[1, 3], [3, 2]]: offsets 1 and 2 tie at 3, the first (1) wins; [[0, 0], [0, 0]]: offset 0.
    x = np.array([[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0]], np.float32).reshape(1, 2, 4, 1)
    geometry = WindowGeometry.resolve((2, 4), 1, 1, "valid")
    plan = ConvMaxPoolPlan(x.shape, (1, 1, 1, 1), geometry, (2, 2), get_activation("linear"), algorithm=algorithm)
    kernel = np.ones((1, 1, 1, 1), np.float32)
    out = plan.forward(x, kernel, None, training=True)
    np.testing.assert_array_equal(out.ravel(), [3.0, 0.0])
    np.testing.assert_array_equal(plan.winner.ravel(), [1, 0])
    grads = plan.backward(np.array([5.0, 7.0], np.float32).reshape(1, 1, 2, 1), kernel)
    np.testing.assert_array_equal(grads.x.ravel(), [0, 5, 7, 0, 0, 0, 0, 0])


def test_switch_off_rules_out_the_direct_kernels(monkeypatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "0")
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan((1, 6, 6, 2), (3, 3, 2, 4), geometry, (2, 2), get_activation("relu"))
    assert plan.algorithms == "conv_pool_gemm"
    assert "cannot run: conv_pool_direct needs compiled kernels for float32" in str(plan.explain())
    with pytest.raises(ConfigError, match=r"conv\+maxpool: algorithm='conv_pool_direct' cannot run here"):
        ConvMaxPoolPlan(
            (1, 6, 6, 2), (3, 3, 2, 4), geometry, (2, 2), get_activation("relu"), algorithm="conv_pool_direct"
        )
    monkeypatch.setenv("CONVLENS_JIT", "1")
    assert plan.algorithms == "conv_pool_direct"  # the choice is made per state of the switch


@pytest.mark.parametrize(
    ("threads", "channels", "dtype", "grad_x", "expected"),
    [
        ("2", fused.DIRECT_CHANNELS.start, np.float32, True, "conv_pool_direct"),
        ("2", fused.DIRECT_CHANNELS.stop - 1, np.float32, True, "conv_pool_direct"),
        ("2", fused.DIRECT_CHANNELS.stop, np.float32, True, "conv_pool_gemm"),
        ("2", fused.DIRECT_CHANNELS_NO_GRAD_X.stop - 1, np.float32, False, "conv_pool_direct"),
        ("2", fused.DIRECT_CHANNELS_NO_GRAD_X.stop, np.float32, False, "conv_pool_gemm"),
        ("2", 1, np.float32, False, "conv_pool_gemm"),  # the course stage: see the measurement (cold start)
        ("1", fused.DIRECT_CHANNELS_ONE_THREAD.stop - 1, np.float32, True, "conv_pool_direct"),
        ("1", fused.DIRECT_CHANNELS_ONE_THREAD.stop, np.float32, True, "conv_pool_gemm"),
        ("1", 1, np.float32, False, "conv_pool_gemm"),  # a first layer, one thread: the GEMM's kernel gradient wins
        ("2", 3, np.float16, True, "conv_pool_gemm"),  # no compiled kernels for float16
    ],
)
def test_table(threads: str, channels: int, dtype: Any, grad_x: bool, expected: str, monkeypatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "1")
    monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan(
        (1, 6, 6, channels), (3, 3, channels, 4), geometry, (2, 2), get_activation("relu"), dtype=dtype,
        compute_grad_x=grad_x,
    )  # fmt: skip
    assert plan.algorithms == expected
    text = str(plan.explain())
    assert f"forward: {expected}  (rule: " in text


def test_backward_needs_a_training_forward_on_the_direct_path() -> None:
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan(
        (1, 6, 6, 1), (3, 3, 1, 2), geometry, (2, 2), get_activation("relu"), algorithm="conv_pool_direct"
    )
    kernel = np.ones((3, 3, 1, 2), np.float32)
    plan.forward(np.ones((1, 6, 6, 1), np.float32), kernel, None, training=False)
    assert plan.winner is None
    with pytest.raises(ShapeError, match="backward called without a forward"):
        plan.backward(np.ones((1, 3, 3, 2), np.float32), kernel)


def test_model_with_a_fused_inner_stage_trains_the_same(monkeypatch) -> None:
    # The fused stage follows another conv, so it needs grad_x and (with 3 channels) takes the direct kernels.
    layers = cl.layers
    calls = []
    forward_direct = fused_algorithms.conv_max_pool_forward_jit

    def counting(*args, **kwargs):
        calls.append(1)
        return forward_direct(*args, **kwargs)

    monkeypatch.setattr(fused_algorithms, "conv_max_pool_forward_jit", counting)
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    weights = []
    for flag in ("1", "0"):
        monkeypatch.setenv("CONVLENS_JIT", flag)
        cl.utils.set_random_seed(3)
        model = cl.Sequential(
            [
                layers.Input((28, 28, 1)),
                layers.Conv2D(3, 1),
                layers.Conv2D(32, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy")
        for _ in range(3):
            model.train_on_batch(x, y)
        weights.append(model.get_weights())
    assert len(calls) == 3
    for a, b in zip(*weights, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
