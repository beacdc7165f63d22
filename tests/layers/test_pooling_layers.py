"""Pooling layers: Keras contract, agreement with the ops, configs, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convlens.errors import ConfigError, ShapeError, StateError
from convlens.layers.base import LAYER_REGISTRY
from convlens.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from convlens.ops import pooling

LAYERS = [
    (lambda: MaxPooling2D(), (None, 28, 28, 32)),
    (lambda: MaxPooling2D((3, 3), strides=2, padding="same"), (None, 7, 8, 2)),
    (lambda: MaxPooling2D(2, data_format="channels_first"), (None, 3, 7, 5)),
    (lambda: AveragePooling2D(), (None, 6, 6, 2)),
    (lambda: AveragePooling2D(3, strides=(2, 1), padding="same"), (None, 5, 4, 3)),
    (lambda: AveragePooling2D(2, padding="same", data_format="channels_first"), (None, 2, 5, 5)),
    (lambda: MaxPooling1D(), (None, 9, 3)),
    (lambda: MaxPooling1D(3, strides=2, padding="same", data_format="channels_first"), (None, 3, 8)),
    (lambda: AveragePooling1D(3, strides=1, padding="same"), (None, 6, 2)),
    (lambda: GlobalMaxPooling2D(), (None, 5, 4, 3)),
    (lambda: GlobalAveragePooling2D(keepdims=True), (None, 5, 4, 3)),
    (lambda: GlobalAveragePooling2D(data_format="channels_first", keepdims=True), (None, 3, 5, 4)),
    (lambda: GlobalMaxPooling1D(keepdims=True), (None, 6, 3)),
    (lambda: GlobalAveragePooling1D(), (None, 6, 3)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("make", "input_shape"), LAYERS)
def test_layer_contract(make, input_shape, dtype, rng):
    layer = make()
    layer.dtype = np.dtype(dtype)
    layer.build(input_shape)
    assert layer.params == {}
    assert layer.grads == {}
    assert layer.count_params() == 0
    predicted = layer.compute_output_shape(input_shape)
    x = rng.standard_normal((3, *input_shape[1:])).astype(dtype)
    y = layer(x, training=True)
    assert y.shape == (3, *predicted[1:])
    assert y.dtype == np.dtype(dtype)
    grad_x = layer.backward(np.ones_like(y))
    assert grad_x.shape == x.shape
    assert grad_x.dtype == np.dtype(dtype)
    # Each output cell hands out exactly its gradient.
    np.testing.assert_allclose(grad_x.sum(), y.size, rtol=1e-5)
    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    np.testing.assert_array_equal(clone(x), layer(x))
    assert LAYER_REGISTRY[type(layer).__name__] is type(layer)


def test_keras_defaults_and_config_keys():
    layer = MaxPooling2D(name="pool")
    assert layer.get_config() == {
        "name": "pool",
        "trainable": True,
        "dtype": "float32",
        "pool_size": [2, 2],
        "strides": [2, 2],
        "padding": "valid",
        "data_format": "channels_last",
    }
    assert MaxPooling1D(name="p1").get_config()["pool_size"] == [2]
    assert AveragePooling1D(4, name="a1").get_config()["strides"] == [4]
    assert GlobalMaxPooling2D(name="g").get_config() == {
        "name": "g",
        "trainable": True,
        "dtype": "float32",
        "data_format": "channels_last",
        "keepdims": False,
    }


def test_course_model_pool_shape_and_ops_agreement(rng):
    layer = MaxPooling2D()
    assert layer.compute_output_shape((None, 28, 28, 32)) == (None, 14, 14, 32)
    x = rng.standard_normal((4, 28, 28, 32)).astype(np.float32)
    y = layer(x, training=True)
    np.testing.assert_array_equal(y, pooling.max_pool2d(x))
    g = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(g), pooling.max_pool2d_backward(g, x))


def test_average_layer_matches_op_with_same_padding(rng):
    layer = AveragePooling2D(3, strides=2, padding="same")
    x = rng.standard_normal((2, 7, 6, 3))
    layer.dtype = np.dtype("float64")
    y = layer(x, training=True)
    kw = {"pool_size": 3, "strides": 2, "padding": "same"}
    np.testing.assert_allclose(y, pooling.avg_pool2d(x, **kw), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(g), pooling.avg_pool2d_backward(g, x, **kw), rtol=1e-12)


def test_backward_after_inference_forward_recomputes(rng):
    layer = MaxPooling2D()
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    layer(x, training=False)
    g = np.ones((2, 2, 2, 3), np.float32)
    np.testing.assert_array_equal(layer.backward(g), pooling.max_pool2d_backward(g, x))


def test_plans_follow_the_batch_size(rng):
    layer = MaxPooling2D()
    for batch in (5, 3, 5, 1):
        x = rng.standard_normal((batch, 6, 6, 2)).astype(np.float32)
        y = layer(x, training=True)
        assert y.shape == (batch, 3, 3, 2)
        assert layer.backward(np.ones_like(y)).shape == x.shape
    assert len(layer._plans) == 3


def test_unknown_spatial_size_stays_unknown():
    assert MaxPooling2D().compute_output_shape((None, None, 9, 4)) == (None, None, 4, 4)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: MaxPooling2D((2, 0), name="max_pooling2d"),
            ConfigError,
            r"MaxPooling2D 'max_pooling2d': `pool_size` must be positive integers, got \(2, 0\)\.",
        ),
        (
            lambda: AveragePooling2D(strides=-1, name="ap"),
            ConfigError,
            r"AveragePooling2D 'ap': `strides` must be positive integers, got -1\.",
        ),
        (
            lambda: MaxPooling1D(padding="causal", name="mp"),
            ConfigError,
            r"MaxPooling1D 'mp': `padding` must be one of 'valid', 'same', got 'causal'\.",
        ),
        (
            lambda: MaxPooling2D(data_format="NHWC", name="mp"),
            ConfigError,
            r"MaxPooling2D 'mp': `data_format` must be one of 'channels_last', 'channels_first', "
            r"got 'NHWC'\.",
        ),
        (
            lambda: GlobalMaxPooling2D(data_format="nchw", name="g"),
            ConfigError,
            r"GlobalMaxPooling2D 'g': `data_format` must be one of",
        ),
        (
            lambda: MaxPooling2D(pool_sizes=2),
            ConfigError,
            r"MaxPooling2D: unexpected keyword argument\(s\): pool_sizes\.",
        ),
        (
            lambda: MaxPooling2D(3, name="mp").build((None, 2, 2, 1)),
            ShapeError,
            r"MaxPooling2D 'mp': a 'valid'-padded 3x3 window does not fit the 2x2 input",
        ),
        (
            lambda: MaxPooling2D(3, name="mp")(np.zeros((1, 2, 2, 1), np.float32)),
            ShapeError,
            r"MaxPooling2D 'mp': a 'valid'-padded 3x3 window does not fit the 2x2 input",
        ),
        (
            lambda: MaxPooling2D(name="mp").compute_output_shape((None, 28, 28)),
            ShapeError,
            r"MaxPooling2D 'mp': expects 4-D input \(batch included\), got shape \(None, 28, 28\) \(3-D\)\. "
            r"Add a channel axis: x\[\.\.\., None\]\.",
        ),
        (
            lambda: MaxPooling2D(name="mp")(np.zeros((2, 28, 28), np.float32)),
            ShapeError,
            r"MaxPooling2D 'mp': expects 4-D input .* Add a channel axis",
        ),
        (
            lambda: GlobalAveragePooling1D(name="g").build((None, 4, 4, 1)),
            ShapeError,
            r"GlobalAveragePooling1D 'g': expects 3-D input \(batch included\), got shape \(None, 4, 4, 1\)",
        ),
        (
            lambda: MaxPooling2D(name="mp").backward(np.zeros((1, 1, 1, 1))),
            StateError,
            r"MaxPooling2D 'mp': backward called before forward\.",
        ),
        (
            lambda: GlobalMaxPooling2D(name="g").backward(np.zeros((1, 1))),
            StateError,
            r"GlobalMaxPooling2D 'g': backward called before forward\.",
        ),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_backward_with_wrong_grad_shape_names_the_layer(rng):
    layer = MaxPooling2D(name="mp")
    layer(rng.standard_normal((2, 4, 4, 1)).astype(np.float32), training=True)
    with pytest.raises(ShapeError, match=r"MaxPooling2D 'mp': `grad_out` must have the output shape \(2, 2, 2, 1\)"):
        layer.backward(np.zeros((2, 3, 3, 1), np.float32))
    layer_1d = MaxPooling1D(name="m1", data_format="channels_first")
    layer_1d(np.zeros((2, 3, 8), np.float32), training=True)
    with pytest.raises(ShapeError, match=r"MaxPooling1D 'm1': `grad_out` must have the output shape \(2, 3, 4\), got"):
        layer_1d.backward(np.zeros((2, 4, 3), np.float32))
    glob = GlobalAveragePooling2D(name="g")
    glob(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(ShapeError, match=r"GlobalAveragePooling2D 'g': global_avg_pool2d_backward: `grad_out`"):
        glob.backward(np.zeros((2, 2), np.float32))
