"""Fused Conv2D -> MaxPooling2D stages must change speed, never results.

Every test builds two models with identical initial weights, one with ``fuse = True`` and one with
``fuse = False``, and compares forward outputs, losses and the weights after a few SGD steps (which
compares every gradient: with SGD, ``w1 = w0 - lr * grad``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlens as cl
from convlens.fusion import FusedConvMaxPool, plan_stages
from convlens.utils import set_random_seed

L = cl.layers

LayerMaker = Callable[[str], list[Any]]

VARIANTS: dict[str, tuple[tuple[int, int, int], LayerMaker]] = {
    "course": (
        (10, 10, 1),
        lambda dt: [L.Conv2D(8, 3, padding="same", activation="relu", dtype=dt), L.MaxPooling2D(2, dtype=dt)],
    ),
    "stride2_same": (
        (9, 9, 2),
        lambda dt: [
            L.Conv2D(4, 3, strides=2, padding="same", activation="relu", dtype=dt),
            L.MaxPooling2D(2, dtype=dt),
        ],
    ),
    # 'valid' conv: 10x9 -> 9x8, the pool drops the last row.
    "valid_odd_remainder": (
        (10, 9, 1),
        lambda dt: [L.Conv2D(4, (2, 2), padding="valid", activation="relu", dtype=dt), L.MaxPooling2D(2, dtype=dt)],
    ),
    # 10x11 -> pool 3x3 drops one row and two columns.
    "pool3_linear": (
        (10, 11, 2),
        lambda dt: [L.Conv2D(4, 3, padding="same", activation="linear", dtype=dt), L.MaxPooling2D(3, dtype=dt)],
    ),
    "tanh": (
        (8, 8, 1),
        lambda dt: [L.Conv2D(3, 3, padding="same", activation="tanh", dtype=dt), L.MaxPooling2D(2, dtype=dt)],
    ),
    "sigmoid": (
        (8, 8, 1),
        lambda dt: [L.Conv2D(3, 3, padding="same", activation="sigmoid", dtype=dt), L.MaxPooling2D(2, dtype=dt)],
    ),
    "leaky_relu_int_padding": (
        (8, 8, 1),
        lambda dt: [L.Conv2D(3, 3, padding=1, activation="leaky_relu", dtype=dt), L.MaxPooling2D(2, dtype=dt)],
    ),
    # The fused stage is second: it must return grad_x for the first conv.
    "second_conv": (
        (8, 8, 1),
        lambda dt: [
            L.Conv2D(3, 3, padding="same", activation="relu", dtype=dt),
            L.Conv2D(4, 3, padding="same", activation="relu", dtype=dt),
            L.MaxPooling2D(2, dtype=dt),
        ],
    ),
    # Two fused stages in a row.
    "two_stages": (
        (12, 12, 1),
        lambda dt: [
            L.Conv2D(3, 3, padding="same", activation="relu", dtype=dt),
            L.MaxPooling2D(2, dtype=dt),
            L.Conv2D(4, 3, padding="same", activation="tanh", dtype=dt),
            L.MaxPooling2D(2, dtype=dt),
        ],
    ),
    # channels >= 8 takes the window-view im2col branch.
    "channels8": (
        (8, 8, 8),
        lambda dt: [L.Conv2D(4, 3, padding="same", activation="relu", dtype=dt), L.MaxPooling2D(2, dtype=dt)],
    ),
    "channels8_valid_dilated": (
        (11, 11, 8),
        lambda dt: [
            L.Conv2D(4, 3, dilation_rate=2, padding="valid", activation="relu", dtype=dt),
            L.MaxPooling2D(2, dtype=dt),
        ],
    ),
}


def _pair(shape: tuple[int, int, int], make: LayerMaker, dtype: str, lr: float = 0.1) -> list[cl.Sequential]:
    """Two models with identical weights: fused first, unfused second."""
    models = []
    for fuse in (True, False):
        set_random_seed(0)
        model = cl.Sequential(
            [L.Input(shape), *make(dtype), L.Flatten(dtype=dtype), L.Dense(3, activation="softmax", dtype=dtype)]
        )
        model.fuse = fuse
        model.compile(cl.optimizers.SGD(lr), "sparse_categorical_crossentropy", ["accuracy"])
        models.append(model)
    for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    return models


def _n_fused(model: cl.Sequential) -> int:
    return sum(isinstance(stage, FusedConvMaxPool) for stage in model.stages())


def _compare(models: list[cl.Sequential], x: np.ndarray, y: np.ndarray, rtol: float, atol: float) -> None:
    fused, plain = models
    assert _n_fused(fused) >= 1
    assert _n_fused(plain) == 0
    np.testing.assert_allclose(fused.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=rtol, atol=atol)
    for _ in range(3):
        loss_f = fused.train_on_batch(x, y)[0]
        loss_p = plain.train_on_batch(x, y)[0]
        np.testing.assert_allclose(loss_f, loss_p, rtol=rtol, atol=atol)
    weights_f, weights_p = fused.get_weights(), plain.get_weights()
    assert len(weights_f) == len(weights_p)
    for wf, wp in zip(weights_f, weights_p, strict=True):
        assert wf.dtype == wp.dtype
        np.testing.assert_allclose(wf, wp, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fused_equals_unfused_float64(name: str) -> None:
    shape, make = VARIANTS[name]
    models = _pair(shape, make, "float64")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, *shape)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    _compare(models, x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["course", "channels8", "second_conv", "pool3_linear"])
def test_fused_equals_unfused_float32(name: str) -> None:
    shape, make = VARIANTS[name]
    models = _pair(shape, make, "float32")
    rng = np.random.default_rng(2)
    x = rng.random((6, *shape), dtype=np.float32)
    y = rng.integers(0, 3, 6)
    _compare(models, x, y, rtol=1e-5, atol=1e-6)
    assert models[0].predict(x, verbose=0).dtype == np.float32


@pytest.mark.parametrize("activation", ["linear", "relu"])
@pytest.mark.parametrize("channels", [1, 8])
def test_ties_route_to_the_same_cell(activation: str, channels: int) -> None:
    """A kernel of ones on small-integer inputs makes many exact ties between different patches.

    The kernel gradient then depends on which tied cell receives the window's gradient, so the
    fused and unfused paths agree only if both use the first arg-max in row-major order.
    """
    shape = (8, 8, channels)

    def make(dt: str) -> list[Any]:
        return [
            L.Conv2D(2, 3, padding="same", activation=activation, dtype=dt),
            L.Conv2D(3, (1, 2), padding="valid", activation=activation, dtype=dt),
            L.MaxPooling2D(2, dtype=dt),
        ]

    models = _pair((8, 8, channels), make, "float64")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (4, *shape)).astype(np.float32)
    x[:, :4, :4] = 0.0  # a zero region: every window there ties
    y = rng.integers(0, 3, 4)
    for model in models:
        conv1, conv2 = model.layers[0], model.layers[1]
        conv1.set_weights([np.ones_like(conv1.params["kernel"]), np.ones(2)])
        conv2.set_weights([np.ones_like(conv2.params["kernel"]), np.ones(3)])
    # The tie really happens: some pooling windows hold equal maxima at different cells.
    feature = models[1].layers[1](models[1].layers[0](x))
    windows = feature[:, :6, :6].reshape(4, 3, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(-1, 4)
    assert ((windows == windows.max(axis=1, keepdims=True)).sum(axis=1) > 1).any()
    fused, plain = models
    fused.train_on_batch(x, y)
    plain.train_on_batch(x, y)
    for wf, wp in zip(fused.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(wf, wp, rtol=1e-12, atol=1e-12)


def test_fuse_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    model = cl.course.build_course_model()
    assert _n_fused(model) == 1
    assert len(model.stages()) == 3
    model.fuse = False
    assert _n_fused(model) == 0
    assert len(model.stages()) == 4
    monkeypatch.setenv("CONVLENS_FUSE", "0")
    assert _n_fused(cl.course.build_course_model()) == 0
    assert plan_stages(model.layers, fuse=True) == model.layers


@pytest.mark.parametrize(
    "layers",
    [
        # average pooling, overlapping pool (strides 1), 'same' pool, softmax conv: no fusion
        [L.Conv2D(2, 3, activation="relu"), L.AveragePooling2D(2)],
        [L.Conv2D(2, 3, activation="relu"), L.MaxPooling2D(2, strides=1)],
        [L.Conv2D(2, 3, activation="relu"), L.MaxPooling2D(2, padding="same")],
        [L.Conv2D(2, 3, activation="softmax"), L.MaxPooling2D(2)],
        [L.DepthwiseConv2D(3, activation="relu"), L.MaxPooling2D(2)],
    ],
)
def test_not_fused_when_the_rewrite_would_be_wrong(layers: list[Any]) -> None:
    model = cl.Sequential([L.Input((8, 8, 2)), *layers])
    assert _n_fused(model) == 0
    x = np.random.default_rng(0).random((2, 8, 8, 2), dtype=np.float32)
    expected = layers[1](layers[0](x))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)


def test_course_model_fused_fit_matches_unfused() -> None:
    """Whole ``fit`` (shuffled mini-batches, Adam, last partial batch) with and without fusion."""
    results = []
    for fuse in (True, False):
        set_random_seed(5)
        model = cl.course.build_course_model(filters=4, input_shape=(12, 12, 1))
        model.fuse = fuse
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        rng = np.random.default_rng(0)
        x = rng.random((50, 12, 12, 1), dtype=np.float32)
        y = rng.integers(0, 10, 50)
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        results.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@given(
    size=st.tuples(st.integers(4, 9), st.integers(4, 9)),
    channels=st.sampled_from([1, 3, 8]),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from(["same", "valid"]),
    pool=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    activation=st.sampled_from(["relu", "linear", "tanh", "sigmoid", "leaky_relu"]),
    first=st.booleans(),
)
def test_fused_equals_unfused_property(
    size: tuple[int, int],
    channels: int,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    pool: tuple[int, int],
    activation: str,
    first: bool,
) -> None:
    from convlens.geometry import WindowGeometry

    conv_out = WindowGeometry.resolve(size, kernel, strides, padding).output_size
    if conv_out[0] < pool[0] or conv_out[1] < pool[1]:
        return  # the pool would have no window: not a fusion question

    def make(dt: str) -> list[Any]:
        head = [] if first else [L.Conv2D(2, 1, activation="tanh", dtype=dt)]
        return [
            *head,
            L.Conv2D(3, kernel, strides=strides, padding=padding, activation=activation, dtype=dt),
            L.MaxPooling2D(pool, dtype=dt),
        ]

    shape = (*size, channels)
    models = _pair(shape, make, "float64")
    rng = np.random.default_rng(sum(size) + channels)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    y = rng.integers(0, 3, 3)
    _compare(models, x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("jit", ["1", "0"])
def test_wide_convolutions_stay_unfused_when_the_blocked_winograd_runs(
    jit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 16->16 3x3 conv before a pool runs alone (blocked Winograd) when compiled kernels run, fused otherwise."""
    from convlens.ops.jit import compiled_for

    monkeypatch.setenv("CONVLENS_JIT", jit)
    model = cl.Sequential(
        [
            L.Input((8, 8, 16)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
        ]
    )
    stages = model.stages()
    assert isinstance(stages[0], FusedConvMaxPool) is not compiled_for(np.float32)
    assert isinstance(stages[-1], FusedConvMaxPool)  # 16 -> 4 filters: Winograd does not apply
    x = np.random.default_rng(5).random((3, 8, 8, 16), dtype=np.float32)
    expected = x
    for layer in model.layers:
        expected = layer(expected)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


# ----- a batch norm after a linear convolution folds into it at inference -------------------------------------
def _conv_bn_model(dtype: str, fuse: bool, conv: Callable[[], Any], bn: Callable[[], Any], relu: bool) -> Any:
    set_random_seed(11)
    model = cl.Sequential(
        [L.Input((9, 9, 3), dtype=dtype), conv(), bn(), *([L.ReLU(dtype=dtype)] if relu else []), L.Flatten()]
    )
    model.fuse = fuse
    model.compile(cl.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 9, 9, 3)).astype(dtype)
    y = rng.standard_normal((40, model.output_shape[-1])).astype(dtype)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # moving statistics away from 0 and 1
    return model


