"""Pooling ops: loop reference, torch oracle, finite differences, hypothesis, ties, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.errors import ConfigError, ShapeError, StateError
from convlens.geometry import WindowGeometry
from convlens.ops import pooling, pooling_plans
from tests.conftest import require
from tests.support import reference_pooling as ref

CASES = [
    # (x shape, pool_size, strides, padding)
    ((2, 6, 6, 3), (2, 2), None, "valid"),
    ((2, 7, 5, 2), (2, 2), None, "valid"),  # remainder rows/cols get no gradient
    ((2, 7, 5, 2), (2, 2), None, "same"),
    ((1, 7, 8, 2), (3, 3), (2, 2), "same"),  # overlapping, asymmetric padding
    ((1, 6, 7, 2), (3, 2), (1, 2), "valid"),  # overlapping rows only
    ((2, 5, 5, 1), (2, 3), (3, 1), "same"),
    ((1, 9, 9, 2), (2, 2), (3, 3), "valid"),  # stride > pool: gaps
    ((1, 4, 4, 2), (4, 4), (1, 1), "same"),
    ((2, 3, 3, 2), (1, 1), (2, 2), "valid"),
]


def distinct(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Distinct values at least 1/size apart, so no ties and max is smooth under small steps."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) / size - 0.5).astype(np.float64)


def run(kind: str, x: np.ndarray, pool, strides, padding, grad=None, **kw):
    fn = {
        "max": (pooling.max_pool2d, pooling.max_pool2d_backward),
        "avg": (pooling.avg_pool2d, pooling.avg_pool2d_backward),
    }[kind]
    args = {"pool_size": pool, "strides": strides, "padding": padding, **kw}
    if grad is None:
        return fn[0](x, **args)
    return fn[1](grad, x, **args)


# ----- 1. loop reference -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), CASES)
def test_matches_loop_reference(kind, shape, pool, strides, padding, rng):
    x = rng.standard_normal(shape)
    y = run(kind, x, pool, strides, padding)
    np.testing.assert_allclose(y, ref.pool2d(x, kind, pool, strides, padding), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(
        run(kind, x, pool, strides, padding, g),
        ref.pool2d_backward(g, x, kind, pool, strides, padding),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_reference_on_fixed_example(kind):
    # Facts worked by hand on a 3x3 input with 'same' 2x2 windows (pads (0, 1) per axis).
    x = np.array([[1.0, 5.0, 2.0], [4.0, 3.0, 9.0], [7.0, 0.0, 6.0]]).reshape(1, 3, 3, 1)
    y = run(kind, x, 2, None, "same")[0, :, :, 0]
    expected = [[5.0, 9.0], [7.0, 6.0]] if kind == "max" else [[13 / 4, 11 / 2], [7 / 2, 6.0]]
    np.testing.assert_allclose(y, expected)
    grad = run(kind, x, 2, None, "same", np.ones((1, 2, 2, 1)))[0, :, :, 0]
    if kind == "max":
        np.testing.assert_array_equal(grad, [[0, 1, 0], [0, 0, 1], [1, 0, 1]])
    else:
        np.testing.assert_allclose(grad, [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]])


# ----- 2. torch oracle ---------------------------------------------------------------------------------
def torch_pool(kind, x, pool, strides, padding):
    torch = require("torch")
    f = torch.nn.functional
    strides = strides or pool
    geometry = WindowGeometry.resolve(x.shape[1:3], pool, strides, padding)
    (pt, pb), (pl, pr) = geometry.pads
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(True)
    if kind == "max":
        padded = f.pad(xt, (pl, pr, pt, pb), value=-float("inf"))
        yt = f.max_pool2d(padded, pool, strides)
    else:
        sums = f.avg_pool2d(f.pad(xt, (pl, pr, pt, pb)), pool, strides, divisor_override=1)
        ones = f.pad(torch.ones_like(xt[:1, :1]), (pl, pr, pt, pb))
        yt = sums / f.avg_pool2d(ones, pool, strides, divisor_override=1)
    return xt, yt


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), CASES)
def test_matches_torch_float64(kind, shape, pool, strides, padding, rng):
    x = distinct(shape, rng)
    xt, yt = torch_pool(kind, x, pool, strides, padding)
    y = run(kind, x, pool, strides, padding)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(__import__("torch").from_numpy(np.ascontiguousarray(g.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(
        run(kind, x, pool, strides, padding, g),
        xt.grad.numpy().transpose(0, 2, 3, 1),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_matches_torch_float32_course_shape(kind, rng):
    torch = require("torch")
    x = rng.standard_normal((4, 28, 28, 32)).astype(np.float32)
    xt, yt = torch_pool(kind, x, (2, 2), None, "valid")
    y = run(kind, x, 2, None, "valid")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.from_numpy(np.ascontiguousarray(g.transpose(0, 3, 1, 2))))
    grad = run(kind, x, 2, None, "valid", g)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-6)


# ----- 3. finite differences ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), CASES[2:5])
def test_finite_differences(kind, shape, pool, strides, padding, rng):
    x = distinct(shape, rng)
    g = rng.standard_normal(run(kind, x, pool, strides, padding).shape)
    analytic = run(kind, x, pool, strides, padding, g)
    eps = 1e-3 / x.size  # far smaller than the gap between values: no max changes hands
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        up = np.sum(g * run(kind, x + step, pool, strides, padding))
        down = np.sum(g * run(kind, x - step, pool, strides, padding))
        numeric[index] = (up - down) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)


# ----- 4. hypothesis ------------------------------------------------------------------------------------
@st.composite
def pool_cases(draw):
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    low = pool if padding == "valid" else (1, 1)
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(low[0], 6)),
        draw(st.integers(low[1], 6)),
        draw(st.integers(1, 3)),
    )
    kind = draw(st.sampled_from(["max", "avg"]))
    return kind, shape, pool, strides, padding


@given(pool_cases(), st.integers(0, 2**31 - 1))
def test_hypothesis_against_reference(case, seed):
    kind, shape, pool, strides, padding = case
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(shape), 1)  # coarse values: ties happen and must follow the rule
    y = run(kind, x, pool, strides, padding)
    geometry = WindowGeometry.resolve(shape[1:3], pool, strides or pool, padding)
    assert y.shape == (shape[0], *geometry.output_size, shape[3])
    np.testing.assert_allclose(y, ref.pool2d(x, kind, pool, strides, padding), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    grad = run(kind, x, pool, strides, padding, g)
    np.testing.assert_allclose(grad, ref.pool2d_backward(g, x, kind, pool, strides, padding), rtol=1e-12, atol=1e-12)
    # Every window hands out exactly its gradient, whatever the overlap or padding.
    np.testing.assert_allclose(grad.sum(), g.sum(), rtol=1e-9, atol=1e-9)


# ----- ties ------------------------------------------------------------------------------------------
def test_max_gradient_goes_to_first_maximum_in_row_major_order():
    x = np.zeros((1, 4, 4, 1))
    # window (0, 0): all equal -> top-left; window (0, 1): max at (0, 3) and (1, 2) -> (0, 3) (row first);
    # window (1, 0): max at (2, 1) and (3, 0) -> (2, 1); window (1, 1): max at (3, 2) and (3, 3) -> (3, 2).
    x[0, 0, 3, 0] = x[0, 1, 2, 0] = 5.0
    x[0, 2, 1, 0] = x[0, 3, 0, 0] = 5.0
    x[0, 3, 2, 0] = x[0, 3, 3, 0] = 5.0
    grad = pooling.max_pool2d_backward(np.ones((1, 2, 2, 1)), x)[0, :, :, 0]
    expected = np.zeros((4, 4))
    expected[0, 0] = expected[0, 3] = expected[2, 1] = expected[3, 2] = 1.0
    np.testing.assert_array_equal(grad, expected)


def test_overlapping_windows_accumulate_on_a_shared_maximum():
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 1.0  # the centre is the max of all four 2x2 stride-1 windows
    grad = pooling.max_pool2d_backward(np.full((1, 2, 2, 1), 2.0), x, pool_size=2, strides=1)
    assert grad[0, 1, 1, 0] == 8.0
    assert np.count_nonzero(grad) == 1


def test_padding_never_wins_a_max():
    x = np.full((1, 3, 3, 1), -5.0)
    y = pooling.max_pool2d(x, pool_size=2, padding="same")
    np.testing.assert_array_equal(y, np.full((1, 2, 2, 1), -5.0))
    grad = pooling.max_pool2d_backward(np.ones_like(y), x, pool_size=2, padding="same")
    assert grad.sum() == 4.0


def test_same_average_leaves_padding_out_of_the_count():
    x = np.ones((1, 3, 3, 1))
    np.testing.assert_array_equal(pooling.avg_pool2d(x, pool_size=2, padding="same"), np.ones((1, 2, 2, 1)))


def test_global_max_gradient_goes_to_first_maximum():
    x = np.zeros((1, 2, 2, 1))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 3.0
    grad = pooling.global_max_pool2d_backward(np.ones((1, 1)), x)
    np.testing.assert_array_equal(grad[0, :, :, 0], [[0, 1], [0, 0]])


# ----- 1-D, channels_first, globals ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("pool", "strides", "padding"), [(2, None, "valid"), (3, 2, "same"), (2, 1, "same")])
def test_1d_matches_2d_reference_with_height_one(kind, pool, strides, padding, rng):
    x = rng.standard_normal((2, 7, 3))
    fwd = pooling.max_pool1d if kind == "max" else pooling.avg_pool1d
    bwd = pooling.max_pool1d_backward if kind == "max" else pooling.avg_pool1d_backward
    y = fwd(x, pool_size=pool, strides=strides, padding=padding)
    s2 = None if strides is None else (1, strides)
    expected = ref.pool2d(x[:, None], kind, (1, pool), s2, padding)[:, 0]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(
        bwd(g, x, pool_size=pool, strides=strides, padding=padding),
        ref.pool2d_backward(g[:, None], x[:, None], kind, (1, pool), s2, padding)[:, 0],
        rtol=1e-12,
    )


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_channels_first_is_a_transpose(kind, rng):
    x = rng.standard_normal((2, 7, 6, 3))
    y = run(kind, x, 3, 2, "same")
    x_cf = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y_cf = run(kind, x_cf, 3, 2, "same", data_format="channels_first")
    np.testing.assert_allclose(y_cf, y.transpose(0, 3, 1, 2), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    grad_cf = run(kind, x_cf, 3, 2, "same", np.ascontiguousarray(g.transpose(0, 3, 1, 2)), data_format="channels_first")
    np.testing.assert_allclose(grad_cf, run(kind, x, 3, 2, "same", g).transpose(0, 3, 1, 2), rtol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("rank", [1, 2])
def test_global_pooling_matches_reference(kind, rank, rng):
    shape = (2, 4, 3, 3) if rank == 2 else (2, 5, 3)
    x = np.round(rng.standard_normal(shape), 1)
    name = f"global_{kind}_pool{rank}d"
    fwd, bwd = getattr(pooling, name), getattr(pooling, name + "_backward")
    y = fwd(x)
    np.testing.assert_allclose(y, ref.global_pool(x, kind), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(bwd(g, x), ref.global_pool_backward(g, x, kind), rtol=1e-12)
    kept = fwd(x, keepdims=True)
    assert kept.shape == (2, *(1,) * rank, 3)
    np.testing.assert_allclose(bwd(g.reshape(kept.shape), x, keepdims=True), bwd(g, x), rtol=1e-12)
    x_cf = np.moveaxis(x, -1, 1)
    np.testing.assert_allclose(fwd(x_cf, data_format="channels_first"), y, rtol=1e-12)
    np.testing.assert_allclose(bwd(g, x_cf, data_format="channels_first"), np.moveaxis(bwd(g, x), -1, 1), rtol=1e-12)
    assert fwd(x_cf, keepdims=True, data_format="channels_first").shape == (2, 3, *(1,) * rank)


def test_dtypes_float32_kept_ints_become_float32():
    x = np.arange(32, dtype=np.float32).reshape(2, 4, 4, 1)
    for fn in (pooling.max_pool2d, pooling.avg_pool2d, pooling.global_max_pool2d, pooling.global_avg_pool2d):
        assert fn(x).dtype == np.float32
    assert pooling.max_pool2d(x.astype(np.int64)).dtype == np.float32
    assert pooling.max_pool2d_backward(np.ones((2, 2, 2, 1), np.float32), x).dtype == np.float32


# ----- plans --------------------------------------------------------------------------------------------
def test_plan_backward_needs_forward_and_recomputes_argmax(rng):
    x = rng.standard_normal((3, 6, 6, 2))
    plan = pooling.MaxPool2DPlan(x.shape, 2, owner="MaxPooling2D 'mp'")
    g = rng.standard_normal(plan.output_shape)
    with pytest.raises(StateError, match=r"MaxPooling2D 'mp': backward called before forward\."):
        plan.backward(g)
    y = plan.forward(x, keep_argmax=False)
    assert plan.argmax is None
    np.testing.assert_array_equal(y, pooling.max_pool2d(x))
    np.testing.assert_array_equal(plan.backward(g), pooling.max_pool2d_backward(g, x))


def test_plan_chunks_cover_the_batch_and_agree_with_one_chunk(rng, monkeypatch):
    x = rng.standard_normal((7, 6, 6, 3))
    whole = pooling.max_pool2d_backward(np.ones((7, 3, 3, 3)), x, pool_size=3, strides=2, padding="same")
    monkeypatch.setattr(pooling_plans, "_CHUNK_BYTES", 1)  # one image per chunk
    plan = pooling.MaxPool2DPlan(x.shape, 3, 2, "same")
    assert len(plan.chunks) == 7
    plan.forward(x)
    np.testing.assert_array_equal(plan.backward(np.ones((7, 3, 3, 3))), whole)


# ----- errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: pooling.max_pool2d(np.zeros((1, 4, 4, 1)), pool_size=(2, 0)),
            ConfigError,
            r"max_pool2d: `pool_size` must be positive integers, got \(2, 0\)\.",
        ),
        (
            lambda: pooling.avg_pool2d(np.zeros((1, 4, 4, 1)), strides=(1, 2, 3)),
            ConfigError,
            r"avg_pool2d: `strides` must be an integer or a tuple of 2 integers, got \(1, 2, 3\)\.",
        ),
        (
            lambda: pooling.max_pool2d(np.zeros((1, 4, 4, 1)), padding="full"),
            ConfigError,
            r"max_pool2d: `padding` must be one of 'valid', 'same', got 'full'\.",
        ),
        (
            lambda: pooling.max_pool1d(np.zeros((1, 4, 1)), padding="causal"),
            ConfigError,
            r"max_pool1d: `padding` must be one of 'valid', 'same', got 'causal'\.",
        ),
        (
            lambda: pooling.max_pool2d(np.zeros((1, 4, 4, 1)), data_format="nhwc"),
            ConfigError,
            r"max_pool2d: `data_format` must be one of 'channels_last', 'channels_first', got 'nhwc'\.",
        ),
        (
            lambda: pooling.max_pool2d(np.zeros((1, 3, 3, 1)), pool_size=4),
            ShapeError,
            r"max_pool2d: a 'valid'-padded 4x4 window does not fit the 3x3 input",
        ),
        (
            lambda: pooling.max_pool1d(np.zeros((1, 3, 1)), pool_size=4),
            ShapeError,
            r"max_pool1d: a 'valid'-padded 4 window does not fit the 3 input",
        ),
        (
            lambda: pooling.max_pool2d(np.zeros((4, 4, 1))),
            ShapeError,
            r"max_pool2d: `x` must be 4-D, got shape \(4, 4, 1\) \(3-D\)\.",
        ),
        (
            lambda: pooling.max_pool2d_backward(np.zeros((1, 3, 3, 1)), np.zeros((1, 4, 4, 1))),
            ShapeError,
            r"max_pool2d_backward: `grad_out` must have the output shape \(1, 2, 2, 1\), "
            r"got \(1, 3, 3, 1\)\.",
        ),
        (
            lambda: pooling.avg_pool1d_backward(np.zeros((1, 3, 1)), np.zeros((1, 4, 1))),
            ShapeError,
            r"avg_pool1d_backward: `grad_out` must have the output shape \(1, 2, 1\), got \(1, 3, 1\)\.",
        ),
        (
            lambda: pooling.global_max_pool2d_backward(np.zeros((1, 2)), np.zeros((1, 4, 4, 1))),
            ShapeError,
            r"global_max_pool2d_backward: `grad_out` must have the output shape \(1, 1\), got \(1, 2\)\.",
        ),
        (
            lambda: pooling.global_avg_pool1d(np.zeros((1, 4, 4, 1))),
            ShapeError,
            r"global_avg_pool1d: `x` must be 3-D, got shape \(1, 4, 4, 1\) \(4-D\)\.",
        ),
        (lambda: pooling.max_pool2d(np.array([["a"]])), TypeError, r"max_pool2d: `x` must hold numbers"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("algorithm", ["avg_pool_taps", "max_pool_taps"])
def test_numpy_pooling_chunks_split_over_threads_give_the_same_bits(
    algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convlens.ops.pooling_plans import AvgPool2DPlan, MaxPool2DPlan

    x = np.random.default_rng(0).standard_normal((64, 28, 28, 6)).astype(np.float32)  # 1.2 MB: several chunks
    make = AvgPool2DPlan if algorithm == "avg_pool_taps" else MaxPool2DPlan
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CONVLENS_NUM_THREADS", threads)
        plan = make(x.shape, (3, 3), (2, 2), "same", algorithm=algorithm)
        assert len(plan.chunks) > 1
        out = plan.forward(x)
        results[threads] = (out, plan.backward(np.ones_like(out)))
    for one, two in zip(results["1"], results["2"], strict=True):
        np.testing.assert_array_equal(one.view(np.uint32), two.view(np.uint32))
