"""The layers added for the Keras API (Conv2DTranspose, SeparableConv2D, UpSampling2D, Cropping2D,
LayerNormalization, Rescaling, RandomFlip, RandomTranslation, SpatialDropout2D) against Keras 3 itself (torch
backend) on the same weights and inputs: outputs, and weights after a few training steps; plus their semantics
and errors. (Contract and finite-difference checks: the shared list in test_core_layers.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError, ConfigTypeError, ShapeError, StateError
from tests.support.keras_twin import KERAS_WARNINGS, check, copy_weights, import_keras

keras = import_keras()
pytestmark = KERAS_WARNINGS
L, KL = cl.layers, keras.layers


def twin_of(make: Callable[[Any], Any], input_shape: tuple[int, ...], seed: int = 0) -> tuple[Any, Any]:
    """The layer in both libraries inside a one-layer model, random weights copied to Keras."""
    cl.utils.set_random_seed(seed)
    model = cl.Sequential([L.Input(input_shape), make(L)])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for value in layer.params.values():
            value[...] = rng.normal(0.0, 0.5, value.shape)
    twin = keras.Sequential([keras.Input(input_shape), make(KL)])
    copy_weights(model, twin)
    return model, twin


def images(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(4, *shape)).astype(np.float32)


SAME_AS_KERAS = [
    ("Conv2DTranspose valid s2", lambda lyr: lyr.Conv2DTranspose(3, 3, strides=2, activation="relu"), (4, 5, 2)),
    ("Conv2DTranspose same s2 k2", lambda lyr: lyr.Conv2DTranspose(3, 2, strides=2, padding="same"), (4, 5, 2)),
    ("Conv2DTranspose same s2 k3", lambda lyr: lyr.Conv2DTranspose(2, 3, strides=2, padding="same"), (3, 4, 2)),
    (
        "Conv2DTranspose same s2 k3 output_padding",
        lambda lyr: lyr.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=1),
        (3, 4, 2),
    ),
    ("Conv2DTranspose same s2 k4", lambda lyr: lyr.Conv2DTranspose(2, 4, strides=2, padding="same"), (3, 3, 2)),
    (
        "Conv2DTranspose same s1 k3 d2",
        lambda lyr: lyr.Conv2DTranspose(2, 3, padding="same", dilation_rate=2),
        (4, 4, 3),
    ),
    (
        "Conv2DTranspose valid output_padding",
        lambda lyr: lyr.Conv2DTranspose(2, 3, strides=3, output_padding=1),
        (3, 4, 2),
    ),
    ("SeparableConv2D", lambda lyr: lyr.SeparableConv2D(4, 3, depth_multiplier=2, activation="tanh"), (6, 5, 3)),
    ("SeparableConv2D same s2", lambda lyr: lyr.SeparableConv2D(3, 3, strides=2, padding="same"), (6, 5, 2)),
    ("UpSampling2D nearest", lambda lyr: lyr.UpSampling2D((2, 3)), (3, 4, 2)),
    ("UpSampling2D bilinear", lambda lyr: lyr.UpSampling2D(2, interpolation="bilinear"), (3, 4, 2)),
    ("Cropping2D", lambda lyr: lyr.Cropping2D(((1, 0), (2, 1))), (5, 6, 2)),
    ("LayerNormalization", lambda lyr: lyr.LayerNormalization(), (3, 4, 5)),
    ("LayerNormalization axes", lambda lyr: lyr.LayerNormalization(axis=[1, 2, 3], epsilon=0.01), (3, 4, 5)),
    ("Rescaling", lambda lyr: lyr.Rescaling(1 / 127.5, offset=-1), (3, 3, 2)),
    ("Rescaling per channel", lambda lyr: lyr.Rescaling([0.5, 2.0], offset=[1.0, -1.0]), (3, 3, 2)),
]


@pytest.mark.parametrize(("feature", "make", "shape"), SAME_AS_KERAS, ids=[c[0] for c in SAME_AS_KERAS])
def test_outputs_equal_keras(feature: str, make: Callable[[Any], Any], shape: tuple[int, ...]) -> None:
    model, twin = twin_of(make, shape)
    x = images(shape)
    assert model.output_shape == tuple(twin.output_shape)
    assert model.count_params() == twin.count_params()
    check(f"{feature}: output", model.predict(x, verbose=0), twin.predict(x, verbose=0))


TRAINED = [
    c
    for c in SAME_AS_KERAS
    if c[0].startswith(("Conv2DTranspose valid s2", "Conv2DTranspose same s2 k4", "SeparableConv2D", "LayerNorm"))
]


@pytest.mark.parametrize(("feature", "make", "shape"), TRAINED, ids=[c[0] for c in TRAINED])
def test_training_steps_equal_keras(feature: str, make: Callable[[Any], Any], shape: tuple[int, ...]) -> None:
    model, twin = twin_of(make, shape)
    model.add(L.Flatten())
    model.add(L.Dense(3, activation="softmax"))
    twin.add(KL.Flatten())
    twin.add(KL.Dense(3, activation="softmax"))
    twin.layers[-1].set_weights(model.layers[-1].get_weights())
    model.compile(cl.optimizers.SGD(0.05, momentum=0.5), "sparse_categorical_crossentropy")
    twin.compile(keras.optimizers.SGD(0.05, momentum=0.5), "sparse_categorical_crossentropy")
    x, y = images(shape), np.array([0, 1, 2, 1])
    ours = model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    theirs = twin.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    check(f"{feature}: fit loss", ours.history["loss"], theirs.history["loss"])
    check(f"{feature}: weights after fit", model.get_weights(), twin.get_weights())


def test_conv2d_transpose_is_the_input_gradient_of_a_convolution() -> None:
    """The defining property: Conv2DTranspose(k, s, 'same') is the adjoint of Conv2D(k, s, 'same') mapping the
    transposed output's size back to its input (the same kernel array)."""
    layer = L.Conv2DTranspose(2, 3, strides=2, padding="same")
    x = images((3, 3, 1))
    ours = layer(x) - layer.params["bias"]
    conv = L.Conv2D(1, 3, strides=2, padding="same", use_bias=False)
    conv.build((None, 6, 6, 2))
    conv.params["kernel"][...] = layer.params["kernel"]  # (3, 3, 2, 1) on both sides
    conv.forward(np.zeros((4, 6, 6, 2), np.float32), training=True)
    np.testing.assert_allclose(ours, conv.backward(x), rtol=1e-5, atol=1e-6)


