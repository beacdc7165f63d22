"""Optimizers against Keras 3's formulas (written out plainly below) and torch.optim."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens import optimizers
from convlens.errors import ConfigError, ShapeError
from convlens.optimizers import SGD, Adam, Optimizer, RMSprop
from tests.conftest import require

# ----- plain references of Keras 3's update rules (float64, one parameter, no in-place tricks) -----


def ref_sgd(p, grads, lrs, momentum=0.0, nesterov=False):
    m = np.zeros_like(p)
    for g, lr in zip(grads, lrs, strict=True):
        if momentum:
            m = momentum * m - lr * g
            p = p + (momentum * m - lr * g if nesterov else m)
        else:
            p = p - lr * g
    return p


def ref_adam(p, grads, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vhat = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        vhat = np.maximum(vhat, v)
        p = p - alpha * m / (np.sqrt(vhat if amsgrad else v) + epsilon)
    return p


def ref_rmsprop(p, grads, lr, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    v = np.zeros_like(p)
    mg = np.zeros_like(p)
    mom = np.zeros_like(p)
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        if centered:
            mg = rho * mg + (1 - rho) * g
            denom = v - mg * mg + epsilon
        else:
            denom = v + epsilon
        inc = lr * g / np.sqrt(denom)
        if momentum > 0:
            mom = momentum * mom + inc
            p = p - mom
        else:
            p = p - inc
    return p


def run(opt: Optimizer, p0: np.ndarray, grads: list[np.ndarray], lrs: list[float] | None = None) -> np.ndarray:
    p = p0.copy()
    for i, g in enumerate(grads):
        if lrs is not None:
            opt.learning_rate = lrs[i]
        opt.apply([p], [g])
    return p


def make(rng, shape=(3, 4), steps=5, dtype=np.float64):
    p0 = rng.normal(size=shape).astype(dtype)
    grads = [rng.normal(size=shape).astype(dtype) for _ in range(steps)]
    return p0, grads


def run_torch(torch_opt_cls, p0, grads, **kwargs):
    torch = require("torch")
    p = torch.tensor(p0.copy(), requires_grad=True)
    opt = torch_opt_cls([p], **kwargs)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy()


# ----- against the plain references ---------------------------------------------------------------


@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.5, True)])
def test_sgd_matches_keras_formula_with_changing_lr(rng, momentum, nesterov):
    p0, grads = make(rng)
    lrs = [0.1, 0.05, 0.2, 0.01, 0.3]
    got = run(SGD(momentum=momentum, nesterov=nesterov), p0, grads, lrs)
    np.testing.assert_allclose(got, ref_sgd(p0, grads, lrs, momentum, nesterov), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_keras_formula(rng, amsgrad):
    p0, grads = make(rng, steps=7)
    grads[3] *= 0.01  # a small gradient makes amsgrad's running max matter
    got = run(Adam(learning_rate=0.01, amsgrad=amsgrad), p0, grads)
    np.testing.assert_allclose(got, ref_adam(p0, grads, 0.01, amsgrad=amsgrad), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("momentum", "centered"), [(0.0, False), (0.9, False), (0.0, True), (0.5, True)])
def test_rmsprop_matches_keras_formula(rng, momentum, centered):
    p0, grads = make(rng)
    got = run(RMSprop(learning_rate=0.01, momentum=momentum, centered=centered), p0, grads)
    want = ref_rmsprop(p0, grads, 0.01, momentum=momentum, centered=centered)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_epsilon_is_keras_style_not_torch_style():
    # One Adam step with a tiny gradient: Keras divides by sqrt(v) + eps (with the lr-side bias
    # correction), so a large epsilon damps the step differently from torch's sqrt(v_hat) + eps.
    g = np.array([1e-3])
    got = run(Adam(learning_rate=1.0, epsilon=1e-3), np.zeros(1), [g])
    alpha = math.sqrt(1 - 0.999) / (1 - 0.9)
    m, v = 0.1 * g, 0.001 * g * g
    np.testing.assert_allclose(got, -alpha * m / (np.sqrt(v) + 1e-3), rtol=1e-12)
    torch_style = -(m / 0.1) / (np.sqrt(v / 0.001) + 1e-3)
    assert not np.allclose(got, torch_style, rtol=1e-3)


# ----- against torch.optim (where the formulations coincide) --------------------------------------


@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_torch(rng, momentum, nesterov):
    # Keras's m equals -lr * torch's momentum buffer when lr is constant, so the steps coincide.
    torch = require("torch")
    p0, grads = make(rng)
    got = run(SGD(learning_rate=0.1, momentum=momentum, nesterov=nesterov), p0, grads)
    want = run_torch(torch.optim.SGD, p0, grads, lr=0.1, momentum=momentum, nesterov=nesterov)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_torch_with_zero_epsilon(rng, amsgrad):
    # Keras's epsilon equals torch's eps * sqrt(1 - beta_2**t); they coincide exactly at eps = 0.
    torch = require("torch")
    p0, grads = make(rng, steps=6)
    got = run(Adam(learning_rate=0.01, epsilon=0.0, amsgrad=amsgrad), p0, grads)
    want = run_torch(torch.optim.Adam, p0, grads, lr=0.01, eps=0.0, amsgrad=amsgrad)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_adam_weight_decay_matches_torch_adamw(rng):
    torch = require("torch")
    p0, grads = make(rng)
    got = run(Adam(learning_rate=0.01, epsilon=0.0, weight_decay=0.1), p0, grads)
    want = run_torch(torch.optim.AdamW, p0, grads, lr=0.01, eps=0.0, weight_decay=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("momentum", "centered"), [(0.0, False), (0.9, False), (0.5, True)])
def test_rmsprop_matches_torch_with_zero_epsilon(rng, momentum, centered):
    # Keras puts epsilon inside the square root, torch outside; at eps = 0 they coincide.
    torch = require("torch")
    p0, grads = make(rng)
    got = run(RMSprop(learning_rate=0.01, momentum=momentum, epsilon=0.0, centered=centered), p0, grads)
    want = run_torch(torch.optim.RMSprop, p0, grads, lr=0.01, alpha=0.9, eps=0.0, momentum=momentum, centered=centered)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [
        (lambda: SGD(0.1, momentum=0.9), "SGD", {"lr": 0.1, "momentum": 0.9}),
        (lambda: Adam(0.01, epsilon=0.0), "Adam", {"lr": 0.01, "eps": 0.0}),
        (lambda: RMSprop(0.01, epsilon=0.0), "RMSprop", {"lr": 0.01, "eps": 0.0, "alpha": 0.9}),
    ],
)
def test_float32_matches_torch_and_stays_float32(rng, ours, theirs, kwargs):
    torch = require("torch")
    p0, grads = make(rng, dtype=np.float32)
    p = p0.copy()
    opt = ours()
    for g in grads:
        opt.apply([p], [g])
    assert p.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.get_state().values() if s.ndim)
    want = run_torch(getattr(torch.optim, theirs), p0, grads, **kwargs)
    np.testing.assert_allclose(p, want, rtol=1e-4, atol=1e-6)


# ----- mechanics ----------------------------------------------------------------------------------


def test_updates_in_place_several_params_and_counts_iterations(rng):
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(5,))
    a0, b0 = a.copy(), b.copy()
    ga, gb = rng.normal(size=(2, 3)), rng.normal(size=(5,))
    opt = Adam(0.01)
    ids = (id(a), id(b))
    opt.apply([a, b], [ga, gb])
    opt.apply([a, b], [ga, gb])
    assert (id(a), id(b)) == ids
    assert opt.iterations == 2
    np.testing.assert_allclose(a, ref_adam(a0, [ga, ga], 0.01), rtol=1e-12)
    np.testing.assert_allclose(b, ref_adam(b0, [gb, gb], 0.01), rtol=1e-12)


def test_centered_rmsprop_stays_finite_for_a_constant_gradient():
    # v - mg**2 is 0 in exact arithmetic here; float32 rounding must not turn it into NaN.
    p = np.zeros(64, np.float32)
    g = np.linspace(-3, 3, 64, dtype=np.float32)
    opt = RMSprop(centered=True)
    for _ in range(200):  # without the clamp, NaN appears after about 140 steps
        opt.apply([p], [g])
    assert np.isfinite(p).all()


def test_grads_are_not_modified_by_clipping(rng):
    g = rng.normal(size=(4,)) * 10
    g0 = g.copy()
    SGD(0.1, clipvalue=0.5).apply([np.zeros(4)], [g])
    np.testing.assert_array_equal(g, g0)


def test_clipping(rng):
    g1, g2 = np.array([3.0, 4.0]), np.array([0.0, 12.0])  # norms 5 and 12, global 13
    p = [np.zeros(2), np.zeros(2)]
    SGD(1.0, clipnorm=6.0).apply(p, [g1, g2])
    np.testing.assert_allclose(p[0], -g1)  # under the limit: untouched
    np.testing.assert_allclose(p[1], -g2 * 6 / 12)
    p = [np.zeros(2), np.zeros(2)]
    SGD(1.0, global_clipnorm=6.5).apply(p, [g1, g2])
    np.testing.assert_allclose(p[0], -g1 * 0.5)
    np.testing.assert_allclose(p[1], -g2 * 0.5)
    p = [np.zeros(2)]
    SGD(1.0, clipvalue=3.5).apply(p, [g1])
    np.testing.assert_allclose(p[0], [-3.0, -3.5])


def test_state_round_trip_continues_identically(rng):
    p0, grads = make(rng, steps=6)
    a = Adam(0.01, amsgrad=True)
    pa = p0.copy()
    for g in grads[:3]:
        a.apply([pa], [g])
    state = a.get_state()
    assert set(state) == {"iterations", "m_0", "v_0", "vhat_0"}
    assert int(state["iterations"]) == 3
    b = optimizers.get({"class_name": "Adam", "config": json.loads(json.dumps(a.get_config()))})
    b.set_state(state)
    pb = pa.copy()
    for g in grads[3:]:
        a.apply([pa], [g])
        b.apply([pb], [g])
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_allclose(pa, ref_adam(p0, grads, 0.01, amsgrad=True), rtol=1e-12)


def test_get_resolves_names_instances_and_configs():
    assert isinstance(optimizers.get("ADAM"), Adam)
    assert isinstance(optimizers.get("sgd"), SGD)
    assert isinstance(optimizers.get("RMSprop"), RMSprop)
    opt = SGD(0.3, momentum=0.5, nesterov=True)
    assert optimizers.get(opt) is opt
    clone = optimizers.get({"class_name": "SGD", "config": opt.get_config()})
    assert clone.get_config() == opt.get_config()
    assert (Adam().learning_rate, Adam().epsilon, SGD().learning_rate, RMSprop().rho) == (
        0.001,
        1e-7,
        0.01,
        0.9,
    )
    assert (SGD().name, Adam().name, RMSprop().name) == ("SGD", "adam", "rmsprop")


@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    lr=st.floats(1e-4, 0.5),
    beta_1=st.floats(0.0, 0.99),
    beta_2=st.floats(0.5, 0.9999),
    steps=st.integers(1, 4),
)
def test_adam_property_matches_reference(shape, lr, beta_1, beta_2, steps):
    rng = np.random.default_rng(len(shape) + steps)
    p0, grads = make(rng, shape=tuple(shape), steps=steps)
    got = run(Adam(lr, beta_1=beta_1, beta_2=beta_2), p0, grads)
    np.testing.assert_allclose(got, ref_adam(p0, grads, lr, beta_1, beta_2), rtol=1e-10, atol=1e-12)


# ----- bad input ----------------------------------------------------------------------------------


def test_errors():
    with pytest.raises(ConfigError, match=r"optimizers.get: unknown optimizer 'adagrad'; valid names are 'sgd'"):
        optimizers.get("adagrad")
    with pytest.raises(ConfigError, match=r"config dict must have a `class_name`"):
        optimizers.get({"class_name": "Nope", "config": {}})
    with pytest.raises(ConfigError, match=r"Adam 'adam': `learning_rate` must be >= 0.0, got -1.0"):
        Adam(-1.0)
    with pytest.raises(ConfigError, match=r"SGD 'SGD': `momentum` must be <= 1.0, got 2.0"):
        SGD(momentum=2.0)
    with pytest.raises(ConfigError, match=r"Adam 'adam': `beta_1` must be < 1.0, got 1.0"):
        Adam(beta_1=1.0)
    with pytest.raises(ConfigError, match=r"only one of `clipnorm`, `clipvalue` and `global_clipnorm`"):
        SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ConfigError, match=r"RMSprop 'rmsprop': `clipnorm` must be > 0, got 0.0"):
        RMSprop(clipnorm=0.0)
    opt = SGD(momentum=0.9)
    with pytest.raises(ShapeError, match=r"`params` and `grads` must have the same length, got 1 and 2"):
        opt.apply([np.zeros(2)], [np.zeros(2), np.zeros(2)])
    with pytest.raises(ShapeError, match=r"gradient 0 has shape \(3,\), expected its parameter's shape \(2,\)"):
        opt.apply([np.zeros(2)], [np.zeros(3)])
    opt.apply([np.zeros(2)], [np.zeros(2)])
    with pytest.raises(ShapeError, match=r"parameter 0 has shape \(4,\) but its optimizer state has shape \(2,\)"):
        opt.apply([np.zeros(4)], [np.zeros(4)])
    with pytest.raises(ConfigError, match=r"SGD 'SGD': unknown state key 'v_0'; expected 'iterations' or slots"):
        opt.set_state({"v_0": np.zeros(2)})
    opt.set_state({"m_0": np.zeros(3)})
    with pytest.raises(ShapeError, match=r"loaded state 'm_0' has shape \(3,\), but parameter 0 has shape \(2,\)"):
        opt.apply([np.zeros(2)], [np.zeros(2)])
