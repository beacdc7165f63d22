"""The machinery of the stress calls (see reliability_stress.py): families, damages, cases and their oracle.

A family is one public function with a valid base call and the arguments a case may damage; a case takes
one or two damages from the value pools in tests/support/bad_values.py. Its ``kind`` follows from them
(any invalid damage makes the case invalid: only a convlens error is right). Returned results meet an
oracle: floating dtypes, the expected batch axis for an empty batch, and (for array damages that keep the
values, e.g. bool, int, Fortran order) the same numbers as the call on plain float64 inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from _stress_runner import Case
from tests.support.bad_values import (
    ARRAY_VALUES,
    BOOL_VALUES,
    CHOICE_VALUES,
    FLOAT_VALUES,
    INT_VALUES,
    PADDING_VALUES,
)

SAME_VALUES = (
    "bool",
    "int64",
    "uint8",
    "float64",
    "nested_list",
    "fortran",
    "noncontiguous",
    "readonly",
    "broadcast_moderate",
)


@dataclass
class Family:
    """A public call with a valid base and the arguments a case may damage, by type."""

    name: str
    call: Callable[..., Any]
    base: Callable[[np.random.Generator], dict[str, Any]]
    arrays: tuple[str, ...] = ()
    optional: tuple[str, ...] = ("bias", "gamma", "beta", "mask")  # arrays for which None is a valid value
    ints: tuple[str, ...] = ()  # sizes, strides...: zero is invalid
    int_any: tuple[str, ...] = ()  # axis, seed...: zero may be valid
    floats: tuple[str, ...] = ()  # must be finite
    float_inf_ok: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    paddings: tuple[str, ...] = ()
    bools: tuple[str, ...] = ()
    batch_out: bool = True  # a zero batch in `arrays[0]` must give a zero batch out
    weight: float = 1.0
    # compare(result, canonical kwargs) -> True when the result matches the call on plain float64 inputs
    compare: Callable[[Any, dict[str, Any]], bool] | None = None
    result_check: Callable[[Any], str | None] | None = None  # replaces the floating-dtype check
    extra: list[tuple[str, str, Any, str]] = field(default_factory=list)  # (arg, label, value, kind)


@dataclass
class LayerResult:
    """A layer's output together with the layer (so the oracle can call it again)."""

    y: Any
    layer: Any


def _floating(result: Any) -> str | None:
    if isinstance(result, LayerResult):
        result = result.y
    items = result if isinstance(result, tuple) else (result,)
    for item in items:
        if item is None or isinstance(item, (float, int, bool, np.bool_)):  # a cache's flags and sizes
            continue
        if isinstance(item, np.ndarray):
            if item.dtype.kind != "f":
                return f"result dtype {item.dtype}"
            continue
        if isinstance(item, (np.floating,)):
            continue
        if isinstance(item, tuple):
            bad = _floating(item)
            if bad:
                return bad
            continue
        return f"result of type {type(item).__name__}"
    return None


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=2e-3, atol=2e-3, equal_nan=True))


def _first_axis_zero(result: Any) -> bool:
    if isinstance(result, LayerResult):
        result = result.y
    if hasattr(result, "model") and hasattr(result, "value"):  # _stress_api.ModelResult
        result = result.value
    first = result[0] if isinstance(result, tuple) else result
    return isinstance(first, np.ndarray) and first.ndim > 0 and first.shape[0] == 0