def test_random_flip_equals_keras_for_the_same_draws() -> None:
    x = images((3, 4, 2))
    flips = np.array([True, False, True, False])
    for mode in ("horizontal", "vertical", "horizontal_and_vertical"):
        ours = L.RandomFlip(mode)
        ours.build((None, 3, 4, 2))
        ours._generator = lambda: _Fixed(flips)  # type: ignore[method-assign]
        theirs = KL.RandomFlip(mode).transform_images(x, {"flips": flips[:, None, None, None], "input_shape": x.shape})
        check(f"RandomFlip {mode}: output", ours(x, training=True), theirs)
        np.testing.assert_array_equal(ours(x), x)  # inference: untouched
        g = images((3, 4, 2), seed=5)
        assert np.isclose(np.sum(ours(x, training=True) * g), np.sum(x * ours.backward(g)))  # the adjoint


class _Fixed:
    """A generator whose uniform draws make the given flips (u <= 0.5 flips)."""

    def __init__(self, flips: np.ndarray) -> None:
        self.flips = flips

    def uniform(self, size: int) -> np.ndarray:
        return np.where(self.flips, 0.25, 0.75)


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_random_translation_equals_keras_for_the_same_shifts(fill_mode: str, interpolation: str) -> None:
    x = images((5, 6, 2))
    shifts = np.array([[1.3, -2.6], [-0.5, 0.5], [4.2, 5.5], [0.0, -1.0]], np.float32)  # (dy, dx) pixels
    ours = L.RandomTranslation(0.5, 0.5, fill_mode=fill_mode, interpolation=interpolation, fill_value=0.3)
    ours.build((None, 5, 6, 2))
    ours._draw = shifts.astype(np.float64)
    theirs = KL.RandomTranslation(0.5, 0.5, fill_mode=fill_mode, interpolation=interpolation, fill_value=0.3)
    expected = theirs.transform_images(x, {"translations": shifts[:, ::-1].copy(), "input_shape": x.shape})
    from convlens.ops.translate import translate

    check(
        f"RandomTranslation {fill_mode}/{interpolation}",
        translate(x, ours._draw, interpolation, fill_mode, 0.3),
        expected,
    )


