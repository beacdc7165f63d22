"""The compiled Adam update: the NumPy update's bits, and the NumPy update wherever it does not run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.ops import adam_jit
from convlens.optimizers import Adam, AdamW
from tests.conftest import require


def _train(optimizer: Adam, params: list[np.ndarray], grads: list[list[np.ndarray]]) -> list[np.ndarray]:
    for step in grads:
        optimizer.apply(params, step)
    return [*params, *(slot for slots in optimizer._slots for slot in slots.values())]


def _both(make: type[Adam], dtype: type, shapes: list[tuple[int, ...]], steps: int, seed: int, **kwargs: float) -> None:
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [
        [(rng.standard_normal(s) * 10.0 ** rng.integers(-8, 4)).astype(dtype) for s in shapes] for _ in range(steps)
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVLENS_JIT", "0")  # (the NumPy update)
        with np.errstate(all="ignore"):  # (epsilon 0 and a gradient whose square underflows: 0 / 0, in both)
            expected = _train(make(**kwargs), [p.copy() for p in start], grads)
    calls = []
    kernel_update = adam_jit.adam_update_jit

    def counted(*args: object) -> bool:
        ran = kernel_update(*args)  # type: ignore[arg-type]
        calls.append(ran)
        return ran

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVLENS_JIT", "1")
        mp.setenv("CONVLENS_JIT_DTYPES", "float32,float64")
        mp.setattr("convlens.optimizers.rules.adam_update_jit", counted)
        got = _train(make(**kwargs), [p.copy() for p in start], grads)
    assert calls
    assert all(calls)  # (the kernel ran every update)
    for a, b in zip(expected, got, strict=True):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [Adam, AdamW])
def test_the_kernel_gives_the_numpy_updates_bits(dtype: type, make: type[Adam]) -> None:
    require("numba")
    _both(make, dtype, [(3, 3, 2, 4), (4,), (120, 84), (1,)], steps=6, seed=0, learning_rate=0.01)


@settings(max_examples=20, deadline=None)
@given(
    size=st.integers(1, 300),
    steps=st.integers(1, 4),
    lr=st.floats(1e-5, 1.0),
    beta_1=st.floats(0.0, 0.99),
    beta_2=st.floats(0.0, 0.9999),
    epsilon=st.sampled_from([0.0, 1e-7, 1e-3]),
    seed=st.integers(0, 2**16),
)
def test_the_kernel_gives_the_numpy_updates_bits_for_any_settings(
    size: int, steps: int, lr: float, beta_1: float, beta_2: float, epsilon: float, seed: int
) -> None:
    require("numba")
    kwargs = {"learning_rate": lr, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}
    _both(Adam, np.float32, [(size,)], steps=steps, seed=seed, **kwargs)


def test_the_numpy_update_runs_where_the_kernel_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    require("numba")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    p = np.ones((4, 6), np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    cases = {
        "non-contiguous grad": (p, np.ones((6, 4), np.float32).T, m, v),
        "mixed dtypes": (p, np.ones((4, 6), np.float64), m, v),
        "grad in its parameter's memory": (p, p, m, v),
        "other shapes": (p, np.ones(24, np.float32), m, v),
    }
    for why, arrays in cases.items():
        before = [a.copy() for a in arrays]
        assert not adam_jit.adam_update_jit(*arrays, 0.1, 0.001, 1e-7, 0.01), why
        assert all(np.array_equal(a, b) for a, b in zip(arrays, before, strict=True)), why
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert not adam_jit.adam_update_jit(p, np.ones_like(p), m, v, 0.1, 0.001, 1e-7, 0.01)
    # and the optimizer still updates through NumPy, as before: amsgrad and a transposed gradient
    for optimizer, grad in ((Adam(amsgrad=True), np.ones_like(p)), (Adam(), np.ones((6, 4), np.float32).T)):
        q = p.copy()
        optimizer.apply([q], [grad])
        assert np.all(q < 1.0)
