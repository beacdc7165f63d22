"""Max-pool algorithms: the compiled kernels give the same bits as the NumPy code (their twin), each
matches the loop reference and torch on its own, and the switch turns the kernels off."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convlens.errors import ConfigError, ShapeError
from convlens.ops import jit, pooling_jit, pooling_plans
from convlens.ops.pooling_plans import MAX_POOL_REGISTRY, MaxPool2DPlan
from tests.conftest import require
from tests.support import reference_pooling as ref
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)

require("numba")

SPECIALS = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan, "-0": -0.0}


def both_paths(monkeypatch, x, grad, pool, strides, padding, *, keep_argmax=True):
    """(out, argmax, grad_x, argmax after backward) from the compiled kernels, then from the NumPy code."""
    results = []
    for algorithm in ("max_pool_compiled", "max_pool_taps"):
        plan = MaxPool2DPlan(x.shape, pool, strides, padding, algorithm=algorithm)
        assert plan._choose(x.dtype)["forward"].name == algorithm
        out = plan.forward(x, keep_argmax=keep_argmax)
        argmax = None if plan.argmax is None else plan.argmax.copy()
        results.append((out, argmax, plan.backward(grad), plan.argmax.copy()))
    return results


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def assert_paths_agree(monkeypatch, x, grad, pool, strides, padding, **kw):
    (out, argmax, grad_x, argmax_after), (out_np, argmax_np, grad_np, argmax_np_after) = both_paths(
        monkeypatch, x, grad, pool, strides, padding, **kw
    )
    assert_same_bits(out, out_np)
    if argmax is not None:
        assert argmax.dtype == np.uint8
        np.testing.assert_array_equal(argmax, argmax_np)
    np.testing.assert_array_equal(argmax_after, argmax_np_after)
    assert_same_bits(grad_x, grad_np)
    return out, argmax_after, grad_x


@st.composite
def cases(draw, dtype=np.float32):
    shape, pool, strides, padding = ref.draw_geometry(draw, max_channels=4)
    # Small integers: many ties; zeros as after ReLU; specials where asked.
    pool_of_values = draw(
        st.sampled_from([[-1.0, 0.0, 1.0, 2.0], [0.0], [0.0, -0.0, 1.0], [-np.inf, 0.0, 1.0], [np.nan, 1.0, -np.inf]])
    )
    seed = draw(st.integers(0, 2**16))
    return shape, pool, strides, padding, dtype, pool_of_values, seed


@given(cases())
def test_jit_matches_numpy_bit_for_bit(case):
    check_bits(case)


@pytest.mark.float64_kernels
@given(cases(np.float64))
def test_jit_matches_numpy_bit_for_bit_float64(case):
    check_bits(case)


def check_bits(case):
    shape, pool, strides, padding, dtype, values, seed = case
    try:
        plan = MaxPool2DPlan(shape, pool, strides, padding)
    except (ConfigError, ShapeError):
        assume(False)
        return
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array(values, dtype), size=shape)
    grad = rng.choice(np.array([-1.5, -0.0, 0.5, 2.0, 3.25], dtype), size=plan.output_shape)
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert_paths_agree(monkeypatch, x, grad, pool, strides, padding)


@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), ref.PINNED_CASES)
@pytest.mark.parametrize("algorithm", MAX_POOL_REGISTRY.names())
def test_each_algorithm_matches_loop_reference(algorithm, shape, pool, strides, padding, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    plan = MaxPool2DPlan(shape, pool, strides, padding, algorithm=algorithm)
    assert plan.algorithms == (algorithm, algorithm)
    out = plan.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref.pool2d(x.astype(np.float64), "max", pool, strides, padding))
    g = rng.standard_normal(plan.output_shape).astype(np.float32)
    expected = ref.pool2d_backward(g.astype(np.float64), x.astype(np.float64), "max", pool, strides, padding)
    np.testing.assert_allclose(plan.backward(g), expected, rtol=1e-6, atol=1e-6)


def test_all_zero_windows_send_gradient_to_first_cell(monkeypatch):
    x = np.zeros((1, 4, 4, 1), np.float32)
    grad = np.ones((1, 2, 2, 1), np.float32)
    _, argmax, grad_x = assert_paths_agree(monkeypatch, x, grad, (3, 3), (1, 1), "valid")
    np.testing.assert_array_equal(argmax, 0)
    # Each window's top-left cell gets exactly its window's gradient.
    expected = np.zeros((4, 4), np.float32)
    expected[:2, :2] = 1.0
    np.testing.assert_array_equal(grad_x[0, :, :, 0], expected)


def test_signed_zero_ties_and_specials(monkeypatch):
    # Windows of 2x2: [-0, 0, 0, -0] ties; [-inf]*4; [1, nan, 2, 3]; [-inf, 0, nan, -inf].
    cells = [[-0.0, 0.0, 0.0, -0.0], [-np.inf] * 4, [1.0, np.nan, 2.0, 3.0], [-np.inf, 0.0, np.nan, -np.inf]]
    x = np.zeros((1, 2, 8, 1), np.float32)
    for w, (a, b, c, d) in enumerate(cells):
        x[0, :, 2 * w : 2 * w + 2, 0] = [[a, b], [c, d]]
    grad = np.array([1.0, -2.0, 3.0, np.inf], np.float32).reshape(1, 1, 4, 1)
    with np.errstate(invalid="ignore"):  # NumPy's inf * 0
        out, argmax, grad_x = assert_paths_agree(monkeypatch, x, grad, (2, 2), None, "valid")
    assert np.signbit(out[0, 0, 0, 0])  # np.maximum keeps the later of equal zeros
    assert out[0, 0, 1, 0] == -np.inf
    assert np.isnan(out[0, 0, 2:, 0]).all()
    np.testing.assert_array_equal(argmax[0, 0, :, 0], [0, 0, 3, 3])
    # inf * 0 leaks into the losers, as in NumPy; the winner (offset 3) gets inf.
    np.testing.assert_array_equal(grad_x[0, :, 6:, 0], [[np.nan, np.nan], [np.nan, np.inf]])


def test_inference_path_and_same_padding_with_inf(monkeypatch, rng):
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    x[0, 0, :2] = -np.inf  # a window whose only real cells are -inf ties with padding
    grad = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    assert_paths_agree(monkeypatch, x, grad, (3, 3), (2, 2), "same", keep_argmax=False)
    assert_paths_agree(monkeypatch, x, grad, (2, 2), None, "same")


def test_noncontiguous_input_and_float64_grad(monkeypatch, rng):
    x = rng.standard_normal((3, 6, 6, 4)).astype(np.float32)[:, :, :, ::2]
    grad = rng.standard_normal((3, 3, 3, 2))
    (out, _, grad_x, _), (out_np, _, grad_np, _) = both_paths(monkeypatch, x, grad, (2, 2), None, "valid")
    assert out.dtype == grad_x.dtype == np.float32
    assert_same_bits(out, out_np)
    assert_same_bits(grad_x, grad_np)


@pytest.mark.parametrize("algorithm", MAX_POOL_REGISTRY.names())
def test_returned_arrays_are_fresh(algorithm, rng):
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    plan = MaxPool2DPlan(x.shape, (2, 2), algorithm=algorithm)
    grad = np.ones(plan.output_shape, np.float32)
    out1, grad1 = plan.forward(x), plan.backward(grad)
    out2, grad2 = plan.forward(x + 1), plan.backward(2 * grad)
    assert not np.shares_memory(out1, out2)
    assert not np.shares_memory(grad1, grad2)
    np.testing.assert_array_equal(out2, out1 + 1)
    np.testing.assert_array_equal(grad2, 2 * grad1)


def _boom(*args, **kwargs):
    raise AssertionError("JIT kernel called")


def test_env_switch_takes_the_numpy_path(monkeypatch, rng):
    monkeypatch.setattr(pooling_plans, "max_pool2d_forward_jit", _boom)
    monkeypatch.setattr(pooling_plans, "max_pool2d_backward_jit", _boom)
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    plan = MaxPool2DPlan(x.shape, (2, 2))
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert not jit.jit_enabled()
    plan.forward(x)
    plan.backward(np.ones(plan.output_shape, np.float32))
    monkeypatch.setenv("CONVLENS_JIT", "1")
    assert jit.jit_enabled()
    assert plan.algorithms == ("max_pool_compiled", "max_pool_compiled")
    with pytest.raises(AssertionError, match="JIT kernel called"):
        plan.forward(x)
    # Other dtypes always take the NumPy path.
    MaxPool2DPlan(x.shape, (2, 2)).forward(x.astype(np.float16))
    assert "needs compiled kernels for float16" in str(plan.explain(np.float16))


def test_forcing_the_compiled_kernels_where_they_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "0")
    with pytest.raises(
        ConfigError,
        match=r"pool2d: algorithm='max_pool_compiled' cannot run here: max_pool_compiled needs compiled kernels "
        r"for float32 \(numba installed, CONVLENS_JIT not 0, the dtype in CONVLENS_JIT_DTYPES\)\.",
    ):
        MaxPool2DPlan((1, 4, 4, 1), (2, 2), algorithm="max_pool_compiled")


def test_missing_numba_disables_jit(monkeypatch):
    def fail(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(jit, "_numba", None)
    monkeypatch.setattr(jit, "_import_failed", False)
    monkeypatch.setattr(jit.importlib, "import_module", fail)
    monkeypatch.setenv("CONVLENS_JIT", "1")
    assert not jit.jit_enabled()
    with pytest.raises(ImportError, match="numba cannot be imported"):
        jit.numba_module()


@pytest.mark.parametrize("algorithm", MAX_POOL_REGISTRY.names())
def test_each_algorithm_matches_torch_float32(algorithm: str, rng: Any, torch: Any) -> None:
    x = rng.standard_normal((4, 9, 9, 5)).astype(np.float32)
    plan = MaxPool2DPlan(x.shape, (3, 3), (2, 2), "valid", algorithm=algorithm)
    grad = rng.standard_normal(plan.output_shape).astype(np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    yt = torch.nn.functional.max_pool2d(xt, 3, 2)
    yt.backward(torch.from_numpy(grad.transpose(0, 3, 1, 2).copy()))
    out = plan.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4)
    np.testing.assert_allclose(plan.backward(grad), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-6)


def test_kernels_compile_once():
    assert pooling_jit._kernels() is pooling_jit._kernels()