CONV_BN = {
    "conv_bias": (lambda dt: L.Conv2D(5, 3, padding="same", dtype=dt), lambda dt: L.BatchNormalization(dtype=dt)),
    "conv_no_bias_strided": (
        lambda dt: L.Conv2D(4, 3, strides=2, use_bias=False, dtype=dt),
        lambda dt: L.BatchNormalization(center=False, scale=False, epsilon=0.1, dtype=dt),
    ),
    "pointwise": (lambda dt: L.Conv2D(6, 1, dtype=dt), lambda dt: L.BatchNormalization(scale=False, dtype=dt)),
    "depthwise_x2": (
        lambda dt: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dtype=dt),
        lambda dt: L.BatchNormalization(center=False, dtype=dt),
    ),
}


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("name", sorted(CONV_BN))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_folded_into_the_convolution_predicts_the_same(name: str, relu: bool, dtype: str) -> None:
    from convlens.fusion import ConvBatchNorm

    conv, bn = CONV_BN[name]
    fused = _conv_bn_model(dtype, True, lambda: conv(dtype), lambda: bn(dtype), relu)
    plain = _conv_bn_model(dtype, False, lambda: conv(dtype), lambda: bn(dtype), relu)
    assert [type(s) for s in fused.stages()][:1] == [ConvBatchNorm]
    assert not any(isinstance(s, ConvBatchNorm) for s in plain.stages())
    for a, b in zip(fused.get_weights(), plain.get_weights(), strict=True):  # training ran unfolded: same bits
        np.testing.assert_array_equal(a, b)
    moving = fused.layers[1].state["moving_variance"]
    assert not np.allclose(moving, 1.0)
    x = np.random.default_rng(2).standard_normal((30, 9, 9, 3)).astype(dtype)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    expected = plain.predict(x, verbose=0)
    np.testing.assert_allclose(fused.predict(x, verbose=0), expected, rtol=tolerance, atol=tolerance)
    if relu:
        assert (fused.predict(x, verbose=0) >= 0).all()


