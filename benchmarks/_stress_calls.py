"""Seeded bad and edge-case calls to the public ops and layers (families for _stress_families.make_cases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from _stress_families import Family, LayerResult, _close, _is_geometry


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
