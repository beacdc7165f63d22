"""Core, convolution, reshaping and normalisation layers: contract, finite differences, torch, semantics, errors.

(Pooling layers have their own contract test in test_pooling_layers.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from convlens.errors import ConfigError, ShapeError, StateError
from convlens.layers.base import LAYER_REGISTRY, Layer
from convlens.layers.conv import Conv1D, Conv2D, DepthwiseConv2D
from convlens.layers.conv_transpose import Conv2DTranspose, SeparableConv2D
from convlens.layers.core import Activation, Dense, Dropout, Flatten, Input, ReLU, Softmax
from convlens.layers.normalization import BatchNormalization, LayerNormalization
from convlens.layers.preprocessing import RandomFlip, RandomTranslation, Rescaling
from convlens.layers.regularization import SpatialDropout2D
from convlens.layers.reshaping import Cropping2D, UpSampling2D, ZeroPadding1D, ZeroPadding2D
from convlens.ops.losses import softmax_cross_entropy_with_logits
from tests.conftest import require
from tests.support import reference_core as ref

Factory = Callable[[str], Layer]

CASES: list[tuple[str, Factory, tuple[int, ...]]] = [
    ("input", lambda dt: Input(shape=(4, 5), dtype=dt), (2, 4, 5)),
    ("dense", lambda dt: Dense(3, dtype=dt), (2, 5)),
    ("dense_relu_3d", lambda dt: Dense(3, activation="relu", dtype=dt), (2, 4, 5)),
    ("dense_softmax_nobias", lambda dt: Dense(4, activation="softmax", use_bias=False, dtype=dt), (3, 5)),
    ("dense_gelu", lambda dt: Dense(2, activation="gelu", dtype=dt), (3, 4)),
    ("flatten", lambda dt: Flatten(dtype=dt), (2, 3, 4, 2)),
    ("dropout", lambda dt: Dropout(0.5, seed=1, dtype=dt), (4, 6)),
    ("activation_tanh", lambda dt: Activation("tanh", dtype=dt), (2, 3, 4)),
    ("activation_softmax", lambda dt: Activation("softmax", dtype=dt), (2, 5)),
    ("relu", lambda dt: ReLU(dtype=dt), (3, 4)),
    ("relu_args", lambda dt: ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2, dtype=dt), (3, 4)),
    ("softmax", lambda dt: Softmax(dtype=dt), (2, 5)),
    ("softmax_axis1", lambda dt: Softmax(axis=1, dtype=dt), (2, 3, 4)),
    ("zero_padding2d", lambda dt: ZeroPadding2D(((0, 1), (2, 3)), dtype=dt), (2, 3, 4, 2)),
    ("zero_padding2d_int", lambda dt: ZeroPadding2D(1, dtype=dt), (1, 2, 2, 3)),
    ("zero_padding1d", lambda dt: ZeroPadding1D((1, 2), dtype=dt), (2, 5, 3)),
    ("batch_norm", lambda dt: BatchNormalization(dtype=dt), (4, 3, 3, 2)),
    ("batch_norm_axis1", lambda dt: BatchNormalization(axis=1, center=False, dtype=dt), (4, 3, 5)),
    ("conv2d_same_tanh", lambda dt: Conv2D(3, 3, padding="same", activation="tanh", dtype=dt), (2, 5, 4, 2)),
    (
        "conv2d_strided_dilated_grouped",
        lambda dt: Conv2D(4, (2, 3), strides=(2, 1), dilation_rate=(1, 2), groups=2, dtype=dt),
        (2, 6, 7, 4),
    ),
    ("conv2d_channels_first", lambda dt: Conv2D(3, 2, padding=1, data_format="channels_first", dtype=dt), (2, 2, 5, 4)),
    ("conv2d_no_bias_sigmoid", lambda dt: Conv2D(2, 1, use_bias=False, activation="sigmoid", dtype=dt), (3, 3, 3, 2)),
    (
        "conv1d_causal",
        lambda dt: Conv1D(3, 3, padding="causal", dilation_rate=2, activation="tanh", dtype=dt),
        (2, 7, 2),
    ),
    ("conv1d_strided_same", lambda dt: Conv1D(2, 2, strides=2, padding="same", dtype=dt), (2, 7, 3)),
    ("depthwise", lambda dt: DepthwiseConv2D(3, padding="same", depth_multiplier=2, dtype=dt), (2, 5, 5, 3)),
    ("depthwise_strided", lambda dt: DepthwiseConv2D((2, 3), strides=2, activation="tanh", dtype=dt), (2, 6, 7, 2)),
    # The Keras-API layers (tests/layers/test_keras_layers.py compares them with Keras itself).
    (
        "conv2d_transpose",
        lambda dt: Conv2DTranspose(2, 3, strides=2, padding="same", activation="tanh", dtype=dt),
        (2, 3, 3, 2),
    ),
    ("conv2d_transpose_op", lambda dt: Conv2DTranspose(2, 2, strides=3, output_padding=1, dtype=dt), (2, 2, 3, 3)),
    ("separable_conv2d", lambda dt: SeparableConv2D(3, 3, depth_multiplier=2, padding="same", dtype=dt), (2, 4, 4, 2)),
    ("up_sampling2d", lambda dt: UpSampling2D((2, 3), dtype=dt), (2, 2, 3, 2)),
    ("up_sampling2d_bilinear", lambda dt: UpSampling2D(2, interpolation="bilinear", dtype=dt), (2, 3, 2, 2)),
    ("cropping2d", lambda dt: Cropping2D(((1, 0), (0, 2)), dtype=dt), (2, 3, 4, 2)),
    ("spatial_dropout2d", lambda dt: SpatialDropout2D(0.5, seed=1, dtype=dt), (4, 2, 2, 3)),
    ("layer_norm", lambda dt: LayerNormalization(dtype=dt), (3, 2, 4)),
    ("layer_norm_axes", lambda dt: LayerNormalization(axis=[1, 2], center=False, dtype=dt), (3, 2, 4)),
    ("rescaling", lambda dt: Rescaling([0.5, 2.0], offset=1.0, dtype=dt), (2, 3, 2)),
    ("random_flip", lambda dt: RandomFlip(seed=2, dtype=dt), (4, 2, 3, 1)),
    ("random_translation", lambda dt: RandomTranslation(0.3, (-0.2, 0.4), seed=2, dtype=dt), (3, 4, 4, 2)),
]
IDS = [c[0] for c in CASES]


def _built(factory: Factory, shape: tuple[int, ...], dtype: str = "float32") -> Layer:
    layer = factory(dtype)
    layer.build((None, *shape[1:]), np.random.default_rng(0))
    for name, value in layer.params.items():  # non-trivial gamma/beta
        if name in ("gamma", "beta"):
            value[...] = np.random.default_rng(5).uniform(0.5, 1.5, value.shape)
    return layer


@pytest.mark.parametrize(("case", "factory", "shape"), CASES, ids=IDS)
def test_layer_contract(case: str, factory: Factory, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    layer = _built(factory, shape)
    x = rng.standard_normal(shape).astype(np.float32)
    predicted = layer.compute_output_shape((None, *shape[1:]))
    y = layer.forward(x, training=True)
    assert predicted[0] is None
    assert y.shape == (shape[0], *predicted[1:])
    assert y.dtype == np.float32
    grad_x = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert grad_x.shape == x.shape
    assert grad_x.dtype == np.float32
    assert set(layer.grads) == set(layer.params)
    for name in layer.params:
        assert layer.grads[name].shape == layer.params[name].shape
        assert layer.params[name].dtype == np.float32
    config = layer.get_config()
    json.dumps(config)
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert LAYER_REGISTRY[type(layer).__name__] is type(layer)


@pytest.mark.parametrize(("case", "factory", "shape"), CASES, ids=IDS)
def test_layer_gradients_match_finite_differences(
    case: str, factory: Factory, shape: tuple[int, ...], rng: np.random.Generator
) -> None:
    layer = _built(factory, shape, "float64")
    x = rng.standard_normal(shape)
    w = rng.standard_normal(layer.compute_output_shape(shape))

    def f() -> float:
        if getattr(layer, "rng", None) is not None:  # Dropout and the random layers: the same draws every call
            layer.rng = np.random.default_rng(3)
        return float(np.sum(layer.forward(x, training=True) * w))

    f()
    grad_x = layer.backward(w)
    assert grad_x.dtype == np.float64
    np.testing.assert_allclose(grad_x, ref.numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    for name, value in layer.params.items():
        f()
        layer.backward(w)
        analytic = layer.grads[name].copy()
        np.testing.assert_allclose(analytic, ref.numeric_grad(f, value), rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_matches_torch_linear(dtype: type, rng: np.random.Generator) -> None:
    torch = require("torch")
    layer = Dense(4, activation="tanh", dtype=np.dtype(dtype).name)
    layer.build((None, 6), rng)
    linear = torch.nn.Linear(6, 4).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(layer.params["kernel"].T.copy()))
        linear.bias.copy_(torch.tensor(rng.standard_normal(4).astype(dtype)))
    layer.params["bias"][...] = linear.bias.detach().numpy()
    x = rng.standard_normal((5, 6)).astype(dtype)
    g = rng.standard_normal((5, 4)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.tanh(linear(xt))
    yt.backward(torch.tensor(g))
    y = layer.forward(x, training=True)
    grad_x = layer.backward(g)
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(layer.grads["kernel"], linear.weight.grad.numpy().T, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(layer.grads["bias"], linear.bias.grad.numpy(), rtol=rtol, atol=1e-6)


# ----- semantics ------------------------------------------------------------------------------------------


def test_course_model_dense_parameter_count() -> None:
    layer = Dense(10)
    layer.build((None, 6272), np.random.default_rng(0))
    assert layer.count_params() == 6272 * 10 + 10
    limit = np.sqrt(6 / (6272 + 10))  # glorot_uniform
    assert float(np.abs(layer.params["kernel"]).max()) <= limit
    np.testing.assert_array_equal(layer.params["bias"], 0.0)


def test_dense_backward_linear_is_the_fused_softmax_path(rng: np.random.Generator) -> None:
    layer = Dense(5, activation="softmax", dtype="float64")
    layer.build((None, 4), rng)
    x = rng.standard_normal((3, 4))
    labels = np.array([0, 3, 4])
    probs = layer.forward(x, training=True)
    # Through the softmax backward: dL/dp of the mean crossentropy is -onehot / p / N.
    onehot = np.eye(5)[labels]
    grad_x_slow = layer.backward(-onehot / probs / 3)
    grads_slow = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x, training=True)
    logits = layer.pre_activation
    np.testing.assert_allclose(logits, x @ layer.params["kernel"] + layer.params["bias"], rtol=1e-12)
    _, grad_logits, fused_probs = softmax_cross_entropy_with_logits(labels, logits)
    np.testing.assert_allclose(fused_probs, probs, rtol=1e-12)
    grad_x_fast = layer.backward_linear(grad_logits)
    np.testing.assert_allclose(grad_x_fast, grad_x_slow, rtol=1e-10, atol=1e-12)
    for name, value in grads_slow.items():
        np.testing.assert_allclose(layer.grads[name], value, rtol=1e-10, atol=1e-12)


def test_dense_skips_input_gradient_when_asked(rng: np.random.Generator) -> None:
    layer = Dense(2)
    layer.build((None, 3), rng)
    layer.compute_grad_x = False
    layer.forward(np.ones((4, 3), np.float32), training=True)
    assert layer.backward(np.ones((4, 2), np.float32)).size == 0
    np.testing.assert_allclose(layer.grads["bias"], [4.0, 4.0])
    np.testing.assert_allclose(layer.grads["kernel"], np.full((3, 2), 4.0))


def test_dense_config_uses_keras_keys() -> None:
    config = Dense(7, activation="ReLU", use_bias=False, name="d").get_config()
    assert config["units"] == 7
    assert config["activation"] == "relu"
    assert config["use_bias"] is False
    assert config["kernel_initializer"] == "glorot_uniform"
    assert config["bias_initializer"] == "zeros"
    assert Dense(2).get_config()["activation"] == "linear"


def test_flatten_uses_h_w_c_order() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    out = Flatten()(x)
    for h in range(3):
        for w in range(4):
            for c in range(5):
                assert out[1, h * 4 * 5 + w * 5 + c] == x[1, h, w, c]
    assert Flatten().compute_output_shape((None, 28, None, 1)) == (None, None)


def test_zero_padding_matches_loop_reference(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    pads = ((2, 0), (1, 3))
    np.testing.assert_array_equal(ZeroPadding2D(pads)(x), ref.zero_pad_2d(x, pads))
    np.testing.assert_array_equal(ZeroPadding2D((1, 2))(x), ref.zero_pad_2d(x, ((1, 1), (2, 2))))
    x1 = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out = ZeroPadding1D(2)(x1)
    np.testing.assert_array_equal(out, ref.zero_pad_2d(x1[:, None], ((0, 0), (2, 2)))[:, 0])


def test_input_is_a_marker() -> None:
    layer = Input(shape=(28, 28, 1))
    assert layer.is_input
    assert layer.shape == (None, 28, 28, 1)  # keras.Input(...).shape: batch axis first
    x = np.zeros((2, 28, 28, 1), np.float32)
    assert layer(x) is x
    assert layer.count_params() == 0
    assert layer.get_config()["shape"] == [28, 28, 1]


def test_dropout_layer_trains_and_infers() -> None:
    layer = Dropout(0.5, seed=3)
    x = np.ones((50, 40), np.float32)
    assert layer(x) is x
    y = layer(x, training=True)
    assert 0.4 < float(np.mean(y == 0)) < 0.6
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)
    again = Dropout(0.5, seed=3)
    np.testing.assert_array_equal(again(x, training=True), y)


def test_relu_layer_keras_semantics() -> None:
    x = np.array([-2.0, 0.1, 0.5, 3.0], np.float32)
    y = ReLU(max_value=1.0, negative_slope=0.5, threshold=0.2)(x)
    np.testing.assert_allclose(y, [0.5 * (-2.2), 0.5 * (-0.1), 0.5, 1.0])


def test_batch_norm_layer_weights_and_modes(rng: np.random.Generator) -> None:
    layer = BatchNormalization(momentum=0.5, name="bn")
    layer.build((None, 4, 4, 3), rng)
    assert [w.shape for w in layer.get_weights()] == [(3,)] * 4
    np.testing.assert_array_equal(layer.get_weights()[0], 1.0)  # gamma ones
    np.testing.assert_array_equal(layer.get_weights()[3], 1.0)  # moving_variance ones
    assert set(layer.params) == {"gamma", "beta"}
    assert set(layer.state) == {"moving_mean", "moving_variance"}
    x = rng.standard_normal((8, 4, 4, 3)).astype(np.float32) * 3 + 2
    y = layer(x, training=True)
    np.testing.assert_allclose(y.reshape(-1, 3).mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(layer.state["moving_mean"], 0.5 * x.reshape(-1, 3).mean(axis=0), rtol=1e-5)
    # Inference uses the moving statistics.
    mm, mv = layer.state["moving_mean"], layer.state["moving_variance"]
    np.testing.assert_allclose(layer(x), (x - mm) / np.sqrt(mv + 1e-3), rtol=1e-5, atol=1e-5)
    # A frozen layer runs in inference mode even when training, as Keras 3.
    layer.trainable = False
    before = mm.copy()
    np.testing.assert_allclose(layer(x, training=True), layer(x), rtol=1e-6)
    np.testing.assert_array_equal(layer.state["moving_mean"], before)


# ----- errors ---------------------------------------------------------------------------------------------

BAD_ARGS: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: Dense(0, name="d"), ConfigError, r"Dense 'd': `units` must be an integer >= 1, got 0\."),
    (lambda: Dense(2, activation="rleu", name="d"), ConfigError, r"Dense 'd': unknown `activation` 'rleu'"),
    (
        lambda: Dense(2, kernel_initializer="nope", name="d"),
        ConfigError,
        r"unknown `kernel_initializer` 'nope'",
    ),
    (lambda: Dropout(1.0, name="dr"), ConfigError, r"Dropout 'dr': `rate` must be < 1.0, got 1.0\."),
    (lambda: Dropout(0.5, noise_shape=(1, 2), name="dr"), ConfigError, r"`noise_shape` is not supported"),
    (
        lambda: ReLU(max_value=-1.0, name="r"),
        ConfigError,
        r"ReLU 'r': `max_value` must be >= 0.0, got -1.0\.",
    ),
    (lambda: ReLU(negative_slope=-0.1, name="r"), ConfigError, r"`negative_slope` must be >= 0.0"),
    (lambda: ZeroPadding2D("same", name="z"), ConfigError, r"ZeroPadding2D 'z': `padding` must be an int"),
    (lambda: ZeroPadding2D((1, 2, 3), name="z"), ConfigError, r"ZeroPadding2D 'z': `padding` must be"),
    (lambda: ZeroPadding2D(-1, name="z"), ConfigError, r"`padding` must be .* got -1\."),
    (lambda: Input(), ConfigError, r"Input: `shape` is required"),
    (lambda: BatchNormalization(momentum=2.0, name="b"), ConfigError, r"`momentum` must be <= 1.0, got 2.0"),
    (
        lambda: Flatten(data_format="channels_first", name="f"),
        ConfigError,
        r"Flatten 'f': only data_format='channels_last' is supported, got 'channels_first'\.",
    ),
    (lambda: Activation("nope", name="a"), ConfigError, r"Activation 'a': unknown `activation` 'nope'"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_ARGS)
def test_bad_arguments(make: Callable[[], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_bad_input_shapes() -> None:
    with pytest.raises(ShapeError, match=r"Dense 'd': expects .* got shape \(None,\) \(1-D\)"):
        Dense(2, name="d").build((None,))
    with pytest.raises(ShapeError, match=r"ZeroPadding2D 'z': expects 4-D input .* got shape \(None, 5, 3\)"):
        ZeroPadding2D(name="z").build((None, 5, 3))
    with pytest.raises(ShapeError, match=r"BatchNormalization 'b': `axis` 3 is not a non-batch axis of a 3-D"):
        BatchNormalization(axis=3, name="b").build((None, 4, 2))
    with pytest.raises(ShapeError, match=r"Softmax 's': `axis` 0 is not a non-batch axis"):
        Softmax(axis=0, name="s").build((None, 4))
    layer = Dense(2, name="d")
    layer.build((None, 3))
    with pytest.raises(ShapeError, match=r"Dense 'd': expected input of shape \(None, 3\), got \(2, 4\)"):
        layer(np.zeros((2, 4), np.float32))


@pytest.mark.parametrize(
    "layer",
    [Dense(2, name="d"), Activation("relu", name="a"), BatchNormalization(name="b"), Flatten(name="f")],
    ids=str,
)
def test_backward_before_forward_is_a_state_error(layer: Layer) -> None:
    layer.build((None, 3), np.random.default_rng(0))
    with pytest.raises(StateError, match=r"backward called without a forward\(training=True\) first"):
        layer.backward(np.zeros((1, 3), np.float32))
