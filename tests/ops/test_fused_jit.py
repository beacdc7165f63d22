"""Numba fused conv + max-pool kernels: the same results as the NumPy (im2col + GEMM) path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlens as cl
from convlens.errors import ShapeError
from convlens.geometry import WindowGeometry
from convlens.ops import fused
from convlens.ops.activations import get_activation
from convlens.ops.fused import ConvMaxPoolPlan

pytest.importorskip("numba")


@pytest.fixture
def every_width(monkeypatch):
    """Let the JIT path run for any channel count (production picks it by measured speed)."""
    monkeypatch.setattr(fused, "JIT_CHANNELS", range(1, 1000))


def run(monkeypatch, flag, x, kernel, bias, grad, *, strides, padding, dilation, pool, activation, grad_x=True):
    """(out, winner, grads, used_jit) of one training forward + backward with CONVLENS_JIT=flag."""
    monkeypatch.setenv("CONVLENS_JIT", flag)
    geometry = WindowGeometry.resolve(x.shape[1:3], kernel.shape[:2], strides, padding, dilation)
    plan = ConvMaxPoolPlan(x.shape, kernel.shape, geometry, pool, get_activation(activation))
    used_jit = plan.uses_jit(x.dtype)
    out = plan.forward(x, kernel, bias, training=True)
    winner = plan.winner.copy()
    grads = plan.backward(grad, kernel, compute_grad_x=grad_x)
    return out, winner, grads, used_jit


def compare(monkeypatch, x, kernel, bias, grad, *, rtol, **kw):
    jit_out, jit_winner, jit_grads, used = run(monkeypatch, "1", x, kernel, bias, grad, **kw)
    np_out, np_winner, np_grads, used_np = run(monkeypatch, "0", x, kernel, bias, grad, **kw)
    assert used
    assert not used_np
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
def test_jit_equals_numpy_float64(
    batch, size, channels, filters, kernel_size, strides, dilation, padding, pool,
    activation, data, grad_x,
):  # fmt: skip
    rng = np.random.default_rng(batch * 7919 + size[0] * 31 + size[1] + channels * 3 + filters)
    x = rng.standard_normal((batch, *size, channels))
    kernel = rng.standard_normal((*kernel_size, channels, filters))
    if data == "integers":  # exact sums, many equal conv values: the winner maps must agree
        x, kernel = np.round(x.clip(-1, 1)), np.round(kernel)
    elif data == "zeros":  # every window a tie: offset 0 wins
        x = np.zeros_like(x)
    bias = rng.standard_normal(filters)
    kw = {"strides": strides, "padding": padding, "dilation": dilation, "pool": pool, "activation": activation}
    try:
        geometry = WindowGeometry.resolve(size, kernel_size, strides, padding, dilation)
        ConvMaxPoolPlan(x.shape, kernel.shape, geometry, pool, get_activation(activation))
    except ShapeError:
        return
    qh, qw = geometry.output_size[0] // pool[0], geometry.output_size[1] // pool[1]
    grad = rng.standard_normal((batch, qh, qw, filters))
    # A fresh monkeypatch per example (hypothesis reuses function-scoped fixtures).
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(fused, "JIT_CHANNELS", range(1, 1000))
        winner, _ = compare(monkeypatch, x, kernel, bias, grad, rtol=1e-12, grad_x=grad_x, **kw)
    if data == "zeros":
        assert not winner.any()


@pytest.mark.parametrize("channels", [1, 3])
def test_jit_equals_numpy_float32(monkeypatch, every_width, channels) -> None:
    rng = np.random.default_rng(channels)
    x = rng.random((4, 12, 11, channels), dtype=np.float32)
    kernel = (rng.random((3, 3, channels, 16), dtype=np.float32) - 0.5) / 3
    bias = rng.standard_normal(16).astype(np.float32)
    grad = rng.standard_normal((4, 6, 5, 16)).astype(np.float32)
    kw = {"strides": 1, "padding": "same", "dilation": 1, "pool": (2, 2), "activation": "relu"}
    _, grads = compare(monkeypatch, x, kernel, bias, grad, rtol=1e-5, **kw)
    assert grads.x is not None
    assert grads.x.shape == x.shape


def test_ties_pick_the_first_maximum(monkeypatch, every_width) -> None:
    # One channel, a 1x1 all-ones kernel: the conv values are the input itself. Window (2x2) values
    # [[1, 3], [3, 2]]: offsets 1 and 2 tie at 3, the first (1) wins; [[0, 0], [0, 0]]: offset 0.
    x = np.array([[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    monkeypatch.setenv("CONVLENS_JIT", "1")
    geometry = WindowGeometry.resolve((2, 4), 1, 1, "valid")
    plan = ConvMaxPoolPlan(x.shape, (1, 1, 1, 1), geometry, (2, 2), get_activation("linear"))
    assert plan.uses_jit(x.dtype)
    out = plan.forward(x, np.ones((1, 1, 1, 1)), None, training=True)
    np.testing.assert_array_equal(out.ravel(), [3.0, 0.0])
    np.testing.assert_array_equal(plan.winner.ravel(), [1, 0])
    grads = plan.backward(np.array([5.0, 7.0]).reshape(1, 1, 2, 1), np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(grads.x.ravel(), [0, 5, 7, 0, 0, 0, 0, 0])


def test_switch_off_takes_the_numpy_path(monkeypatch, every_width) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("JIT kernel called with CONVLENS_JIT=0")

    monkeypatch.setattr(fused, "conv_max_pool_forward_jit", refuse)
    monkeypatch.setattr(fused, "conv_max_pool_backward_jit", refuse)
    monkeypatch.setenv("CONVLENS_JIT", "0")
    x = np.ones((1, 6, 6, 2))
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan(x.shape, (3, 3, 2, 4), geometry, (2, 2), get_activation("relu"))
    assert not plan.uses_jit(x.dtype)
    plan.forward(x, np.ones((3, 3, 2, 4)), None, training=True)
    plan.backward(np.ones((1, 3, 3, 4)), np.ones((3, 3, 2, 4)))
    monkeypatch.setenv("CONVLENS_JIT", "1")
    with pytest.raises(AssertionError, match="JIT kernel called"):
        plan.forward(x, np.ones((3, 3, 2, 4)), None, training=True)


def test_path_choice(monkeypatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "1")
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")

    def plan(channels: int) -> ConvMaxPoolPlan:
        return ConvMaxPoolPlan((1, 6, 6, channels), (3, 3, channels, 4), geometry, (2, 2), get_activation("relu"))

    assert plan(3).uses_jit(np.float32)
    assert plan(3).uses_jit(np.float64)
    assert not plan(3).uses_jit(np.float16)
    assert not plan(3).uses_jit(np.float32, compute_grad_x=False)
    assert not plan(32).uses_jit(np.float32)
    assert not plan(1).uses_jit(np.float32)


def test_backward_needs_a_training_forward_on_the_jit_path(monkeypatch, every_width) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "1")
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan((1, 6, 6, 1), (3, 3, 1, 2), geometry, (2, 2), get_activation("relu"))
    kernel = np.ones((3, 3, 1, 2))
    plan.forward(np.ones((1, 6, 6, 1)), kernel, None, training=False)
    assert plan.winner is None
    with pytest.raises(ShapeError, match="backward called without a forward"):
        plan.backward(np.ones((1, 3, 3, 2)), kernel)


def test_model_with_a_fused_inner_stage_trains_the_same(monkeypatch, every_width) -> None:
    # The fused stage follows another conv, so it needs grad_x and (with 3 channels) takes the JIT path.
    layers = cl.layers
    calls = []
    forward_jit = fused.conv_max_pool_forward_jit

    def counting(*args, **kwargs):
        calls.append(1)
        return forward_jit(*args, **kwargs)

    monkeypatch.setattr(fused, "conv_max_pool_forward_jit", counting)
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1))
    y = rng.integers(0, 10, 16)
    weights = []
    for flag in ("1", "0"):
        monkeypatch.setenv("CONVLENS_JIT", flag)
        cl.utils.set_random_seed(3)
        model = cl.Sequential(
            [
                layers.Input((28, 28, 1)),
                layers.Conv2D(3, 1, dtype="float64"),
                layers.Conv2D(32, 3, padding="same", activation="relu", dtype="float64"),
                layers.MaxPooling2D(2, dtype="float64"),
                layers.Flatten(dtype="float64"),
                layers.Dense(10, activation="softmax", dtype="float64"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy")
        for _ in range(3):
            model.train_on_batch(x, y)
        weights.append(model.get_weights())
    assert len(calls) == 3
    for a, b in zip(*weights, strict=True):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
