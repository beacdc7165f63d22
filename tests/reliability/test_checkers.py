"""The error classes and the shared argument checkers: hierarchy, accepted values, every new message pinned."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from convlens.errors import (
    MAX_SIZE,
    ConfigError,
    ConfigTypeError,
    ConvlensError,
    DataError,
    FileAccessError,
    MissingFileError,
    ResourceError,
    check_bool,
    check_float,
    check_int,
    check_verbose,
    normalize_tuple,
    short_repr,
)
from convlens.geometry import normalize_padding
from convlens.ops._checks import as_float_array


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (ConfigTypeError, (ConvlensError, ConfigError, ValueError, TypeError)),
        (ResourceError, (ConvlensError, ConfigError, ValueError, MemoryError)),
        (FileAccessError, (ConvlensError, DataError, ValueError, OSError)),
        (MissingFileError, (ConvlensError, DataError, FileAccessError, FileNotFoundError)),
    ],
)
def test_new_classes_keep_the_builtin_contracts(cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    # Callers that catch TypeError, MemoryError or FileNotFoundError keep working; one `except ConvlensError`
    # catches every refusal.
    assert all(issubclass(cls, base) for base in bases)
    with pytest.raises(ConvlensError, match="boom"):
        raise cls("boom")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), 10**400])
def test_check_float_refuses_non_finite(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^`rate` must be a finite number, got "):
        check_float(value, "rate")


def test_check_float_allows_inf_only_when_asked() -> None:
    assert check_float(math.inf, "max_value", allow_inf=True) == math.inf
    with pytest.raises(ConfigError, match=exact("ReLU 'r': `max_value` must be a finite number, got nan.")):
        check_float(math.nan, "max_value", owner="ReLU 'r'", allow_inf=True)


@pytest.mark.parametrize("value", [True, np.bool_(False)])
def test_check_bool_accepts_python_and_numpy_bools(value: object) -> None:
    assert check_bool(value, "use_bias") is bool(value)


@pytest.mark.parametrize(("value", "shown"), [("no", "'no'"), (2, "2"), (None, "None"), ([True], "[True]")])
def test_check_bool_refuses_truthy_values(value: object, shown: str) -> None:
    with pytest.raises(ConfigTypeError, match=exact(f"Dense 'd': `use_bias` must be True or False, got {shown}.")):
        check_bool(value, "use_bias", owner="Dense 'd'")


@pytest.mark.parametrize(("value", "level"), [("auto", 1), (0, 0), (2, 2), (np.int64(1), 1), (True, 1), (False, 0)])
def test_check_verbose_accepts_keras_values(value: object, level: int) -> None:
    assert check_verbose(value) == level


@pytest.mark.parametrize(("value", "shown"), [(3, "3"), (-1, "-1"), ("yes", "'yes'"), (1.5, "1.5"), (None, "None")])
def test_check_verbose_refuses_the_rest(value: object, shown: str) -> None:
    with pytest.raises(ConfigError, match=exact(f"fit: `verbose` must be 'auto', 0, 1 or 2, got {shown}.")):
        check_verbose(value, owner="fit")


def test_check_int_maximum_and_type_error() -> None:
    with pytest.raises(ConfigError, match=exact("`epochs` must be an integer <= 10, got 11.")):
        check_int(11, "epochs", maximum=10)
    with pytest.raises(ConfigTypeError, match=exact("`epochs` must be an integer, got 'x'.")):
        check_int("x", "epochs")


def test_sizes_are_capped_at_int32_like_tensorflow() -> None:
    assert normalize_tuple(MAX_SIZE, 1, "strides") == (MAX_SIZE,)
    with pytest.raises(ConfigError, match=exact(f"conv2d: `strides` must be integers <= {MAX_SIZE}, got 2147483648.")):
        normalize_tuple(2**31, 2, "strides", owner="conv2d")
    with pytest.raises(ConfigError, match=exact(f"`padding` must be at most {MAX_SIZE} per side, got 1099511627776.")):
        normalize_padding(2**40, 2)


@pytest.mark.parametrize("value", [np.array(3), iter([1, 2]), (i for i in range(2)), {"a": 1}])
def test_normalize_tuple_never_iterates_unsized_or_odd_values(value: object) -> None:
    with pytest.raises(ConfigTypeError, match=r"`kernel_size` must be an integer or a tuple of 2 integers, got "):
        normalize_tuple(value, 2, "kernel_size")


def test_short_repr_cuts_long_values() -> None:
    assert short_repr("x" * 1000, 12) == "'xxxxxxx...'"
    assert short_repr(list(range(1000)), 20).endswith("...]")
    assert short_repr((1, 2)) == "(1, 2)"


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (None, "None"),
        ("abc", "str 'abc'"),
        ({"x": 1}, "dict {'x': 1}"),
        ([[1.0, 2.0], [3.0]], "ragged nested lists"),
        (np.zeros(3, object), "dtype object"),
        (np.zeros(3, "U2"), "dtype <U2"),
        (np.zeros(3, np.complex64), "dtype complex64 (complex numbers are not supported)"),
        (np.zeros(3, "datetime64[s]"), "dtype datetime64[s]"),
        (np.zeros(3, [("a", "f4")]), "dtype [('a', '<f4')]"),
    ],
)
def test_as_float_array_refuses_what_is_not_real_numbers(value: object, what: str) -> None:
    with pytest.raises(ConfigTypeError, match=exact(f"relu: `x` must hold numbers, got {what}.")):
        as_float_array(value, "x", "relu")


def test_as_float_array_refuses_generators() -> None:
    with pytest.raises(ConfigTypeError, match=r"^relu: `x` must hold numbers, got generator "):
        as_float_array((i for i in range(3)), "x", "relu")


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (np.array([True, False]), np.float32),
        (np.arange(3, dtype=np.int64), np.float32),
        (np.arange(3, dtype=np.uint8), np.float32),
        (np.arange(3, dtype=np.float16), np.float32),
        (np.arange(3, dtype=np.float64), np.float64),
        ([1, 2], np.float32),
        ([1.5, 2.5], np.float64),
    ],
)
def test_as_float_array_converts_as_documented(value: object, dtype: type) -> None:
    out = as_float_array(value, "x", "relu")
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, np.asarray(value, np.float64))
