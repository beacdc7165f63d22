"""Every batch-norm algorithm on its own, forced, against the loop reference and PyTorch; the table; the fusion.

The compiled algorithm exists for the dtypes that get compiled kernels (float32 in the default tier; float64 too
under ``CONVLENS_JIT_DTYPES=float32,float64``, the ``float64_kernels`` tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError, StateError
from convlens.fusion import FusedBatchNormReLU
from convlens.ops.batch_norm_plans import BATCH_NORM_REGISTRY, BatchNormPlan
from convlens.ops.jit import compiled_for
from convlens.utils import set_random_seed
from tests.conftest import require
from tests.support import reference_core as ref
from tests.support.kernels import FLOAT64_KERNELS, compiled_kernels_on  # noqa: F401 (an autouse fixture)

ALGORITHMS = BATCH_NORM_REGISTRY.names()
require("numba")


def _inputs(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> list[np.ndarray]:
    channels = shape[-1]
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)  # off-centre: the variance must not cancel
    gamma = rng.uniform(0.5, 1.5, channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    mm = rng.standard_normal(channels).astype(dtype)
    mv = rng.uniform(0.5, 2.0, channels).astype(dtype)
    return [x, gamma, beta, mm, mv]


def _plan(algorithm: str, dtype: Any, relu: bool) -> BatchNormPlan:
    plan = BatchNormPlan(dtype, relu, algorithm=algorithm)
    assert plan.algorithm == algorithm
    return plan


# The compiled float64 kernels are tested where they are compiled (CI's float64_kernels pass).
CASES = [
    ("batch_norm_numpy", np.float32),
    ("batch_norm_numpy", np.float64),
    ("batch_norm_compiled", np.float32),
    pytest.param("batch_norm_compiled", np.float64, marks=pytest.mark.float64_kernels),
]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("algorithm", "dtype"), CASES)
def test_forced_algorithm_matches_loop_reference(
    algorithm: str, dtype: Any, training: bool, relu: bool, rng: np.random.Generator
) -> None:
    x, gamma, beta, mm, mv = _inputs(rng, (37, 5), dtype)
    mm0, mv0 = mm.copy(), mv.copy()
    y = _plan(algorithm, dtype, relu).forward(x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-3, training=training)
    if training:
        expected, means, variances = ref.batch_norm(x, gamma, beta)
        np.testing.assert_allclose(mm, 0.9 * mm0 + 0.1 * means, rtol=1e-6)
        np.testing.assert_allclose(mv, 0.9 * mv0 + 0.1 * variances, rtol=1e-6)
    else:
        expected, _, _ = ref.batch_norm(x, gamma, beta, mm0, mv0)
        np.testing.assert_array_equal(mm, mm0)
    if relu:
        expected = np.maximum(expected, 0)
    assert y.dtype == dtype
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize(("algorithm", "dtype"), CASES)
def test_forced_algorithm_matches_torch(
    algorithm: str, dtype: Any, relu: bool, rng: np.random.Generator, torch: Any
) -> None:
    x, gamma, beta, mm, mv = _inputs(rng, (6, 5, 7, 8), dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    rm, rv = torch.tensor(mm.copy()), torch.tensor(mv.copy())
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    yt = torch.nn.functional.batch_norm(xt.reshape(-1, 8), rm, rv, gt, bt, training=True, momentum=0.01, eps=1e-3)
    (torch.relu(yt) if relu else yt).backward(torch.tensor(g.reshape(-1, 8)))
    plan = _plan(algorithm, dtype, relu)
    y = plan.forward(x.reshape(-1, 8), gamma, beta, mm, mv, momentum=0.99, epsilon=1e-3, training=True)
    grads = plan.backward(g.reshape(-1, 8))
    expected = [(torch.relu(yt) if relu else yt).detach(), xt.grad.reshape(-1, 8), gt.grad, bt.grad, rm]
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for ours, theirs in zip([y, *grads, mm], expected, strict=True):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, FLOAT64_KERNELS])
def test_compiled_inference_gives_the_numpy_bits(dtype: Any, rng: np.random.Generator) -> None:
    x, gamma, beta, mm, mv = _inputs(rng, (300, 12), dtype)
    x[0, :3] = [np.inf, -np.inf, np.nan]
    for relu in (False, True):
        ours = _plan("batch_norm_compiled", dtype, relu).forward(
            x, gamma, beta, mm, mv, momentum=0.99, epsilon=1e-3, training=False
        )
        numpy = _plan("batch_norm_numpy", dtype, relu).forward(
            x, gamma, beta, mm, mv, momentum=0.99, epsilon=1e-3, training=False
        )
        np.testing.assert_array_equal(ours, numpy)


def test_compiled_statistics_do_not_depend_on_the_thread_count(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, gamma, beta, _, _ = _inputs(rng, (4000, 40), np.float32)  # above the size that splits over threads
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        mm, mv = np.zeros(40, np.float32), np.ones(40, np.float32)
        plan = _plan("batch_norm_compiled", np.float32, True)
        y = plan.forward(x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-3, training=True)
        results.append([y, *plan.backward(x - 5), mm, mv])
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_frozen_layer_passes_gradients_with_constant_statistics(
    algorithm: str, rng: np.random.Generator, torch: Any
) -> None:
    x, gamma, beta, mm, mv = _inputs(rng, (20, 4), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    plan = _plan(algorithm, np.float32, True)
    y = plan.forward(x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-3, training=False, keep=True)
    grad_x, grad_gamma, grad_beta = plan.backward(g)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    yt = torch.relu(torch.nn.functional.batch_norm(xt, torch.tensor(mm), torch.tensor(mv), gt, bt, eps=1e-3))
    yt.backward(torch.tensor(g))
    for ours, theirs in zip([y, grad_x, grad_gamma, grad_beta], [yt.detach(), xt.grad, gt.grad, bt.grad], strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_table_prefers_the_compiled_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = "batch_norm_compiled" if compiled_for(np.float32) else "batch_norm_numpy"
    plan = BatchNormPlan(np.float32)
    assert plan.algorithm == expected
    assert f"forward: {expected}" in str(plan.explain())
    monkeypatch.setenv("CONVLENS_JIT", "0")  # re-chosen when the switch flips
    assert plan.algorithm == "batch_norm_numpy"
    assert BatchNormPlan(np.float16).algorithm == "batch_norm_numpy"


def test_forcing_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"must force one algorithm for both roles .*got \{'forward': "):
        BatchNormPlan(np.float32, algorithm={"forward": "batch_norm_numpy"})
    with pytest.raises(ConfigError, match=r"batch_norm: algorithm='fast' must name a batch_norm algorithm"):
        BatchNormPlan(np.float32, algorithm="fast")
    monkeypatch.setenv("CONVLENS_JIT", "0")
    with pytest.raises(ConfigError, match=r"batch_norm_compiled needs compiled kernels for float32"):
        BatchNormPlan(np.float32, algorithm="batch_norm_compiled")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_backward_needs_a_kept_forward(algorithm: str, rng: np.random.Generator) -> None:
    x, gamma, beta, mm, mv = _inputs(rng, (5, 3), np.float32)
    plan = _plan(algorithm, np.float32, False)
    plan.forward(x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-3, training=False)
    with pytest.raises(StateError, match=r"batch_norm: backward called without a training forward first"):
        plan.backward(x)


# ----------------------------------------------------------------------------- BatchNormalization -> ReLU fused
def _models(activation: str, dtype: str) -> list[cl.Sequential]:
    relu = cl.layers.ReLU(dtype=dtype) if activation == "layer" else cl.layers.Activation("relu", dtype=dtype)
    models = []
    for fuse in (True, False):
        set_random_seed(0)
        layers = cl.layers
        model = cl.Sequential(
            [
                layers.Input((6, 6, 2)),
                layers.Conv2D(4, 3, padding="same", dtype=dtype),
                layers.BatchNormalization(dtype=dtype),
                relu if fuse else type(relu).from_config(relu.get_config() | {"name": "r"}),
                layers.Flatten(dtype=dtype),
                layers.Dense(3, activation="softmax", dtype=dtype),
            ]
        )
        model.fuse = fuse
        model.compile(cl.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        models.append(model)
    return models


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["layer", "activation"])
def test_fused_batch_norm_relu_equals_the_layers(activation: str, dtype: str, rng: np.random.Generator) -> None:
    from convlens.fusion import ConvBatchNorm

    fused, plain = _models(activation, dtype)
    stages = fused.stages()  # (the linear conv before it folds the pair in at inference)
    assert isinstance(stages[0], ConvBatchNorm)
    assert isinstance(stages[0].norm, FusedBatchNormReLU)
    assert not any(isinstance(s, FusedBatchNormReLU | ConvBatchNorm) for s in plain.stages())
    x = rng.standard_normal((8, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    for _ in range(3):
        assert fused.train_on_batch(x, y) == plain.train_on_batch(x, y)
    for a, b in zip(fused.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # moving statistics included
    tolerance = 1e-6 if dtype == "float32" else 1e-13  # (the folded batch norm: float rounding)
    np.testing.assert_allclose(fused.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=tolerance, atol=tolerance)
    bn_relu = stages[0].norm
    np.testing.assert_array_equal(  # the fused pair alone, at inference: the layers' bits
        bn_relu.forward(stages[0].conv.forward(x)),
        plain.layers[2].forward(plain.layers[1].forward(plain.layers[0].forward(x))),
    )


def test_relu_with_options_does_not_fuse() -> None:
    model = cl.Sequential(
        [cl.layers.Input((4,)), cl.layers.BatchNormalization(), cl.layers.ReLU(max_value=6.0), cl.layers.Dense(2)]
    )
    assert not any(isinstance(s, FusedBatchNormReLU) for s in model.stages())
