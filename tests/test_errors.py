"""Error classes and the shared argument checkers: return values and every message, pinned."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from convlens.errors import (
    ConfigError,
    ConvlensError,
    DataError,
    ShapeError,
    StateError,
    check_choice,
    check_float,
    check_int,
    normalize_tuple,
)
from convlens.ops.conv import Conv2DPlan, conv1d, conv1d_backward, conv2d, conv2d_backward


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (ConfigError, (ConvlensError, ValueError)),
        (ShapeError, (ConvlensError, ValueError)),
        (StateError, (ConvlensError, RuntimeError)),
        (DataError, (ConvlensError, ValueError)),
    ],
)
def test_hierarchy(cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    assert all(issubclass(cls, b) for b in bases)
    with pytest.raises(ValueError if ValueError in bases else RuntimeError, match="boom"):
        raise cls("boom")


# ----------------------------------------------------------------------------- check_int
def test_check_int_accepts_numpy_ints() -> None:
    value = check_int(np.int64(5), "units", minimum=1)
    assert value == 5
    assert type(value) is int


@pytest.mark.parametrize(
    ("value", "minimum", "owner", "message"),
    [
        (True, None, None, "`units` must be an integer, got True."),
        (2.0, None, "Dense 'dense'", "Dense 'dense': `units` must be an integer, got 2.0."),
        ("3", None, None, "`units` must be an integer, got '3'."),
        (0, 1, "Dense 'dense'", "Dense 'dense': `units` must be an integer >= 1, got 0."),
        (-3, 0, None, "`units` must be an integer >= 0, got -3."),
    ],
)
def test_check_int_rejects(value: object, minimum: int | None, owner: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=exact(message)):
        check_int(value, "units", owner=owner, minimum=minimum)


# ----------------------------------------------------------------------------- check_float
def test_check_float_accepts_ints_and_bounds() -> None:
    assert check_float(1, "rate") == 1.0
    assert isinstance(check_float(1, "rate"), float)
    assert check_float(0.0, "rate", minimum=0.0, maximum=1.0) == 0.0
    assert check_float(1.0, "rate", maximum=1.0) == 1.0


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("0.5", {}, "`rate` must be a number, got '0.5'."),
        (False, {}, "`rate` must be a number, got False."),
        (-0.1, {"minimum": 0.0}, "`rate` must be >= 0.0, got -0.1."),
        (1.5, {"maximum": 1.0}, "`rate` must be <= 1.0, got 1.5."),
        (1.0, {"maximum": 1.0, "inclusive_max": False}, "`rate` must be < 1.0, got 1.0."),
        (2.0, {"maximum": 1.0, "owner": "Dropout 'd'"}, "Dropout 'd': `rate` must be <= 1.0, got 2.0."),
    ],
)
def test_check_float_rejects(value: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=exact(message)):
        check_float(value, "rate", **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- normalize_tuple
@pytest.mark.parametrize(
    ("value", "rank", "expected"),
    [(3, 2, (3, 3)), ((1, 2), 2, (1, 2)), ([4], 1, (4,)), (np.int32(2), 3, (2, 2, 2))],
)
def test_normalize_tuple_accepts(value: object, rank: int, expected: tuple[int, ...]) -> None:
    result = normalize_tuple(value, rank, "kernel_size")
    assert result == expected
    assert all(type(v) is int for v in result)


def test_normalize_tuple_minimum_zero() -> None:
    assert normalize_tuple((0, 2), 2, "size", minimum=0) == (0, 2)


@pytest.mark.parametrize(
    ("value", "minimum", "message"),
    [
        ("3", 1, "C: `kernel_size` must be an integer or a tuple of 2 integers, got '3'."),
        (None, 1, "C: `kernel_size` must be an integer or a tuple of 2 integers, got None."),
        (3.0, 1, "C: `kernel_size` must be an integer or a tuple of 2 integers, got 3.0."),
        ((3,), 1, "C: `kernel_size` must be an integer or a tuple of 2 integers, got (3,)."),
        ((3, 3.0), 1, "C: `kernel_size` must be an integer or a tuple of 2 integers, got (3, 3.0)."),
        ((3, True), 1, "C: `kernel_size` must be an integer or a tuple of 2 integers, got (3, True)."),
        ((3, 0), 1, "C: `kernel_size` must be positive integers, got (3, 0)."),
        (-1, 0, "C: `kernel_size` must be integers >= 0, got -1."),
    ],
)
def test_normalize_tuple_rejects(value: object, minimum: int, message: str) -> None:
    with pytest.raises(ConfigError, match=exact(message)):
        normalize_tuple(value, 2, "kernel_size", owner="C", minimum=minimum)


# ----------------------------------------------------------------------------- check_choice
def test_check_choice_lowercases() -> None:
    assert check_choice("ReLU", "activation", ("relu", "tanh")) == "relu"


@pytest.mark.parametrize("value", ["gelu", 3, None])
def test_check_choice_rejects(value: object) -> None:
    message = f"Dense 'd': `activation` must be one of 'relu', 'tanh', got {value!r}."
    with pytest.raises(ConfigError, match=exact(message)):
        check_choice(value, "activation", ("relu", "tanh"), owner="Dense 'd'")


# ------------------------------------------------------------------- op boundary messages (ops/conv.py)
# Every message conv.py (and its _checks helpers) can raise, pinned as the user sees it.

X = np.ones((1, 5, 5, 2))
K = np.ones((3, 3, 2, 4))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: conv2d(np.ones((5, 5, 2)), K),
            ShapeError,
            "conv2d: `x` must be 4-D, got shape (5, 5, 2) (3-D).",
        ),
        (
            lambda: conv2d(X, np.ones((3, 3, 2))),
            ShapeError,
            "conv2d: `kernel` must be 4-D, got shape (3, 3, 2) (3-D).",
        ),
        (
            lambda: conv2d(X, np.ones((3, 3, 3, 4))),
            ShapeError,
            "conv2d: kernel expects 3 input channels (3 per group x 1 groups), got an input with 2 channels "
            "(shape (1, 5, 5, 2)).",
        ),
        (
            lambda: conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 2, 3)), groups=2),
            ShapeError,
            "conv2d: input channels (4) and filters (3) must both be divisible by groups=2.",
        ),
        (
            lambda: conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 1, 4)), groups=2),
            ShapeError,
            "conv2d: input channels (3) and filters (4) must both be divisible by groups=2.",
        ),
        (
            lambda: conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 1, 4)), groups=2),
            ShapeError,
            "conv2d: kernel expects 2 input channels (1 per group x 2 groups), got an input with 4 channels "
            "(shape (1, 5, 5, 4)).",
        ),
        (lambda: conv2d(X, K, groups=0), ConfigError, "conv2d: `groups` must be an integer >= 1, got 0."),
        (lambda: conv2d(X, K, groups=2.0), ConfigError, "conv2d: `groups` must be an integer, got 2.0."),
        (
            lambda: conv2d(X, K, np.ones(3)),
            ShapeError,
            "conv2d: `bias` must have shape (4,) (one per filter), got (3,).",
        ),
        (
            lambda: conv2d(X, K, np.ones((1, 4))),
            ShapeError,
            "conv2d: `bias` must have shape (4,) (one per filter), got (1, 4).",
        ),
        (
            lambda: conv2d(X, K, padding="full"),
            ConfigError,
            "conv2d: `padding` must be 'valid', 'same', a non-negative int, a tuple of 2 non-negative "
            "ints or 2 (before, after) pairs, got 'full'.",
        ),
        (
            lambda: conv2d(X, K, padding="causal"),
            ConfigError,
            "conv2d: `padding` must be 'valid', 'same', a non-negative int, a tuple of 2 non-negative "
            "ints or 2 (before, after) pairs, got 'causal'.",
        ),
        (
            lambda: conv2d(np.ones((1, 3, 3, 1)), np.ones((5, 5, 1, 1))),
            ShapeError,
            "conv2d: a 'valid'-padded 5x5 window does not fit the 3x3 input (3x3 after padding): the output "
            "would be empty. Use a smaller kernel_size, padding='same', or a larger input.",
        ),
        (
            lambda: conv2d(X, K, strides=(1, 0)),
            ConfigError,
            "conv2d: `strides` must be positive integers, got (1, 0).",
        ),
        (
            lambda: conv2d(X, K, dilation_rate=(1, 2, 3)),
            ConfigError,
            "conv2d: `dilation_rate` must be an integer or a tuple of 2 integers, got (1, 2, 3).",
        ),
        (
            lambda: conv2d(X, K, data_format="NHWC"),
            ConfigError,
            "conv2d: `data_format` must be one of 'channels_last', 'channels_first', got 'NHWC'.",
        ),
        (
            lambda: conv2d_backward(np.ones((1, 5, 5, 4)), X, K),
            ShapeError,
            "conv2d_backward: `grad_out` must have the output shape (1, 3, 3, 4), got (1, 5, 5, 4).",
        ),
        (
            lambda: conv2d_backward(np.ones((3, 3, 4)), X, K),
            ShapeError,
            "conv2d_backward: `grad_out` must be 4-D, got shape (3, 3, 4) (3-D).",
        ),
        (
            lambda: conv2d_backward(np.ones((1, 3, 3, 4)), X, K, data_format="nchw"),
            ConfigError,
            "conv2d_backward: `data_format` must be one of 'channels_last', 'channels_first', got 'nchw'.",
        ),
        (
            lambda: conv1d(X, np.ones((3, 2, 1))),
            ShapeError,
            "conv1d: `x` must be 3-D, got shape (1, 5, 5, 2) (4-D).",
        ),
        (
            lambda: conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 1)), np.ones(2)),
            ShapeError,
            "conv1d: `bias` must have shape (1,) (one per filter), got (2,).",
        ),
        (
            lambda: conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 1)), padding="full"),
            ConfigError,
            "conv1d: `padding` must be 'valid', 'same', 'causal', a non-negative int, a tuple of 1 "
            "non-negative ints or 1 (before, after) pairs, got 'full'.",
        ),
        (
            lambda: conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 1)), strides=(1, 2)),
            ConfigError,
            "conv1d: `strides` must be an integer or a tuple of 1 integers, got (1, 2).",
        ),
        (
            lambda: conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 1)), dilation_rate=0),
            ConfigError,
            "conv1d: `dilation_rate` must be positive integers, got 0.",
        ),
        (
            lambda: conv1d_backward(np.ones((1, 3, 1, 1)), np.ones((1, 5, 2)), np.ones((3, 2, 1))),
            ShapeError,
            "conv1d_backward: `grad_out` must be 3-D, got shape (1, 3, 1, 1) (4-D).",
        ),
        (
            lambda: Conv2DPlan((5, 5, 2), (3, 3, 2, 4)),
            ShapeError,
            "conv2d: input must be 4-D (batch, height, width, channels), got shape (5, 5, 2).",
        ),
        (
            lambda: Conv2DPlan((1, 5, 5, 2), (3, 3, 2)),
            ShapeError,
            "conv2d: `kernel` must be 4-D (kernel_h, kernel_w, in_channels / groups, filters), got shape (3, 3, 2).",
        ),
        (
            lambda: Conv2DPlan((1, 5, 5, 2), (3, 3, 2, 4)).forward(np.ones((2, 5, 5, 2)), K),
            ShapeError,
            "conv2d: expected input shape (1, 5, 5, 2), got (2, 5, 5, 2).",
        ),
        (
            lambda: Conv2DPlan((1, 5, 5, 2), (3, 3, 2, 4)).forward(X, np.ones((3, 3, 2, 5))),
            ShapeError,
            "conv2d: expected kernel shape (3, 3, 2, 4), got (3, 3, 2, 5).",
        ),
        (
            lambda: Conv2DPlan((1, 5, 5, 2), (3, 3, 2, 4)).backward(np.ones((1, 3, 3, 5)), X, K),
            ShapeError,
            "conv2d: `grad_out` must have the output shape (1, 3, 3, 4), got (1, 3, 3, 5).",
        ),
    ],
)
def test_conv_messages(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=exact(message)):
        call()


@pytest.mark.parametrize(
    ("x", "name", "what"),
    [
        (np.array([["a"]]), "x", "dtype <U1"),
        (None, "x", "None"),
        (np.ones((1, 5, 5, 2), dtype=complex), "x", "dtype complex128 (complex numbers are not supported)"),
    ],
)
def test_conv_non_numeric_input_is_type_error(x: object, name: str, what: str) -> None:
    with pytest.raises(TypeError, match=exact(f"conv2d: `{name}` must hold numbers, got {what}.")):
        conv2d(x, K)


def test_conv_non_numeric_kernel_and_bias_are_type_errors() -> None:
    with pytest.raises(TypeError, match=exact("conv2d: `kernel` must hold numbers, got dtype <U1.")):
        conv2d(X, np.full((3, 3, 2, 4), "k"))
    with pytest.raises(TypeError, match=exact("conv2d: `bias` must hold numbers, got str 'b'.")):
        conv2d(X, K, "b")


def test_conv1d_empty_output_message_gives_1d_sizes() -> None:
    with pytest.raises(ShapeError, match=re.escape("conv1d: a 'valid'-padded 5 window does not fit the 3 input")):
        conv1d(np.ones((1, 3, 2)), np.ones((5, 2, 1)))


def test_conv1d_channel_message_gives_user_shape() -> None:
    with pytest.raises(ShapeError, match=re.escape("got an input with 4 channels (shape (2, 5, 4)).")):
        conv1d(np.ones((2, 5, 4)), np.ones((3, 3, 1)))


def test_conv2d_channels_first_message_gives_user_shape() -> None:
    with pytest.raises(ShapeError, match=re.escape("got an input with 2 channels (shape (1, 2, 5, 5)).")):
        conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 3, 3, 1)), data_format="channels_first")