def _mutation_pool(family: Family) -> list[tuple[str, str, Any, str]]:
    pool: list[tuple[str, str, Any, str]] = []
    for i, arg in enumerate(family.arrays):
        for label, factory, kind in ARRAY_VALUES:
            if i > 0 and label.startswith(("zero_", "broadcast_moderate")):
                kind = "any"  # an empty or broadcast kernel, bias, label array... is not an edge case
            if label == "none" and arg in family.optional:
                kind = "any"
            pool.append((arg, f"array:{label}", factory, kind))
    for arg in family.ints:
        for label, value, kind in INT_VALUES:
            if label in ("zero", "none", "array_0d"):
                kind = "invalid" if label == "zero" else kind
            pool.append((arg, f"int:{label}", value, kind))
    for arg in family.int_any:
        pool += [
            (arg, f"int:{label}", value, "any" if label == "minus_one" else kind) for label, value, kind in INT_VALUES
        ]
    for arg in family.floats:
        pool += [
            (arg, f"float:{label}", value, "invalid" if label == "inf" else kind) for label, value, kind in FLOAT_VALUES
        ]
    for arg in family.float_inf_ok:
        pool += [(arg, f"float:{label}", value, kind) for label, value, kind in FLOAT_VALUES]
    for arg in family.choices:
        pool += [
            (arg, f"choice:{label}", value, "any" if kind == "edge" else kind) for label, value, kind in CHOICE_VALUES
        ]
    for arg in family.paddings:
        pool += [(arg, f"padding:{label}", value, kind) for label, value, kind in PADDING_VALUES]
    for arg in family.bools:
        pool += [(arg, f"bool:{label}", value, kind) for label, value, kind in BOOL_VALUES]
    pool += family.extra
    return pool


_KIND_ORDER = {"invalid": 2, "any": 1, "edge": 0}


def make_cases(families: list[Family], count: int, rng: random.Random, prefix: str) -> list[Case]:
    """``count`` seeded cases over ``families`` (weighted), one or two damages each."""
    pools = [_mutation_pool(f) for f in families]
    weights = [f.weight for f in families]
    cases = []
    for _ in range(count):
        index = rng.choices(range(len(families)), weights)[0]
        family, pool = families[index], pools[index]
        picks = [rng.choice(pool)]
        if rng.random() < 0.25:
            second = rng.choice(pool)
            if second[0] != picks[0][0]:
                picks.append(second)
        seed = rng.randrange(2**31)
        cases.append(_case(family, picks, seed, prefix))
    return cases


def _case(family: Family, picks: list[tuple[str, str, Any, str]], seed: int, prefix: str) -> Case:
    kind = max((p[3] for p in picks), key=_KIND_ORDER.__getitem__)
    # Whether a clean error names the damaged argument is only measured when one argument was damaged.
    invalid_arg = picks[0][0] if len(picks) == 1 and picks[0][3] == "invalid" else None
    label = f"{family.name}(" + ", ".join(f"{arg}={what}" for arg, what, _, _ in picks) + ")"

    def arguments() -> tuple[dict[str, Any], dict[str, Any]]:
        nprng = np.random.default_rng(seed)
        kwargs = family.base(nprng)
        canonical = dict(kwargs)
        comparable = True
        for arg, what, value, _ in picks:
            if what.startswith("array:"):
                shape = np.shape(kwargs[arg]) if kwargs.get(arg) is not None else (2, 3)
                kwargs[arg] = value(tuple(shape), nprng)
                if what.split(":", 1)[1] in SAME_VALUES:
                    # The documented conversion: integers and bools become float32, floats keep their dtype.
                    plain = np.ascontiguousarray(np.asarray(kwargs[arg]))
                    canonical[arg] = plain.astype(np.float32) if plain.dtype.kind in "biu" else plain
                else:
                    comparable = False
            else:
                kwargs[arg] = value
                comparable = False
        return kwargs, canonical if comparable else {}

    def run() -> Any:
        kwargs, _ = arguments()
        return family.call(**kwargs)

    def check(result: Any) -> str | None:
        bad = family.result_check(result) if family.result_check is not None else _floating(result)
        if bad:
            return bad
        _kwargs, canonical = arguments()
        main = family.arrays[0] if family.arrays else None
        zero_batch = any(what == "array:zero_batch" and arg == main for arg, what, _, _ in picks)
        if zero_batch and family.batch_out and not _first_axis_zero(result):
            return "a zero batch did not give a zero batch out"
        if canonical and kind == "edge" and not zero_batch:
            if family.compare is not None:
                same = family.compare(result, canonical)
            else:
                same = _close(result, family.call(**canonical))
            if not same:
                return "result differs from the same call on float64 inputs"
        return None

    return Case(family=f"{prefix}.{family.name}", label=label, run=run, kind=kind, arg=invalid_arg, check=check)


def _is_geometry(result: Any) -> str | None:
    from convlens.geometry import WindowGeometry

    return None if isinstance(result, WindowGeometry) else f"result of type {type(result).__name__}"
