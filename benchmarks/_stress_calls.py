"""Seeded bad and edge-case calls to the public ops and layers (see reliability_stress.py).

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


# ----- op families -----------------------------------------------------------------------------------
def _r(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def op_families() -> list[Family]:
    from convlens import ops
    from convlens.geometry import WindowGeometry

    conv_args = {"ints": ("strides", "dilation_rate", "groups"), "paddings": ("padding",), "choices": ("data_format",)}
    pool_args = {"ints": ("pool_size", "strides"), "choices": ("padding", "data_format")}
    fams = [
        Family(
            "conv2d",
            ops.conv2d,
            lambda r: {
                "x": _r(r, 2, 6, 5, 3),
                "kernel": _r(r, 3, 2, 3, 4),
                "bias": _r(r, 4),
                "strides": 1,
                "padding": "valid",
                "dilation_rate": 1,
                "groups": 1,
                "data_format": "channels_last",
            },
            arrays=("x", "kernel", "bias"),
            weight=3,
            **conv_args,
        ),
        Family(
            "conv2d_backward",
            ops.conv2d_backward,
            lambda r: {
                "grad_out": _r(r, 2, 4, 4, 4),
                "x": _r(r, 2, 6, 5, 3),
                "kernel": _r(r, 3, 2, 3, 4),
                "strides": 1,
                "padding": "valid",
                "dilation_rate": 1,
                "groups": 1,
            },
            arrays=("x", "grad_out", "kernel"),
            ints=("strides", "dilation_rate", "groups"),
            paddings=("padding",),
            bools=("compute_grad_x",),
            weight=2,
            batch_out=False,
        ),
        Family(
            "conv1d",
            ops.conv1d,
            lambda r: {
                "x": _r(r, 2, 7, 3),
                "kernel": _r(r, 3, 3, 4),
                "bias": None,
                "strides": 1,
                "padding": "causal",
                "dilation_rate": 1,
                "groups": 1,
            },
            arrays=("x", "kernel", "bias"),
            weight=2,
            **conv_args,
        ),
        Family(
            "conv1d_backward",
            ops.conv1d_backward,
            lambda r: {"grad_out": _r(r, 2, 5, 4), "x": _r(r, 2, 7, 3), "kernel": _r(r, 3, 3, 4)},
            arrays=("x", "grad_out", "kernel"),
            ints=("strides", "dilation_rate"),
            paddings=("padding",),
            batch_out=False,
        ),
        Family(
            "max_pool2d",
            ops.max_pool2d,
            lambda r: {"x": _r(r, 2, 6, 5, 3), "pool_size": 2, "strides": None, "padding": "valid"},
            arrays=("x",),
            weight=2,
            **pool_args,
        ),
        Family(
            "avg_pool2d",
            ops.avg_pool2d,
            lambda r: {"x": _r(r, 2, 6, 5, 3), "pool_size": 2, "strides": None, "padding": "same"},
            arrays=("x",),
            weight=2,
            **pool_args,
        ),
        Family(
            "max_pool1d",
            ops.max_pool1d,
            lambda r: {"x": _r(r, 2, 7, 3), "pool_size": 2, "padding": "same"},
            arrays=("x",),
            **pool_args,
        ),
        Family(
            "avg_pool1d",
            ops.avg_pool1d,
            lambda r: {"x": _r(r, 2, 7, 3), "pool_size": 3, "strides": 2},
            arrays=("x",),
            **pool_args,
        ),
        Family(
            "max_pool2d_backward",
            ops.max_pool2d_backward,
            lambda r: {"grad_out": _r(r, 2, 3, 2, 3), "x": _r(r, 2, 6, 5, 3), "pool_size": 2},
            arrays=("x", "grad_out"),
            batch_out=False,
            **pool_args,
        ),
        Family(
            "avg_pool1d_backward",
            ops.avg_pool1d_backward,
            lambda r: {"grad_out": _r(r, 2, 3, 3), "x": _r(r, 2, 7, 3), "pool_size": 2},
            arrays=("x", "grad_out"),
            batch_out=False,
            **pool_args,
        ),
        Family(
            "global_max_pool2d",
            ops.global_max_pool2d,
            lambda r: {"x": _r(r, 2, 4, 8, 3)},
            arrays=("x",),
            bools=("keepdims",),
            choices=("data_format",),
            weight=1.5,
        ),
        Family(
            "global_avg_pool1d",
            ops.global_avg_pool1d,
            lambda r: {"x": _r(r, 2, 4, 3)},
            arrays=("x",),
            bools=("keepdims",),
            choices=("data_format",),
        ),
        Family(
            "global_max_pool2d_backward",
            ops.global_max_pool2d_backward,
            lambda r: {"grad_out": _r(r, 2, 3), "x": _r(r, 2, 4, 8, 3)},
            arrays=("grad_out", "x"),
            bools=("keepdims",),
            batch_out=False,
        ),
        Family(
            "dense",
            ops.dense,
            lambda r: {"x": _r(r, 4, 5), "kernel": _r(r, 5, 3), "bias": _r(r, 3)},
            arrays=("x", "kernel", "bias"),
            weight=2,
        ),
        Family(
            "dense_backward",
            ops.dense_backward,
            lambda r: {"grad_out": _r(r, 4, 3), "x": _r(r, 4, 5), "kernel": _r(r, 5, 3)},
            arrays=("grad_out", "x", "kernel"),
            bools=("compute_grad_x",),
            batch_out=False,
        ),
        Family(
            "dropout",
            ops.dropout,
            lambda r: {"x": _r(r, 4, 5), "rate": 0.5, "rng": np.random.default_rng(0), "training": True},
            arrays=("x",),
            floats=("rate",),
            bools=("training",),
            extra=[
                ("rng", "rng:none", None, "invalid"),
                ("rng", "rng:int", 3, "invalid"),
                ("rng", "rng:str", "x", "invalid"),
            ],
            weight=1.5,
        ),
        Family(
            "dropout_backward",
            ops.dropout_backward,
            lambda r: {"grad_out": _r(r, 4, 5), "mask": _r(r, 4, 5)},
            arrays=("grad_out", "mask"),
            batch_out=False,
        ),
        Family(
            "batch_norm_forward",
            ops.batch_norm_forward,
            lambda r: {
                "x": _r(r, 4, 3, 5),
                "gamma": _r(r, 5),
                "beta": _r(r, 5),
                "moving_mean": np.zeros(5, np.float32),
                "moving_variance": np.ones(5, np.float32),
                "momentum": 0.9,
                "epsilon": 1e-3,
                "training": True,
            },
            arrays=("x", "gamma", "beta", "moving_mean", "moving_variance"),
            floats=("momentum", "epsilon"),
            bools=("training",),
            weight=2,
        ),
        Family(
            "softmax",
            ops.softmax,
            lambda r: {"x": _r(r, 4, 5), "axis": -1},
            arrays=("x",),
            int_any=("axis",),
            weight=1.5,
        ),
        Family(
            "softmax_backward",
            ops.softmax_backward,
            lambda r: {"grad_out": _r(r, 4, 5), "y": _r(r, 4, 5)},
            arrays=("grad_out", "y"),
            int_any=("axis",),
            batch_out=False,
        ),
        Family("relu", ops.relu, lambda r: {"x": _r(r, 4, 5)}, arrays=("x",)),
        Family(
            "relu_backward",
            ops.relu_backward,
            lambda r: {"grad_out": _r(r, 4, 5), "y": _r(r, 4, 5)},
            arrays=("grad_out", "y"),
            batch_out=False,
        ),
        Family("sigmoid", ops.sigmoid, lambda r: {"x": _r(r, 4, 5)}, arrays=("x",)),
        Family("tanh", ops.tanh, lambda r: {"x": _r(r, 4, 5)}, arrays=("x",)),
        Family("gelu", ops.gelu, lambda r: {"x": _r(r, 4, 5)}, arrays=("x",), bools=("approximate",)),
        Family("elu", ops.elu, lambda r: {"x": _r(r, 4, 5), "alpha": 1.0}, arrays=("x",), floats=("alpha",)),
        Family(
            "leaky_relu",
            ops.leaky_relu,
            lambda r: {"x": _r(r, 4, 5), "negative_slope": 0.2},
            arrays=("x",),
            floats=("negative_slope",),
        ),
        Family("softplus", ops.softplus, lambda r: {"x": _r(r, 4, 5)}, arrays=("x",)),
        Family("silu", ops.silu, lambda r: {"x": _r(r, 4, 5)}, arrays=("x",)),
        Family("erf", ops.erf, lambda r: {"x": _r(r, 4, 5)}, arrays=("x",), weight=0.5),
        Family(
            "sigmoid_backward",
            ops.sigmoid_backward,
            lambda r: {"grad_out": _r(r, 4, 5), "y": _r(r, 4, 5)},
            arrays=("grad_out", "y"),
            batch_out=False,
            weight=0.5,
        ),
        Family(
            "sparse_categorical_crossentropy",
            ops.sparse_categorical_crossentropy,
            lambda r: {"y_true": r.integers(0, 3, 4), "y_pred": np.abs(_r(r, 4, 3)) + 0.1},
            arrays=("y_true", "y_pred"),
            bools=("from_logits",),
            batch_out=False,
            weight=1.5,
        ),
        Family(
            "categorical_crossentropy_backward",
            ops.categorical_crossentropy_backward,
            lambda r: {"y_true": np.eye(3, dtype=np.float32)[r.integers(0, 3, 4)], "y_pred": np.abs(_r(r, 4, 3)) + 0.1},
            arrays=("y_true", "y_pred"),
            bools=("from_logits",),
            batch_out=False,
        ),
        Family(
            "binary_crossentropy",
            ops.binary_crossentropy,
            lambda r: {"y_true": (_r(r, 4, 1) > 0) * 1.0, "y_pred": np.full((4, 1), 0.3, np.float32)},
            arrays=("y_true", "y_pred"),
            bools=("from_logits",),
            batch_out=False,
        ),
        Family(
            "mean_squared_error",
            ops.mean_squared_error,
            lambda r: {"y_true": _r(r, 4, 2), "y_pred": _r(r, 4, 2)},
            arrays=("y_true", "y_pred"),
            batch_out=False,
        ),
        Family(
            "softmax_cross_entropy_with_logits",
            ops.softmax_cross_entropy_with_logits,
            lambda r: {"labels": r.integers(0, 3, 4), "logits": _r(r, 4, 3)},
            arrays=("labels", "logits"),
            batch_out=False,
        ),
        Family(
            "WindowGeometry.resolve",
            WindowGeometry.resolve,
            lambda r: {"input_size": (7, 6), "kernel_size": 3, "strides": 1, "padding": "same", "dilation_rate": 1},
            ints=("kernel_size", "strides", "dilation_rate"),
            paddings=("padding",),
            extra=[
                ("input_size", "size:none", None, "invalid"),
                ("input_size", "size:huge", (10**12, 10**12), "any"),
                ("input_size", "size:neg", (-1, 3), "invalid"),
                ("input_size", "size:str", "7x6", "invalid"),
            ],
            batch_out=False,
            result_check=_is_geometry,
        ),
    ]
    for name in ("get_activation", "get_loss"):
        default = "relu" if name == "get_activation" else "mse"
        fams.append(
            Family(
                name,
                getattr(ops, name),
                lambda r, d=default: {"identifier": d},
                choices=("identifier",),
                batch_out=False,
                weight=0.3,
                result_check=lambda result: None,
            )
        )
    return fams


# ----- layer families -------------------------------------------------------------------------------------
def _layer_call(cls: Any) -> Callable[..., Any]:
    def call(x: Any = None, **kwargs: Any) -> LayerResult:
        layer = cls(**kwargs)
        return LayerResult(layer(x, training=True), layer)

    return call


def _layer_compare(result: LayerResult, canonical: dict[str, Any]) -> bool:
    if type(result.layer).__name__ == "Dropout":
        return True
    return _close(result.y, result.layer(canonical["x"], training=True))


def layer_families() -> list[Family]:
    from convlens import layers

    def fam(name: str, input_shape: tuple[int, ...], base: dict[str, Any], weight: float = 1.0, **kw: Any) -> Family:
        cls = getattr(layers, name)

        def make_base(r: np.random.Generator) -> dict[str, Any]:
            return {"x": _r(r, 2, *input_shape), **base}

        return Family(
            f"layers.{name}", _layer_call(cls), make_base, arrays=("x",), weight=weight, compare=_layer_compare, **kw
        )

    conv = {
        "ints": ("filters", "kernel_size", "strides", "dilation_rate", "groups"),
        "paddings": ("padding",),
        "choices": ("activation", "data_format", "kernel_initializer"),
        "bools": ("use_bias",),
    }
    pool = {"ints": ("pool_size", "strides"), "choices": ("padding", "data_format")}
    return [
        fam("Conv2D", (6, 6, 2), {"filters": 4, "kernel_size": 3}, weight=3, **conv),
        fam("Conv1D", (7, 2), {"filters": 4, "kernel_size": 3, "padding": "causal"}, weight=1.5, **conv),
        fam(
            "DepthwiseConv2D",
            (6, 6, 2),
            {"kernel_size": 3},
            ints=("kernel_size", "strides", "depth_multiplier"),
            paddings=("padding",),
            bools=("use_bias",),
        ),
        fam(
            "Dense",
            (5,),
            {"units": 3},
            weight=2,
            ints=("units",),
            choices=("activation", "kernel_initializer"),
            bools=("use_bias",),
        ),
        fam("Dropout", (5,), {"rate": 0.5}, floats=("rate",), int_any=("seed",)),
        fam(
            "BatchNormalization",
            (4, 3),
            {},
            weight=1.5,
            int_any=("axis",),
            floats=("momentum", "epsilon"),
            bools=("center", "scale"),
        ),
        fam("MaxPooling2D", (6, 5, 2), {}, weight=2, **pool),
        fam("AveragePooling2D", (6, 5, 2), {"padding": "same"}, **pool),
        fam("MaxPooling1D", (7, 2), {"padding": "same"}, weight=1.5, **pool),
        fam("AveragePooling1D", (7, 2), {}, **pool),
        fam("GlobalMaxPooling2D", (4, 5, 2), {}, bools=("keepdims",), choices=("data_format",)),
        fam("GlobalAveragePooling1D", (4, 2), {}, bools=("keepdims",), choices=("data_format",)),
        fam("ZeroPadding2D", (3, 4, 2), {"padding": 1}, paddings=("padding",)),
        fam("ZeroPadding1D", (3, 2), {"padding": 1}, paddings=("padding",)),
        fam("Activation", (5,), {"activation": "relu"}, choices=("activation",)),
        fam("ReLU", (5,), {}, float_inf_ok=("max_value",), floats=("negative_slope", "threshold")),
        fam("Softmax", (5,), {}, int_any=("axis",)),
        fam("Flatten", (3, 2), {}, choices=("data_format",)),
    ]
