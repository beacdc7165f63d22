"""The fused conv -> activation -> max-pool plan equals the three ops run one after another."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.errors import ShapeError
from convlens.geometry import WindowGeometry
from convlens.ops import conv2d, conv2d_backward, max_pool2d, max_pool2d_backward
from convlens.ops.activations import get_activation
from convlens.ops.fused import ConvMaxPoolPlan


def unfused(x, kernel, bias, grad, *, strides, padding, dilation, pool, activation):
    act = get_activation(activation)
    pre = conv2d(x, kernel, bias, strides=strides, padding=padding, dilation_rate=dilation)
    y = act.forward(pre)
    out = max_pool2d(y, pool_size=pool, padding="valid")
    if grad is None:
        return out, None
    g_y = max_pool2d_backward(grad, y, pool_size=pool, padding="valid")
    g_pre = act.backward(g_y, pre, y)
    grads = conv2d_backward(g_pre, x, kernel, strides=strides, padding=padding, dilation_rate=dilation)
    return out, grads


def fused(x, kernel, bias, grad, *, strides, padding, dilation, pool, activation):
    geometry = WindowGeometry.resolve(x.shape[1:3], kernel.shape[:2], strides, padding, dilation)
    plan = ConvMaxPoolPlan(x.shape, kernel.shape, geometry, pool, get_activation(activation))
    out = plan.forward(x, kernel, bias, training=True)
    return out, plan.backward(grad, kernel)


@given(
    batch=st.integers(1, 3),
    size=st.tuples(st.integers(4, 11), st.integers(4, 11)),
    channels=st.sampled_from([1, 3, 8]),
    filters=st.integers(1, 5),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid", 1]),
    dilation=st.integers(1, 2),
    pool=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    activation=st.sampled_from(["relu", "linear", "tanh", "sigmoid", "leaky_relu"]),
    ties=st.booleans(),
)
def test_fused_equals_unfused(batch, size, channels, filters, k, stride, padding, dilation, pool, activation, ties):
    rng = np.random.default_rng(batch * 1000 + size[0] * 37 + size[1])
    x = rng.standard_normal((batch, *size, channels))
    if ties:  # many equal windows: the first-arg-max rule must agree
        x = np.round(x.clip(-1, 1))
    kernel = rng.standard_normal((k, k, channels, filters))
    bias = rng.standard_normal(filters)
    kw = {"strides": stride, "padding": padding, "dilation": dilation, "pool": pool, "activation": activation}
    try:
        expected, _ = unfused(x, kernel, bias, None, **kw)
    except ShapeError:
        with pytest.raises(ShapeError):
            fused(x, kernel, bias, np.zeros(1), **kw)
        return
    grad = rng.standard_normal(expected.shape)
    expected, grads = unfused(x, kernel, bias, grad, **kw)
    out, fgrads = fused(x, kernel, bias, grad, **kw)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fgrads.kernel, grads.kernel, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fgrads.bias, grads.bias, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fgrads.x, grads.x, rtol=1e-9, atol=1e-10)


def test_course_shapes_float32() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    kernel = (rng.random((3, 3, 1, 32), dtype=np.float32) - 0.5) / 3
    bias = np.zeros(32, np.float32)
    grad = rng.standard_normal((16, 14, 14, 32)).astype(np.float32)
    kw = {"strides": 1, "padding": "same", "dilation": 1, "pool": (2, 2), "activation": "relu"}
    out, fgrads = fused(x, kernel, bias, grad, **kw)
    expected, grads = unfused(x, kernel, bias, grad, **kw)
    assert out.dtype == np.float32
    assert fgrads.kernel.dtype == np.float32
    # Rounding scaled by the output's size: OpenBLAS's kernels differ per CPU (on the AMD EPYC's Haswell kernel
    # a few small outputs, ~4e-4, differ by 4e-8 from the unfused GEMM's).
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(fgrads.kernel, grads.kernel, rtol=1e-4, atol=1e-4 * np.abs(grads.kernel).max())


def test_rejects_non_monotonic_activation() -> None:
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    with pytest.raises(ShapeError, match="activation 'gelu' is not monotonic"):
        ConvMaxPoolPlan((1, 6, 6, 1), (3, 3, 1, 2), geometry, (2, 2), get_activation("gelu"))


def test_backward_needs_a_training_forward() -> None:
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan((1, 6, 6, 1), (3, 3, 1, 2), geometry, (2, 2), get_activation("relu"))
    kernel = np.ones((3, 3, 1, 2))
    plan.forward(np.ones((1, 6, 6, 1)), kernel, None, training=False)
    with pytest.raises(ShapeError, match="backward called without a forward"):
        plan.backward(np.ones((1, 3, 3, 2)), kernel)


@pytest.mark.parametrize("pool", [(1, 1), (2, 2), (3, 2)])
def test_inference_forward_equals_training_forward(pool) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 9, 8, 3))
    kernel = rng.standard_normal((3, 3, 3, 4))
    bias = rng.standard_normal(4)
    geometry = WindowGeometry.resolve((9, 8), 3, 1, "same")
    plan = ConvMaxPoolPlan(x.shape, kernel.shape, geometry, pool, get_activation("relu"))
    inference = plan.forward(x, kernel, bias, training=False)
    training = plan.forward(x, kernel, bias, training=True)
    expected, _ = unfused(x, kernel, bias, None, strides=1, padding="same", dilation=1, pool=pool, activation="relu")
    np.testing.assert_allclose(inference, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(inference, training)
