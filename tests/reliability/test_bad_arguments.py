"""Property tests: any bad argument to an op, a layer or fit gets a documented convlens error naming it.

Each example damages one argument with a value from the pools in tests/support/bad_values.py (None, NaN,
strings, bools, huge ints, object/complex/str arrays, empty axes, absurd broadcast views...). An invalid value
must raise a :class:`~convlens.errors.ConvlensError` whose message names the argument; any other value must
either do the same or return floating results. No other exception, no hang, no huge allocation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlens as cl
from convlens import ops
from convlens.errors import ConvlensError
from tests.support.bad_values import (
    ARRAY_VALUES,
    BOOL_VALUES,
    CHOICE_VALUES,
    FLOAT_VALUES,
    INT_VALUES,
    PADDING_VALUES,
)

Damage = tuple[str, str, Any, str]  # (argument, label, value, kind)
RNG = np.random.default_rng(0)


def _arrays(arg: str, shape: tuple[int, ...], *, main: bool = True, optional: bool = False) -> list[Damage]:
    out = []
    for label, factory, kind in ARRAY_VALUES:
        if not main and label.startswith(("zero_", "broadcast_moderate")):
            kind = "any"
        if optional and label == "none":
            kind = "any"
        out.append((arg, label, factory(shape, RNG), kind))
    return out


def _ints(arg: str, zero_invalid: bool = True) -> list[Damage]:
    return [(arg, label, v, "invalid" if zero_invalid and label == "zero" else k) for label, v, k in INT_VALUES]


def _floats(arg: str) -> list[Damage]:
    return [(arg, label, v, "invalid" if label == "inf" else k) for label, v, k in FLOAT_VALUES]


def _bools(arg: str) -> list[Damage]:
    return [(arg, label, v, k) for label, v, k in BOOL_VALUES]


def _choices(arg: str) -> list[Damage]:
    return [(arg, label, v, "any" if k == "edge" else k) for label, v, k in CHOICE_VALUES]


def _paddings(arg: str) -> list[Damage]:
    # 'pairs_huge' pads one side by 10**6: a legal request for a ~1.5 GB im2col that takes seconds; the stress
    # script covers it, a unit test should not wait for it.
    return [(arg, label, v, k) for label, v, k in PADDING_VALUES if label != "pairs_huge"]


def _floating(result: Any) -> bool:
    items = result if isinstance(result, tuple) else (result,)
    return all(
        item is None
        or isinstance(item, (float, bool, int, np.floating))
        or (isinstance(item, np.ndarray) and item.dtype.kind == "f")
        or (isinstance(item, tuple) and _floating(item))
        for item in items
    )


def check(call: Callable[..., Any], base: dict[str, Any], damage: Damage) -> None:
    """Run ``call(**base)`` with one argument damaged; only convlens errors naming it, or floating results."""
    arg, label, value, kind = damage
    kwargs = {**base, arg: value}
    try:
        with warnings.catch_warnings():  # NaN/inf data give NaN results, and NumPy says so: not our concern here
            warnings.simplefilter("ignore", RuntimeWarning)
            result = call(**kwargs)
    except ConvlensError as exc:
        message = str(exc)
        assert "\n" not in message, message
        if kind == "invalid":
            assert arg in message, f"{arg}={label}: {message}"
        return
    assert kind != "invalid", f"{arg}={label} was accepted"
    assert _floating(result), f"{arg}={label} gave {type(result)}"


def _x(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


CONV = {
    "x": _x(2, 6, 5, 3),
    "kernel": _x(3, 2, 3, 4),
    "bias": _x(4),
    "strides": 1,
    "padding": "valid",
    "dilation_rate": 1,
    "groups": 1,
    "data_format": "channels_last",
}
CONV_DAMAGES = [
    *_arrays("x", (2, 6, 5, 3)),
    *_arrays("kernel", (3, 2, 3, 4), main=False),
    *_arrays("bias", (4,), main=False, optional=True),
    *_ints("strides"),
    *_ints("dilation_rate"),
    *_ints("groups"),
    *_paddings("padding"),
    *_choices("data_format"),
]


@given(st.sampled_from(CONV_DAMAGES))
def test_conv2d(damage: Damage) -> None:
    check(ops.conv2d, CONV, damage)


@given(st.sampled_from(CONV_DAMAGES))
def test_conv2d_backward(damage: Damage) -> None:
    base = {k: v for k, v in CONV.items() if k != "bias"} | {"grad_out": _x(2, 4, 4, 4)}
    if damage[0] != "bias":
        check(ops.conv2d_backward, base, damage)


POOL_DAMAGES = [
    *_arrays("x", (2, 6, 5, 3)),
    *_ints("pool_size"),
    *_ints("strides"),
    *_choices("padding"),
    *_choices("data_format"),
]


@pytest.mark.parametrize("op", [ops.max_pool2d, ops.avg_pool2d])
@given(damage=st.sampled_from(POOL_DAMAGES))
def test_pooling_2d(op: Callable[..., Any], damage: Damage) -> None:
    check(op, {"x": _x(2, 6, 5, 3), "pool_size": 2, "strides": None, "padding": "same"}, damage)


@given(st.sampled_from([*_arrays("x", (2, 7, 3)), *_ints("pool_size"), *_ints("strides"), *_choices("padding")]))
def test_max_pool1d_backward(damage: Damage) -> None:
    base = {"grad_out": _x(2, 3, 3), "x": _x(2, 7, 3), "pool_size": 2, "strides": None, "padding": "valid"}
    check(ops.max_pool1d_backward, base, damage)


@given(st.sampled_from([*_arrays("x", (2, 4, 8, 3)), *_bools("keepdims"), *_choices("data_format")]))
def test_global_pooling(damage: Damage) -> None:
    check(ops.global_max_pool2d, {"x": _x(2, 4, 8, 3)}, damage)


ACTIVATIONS = [ops.relu, ops.sigmoid, ops.tanh, ops.softplus, ops.silu, ops.gelu, ops.selu, ops.erf, ops.linear]


@pytest.mark.parametrize("op", ACTIVATIONS)
@given(damage=st.sampled_from(_arrays("x", (4, 5))))
def test_activations(op: Callable[..., Any], damage: Damage) -> None:
    check(op, {"x": _x(4, 5)}, damage)


@given(st.sampled_from([*_arrays("x", (4, 5)), *_ints("axis", zero_invalid=False)]))
def test_softmax(damage: Damage) -> None:
    arg, label, value, kind = damage
    check(ops.softmax, {"x": _x(4, 5), "axis": -1}, (arg, label, value, "any" if label == "minus_one" else kind))


@given(st.sampled_from([*_arrays("grad_out", (4, 5)), *_arrays("y", (4, 5), main=False)]))
def test_activation_backward(damage: Damage) -> None:
    check(ops.sigmoid_backward, {"grad_out": _x(4, 5), "y": _x(4, 5)}, damage)


@given(
    st.sampled_from(
        [
            *_arrays("x", (4, 5)),
            *_floats("rate"),
            *_bools("training"),
            ("rng", "none", None, "invalid"),
            ("rng", "int", 3, "invalid"),
        ]
    )
)
def test_dropout(damage: Damage) -> None:
    check(ops.dropout, {"x": _x(4, 5), "rate": 0.5, "rng": np.random.default_rng(0), "training": True}, damage)


@given(
    st.sampled_from(
        [
            *_arrays("x", (4, 3, 5)),
            *_arrays("gamma", (5,), main=False, optional=True),
            *_floats("momentum"),
            *_floats("epsilon"),
            *_bools("training"),
        ]
    )
)
def test_batch_norm(damage: Damage) -> None:
    def call(**kwargs: Any) -> Any:
        return ops.batch_norm_forward(
            **kwargs, moving_mean=np.zeros(5, np.float32), moving_variance=np.ones(5, np.float32)
        )[0]

    check(
        call,
        {"x": _x(4, 3, 5), "gamma": None, "beta": None, "momentum": 0.9, "epsilon": 1e-3, "training": True},
        damage,
    )


@given(st.sampled_from([*_arrays("y_true", (4,)), *_arrays("y_pred", (4, 3), main=False), *_bools("from_logits")]))
def test_sparse_categorical_crossentropy(damage: Damage) -> None:
    base = {"y_true": np.array([0, 1, 2, 1]), "y_pred": np.full((4, 3), 1 / 3, np.float32)}
    check(ops.sparse_categorical_crossentropy, base, damage)


@given(
    st.sampled_from(
        [
            *_arrays("x", (4, 5)),
            *_arrays("kernel", (5, 3), main=False),
            *_arrays("bias", (3,), main=False, optional=True),
        ]
    )
)
def test_dense(damage: Damage) -> None:
    check(ops.dense, {"x": _x(4, 5), "kernel": _x(5, 3), "bias": _x(3)}, damage)


# ----- layers -------------------------------------------------------------------------------------------------------
def _layer(cls: type, shape: tuple[int, ...]) -> Callable[..., Any]:
    def call(x: Any, **kwargs: Any) -> Any:
        return cls(**kwargs)(x, training=True)

    return call


LAYERS: list[tuple[type, tuple[int, ...], dict[str, Any], list[Damage]]] = [
    (
        cl.layers.Conv2D,
        (6, 6, 2),
        {"filters": 4, "kernel_size": 3},
        [
            *_ints("filters"),
            *_ints("kernel_size"),
            *_ints("strides"),
            *_ints("dilation_rate"),
            *_paddings("padding"),
            *_bools("use_bias"),
            *_choices("activation"),
        ],
    ),
    (cl.layers.Dense, (5,), {"units": 3}, [*_ints("units"), *_bools("use_bias"), *_choices("kernel_initializer")]),
    (
        cl.layers.MaxPooling1D,
        (7, 2),
        {"padding": "same"},
        [*_ints("pool_size"), *_ints("strides"), *_choices("padding")],
    ),
    (
        cl.layers.BatchNormalization,
        (4, 3),
        {},
        [*_floats("momentum"), *_floats("epsilon"), *_bools("center"), *_ints("axis", zero_invalid=False)],
    ),
    (cl.layers.Dropout, (5,), {"rate": 0.5}, [*_floats("rate"), *_ints("seed", zero_invalid=False)]),
    (cl.layers.ReLU, (5,), {}, [*_floats("negative_slope"), *_floats("threshold")]),
    (cl.layers.ZeroPadding2D, (3, 4, 2), {"padding": 1}, _paddings("padding")),
    (cl.layers.GlobalAveragePooling1D, (4, 2), {}, [*_bools("keepdims"), *_choices("data_format")]),
]


@pytest.mark.parametrize(("cls", "shape", "base", "damages"), LAYERS, ids=[entry[0].__name__ for entry in LAYERS])
@given(data=st.data())
def test_layers(cls: type, shape: tuple[int, ...], base: dict[str, Any], damages: list[Damage], data: Any) -> None:
    arg, label, value, kind = data.draw(st.sampled_from([*damages, *_arrays("x", (2, *shape))]))
    if arg in ("axis", "seed") and label == "minus_one":
        kind = "any"  # axis=-1 is the default; a seed of -1 is refused but fine to try
    check(_layer(cls, shape), {"x": _x(2, *shape), **base}, (arg, label, value, kind))


# ----- fit ---------------------------------------------------------------------------------------------------------
def _fit(**kwargs: Any) -> float:
    model = cl.Sequential([cl.layers.Conv2D(2, 3, input_shape=(6, 6, 1)), cl.layers.Flatten(), cl.layers.Dense(3)])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(**kwargs)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    return float(history.history["loss"][-1]) if history.history else 0.0


FIT_DAMAGES = [
    *_arrays("x", (8, 6, 6, 1)),
    *_ints("batch_size"),
    *[d for d in _ints("initial_epoch", zero_invalid=False) if d[1] != "minus_one"],
    *_floats("validation_split"),
    *_bools("shuffle"),
    ("verbose", "none", None, "invalid"),
    ("verbose", "three", 3, "invalid"),
    ("verbose", "str", "yes", "invalid"),
    ("callbacks", "single", cl.callbacks.History(), "invalid"),
    ("callbacks", "none_item", [None], "invalid"),
    ("validation_data", "one", (np.zeros((2, 6, 6, 1)),), "invalid"),
    ("validation_data", "str", "val", "invalid"),
    ("y", "out_of_range", np.full(8, 9), "invalid"),
    ("y", "nan", np.full(8, np.nan), "invalid"),
    ("y", "str", np.full(8, "a"), "invalid"),
    ("y", "short", np.zeros(3, np.int64), "invalid"),
]


@given(st.sampled_from(FIT_DAMAGES))
def test_fit(damage: Damage) -> None:
    base = {"x": _x(8, 6, 6, 1), "y": RNG.integers(0, 3, 8), "batch_size": 4, "epochs": 1, "verbose": 0}
    arg, label, value, kind = damage
    if arg == "x" and label in ("nan", "inf"):
        kind = "invalid"  # training data must be finite
    check(_fit, base, (arg, label, value, kind))
