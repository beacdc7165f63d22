"""convlens ``Sequential`` -> ONNX graph (opset 17, explicit ``pads``, float32).

The graph takes the same channels-last input as the convlens model (``input``: (N, *input_shape)) and
gives the same output (``output``). ONNX convolution and pooling are channel-first, so the exporter
inserts a ``Transpose`` where the layout has to change: once before the first convolution and once
before a ``Flatten`` or ``Dense`` (which read (H, W, C) order, as in Keras), never per layer.

Semantics kept exactly: 'same' padding as TensorFlow (the odd row/column at the end, written as
explicit ``pads``), average pooling with ``count_include_pad=0``, BatchNormalization with the layer's
own ``epsilon`` (Keras 1e-3, torch 1e-5) in inference form, Dropout as the identity.

Shapes:
    input (N, *S, C) channels-last; output: the convlens model's output shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convlens.errors import ConfigError
from convlens.geometry import WindowGeometry
from convlens.interop.layout import (
    channels_first_perm,
    conv_kernel_to_channels_first,
    depthwise_kernel_to_channels_first,
    inverse_perm,
)
from convlens.layers.base import Layer
from convlens.models import Sequential

__all__ = ["EXPORTED_LAYERS", "OPSET", "to_onnx"]

OPSET = 17
IR_VERSION = 8  # the lowest IR version that carries opset 17: readable by older runtimes too


class _Graph:
    """Nodes and initializers of a chain, with the current tensor and its layout."""

    def __init__(self, tensor: str, rank: int) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.tensor = tensor
        self.rank = rank
        self.channels_first = False
        self._count = 0

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        """Append a node reading ``inputs``; the current tensor becomes its output."""
        from onnx import helper

        self._count += 1
        output = f"{name}:{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attrs))
        self.tensor = output
        return output

    def unary(self, op_type: str, name: str, **attrs: Any) -> str:
        return self.op(op_type, [self.tensor], name, **attrs)

    def to_channels_first(self, name: str) -> None:
        if not self.channels_first and self.rank > 2:
            self.unary(
                "Transpose", f"{name}/to_channels_first", perm=list(inverse_perm(channels_first_perm(self.rank)))
            )
            self.channels_first = True

    def to_channels_last(self, name: str) -> None:
        if self.channels_first and self.rank > 2:
            self.unary("Transpose", f"{name}/to_channels_last", perm=list(channels_first_perm(self.rank)))
        self.channels_first = False


def _onnx_pads(pads: tuple[tuple[int, int], ...]) -> list[int]:
    return [b for b, _ in pads] + [a for _, a in pads]


def _check_channels_last(layer: Layer) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ConfigError(f"{layer!r}: ONNX export supports data_format='channels_last' only, got 'channels_first'.")


def _activation(g: _Graph, name: str, where: str) -> None:
    """Apply a Keras activation by name to the current tensor."""
    if name == "linear":
        return
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "selu": "Selu"}
    if name in simple:
        g.unary(simple[name], f"{where}/{simple[name]}")
    elif name == "softmax":
        g.unary("Softmax", f"{where}/Softmax", axis=1 if g.channels_first else -1)
    elif name == "leaky_relu":
        g.unary("LeakyRelu", f"{where}/LeakyRelu", alpha=0.2)
    elif name == "elu":
        g.unary("Elu", f"{where}/Elu", alpha=1.0)
    elif name == "relu6":
        g.op("Clip", [g.tensor, g.const(f"{where}/zero", 0.0), g.const(f"{where}/six", 6.0)], f"{where}/Clip")
    elif name == "silu":
        x = g.tensor
        g.op("Mul", [x, g.unary("Sigmoid", f"{where}/Sigmoid")], f"{where}/Mul")
    elif name == "gelu":  # exact: 0.5 * x * (1 + erf(x / sqrt(2)))
        x = g.tensor
        g.op("Div", [x, g.const(f"{where}/sqrt2", math.sqrt(2.0))], f"{where}/Div")
        g.unary("Erf", f"{where}/Erf")
        g.op("Add", [g.tensor, g.const(f"{where}/one", 1.0)], f"{where}/Add")
        g.op("Mul", [x, g.tensor], f"{where}/Mul")
        g.op("Mul", [g.tensor, g.const(f"{where}/half", 0.5)], f"{where}/Mul_half")
    else:
        raise ConfigError(f"{where}: activation {name!r} has no ONNX export; supported: {sorted(_ACTIVATIONS)}.")


_ACTIVATIONS: tuple[str, ...] = ("linear", "relu", "sigmoid", "tanh", "softplus", "selu", "softmax", "leaky_relu")
_ACTIVATIONS += ("elu", "relu6", "silu", "gelu")


def _conv(g: _Graph, layer: Any) -> None:
    _check_channels_last(layer)
    g.to_channels_first(layer.name)
    geometry = layer.geometry(layer.input_shape)
    depthwise = type(layer).__name__ == "DepthwiseConv2D"
    kernel = layer.params["kernel"]
    weight = depthwise_kernel_to_channels_first(kernel) if depthwise else conv_kernel_to_channels_first(kernel)
    inputs = [g.tensor, g.const(f"{layer.name}/kernel", weight)]
    if layer.use_bias:
        inputs.append(g.const(f"{layer.name}/bias", layer.params["bias"]))
    g.op(
        "Conv",
        inputs,
        f"{layer.name}/Conv",
        kernel_shape=list(geometry.kernel_size),
        strides=list(geometry.strides),
        dilations=list(geometry.dilation_rate),
        pads=_onnx_pads(geometry.pads),
        group=int(layer.groups),
    )
    _activation(g, layer.activation.name, layer.name)


def _pool(g: _Graph, layer: Any) -> None:
    _check_channels_last(layer)
    g.to_channels_first(layer.name)
    spatial = tuple(layer.input_shape[1:-1])
    geometry = WindowGeometry.resolve(spatial, layer.pool_size, layer.strides, layer.padding, owner=repr(layer))
    attrs: dict[str, Any] = {
        "kernel_shape": list(geometry.kernel_size),
        "strides": list(geometry.strides),
        "pads": _onnx_pads(geometry.pads),
    }
    if layer.kind == "avg":
        g.unary("AveragePool", f"{layer.name}/AveragePool", count_include_pad=0, **attrs)
    else:
        g.unary("MaxPool", f"{layer.name}/MaxPool", **attrs)


def _global_pool(g: _Graph, layer: Any) -> None:
    _check_channels_last(layer)
    g.to_channels_first(layer.name)
    g.unary("GlobalAveragePool" if layer.kind == "avg" else "GlobalMaxPool", f"{layer.name}/GlobalPool")
    if not layer.keepdims:
        g.unary("Flatten", f"{layer.name}/Flatten", axis=1)
        g.rank, g.channels_first = 2, False


def _batch_norm(g: _Graph, layer: Any) -> None:
    if layer._channel_axis != g.rank - 1:
        raise ConfigError(f"{layer!r}: ONNX export normalises the last (channel) axis only, got axis={layer.axis}.")
    g.to_channels_first(layer.name)
    channels = layer.state["moving_mean"].shape[0]
    gamma = layer.params.get("gamma", np.ones(channels))
    beta = layer.params.get("beta", np.zeros(channels))
    names = ("gamma", "beta", "moving_mean", "moving_variance")
    values = (gamma, beta, layer.state["moving_mean"], layer.state["moving_variance"])
    inputs = [g.tensor] + [g.const(f"{layer.name}/{n}", v) for n, v in zip(names, values, strict=True)]
    g.op("BatchNormalization", inputs, f"{layer.name}/BatchNormalization", epsilon=float(layer.epsilon))


def _dense(g: _Graph, layer: Any) -> None:
    g.to_channels_last(layer.name)
    kernel = g.const(f"{layer.name}/kernel", layer.params["kernel"])
    if g.rank == 2 and layer.use_bias:
        bias = g.const(f"{layer.name}/bias", layer.params["bias"])
        g.op("Gemm", [g.tensor, kernel, bias], f"{layer.name}/Gemm")
    else:
        g.op("MatMul", [g.tensor, kernel], f"{layer.name}/MatMul")
        if layer.use_bias:
            g.op("Add", [g.tensor, g.const(f"{layer.name}/bias", layer.params["bias"])], f"{layer.name}/Add")
    _activation(g, layer.activation.name, layer.name)


def _flatten(g: _Graph, layer: Layer) -> None:
    g.to_channels_last(layer.name)  # Keras flattens (H, W, C)
    g.unary("Flatten", f"{layer.name}/Flatten", axis=1)
    g.rank = 2


def _relu(g: _Graph, layer: Any) -> None:
    if layer.threshold == 0.0 and layer.negative_slope == 0.0:
        g.unary("Relu", f"{layer.name}/Relu")
        if layer.max_value is not None:
            cap = g.const(f"{layer.name}/max_value", layer.max_value)
            g.op("Clip", [g.tensor, g.const(f"{layer.name}/zero", 0.0), cap], f"{layer.name}/Clip")
        return
    if layer.threshold == 0.0 and layer.max_value is None:
        g.unary("LeakyRelu", f"{layer.name}/LeakyRelu", alpha=float(layer.negative_slope))
        return
    # x >= t: x; else slope * (x - t); then min(., max_value)
    x = g.tensor
    t = g.const(f"{layer.name}/threshold", layer.threshold)
    cond = g.op("GreaterOrEqual", [x, t], f"{layer.name}/GreaterOrEqual")
    shifted = g.op("Sub", [x, t], f"{layer.name}/Sub")
    below = g.op("Mul", [shifted, g.const(f"{layer.name}/slope", layer.negative_slope)], f"{layer.name}/Mul")
    g.op("Where", [cond, x, below], f"{layer.name}/Where")
    if layer.max_value is not None:
        g.op("Min", [g.tensor, g.const(f"{layer.name}/max_value", layer.max_value)], f"{layer.name}/Min")


def _softmax(g: _Graph, layer: Any) -> None:
    axis = layer.axis % g.rank
    if g.channels_first:
        axis = channels_first_perm(g.rank)[axis]
    g.unary("Softmax", f"{layer.name}/Softmax", axis=axis)


def _zero_padding(g: _Graph, layer: Any) -> None:
    g.to_channels_first(layer.name)
    pads = [0, 0, *(b for b, _ in layer.padding), 0, 0, *(a for _, a in layer.padding)]
    g.op("Pad", [g.tensor, g.const(f"{layer.name}/pads", pads, np.int64)], f"{layer.name}/Pad", mode="constant")


EXPORTED_LAYERS: dict[str, Callable[[_Graph, Any], None]] = {
    "Conv1D": _conv,
    "Conv2D": _conv,
    "DepthwiseConv2D": _conv,
    "MaxPooling1D": _pool,
    "MaxPooling2D": _pool,
    "AveragePooling1D": _pool,
    "AveragePooling2D": _pool,
    "GlobalMaxPooling1D": _global_pool,
    "GlobalMaxPooling2D": _global_pool,
    "GlobalAveragePooling1D": _global_pool,
    "GlobalAveragePooling2D": _global_pool,
    "BatchNormalization": _batch_norm,
    "Dense": _dense,
    "Flatten": _flatten,
    "Dropout": lambda g, layer: None,  # inference: the identity
    "Activation": lambda g, layer: _activation(g, layer.activation.name, layer.name),
    "ReLU": _relu,
    "Softmax": _softmax,
    "ZeroPadding1D": _zero_padding,
    "ZeroPadding2D": _zero_padding,
}


def _dims(shape: Any) -> list[Any]:
    return ["N", *(int(s) for s in shape[1:])]


def to_onnx(model: Sequential, *, opset: int = OPSET) -> Any:
    """The ``onnx.ModelProto`` of a built ``model`` (checked with ``onnx.checker``).

    Raises:
        StateError: for a model that is not built.
        ConfigError: for a layer or activation without an ONNX form, or ``opset`` < 13.
    """
    import onnx
    from onnx import TensorProto, helper

    model._require_built("ONNX export")
    if not isinstance(opset, int) or opset < 13:
        raise ConfigError(f"ONNX export: `opset` must be an integer >= 13, got {opset!r}.")
    input_shape = tuple(model.input_shape or ())
    g = _Graph("input", len(input_shape))
    for layer in model.layers:
        export = EXPORTED_LAYERS.get(type(layer).__name__)
        if export is None:
            raise ConfigError(
                f"{layer!r}: no ONNX export for {type(layer).__name__}; supported layers: "
                f"{', '.join(sorted(EXPORTED_LAYERS))}."
            )
        export(g, layer)
        g.rank = len(layer.compute_output_shape(layer.input_shape))  # type: ignore[arg-type]
    g.to_channels_last("output")
    g.op("Identity", [g.tensor], "output/Identity")
    g.nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, _dims(input_shape))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, _dims(model.output_shape))],
        g.initializers,
    )
    proto = helper.make_model(
        graph,
        producer_name="convlens",
        opset_imports=[helper.make_opsetid("", opset)],
        doc_string="convlens model; input and output are channels-last (N, H, W, C) like the convlens model.",
    )
    proto.ir_version = IR_VERSION
    helper.set_model_props(proto, {"convlens.input_layout": "channels_last"})
    onnx.checker.check_model(proto)
    return proto
