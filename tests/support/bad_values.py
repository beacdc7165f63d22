"""Pools of bad and edge-case argument values, shared by the reliability tests and the stress script.

Each entry is ``(label, value_or_factory, kind)``:

* ``"invalid"``: no public call may accept it (a documented convlens error is the only right answer);
* ``"edge"``: a legal value a careless implementation mishandles (a NumPy integer, 'SAME', a bool array);
* ``"any"``: legal or not depending on the other arguments (a huge size, a zero).

Array entries are factories ``(shape, rng) -> value`` so the same mutation fits any argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

Entry = tuple[str, Any, str]

HUGE_INTS = (10**6, 10**9, 10**12, 2**31, 2**40, 2**63, 10**30)

INT_VALUES: list[Entry] = [
    ("zero", 0, "any"),
    ("minus_one", -1, "invalid"),
    ("true", True, "invalid"),
    ("false", False, "invalid"),
    ("float_2.0", 2.0, "invalid"),
    ("float_2.5", 2.5, "invalid"),
    ("nan", math.nan, "invalid"),
    ("inf", math.inf, "invalid"),
    ("str_3", "3", "invalid"),
    ("none", None, "any"),
    ("np_int64", np.int64(2), "edge"),
    ("np_uint8", np.uint8(1), "edge"),
    ("np_float", np.float64(2.0), "invalid"),
    ("complex", 2 + 0j, "invalid"),
    ("list_empty", [], "invalid"),
    ("tuple_3", (2, 2, 2), "any"),
    ("tuple_none", (2, None), "invalid"),
    ("nested", ((1, 2), (3,)), "invalid"),
    ("object", object(), "invalid"),
    ("array_0d", np.array(2), "any"),
    *[(f"huge_{v}", v, "any") for v in HUGE_INTS],
    *[(f"neg_huge_{v}", -v, "invalid") for v in HUGE_INTS[:3]],
]

FLOAT_VALUES: list[Entry] = [
    ("nan", math.nan, "invalid"),
    ("inf", math.inf, "any"),
    ("minus_inf", -math.inf, "invalid"),
    ("np_nan", np.float32("nan"), "invalid"),
    ("minus_one", -1.0, "any"),
    ("zero", 0.0, "any"),
    ("one", 1.0, "any"),
    ("two", 2.0, "any"),
    ("str", "0.5", "invalid"),
    ("none", None, "any"),
    ("true", True, "invalid"),
    ("huge", 1e308, "any"),
    ("denormal", 1e-320, "any"),
    ("np_float32", np.float32(0.5), "edge"),
    ("int", 1, "any"),
    ("complex", 0.5 + 1j, "invalid"),
    ("list", [0.5], "invalid"),
    ("array_1d", np.array([0.5]), "invalid"),
]

CHOICE_VALUES: list[Entry] = [
    ("upper", "SAME", "edge"),
    ("title", "Valid", "edge"),
    ("unknown", "full", "invalid"),
    ("empty", "", "invalid"),
    ("none", None, "any"),
    ("int", 1, "any"),
    ("bytes", b"same", "invalid"),
    ("spaces", " same ", "invalid"),
    ("nul", "same\x00", "invalid"),
    ("list", ["same"], "invalid"),
    ("object", object(), "invalid"),
]

BOOL_VALUES: list[Entry] = [
    ("np_bool", np.bool_(True), "edge"),
    ("str_yes", "yes", "invalid"),
    ("str_false", "False", "invalid"),
    ("int_2", 2, "invalid"),
    ("none", None, "any"),
    ("float_nan", math.nan, "invalid"),
    ("list", [True], "invalid"),
]

PADDING_VALUES: list[Entry] = [
    *[(f"int_{label}", v, k) for label, v, k in INT_VALUES],
    *[(f"choice_{label}", v, k) for label, v, k in CHOICE_VALUES],
    ("causal", "causal", "any"),
    ("pairs", ((0, 1), (2, 3)), "any"),
    ("pairs_negative", ((0, -1), (2, 3)), "invalid"),
    ("pairs_huge", ((0, 10**6), (2, 3)), "any"),
    ("pairs_float", ((0.5, 1), (2, 3)), "invalid"),
    ("pairs_short", ((0, 1),), "any"),
    ("triple", (1, 1, 1), "any"),
]


def _values(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


ArrayFactory = Callable[[tuple[int, ...], np.random.Generator], Any]


def _zero_axis(axis: int) -> ArrayFactory:
    def make(shape: tuple[int, ...], rng: np.random.Generator) -> Any:
        if axis >= len(shape):
            return np.zeros((0,), np.float32)
        return np.zeros(tuple(0 if i == axis else s for i, s in enumerate(shape)), np.float32)

    return make


def _broadcast_huge(shape: tuple[int, ...], rng: np.random.Generator) -> Any:
    # A view of ~10**12 logical values backed by one float: nothing may try to touch them all.
    big = tuple(10**6 if 0 < i < len(shape) - 1 else s for i, s in enumerate(shape))
    if len(shape) <= 2:
        big = tuple(10**12 if i == len(shape) - 1 else s for i, s in enumerate(shape))
    return np.broadcast_to(np.float32(1.0), big)


def _broadcast_moderate(shape: tuple[int, ...], rng: np.random.Generator) -> Any:
    return np.broadcast_to(_values(shape[-1:], rng), shape)


def _noncontiguous(shape: tuple[int, ...], rng: np.random.Generator) -> Any:
    doubled = (*shape[:-1], shape[-1] * 2) if shape else shape
    return _values(doubled, rng)[..., ::2] if shape else _values(shape, rng)


def _readonly(shape: tuple[int, ...], rng: np.random.Generator) -> Any:
    a = _values(shape, rng)
    a.flags.writeable = False
    return a


ARRAY_VALUES: list[tuple[str, ArrayFactory, str]] = [
    ("none", lambda s, r: None, "invalid"),
    ("object", lambda s, r: _values(s, r).astype(object), "invalid"),
    ("str", lambda s, r: np.full(s, "a"), "invalid"),
    ("bytes", lambda s, r: np.full(s, b"a"), "invalid"),
    ("complex", lambda s, r: _values(s, r).astype(np.complex64), "invalid"),
    ("datetime", lambda s, r: np.zeros(s, "datetime64[s]"), "invalid"),
    ("structured", lambda s, r: np.zeros(s, [("a", "f4")]), "invalid"),
    ("dict", lambda s, r: {"x": 1}, "invalid"),
    ("string", lambda s, r: "abc", "invalid"),
    ("ragged", lambda s, r: [[1.0, 2.0], [3.0]], "invalid"),
    ("generator", lambda s, r: (float(i) for i in range(3)), "invalid"),
    ("list_of_str", lambda s, r: [["a", "b"]], "invalid"),
    ("bool", lambda s, r: _values(s, r) > 0, "edge"),
    ("int64", lambda s, r: r.integers(-3, 4, s), "edge"),
    ("uint8", lambda s, r: r.integers(0, 255, s).astype(np.uint8), "edge"),
    ("float64", lambda s, r: _values(s, r).astype(np.float64), "edge"),
    ("float16", lambda s, r: _values(s, r).astype(np.float16), "any"),
    ("nested_list", lambda s, r: _values(s, r).tolist(), "edge"),
    ("fortran", lambda s, r: np.asfortranarray(_values(s, r)), "edge"),
    ("noncontiguous", _noncontiguous, "edge"),
    ("readonly", _readonly, "edge"),
    ("broadcast_moderate", _broadcast_moderate, "edge"),
    ("nan", lambda s, r: np.full(s, np.nan, np.float32), "any"),
    ("inf", lambda s, r: np.full(s, np.inf, np.float32), "any"),
    ("huge_values", lambda s, r: np.full(s, 3e38, np.float32), "any"),
    ("scalar", lambda s, r: 1.5, "any"),
    ("array_0d", lambda s, r: np.array(1.5, np.float32), "any"),
    ("extra_axis", lambda s, r: _values((*s, 1), r), "any"),
    ("missing_axis", lambda s, r: _values(s[:-1], r), "any"),
    ("zero_batch", _zero_axis(0), "edge"),
    ("zero_axis_1", _zero_axis(1), "any"),
    ("zero_axis_2", _zero_axis(2), "any"),
    ("zero_last", lambda s, r: _zero_axis(len(s) - 1)(s, r), "any"),
    ("broadcast_huge", _broadcast_huge, "any"),
]
