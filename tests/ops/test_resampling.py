"""upsample2d, translate and layer normalisation ops: loop references, PyTorch 2.13 where it has the op, and
float64 finite differences for every backward pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens.errors import ConfigError
from convlens.ops.layer_normalization import layer_norm_backward, layer_norm_forward
from convlens.ops.translate import FILL_MODES, translate, translate_backward
from convlens.ops.upsampling import upsample2d, upsample2d_backward
from tests.support import reference_keras_layers as ref
from tests.support.reference_core import numeric_grad

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("size", [(2, 2), (3, 1), (1, 4)])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsample_matches_loops_and_torch(size: tuple[int, int], interpolation: str, rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 4, 2))
    y = upsample2d(x, size, interpolation)
    if interpolation == "bilinear":
        np.testing.assert_allclose(y, ref.upsample_bilinear(x, *size), rtol=1e-12, atol=1e-12)
    else:
        expected = np.array(
            [
                [[x[n, i // size[0], j // size[1]] for j in range(4 * size[1])] for i in range(3 * size[0])]
                for n in range(2)
            ]
        )
        np.testing.assert_array_equal(y, expected)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    kwargs = {"align_corners": False} if interpolation == "bilinear" else {}
    yt = torch.nn.functional.interpolate(xt, scale_factor=size, mode=interpolation, **kwargs)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(
        upsample2d_backward(g, size, interpolation), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        upsample2d_backward(g, size, interpolation),
        numeric_grad(lambda: float(np.sum(upsample2d(x, size, interpolation) * g)), x),
        rtol=1e-6,
        atol=1e-8,
    )


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_translate_matches_loops_and_is_adjoint(fill_mode: str, interpolation: str, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4, 5, 2))
    shifts = np.array([[1.3, -2.6], [-0.5, 0.5], [4.2, 7.5]])  # beyond the image too (fill modes)
    y = translate(x, shifts, interpolation, fill_mode, fill_value=0.7)
    for n, (dy, dx) in enumerate(shifts):
        np.testing.assert_allclose(
            y[n], ref.translate(x[n], dy, dx, interpolation, fill_mode, 0.7), rtol=1e-12, atol=1e-12
        )
    g = rng.standard_normal(y.shape)
    analytic = translate_backward(g, shifts, interpolation, fill_mode)
    numeric = numeric_grad(lambda: float(np.sum(translate(x, shifts, interpolation, fill_mode, 0.7) * g)), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_integer_shifts_move_pixels() -> None:
    x = np.arange(12.0).reshape(1, 3, 4, 1)
    y = translate(x, np.array([[1.0, 0.0]]), "bilinear", "constant")
    np.testing.assert_array_equal(y[0, 1:, :, 0], x[0, :2, :, 0])
    np.testing.assert_array_equal(y[0, 0, :, 0], 0.0)
    with pytest.raises(ConfigError, match=r"translate: `fill_mode` must be one of"):
        translate(x, np.zeros((1, 2)), fill_mode="edge")


@pytest.mark.parametrize("axes", [(1,), (1, 2), (2,), (1, 2, 3)])
def test_layer_norm_matches_torch_and_finite_differences(axes: tuple[int, ...], rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4, 5, 2)) * 3 + 1
    shape = tuple(x.shape[a] for a in axes)
    gamma, beta = rng.standard_normal(shape), rng.standard_normal(shape)
    y, cache = layer_norm_forward(x, gamma, beta, axes, 1e-3)
    moved = np.moveaxis(x, axes, range(-len(axes), 0))
    xt = torch.tensor(moved, requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    yt = torch.nn.functional.layer_norm(xt, shape, gt, bt, eps=1e-3)
    np.testing.assert_allclose(np.moveaxis(y, axes, range(-len(axes), 0)), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    if axes == (1, 2, 3):
        np.testing.assert_allclose(y, ref.layer_norm(x, gamma, beta, 1e-3), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    grad_x, grad_gamma, grad_beta = layer_norm_backward(g, cache)
    yt.backward(torch.tensor(np.moveaxis(g, axes, range(-len(axes), 0))))
    np.testing.assert_allclose(np.moveaxis(grad_x, axes, range(-len(axes), 0)), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grad_gamma, gt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grad_beta, bt.grad.numpy(), rtol=1e-9, atol=1e-11)

    def f() -> float:
        return float(np.sum(layer_norm_forward(x, gamma, beta, axes, 1e-3)[0] * g))

    np.testing.assert_allclose(grad_x, numeric_grad(f, x), rtol=1e-6, atol=1e-8)


def test_layer_norm_without_gamma_and_beta(rng: np.random.Generator) -> None:
    x: Any = rng.standard_normal((2, 6))
    y, cache = layer_norm_forward(x, None, None, (1,), 0.0)
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=1), 1.0, rtol=1e-12)
    grad_x, grad_gamma, _ = layer_norm_backward(np.ones_like(x), cache)
    assert grad_gamma is None
    np.testing.assert_allclose(grad_x, 0.0, atol=1e-12)  # the output's sum does not depend on x