def test_random_layers_draw_within_factors_repeat_by_seed_and_train() -> None:
    layer = L.RandomTranslation((-0.2, 0.1), 0.25, seed=3)
    layer.build((None, 10, 8, 1))
    x = images((10, 8, 1))
    first = layer(x, training=True)
    assert np.all((layer._draw[:, 0] >= -2.0) & (layer._draw[:, 0] <= 1.0))  # U(-0.2, 0.1) * 10
    assert np.all(np.abs(layer._draw[:, 1]) <= 2.0)  # U(-0.25, 0.25) * 8
    again = L.RandomTranslation((-0.2, 0.1), 0.25, seed=3)
    again.build((None, 10, 8, 1))
    np.testing.assert_array_equal(again(x, training=True), first)
    assert layer(x) is x
    cl.utils.set_random_seed(0)
    model = cl.Sequential(
        [
            L.Input((8, 8, 1)),
            L.RandomFlip(),
            L.RandomTranslation(0.1, 0.1),
            L.Conv2D(2, 3),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(images((8, 8, 1)), np.array([0, 1, 0, 1]), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    np.testing.assert_array_equal(
        model.predict(images((8, 8, 1)), verbose=0), model.predict(images((8, 8, 1)), verbose=0)
    )


def test_spatial_dropout_drops_whole_maps() -> None:
    layer = L.SpatialDropout2D(0.4, seed=2)
    x = np.ones((64, 3, 3, 8), np.float32)
    y = layer(x, training=True)
    kept = y[:, :1, :1, :] > 0
    np.testing.assert_array_equal(y, np.broadcast_to(np.where(kept, np.float32(1 / 0.6), np.float32(0.0)), y.shape))
    assert 0.5 < kept.mean() < 0.7
    np.testing.assert_array_equal(layer.backward(x), y)
    assert layer(x) is x


def test_regularizers_and_constraints_on_new_layers_match_keras() -> None:
    def make(layers: Any) -> Any:
        lib = cl if layers is L else keras
        return layers.SeparableConv2D(
            2, 3, depthwise_regularizer="l2", pointwise_constraint=lib.constraints.MaxNorm(0.3, axis=[0, 1, 2])
        )

    model, twin = twin_of(make, (5, 5, 2))
    model.add(L.Flatten())
    twin.add(KL.Flatten())
    model.compile(cl.optimizers.SGD(0.1), "mse")
    twin.compile(keras.optimizers.SGD(0.1), "mse")
    x, target = images((5, 5, 2)), images((18,), seed=7)
    ours = model.fit(x, target, batch_size=2, epochs=2, shuffle=False, verbose=0)
    theirs = twin.fit(x, target, batch_size=2, epochs=2, shuffle=False, verbose=0)
    check("SeparableConv2D regularizer + constraint: loss", ours.history["loss"], theirs.history["loss"])
    check("SeparableConv2D regularizer + constraint: weights", model.get_weights(), twin.get_weights())


def test_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"Conv2DTranspose 'conv2d_transpose\w*': `output_padding` \(2, 2\) must be smaller than `strides`",
    ):
        L.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(
        ConfigError, match=r"Conv2DTranspose 'conv2d_transpose\w*': `padding` must be 'valid', 'same', a"
    ):
        L.Conv2DTranspose(2, 3, padding="causal")
    with pytest.raises(ConfigError, match=r"Conv2DTranspose: unexpected keyword argument\(s\): groups"):
        L.Conv2DTranspose(2, 3, groups=2)
    with pytest.raises(ConfigError, match=r"SeparableConv2D 'separable_conv2d\w*': only data_format='channels_last'"):
        L.SeparableConv2D(2, 3, data_format="channels_first")
    with pytest.raises(
        ConfigError,
        match=r"UpSampling2D 'up_sampling2d\w*': `interpolation` must be one of 'nearest', 'bilinear', got 'bicubic'",
    ):
        L.UpSampling2D(interpolation="bicubic")
    with pytest.raises(
        ShapeError, match=r"Cropping2D 'cropping2d\w*': cropping \(\(2, 2\), \(0, 0\)\) leaves nothing of input"
    ):
        L.Cropping2D(((2, 2), (0, 0))).build((None, 4, 4, 1))
    with pytest.raises(ConfigError, match=r"`cropping` must be an int, two ints or"):
        L.Cropping2D("same")
    with pytest.raises(ConfigError, match=r"`rms_scaling=True` is not supported"):
        L.LayerNormalization(rms_scaling=True)
    with pytest.raises(ShapeError, match=r"`axis` \[0\] must name non-batch axes of a 3-D input"):
        L.LayerNormalization(axis=[0]).build((None, 3, 4))
    with pytest.raises(
        ConfigError, match=r"`height_factor` must be a number or a \(lower, upper\) pair in \[-1, 1\], got 1.5"
    ):
        L.RandomTranslation(1.5, 0.1)
    with pytest.raises(
        ConfigError, match=r"`fill_mode` must be one of 'reflect', 'wrap', 'constant', 'nearest', got 'mirror'"
    ):
        L.RandomTranslation(0.1, 0.1, fill_mode="mirror")  # keras.ops has it, the Keras layer does not
    with pytest.raises(ConfigError, match=r"`mode` must be one of 'horizontal', 'vertical', 'horizontal_and_vertical'"):
        L.RandomFlip("diagonal")
    with pytest.raises(
        StateError, match=r"RandomFlip 'random_flip\w*': backward called without a forward\(training=True\)"
    ):
        L.RandomFlip().backward(np.zeros((1, 2, 2, 1)))
    with pytest.raises(ConfigError, match=r"Rescaling 'rescaling\w*': `scale` must be a number, got 'x'"):
        L.Rescaling("x")
    # the reliability work's shared checkers (flags are real booleans, data_format is checked, reprs are short)
    with pytest.raises(ConfigTypeError, match=r"SeparableConv2D 'separable_conv2d\w*': `use_bias` must be True or"):
        L.SeparableConv2D(2, 3, use_bias="no")
    with pytest.raises(ConfigTypeError, match=r"LayerNormalization 'layer_normalization\w*': `center` must be True"):
        L.LayerNormalization(center=1)
    with pytest.raises(ConfigError, match=r"`data_format` must be one of 'channels_last', 'channels_first', got 7"):
        L.SpatialDropout2D(0.5, data_format=7)
    with pytest.raises(ConfigError, match=r"UpSampling2D 'up_sampling2d\w*': only data_format='channels_last' is"):
        L.UpSampling2D(data_format="channels_first")
    with pytest.raises(ConfigError, match=r"got \[0, 0, 0, .*\.\.\.\]\.$"):
        L.Cropping2D([0] * 1000)
