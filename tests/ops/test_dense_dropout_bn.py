"""Dense, dropout and batch-norm ops: loop references, torch oracle, finite differences, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.errors import ConfigError, ShapeError
from convlens.ops.dense import dense, dense_backward
from convlens.ops.dropout import dropout, dropout_backward
from convlens.ops.normalization import batch_norm_backward, batch_norm_forward
from tests.conftest import require
from tests.support import reference_core as ref

# ----- dense ---------------------------------------------------------------------------------------------


@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=3),
    st.integers(1, 5),
    st.integers(1, 4),
    st.booleans(),
)
def test_dense_matches_loop_reference(lead: list[int], depth: int, units: int, use_bias: bool) -> None:
    rng = np.random.default_rng(len(lead) * 100 + depth * 10 + units)
    x = rng.standard_normal((*lead, depth))
    kernel = rng.standard_normal((depth, units))
    bias = rng.standard_normal(units) if use_bias else None
    out = dense(x, kernel, bias)
    assert out.shape == (*lead, units)
    np.testing.assert_allclose(out, ref.dense(x, kernel, bias), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    grads = dense_backward(g, x, kernel)
    assert grads.x is not None
    assert grads.x.shape == x.shape
    assert grads.kernel.shape == kernel.shape
    assert grads.bias.shape == (units,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_matches_torch_linear(dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    x = rng.standard_normal((5, 2, 7)).astype(dtype)
    kernel = rng.standard_normal((7, 3)).astype(dtype)
    bias = rng.standard_normal(3).astype(dtype)
    g = rng.standard_normal((5, 2, 3)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(kernel.T.copy(), requires_grad=True)  # torch weight is (U, D)
    bt = torch.tensor(bias, requires_grad=True)
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(torch.tensor(g))
    out = dense(x, kernel, bias)
    grads = dense_backward(g, x, kernel)
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    assert out.dtype == dtype
    assert grads.kernel.dtype == dtype
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(grads.x, xt.grad.numpy(), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(grads.kernel, wt.grad.numpy().T, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(grads.bias, bt.grad.numpy(), rtol=rtol, atol=1e-6)


def test_dense_gradients_match_finite_differences(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4))
    kernel = rng.standard_normal((4, 2))
    bias = rng.standard_normal(2)
    w = rng.standard_normal((3, 2))
    grads = dense_backward(w, x, kernel)

    def f() -> float:
        return float(np.sum(dense(x, kernel, bias) * w))

    np.testing.assert_allclose(grads.x, ref.numeric_grad(f, x), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(grads.kernel, ref.numeric_grad(f, kernel), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(grads.bias, ref.numeric_grad(f, bias), rtol=1e-7, atol=1e-9)
    assert dense_backward(w, x, kernel, compute_grad_x=False).x is None


def test_dense_bad_shapes() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ShapeError, match=r"dense: the last axis of `x` must match the kernel's input size 4"):
        dense(x, np.zeros((4, 2), np.float32))
    with pytest.raises(ShapeError, match=r"dense: `kernel` must be 2-D, got shape \(3,\)"):
        dense(x, np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match=r"dense: `bias` must have shape \(2,\) \(one per unit\), got \(3,\)"):
        dense(x, np.zeros((3, 2), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match=r"dense_backward: `grad_out` must have shape \(2, 2\), got \(2, 3\)"):
        dense_backward(np.zeros((2, 3)), x, np.zeros((3, 2), np.float32))


# ----- dropout -------------------------------------------------------------------------------------------


def test_dropout_inverted_scaling_and_backward() -> None:
    x = np.ones((200, 50), np.float32)
    y, mask = dropout(x, 0.25, np.random.default_rng(0), training=True)
    assert mask is not None
    assert y.dtype == np.float32
    assert set(np.unique(y).tolist()) <= {0.0, np.float32(1 / 0.75)}
    # 10,000 Bernoulli(0.25) drops: the fraction is within 5 standard deviations (0.0043 each).
    assert abs(float(np.mean(y == 0)) - 0.25) < 0.022
    g = np.arange(x.size, dtype=np.float32).reshape(x.shape)
    np.testing.assert_allclose(dropout_backward(g, mask), np.where(y == 0, 0.0, g / 0.75), rtol=1e-6)


def test_dropout_is_identity_outside_training_and_at_rate_zero() -> None:
    x = np.ones((3, 4), np.float32)
    y, mask = dropout(x, 0.5, np.random.default_rng(0), training=False)
    assert y is x
    assert mask is None
    y0, mask0 = dropout(x, 0.0, np.random.default_rng(0), training=True)
    assert y0 is x
    assert mask0 is None
    assert dropout_backward(x, None) is x


def test_dropout_is_reproducible_with_a_seeded_generator() -> None:
    x = np.ones((4, 4))
    a, _ = dropout(x, 0.5, np.random.default_rng(7), training=True)
    b, _ = dropout(x, 0.5, np.random.default_rng(7), training=True)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ConfigError, match=r"dropout: `rate` must be"):
        dropout(np.ones(2), rate, np.random.default_rng(0), training=True)


# ----- batch norm ------------------------------------------------------------------------------------------


def _bn_inputs(rng: np.random.Generator, shape: tuple[int, ...], dtype: type = np.float64):  # type: ignore[no-untyped-def]
    channels = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    mm = rng.standard_normal(channels).astype(dtype)
    mv = rng.uniform(0.5, 2.0, channels).astype(dtype)
    return x, gamma, beta, mm, mv


@given(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.integers(1, 4), st.booleans())
def test_batch_norm_matches_loop_reference(lead: list[int], channels: int, training: bool) -> None:
    rng = np.random.default_rng(sum(lead) * 10 + channels)
    shape = (*lead, channels)
    if training and int(np.prod(lead)) == 1:
        shape = (2, *shape)
    x, gamma, beta, mm, mv = _bn_inputs(rng, shape)
    mm0, mv0 = mm.copy(), mv.copy()
    y, _ = batch_norm_forward(x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-3, training=training)
    if training:
        expected, means, variances = ref.batch_norm(x, gamma, beta)
        np.testing.assert_allclose(mm, 0.9 * mm0 + 0.1 * means, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(mv, 0.9 * mv0 + 0.1 * variances, rtol=1e-12, atol=1e-14)
    else:
        expected, _, _ = ref.batch_norm(x, gamma, beta, mm0, mv0)
        np.testing.assert_array_equal(mm, mm0)
        np.testing.assert_array_equal(mv, mv0)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_matches_torch(dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    x, gamma, beta, mm, mv = _bn_inputs(rng, (4, 3, 5, 6), dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    rm, rv = torch.tensor(mm.copy()), torch.tensor(mv.copy())
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    # torch is channels-first and its momentum is Keras's 1 - momentum.
    yt = torch.nn.functional.batch_norm(
        xt.permute(0, 3, 1, 2), rm, rv, gt, bt, training=True, momentum=0.01, eps=1e-3
    ).permute(0, 2, 3, 1)
    yt.backward(torch.tensor(g))
    y, cache = batch_norm_forward(x, gamma, beta, mm, mv, training=True)
    grad_x, grad_gamma, grad_beta = batch_norm_backward(g, cache)
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (1e-4, 1e-5)
    assert y.dtype == dtype
    assert grad_x.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad_gamma, gt.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad_beta, bt.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(mm, rm.numpy(), rtol=rtol, atol=atol)
    # Keras updates the moving variance with the biased batch variance, torch with the unbiased one.
    m = x.size // x.shape[-1]
    unbiased_var = x.reshape(-1, 6).astype(np.float64).var(axis=0, ddof=1)
    biased = unbiased_var * (m - 1) / m
    assert not np.allclose(mv, rv.numpy(), rtol=1e-7, atol=0)
    np.testing.assert_allclose(rv.numpy() - mv, 0.01 * (unbiased_var - biased), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("use_gamma", "use_beta"), [(True, True), (False, False)])
def test_batch_norm_gradients_match_finite_differences(
    training: bool, use_gamma: bool, use_beta: bool, rng: np.random.Generator
) -> None:
    x, gamma, beta, mm, mv = _bn_inputs(rng, (3, 2, 3))
    w = rng.standard_normal(x.shape)
    gamma_arg = gamma if use_gamma else None
    beta_arg = beta if use_beta else None

    def f() -> float:
        y, _ = batch_norm_forward(x, gamma_arg, beta_arg, mm.copy(), mv.copy(), training=training)
        return float(np.sum(y * w))

    _, cache = batch_norm_forward(x, gamma_arg, beta_arg, mm.copy(), mv.copy(), training=training)
    grad_x, grad_gamma, grad_beta = batch_norm_backward(w, cache)
    np.testing.assert_allclose(grad_x, ref.numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    if use_gamma:
        np.testing.assert_allclose(grad_gamma, ref.numeric_grad(f, gamma), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(grad_beta, ref.numeric_grad(f, beta), rtol=1e-6, atol=1e-8)


def test_batch_norm_bad_inputs() -> None:
    x = np.zeros((2, 3))
    ones, zeros = np.ones(3), np.zeros(3)
    with pytest.raises(ShapeError, match=r"batch_norm_forward: `gamma` must have shape \(3,\) .*got \(4,\)"):
        batch_norm_forward(x, np.ones(4), zeros, zeros.copy(), ones.copy(), training=True)
    with pytest.raises(ShapeError, match=r"`moving_variance` must have shape \(3,\)"):
        batch_norm_forward(x, ones, zeros, zeros.copy(), np.ones(2), training=True)
    with pytest.raises(ConfigError, match=r"batch_norm_forward: `momentum` must be <= 1.0, got 1.5"):
        batch_norm_forward(x, ones, zeros, zeros.copy(), ones.copy(), momentum=1.5, training=True)
    with pytest.raises(ShapeError, match=r"training needs at least one value per channel"):
        batch_norm_forward(np.zeros((0, 3)), ones, zeros, zeros.copy(), ones.copy(), training=True)
    _, cache = batch_norm_forward(x, ones, zeros, zeros.copy(), ones.copy(), training=True)
    with pytest.raises(ShapeError, match=r"batch_norm_backward: `grad_out` must have the input shape \(2, 3\)"):
        batch_norm_backward(np.zeros((3, 3)), cache)
