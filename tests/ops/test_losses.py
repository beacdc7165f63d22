"""Losses: loop references, torch oracle, finite differences, stability and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.errors import ConfigError, ShapeError
from convlens.ops import losses as loss_ops
from convlens.ops.activations import sigmoid, softmax
from tests.conftest import require
from tests.support import reference_core as ref


def _probs(rng: np.random.Generator, n: int = 6, k: int = 4, dtype: type = np.float64) -> np.ndarray:
    return softmax(rng.standard_normal((n, k)) * 2).astype(dtype)


def _onehot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[labels]


# ----- forward against the loop references -----------------------------------------------------------


def test_sparse_categorical_crossentropy_matches_reference(rng: np.random.Generator) -> None:
    probs = _probs(rng) * 3.0  # unnormalised: Keras renormalises
    labels = rng.integers(0, 4, 6)
    assert loss_ops.sparse_categorical_crossentropy(labels, probs) == pytest.approx(ref.sparse_cce(labels, probs))
    assert loss_ops.sparse_categorical_crossentropy(labels[:, None], probs) == pytest.approx(
        ref.sparse_cce(labels, probs)
    )


def test_categorical_crossentropy_matches_reference(rng: np.random.Generator) -> None:
    probs = _probs(rng)
    target = _probs(rng)  # soft labels
    assert loss_ops.categorical_crossentropy(target, probs) == pytest.approx(ref.cce(target, probs))


def test_clipping_at_1e7(rng: np.random.Generator) -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.array([1, 1])
    # Sample 0: p = 0 clipped to 1e-7; sample 1: p = 1 clipped to 1 - 1e-7.
    expected = (-np.log(1e-7) - np.log(1 - 1e-7)) / 2
    assert loss_ops.sparse_categorical_crossentropy(labels, probs) == pytest.approx(expected, rel=1e-12)
    assert loss_ops.binary_crossentropy(np.array([[1.0]]), np.array([[0.0]])) == pytest.approx(-np.log(1e-7))


def test_binary_crossentropy_and_mse_match_reference(rng: np.random.Generator) -> None:
    p = sigmoid(rng.standard_normal((5, 3)))
    t = rng.integers(0, 2, (5, 3)).astype(float)
    assert loss_ops.binary_crossentropy(t, p) == pytest.approx(ref.bce(t, p))
    assert loss_ops.mean_squared_error(t, p) == pytest.approx(ref.mse(t, p))
    # (N,) targets against (N, 1) predictions, as Keras.
    assert loss_ops.binary_crossentropy(t[:, 0], p[:, :1]) == pytest.approx(ref.bce(t[:, :1], p[:, :1]))
    assert loss_ops.mean_squared_error(t[:, 0], p[:, :1]) == pytest.approx(ref.mse(t[:, :1], p[:, :1]))


def test_fused_losses_match_reference(rng: np.random.Generator) -> None:
    logits = rng.standard_normal((6, 5)) * 4
    labels = rng.integers(0, 5, 6)
    loss, grad, probs = loss_ops.softmax_cross_entropy_with_logits(labels, logits)
    assert loss == pytest.approx(ref.softmax_ce_logits(labels, logits), rel=1e-12)
    np.testing.assert_allclose(grad, (ref.softmax_rows(logits) - _onehot(labels, 5)) / 6, atol=1e-15)
    np.testing.assert_allclose(probs, ref.softmax_rows(logits), rtol=1e-13)
    onehot_loss, onehot_grad, _ = loss_ops.softmax_cross_entropy_with_logits(_onehot(labels, 5), logits)
    assert onehot_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(onehot_grad, grad, atol=1e-15)
    t = rng.integers(0, 2, (6, 5)).astype(float)
    bl, bg, bp = loss_ops.sigmoid_cross_entropy_with_logits(t, logits)
    assert bl == pytest.approx(ref.bce_logits(t, logits), rel=1e-12)
    np.testing.assert_allclose(bg, (bp - t) / t.size, atol=1e-15)


# ----- torch oracle ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_softmax_matches_torch_cross_entropy(dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    logits = (rng.standard_normal((8, 10)) * 3).astype(dtype)
    labels = rng.integers(0, 10, 8)
    loss, grad, _ = loss_ops.softmax_cross_entropy_with_logits(labels, logits)
    zt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(labels))
    lt.backward()
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert grad.dtype == dtype
    assert loss == pytest.approx(lt.item(), rel=rtol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_sigmoid_matches_torch_bce_with_logits(dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    logits = (rng.standard_normal((8, 3)) * 3).astype(dtype)
    t = rng.integers(0, 2, (8, 3)).astype(dtype)
    loss, grad, _ = loss_ops.sigmoid_cross_entropy_with_logits(t, logits)
    zt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(t))
    lt.backward()
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert loss == pytest.approx(lt.item(), rel=rtol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_probability_losses_match_torch(dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    f = torch.nn.functional
    probs = _probs(rng, dtype=dtype)
    labels = rng.integers(0, 4, 6)
    t = rng.integers(0, 2, probs.shape).astype(dtype)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    cases = [
        (
            loss_ops.get_loss("sparse_categorical_crossentropy"),
            labels,
            lambda p: f.nll_loss(torch.log(p), torch.tensor(labels)),
        ),
        (loss_ops.get_loss("categorical_crossentropy"), _onehot(labels, 4).astype(dtype), None),
        (loss_ops.get_loss("binary_crossentropy"), t, lambda p: f.binary_cross_entropy(p, torch.tensor(t))),
        (loss_ops.get_loss("mse"), t, lambda p: f.mse_loss(p, torch.tensor(t))),
    ]
    cases[1] = (cases[1][0], cases[1][1], cases[0][2])  # one-hot of the same labels: the same loss
    for loss, target, oracle in cases:
        pt = torch.tensor(probs, requires_grad=True)
        lt = oracle(pt)
        lt.backward()
        assert loss.forward(target, probs) == pytest.approx(lt.item(), rel=rtol)
        grad = loss.backward(target, probs)
        assert grad.dtype == dtype
        if loss.fused_activation == "softmax":
            # Keras renormalises p; torch does not. Both agree after the softmax backward.
            to_logits = lambda g: probs * (g - np.sum(g * probs, axis=-1, keepdims=True))  # noqa: E731
            np.testing.assert_allclose(to_logits(grad), to_logits(pt.grad.numpy()), rtol=rtol, atol=1e-7)
        else:
            np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=rtol, atol=1e-7)


# ----- finite differences --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse"]
)
def test_backward_matches_finite_differences(name: str, rng: np.random.Generator) -> None:
    probs = rng.uniform(0.2, 0.8, (3, 4))  # unnormalised, well inside the clip range
    target = {
        "sparse_categorical_crossentropy": rng.integers(0, 4, 3),
        "categorical_crossentropy": _probs(rng, n=3, k=4),
        "binary_crossentropy": rng.integers(0, 2, (3, 4)).astype(float),
        "mse": rng.standard_normal((3, 4)),
    }[name]
    loss = loss_ops.get_loss(name)
    numeric = ref.numeric_grad(lambda: loss.forward(target, probs), probs)
    np.testing.assert_allclose(loss.backward(target, probs), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy"])
def test_from_logits_gradients_match_finite_differences(name: str, rng: np.random.Generator) -> None:
    logits = rng.standard_normal((3, 4)) * 2
    labels = rng.integers(0, 4, 3)
    target = labels if name.startswith("sparse") else _onehot(labels, 4)
    if name == "binary_crossentropy":
        target = rng.integers(0, 2, (3, 4)).astype(float)
    loss = loss_ops.get_loss(name, from_logits=True)
    assert loss.fused_activation is None
    assert loss.from_logits
    numeric = ref.numeric_grad(lambda: loss.forward(target, logits), logits)
    np.testing.assert_allclose(loss.backward(target, logits), numeric, rtol=1e-6, atol=1e-9)
    fused = loss_ops.get_loss(name).fused
    assert fused is not None
    np.testing.assert_allclose(fused(target, logits)[1], numeric, rtol=1e-6, atol=1e-9)


# ----- stability -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_losses_are_finite_for_huge_logits(dtype: type) -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype)
    loss, grad, probs = loss_ops.softmax_cross_entropy_with_logits(np.array([1, 1]), logits)
    # Sample 0 is confidently wrong by 1e4; sample 1 right.
    assert loss == pytest.approx(1e4, rel=1e-6)
    assert np.all(np.isfinite(grad))
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(grad[0], [0.5, -0.5, 0.0], atol=1e-7)
    bl, bg, _ = loss_ops.sigmoid_cross_entropy_with_logits(np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]], dtype), logits)
    assert np.isfinite(bl)
    assert np.all(np.isfinite(bg))
    assert bl == pytest.approx((1e4 + 1e4 + np.log(2) + 1e4 + 0 + 5 + np.log1p(np.exp(-5))) / 6, rel=1e-6)


# ----- registry and validation ------------------------------------------------------------------------------


def test_registry_names_aliases_and_fusion() -> None:
    assert loss_ops.get_loss("mse").name == "mean_squared_error"
    assert loss_ops.get_loss("MEAN_SQUARED_ERROR").fused_activation is None
    assert loss_ops.get_loss("sparse_categorical_crossentropy").fused_activation == "softmax"
    assert loss_ops.get_loss("categorical_crossentropy").fused_activation == "softmax"
    assert loss_ops.get_loss("binary_crossentropy").fused_activation == "sigmoid"
    loss = loss_ops.get_loss("mse")
    assert loss_ops.get_loss(loss) is loss
    with pytest.raises(ConfigError, match=r"unknown `loss` 'hinge'; choose one of 'sparse_categorical_crossentropy'"):
        loss_ops.get_loss("hinge")
    with pytest.raises(ConfigError, match=r"'mean_squared_error' takes no `from_logits`"):
        loss_ops.get_loss("mse", from_logits=True)


def test_bad_sparse_labels_name_the_value_and_k() -> None:
    probs = np.full((3, 4), 0.25)
    with pytest.raises(ConfigError, match=r"label 4 is out of range for 4 classes .*\[0, 4\)"):
        loss_ops.sparse_categorical_crossentropy(np.array([0, 4, 1]), probs)
    with pytest.raises(ConfigError, match=r"label -1 is out of range for 4 classes"):
        loss_ops.softmax_cross_entropy_with_logits(np.array([0, -1, 1]), probs)
    with pytest.raises(ConfigError, match=r"sparse labels must be integers, got 1.5"):
        loss_ops.sparse_categorical_crossentropy(np.array([0.0, 1.5, 1.0]), probs)
    with pytest.raises(TypeError, match=r"`y_true` must hold numbers, got dtype <U1"):
        loss_ops.sparse_categorical_crossentropy(np.array(["a", "b", "c"]), probs)
    with pytest.raises(ShapeError, match=r"sparse labels must have shape \(3,\) or \(3, 1\) .* got \(2,\)"):
        loss_ops.sparse_categorical_crossentropy(np.array([0, 1]), probs)
    # Integral floats are accepted, as Keras casts them.
    assert loss_ops.sparse_categorical_crossentropy(np.array([0.0, 1.0, 2.0]), probs) == pytest.approx(np.log(4))


def test_bad_dense_targets_raise_shape_errors() -> None:
    probs = np.full((3, 4), 0.25)
    with pytest.raises(
        ShapeError,
        match=r"categorical_crossentropy: `y_true` must have the shape .*\(3, 4\), got \(3,\)\. For integer",
    ):
        loss_ops.categorical_crossentropy(np.array([0, 1, 2]), probs)
    with pytest.raises(ShapeError, match=r"mean_squared_error: `y_true` must have the shape"):
        loss_ops.mean_squared_error(np.zeros((3, 3)), probs)
    with pytest.raises(ShapeError, match=r"`y_pred` must have a non-empty batch axis"):
        loss_ops.mean_squared_error(np.zeros((0, 3)), np.zeros((0, 3)))


@given(st.integers(1, 6), st.integers(2, 6), st.floats(0.1, 50.0))
def test_fused_softmax_gradient_properties(n: int, k: int, scale: float) -> None:
    rng = np.random.default_rng(n * 100 + k)
    logits = rng.standard_normal((n, k)) * scale
    labels = rng.integers(0, k, n)
    loss, grad, _ = loss_ops.softmax_cross_entropy_with_logits(labels, logits)
    assert loss >= 0
    # Each row of softmax - onehot sums to zero; the label entry is the only negative one.
    np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-12)
    assert np.all(grad[np.arange(n), labels] <= 0)
    assert loss == pytest.approx(ref.softmax_ce_logits(labels, logits), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_softmax_rows_take_the_general_paths_bits(dtype: type, rng: np.random.Generator) -> None:
    # (N, K) logits pick each row's label by plain indexing; (N, 1, K) go through take/put_along_axis: the same
    # values and gradient, bit for bit.
    logits = (rng.standard_normal((37, 7)) * 6).astype(dtype)
    labels = rng.integers(0, 7, 37)
    values, grad, probs = loss_ops._softmax_terms(labels, logits, "test")
    values3, grad3, probs3 = loss_ops._softmax_terms(labels[:, None], logits[:, None, :], "test")
    assert np.array_equal(values, values3[:, 0])
    assert np.array_equal(grad, grad3[:, 0, :])
    assert np.array_equal(probs, probs3[:, 0, :])
    assert np.allclose(grad.sum(axis=-1), 0.0, atol=1e-6)
