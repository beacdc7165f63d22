"""Average-pool algorithms: the compiled kernels give the same bits as the NumPy code (their twin), each
matches the loop reference and torch on its own, and the switch turns the kernels off."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convlens.errors import ConfigError, ShapeError
from convlens.ops import jit, pooling_plans
from convlens.ops.pooling_plans import AVG_POOL_REGISTRY, AvgPool2DPlan
from tests.conftest import require
from tests.ops.test_pooling_jit import assert_same_bits
from tests.support import reference_pooling as ref
from tests.support.kernels import compiled_kernels_on  # noqa: F401 (an autouse fixture)

require("numba")


def both_paths(x: np.ndarray, grad: np.ndarray, pool: Any, strides: Any, padding: str) -> list[tuple[Any, Any]]:
    """[(out, grad_x) of the compiled kernels, (out, grad_x) of the NumPy code]."""
    results = []
    for algorithm in ("avg_pool_compiled", "avg_pool_taps"):
        plan = AvgPool2DPlan(x.shape, pool, strides, padding, algorithm=algorithm)
        assert plan.algorithms == (algorithm, algorithm)
        results.append((plan.forward(x), plan.backward(grad)))
    return results


def assert_paths_agree(x: np.ndarray, grad: np.ndarray, pool: Any, strides: Any, padding: str) -> None:
    (out, grad_x), (out_np, grad_np) = both_paths(x, grad, pool, strides, padding)
    assert_same_bits(out, out_np)
    assert_same_bits(grad_x, grad_np)


@st.composite
def cases(draw: Any, dtype: Any = np.float32) -> tuple[Any, ...]:
    shape, pool, strides, padding = ref.draw_geometry(draw, max_channels=7)
    # Signed zeros (a padded cell adds +0.0), values whose sums round, specials.
    values = draw(
        st.sampled_from(
            [[-0.0, 0.0], [0.1, -0.7, 1e-3, 3.3], [1.0, 2.0**24, -(2.0**24)], [np.inf, -np.inf, 1.0], [np.nan, 0.5]]
        )
    )
    seed = draw(st.integers(0, 2**16))
    return shape, pool, strides, padding, dtype, values, seed


def check_bits(case: tuple[Any, ...]) -> None:
    shape, pool, strides, padding, dtype, values, seed = case
    try:
        plan = AvgPool2DPlan(shape, pool, strides, padding)
    except (ConfigError, ShapeError):
        assume(False)
        return
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array(values, dtype), size=shape)
    grad = rng.choice(np.array([-1.5, -0.0, 0.1, 2.0, 3.25], dtype), size=plan.output_shape)
    with np.errstate(invalid="ignore"):  # inf - inf
        assert_paths_agree(x, grad, pool, strides, padding)


@given(cases())
def test_jit_matches_numpy_bit_for_bit(case: tuple[Any, ...]) -> None:
    check_bits(case)


@pytest.mark.float64_kernels
@given(cases(np.float64))
def test_jit_matches_numpy_bit_for_bit_float64(case: tuple[Any, ...]) -> None:
    check_bits(case)


def test_signed_zeros_and_padding() -> None:
    # A window of -0.0 cells sums to -0.0; with a padded cell (+0.0) in it, to +0.0, in both paths.
    x = np.full((1, 3, 3, 2), -0.0, np.float32)
    grad = np.full((1, 2, 2, 2), -0.0, np.float32)
    assert_paths_agree(x, grad, (2, 2), None, "same")
    out = AvgPool2DPlan(x.shape, (2, 2), padding="same").forward(x)
    assert np.signbit(out[0, 0, 0]).all()  # four real -0.0 cells
    assert not np.signbit(out[0, 1, 1]).any()  # one real cell, three padded


@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), ref.PINNED_CASES)
@pytest.mark.parametrize("algorithm", AVG_POOL_REGISTRY.names())
def test_each_algorithm_matches_loop_reference(
    algorithm: str, shape: Any, pool: Any, strides: Any, padding: str, rng: Any
) -> None:
    x = rng.standard_normal(shape).astype(np.float32)
    plan = AvgPool2DPlan(shape, pool, strides, padding, algorithm=algorithm)
    assert plan.algorithms == (algorithm, algorithm)
    out = plan.forward(x)
    assert out.dtype == np.float32
    expected = ref.pool2d(x.astype(np.float64), "avg", pool, strides, padding)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(plan.output_shape).astype(np.float32)
    expected = ref.pool2d_backward(g.astype(np.float64), x.astype(np.float64), "avg", pool, strides, padding)
    np.testing.assert_allclose(plan.backward(g), expected, rtol=1e-6, atol=1e-6)


def test_noncontiguous_input_and_float64_grad(rng: Any) -> None:
    x = rng.standard_normal((3, 6, 6, 4)).astype(np.float32)[:, :, :, ::2]
    grad = rng.standard_normal((3, 3, 3, 2))
    (out, grad_x), (out_np, grad_np) = both_paths(x, grad, (2, 2), None, "valid")
    assert out.dtype == grad_x.dtype == np.float32
    assert_same_bits(out, out_np)
    assert_same_bits(grad_x, grad_np)


@pytest.mark.parametrize("algorithm", AVG_POOL_REGISTRY.names())
def test_returned_arrays_are_fresh(algorithm: str, rng: Any) -> None:
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    plan = AvgPool2DPlan(x.shape, (2, 2), algorithm=algorithm)
    grad = np.ones(plan.output_shape, np.float32)
    out1, grad1 = plan.forward(x), plan.backward(grad)
    out2, grad2 = plan.forward(x + 1), plan.backward(2 * grad)
    assert not np.shares_memory(out1, out2)
    assert not np.shares_memory(grad1, grad2)
    np.testing.assert_allclose(out2, out1 + 1, rtol=1e-6)
    np.testing.assert_array_equal(grad2, 2 * grad1)


def _boom(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("JIT kernel called")


def test_env_switch_takes_the_numpy_path(monkeypatch: pytest.MonkeyPatch, rng: Any) -> None:
    monkeypatch.setattr(pooling_plans, "avg_pool2d_forward_jit", _boom)
    monkeypatch.setattr(pooling_plans, "avg_pool2d_backward_jit", _boom)
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    plan = AvgPool2DPlan(x.shape, (2, 2))
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert not jit.jit_enabled()
    assert plan.algorithms == ("avg_pool_taps", "avg_pool_taps")
    plan.forward(x)
    plan.backward(np.ones(plan.output_shape, np.float32))
    monkeypatch.setenv("CONVLENS_JIT", "1")
    assert plan.algorithms == ("avg_pool_compiled", "avg_pool_compiled")
    with pytest.raises(AssertionError, match="JIT kernel called"):
        plan.forward(x)
    # Other dtypes take the NumPy path.
    AvgPool2DPlan(x.shape, (2, 2)).forward(x.astype(np.float16))
    assert "needs compiled kernels for float16" in str(plan.explain(np.float16))


def test_forcing_the_compiled_kernels_where_they_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "0")
    with pytest.raises(ConfigError, match=r"pool2d: algorithm='avg_pool_compiled' cannot run here"):
        AvgPool2DPlan((1, 4, 4, 1), (2, 2), algorithm="avg_pool_compiled")


@pytest.mark.parametrize("algorithm", AVG_POOL_REGISTRY.names())
def test_each_algorithm_matches_torch_float32(algorithm: str, rng: Any, torch: Any) -> None:
    x = rng.standard_normal((4, 9, 9, 5)).astype(np.float32)
    plan = AvgPool2DPlan(x.shape, (3, 3), (2, 2), "valid", algorithm=algorithm)
    grad = rng.standard_normal(plan.output_shape).astype(np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    yt = torch.nn.functional.avg_pool2d(xt, 3, 2)
    yt.backward(torch.from_numpy(grad.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(plan.forward(x), yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plan.backward(grad), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