@pytest.mark.parametrize(
    "layers",
    [
        [L.Conv2D(4, 3, activation="relu"), L.BatchNormalization()],  # the activation comes before the norm
        [L.Conv2D(4, 3), L.BatchNormalization(axis=1)],  # normalised over rows, not channels
        [L.Conv2D(4, 3, data_format="channels_first"), L.BatchNormalization(axis=1)],
        [L.Conv2D(4, 3), L.Dropout(0.5), L.BatchNormalization()],  # not adjacent
        [L.Conv1D(4, 3), L.BatchNormalization()],  # (one-dimensional: not folded)
    ],
)
def test_batch_norm_not_folded_where_it_would_be_wrong(layers: list[Any]) -> None:
    from convlens.fusion import ConvBatchNorm

    shape = (7, 3) if isinstance(layers[0], L.Conv1D) else (7, 7, 3)
    model = cl.Sequential([L.Input(shape), *layers])
    assert not any(isinstance(s, ConvBatchNorm) for s in model.stages())


def test_a_folded_stage_trains_like_its_two_layers() -> None:
    """A fit step through the stage (conv forward, norm forward, norm backward, conv backward) gives the
    unfused model's weights and statistics bit for bit."""
    weights = []
    for fuse in (True, False):
        model = _conv_bn_model("float32", fuse, lambda: L.Conv2D(5, 3), lambda: L.BatchNormalization(), True)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
